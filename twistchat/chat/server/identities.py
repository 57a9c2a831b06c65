"""
Nickname registrations: credential hashing and the expiry rule.

Credentials (passwords, or the random secret a password-less registration
is given) are stored only as salted scrypt hashes, encoded with their cost
parameters so a later release can raise the cost without breaking old rows:
``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from twistchat.store.base import Account

SCHEME = "scrypt"
SALT_BYTES = 16
HASH_BYTES = 32


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=256 * n * r + (1 << 20), dklen=HASH_BYTES)


def hash_credential(secret: str, n: int, r: int, p: int) -> str:
    salt = secrets.token_bytes(SALT_BYTES)
    return "$".join([SCHEME, str(n), str(r), str(p), _b64(salt), _b64(_scrypt(secret, salt, n, r, p))])


def verify_credential(secret: str, encoded: str) -> bool:
    """Constant-time check of ``secret`` against an encoded hash; False on any
    malformed record rather than an exception."""
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != SCHEME:
            return False
        actual = _scrypt(secret, base64.b64decode(salt), int(n), int(r), int(p))
        return hmac.compare_digest(actual, base64.b64decode(digest))
    except (ValueError, TypeError):
        return False


def new_secret(nbytes: int) -> str:
    """The credential handed to a client that registers without a password."""
    return secrets.token_urlsafe(nbytes)


def is_expired(account: Account, now_ms: int, expiry_seconds: float,
               password_expiry_seconds: float | None = None) -> bool:
    """Password-less registrations lapse after ``expiry_seconds`` of absence,
    password registrations after ``password_expiry_seconds`` (never if None)."""
    expiry = expiry_seconds if not account.has_password else password_expiry_seconds
    return expiry is not None and account.last_seen < now_ms - int(expiry * 1000)
