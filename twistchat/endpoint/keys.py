"""
The server's long-term X25519 key: loaded from a file, or created there
(mode 0600) on first start, and shown as a fingerprint the way ssh shows
host keys (``SHA256:`` and the unpadded base64 of the SHA-256 of the public
key). Clients pin it; the server's stateless reset secret derives from it,
so a restarted server can still prove that it lost a session.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from twistchat.reliable.noise import hmac_sha256, public_bytes, sha256

KEY_FILE_MODE = 0o600
KEY_SIZE = 32


class KeyFileError(Exception):
    """The key file exists but does not hold a key."""


def load_or_create(path: str | os.PathLike) -> X25519PrivateKey:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        key = X25519PrivateKey.generate()
        raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
        with os.fdopen(descriptor, "wb") as out:
            out.write(base64.b64encode(raw) + b"\n")
        return key
    try:
        raw = base64.b64decode(data.strip(), validate=True)
    except ValueError:
        raw = b""
    if len(raw) != KEY_SIZE:
        raise KeyFileError(f"{path} does not hold a twistchat server key (32 bytes, base64)")
    return X25519PrivateKey.from_private_bytes(raw)


def fingerprint(public_key: bytes) -> str:
    return "SHA256:" + base64.b64encode(sha256(public_key)).decode().rstrip("=")


def key_fingerprint(key: X25519PrivateKey) -> str:
    return fingerprint(public_bytes(key))


def reset_secret(key: X25519PrivateKey) -> bytes:
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return hmac_sha256(raw, b"twistchat stateless reset secret")
