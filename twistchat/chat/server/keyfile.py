"""
Where the server keeps its long-term X25519 key (``--key``, default
``twistchat.key`` beside the ``--db`` file), and the key itself: created
mode 0600 on first start, loaded after (``endpoint.keys``), so clients that
pinned it keep trusting the server across restarts. A ``:memory:`` server
without ``--key`` gets a throwaway key: it forgets everything anyway.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from twistchat.endpoint.keys import KeyFileError, load_or_create
from twistchat.store import MEMORY

DEFAULT_KEY_NAME = "twistchat.key"


class ServerKeyError(Exception):
    """The key file cannot be read, created, or does not hold a key."""


def key_path(key: str | None, db: str) -> Path | None:
    """The key file for these options; None: a throwaway key."""
    if key:
        return Path(key)
    if db in (MEMORY, "memory"):
        return None
    return Path(db).parent / DEFAULT_KEY_NAME


def load_server_key(path: Path | None) -> X25519PrivateKey:
    if path is None:
        return X25519PrivateKey.generate()
    try:
        return load_or_create(path)
    except KeyFileError as e:
        raise ServerKeyError(str(e)) from None
    except OSError as e:
        raise ServerKeyError(f"cannot read or create the server key {path}: "
                             f"{e.strerror or e}") from None
