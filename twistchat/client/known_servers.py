"""
The servers a user has met and the static key each proved, as ssh's
``known_hosts`` keeps host keys: one file per user (not per nick),
``$XDG_STATE_HOME/twistchat/known_servers``, written atomically and readable
only by the user. A client pins a server's key on first contact; from then
on a server at that host and port proving another key is refused
(``ServerKeyMismatch``) unless the user accepts the new key explicitly.

One line per server, ``HOST:PORT KEY`` (``[HOST]:PORT`` for an IPv6
address), KEY the server's 32-byte X25519 public key in base64; ``#`` starts
a comment. The host is kept as given (lower-cased): ``localhost`` and
``127.0.0.1`` are two entries, as in ssh. So are the nodes of one network
(``servers.py``): each is pinned on its own, and a node met for the first
time must prove the key its network's other nodes proved (``pinning.py``).
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path

from twistchat.client.state import StateError, default_state_dir, write_private
from twistchat.endpoint.keys import KEY_SIZE, fingerprint

FILE_NAME = "known_servers"
HEADER = "# twistchat known servers: HOST:PORT and the server's public key (base64)\n"
FINGERPRINT = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}$")


def server_name(address: tuple[str, int]) -> str:
    """``host:port`` as the entries and the messages write it."""
    host, port = address[0].lower(), address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_fingerprint(text: str) -> str:
    """``text`` if it is a key fingerprint as the server prints it, else ValueError."""
    text = text.strip()
    if not FINGERPRINT.match(text):
        raise ValueError(f"{text!r} is not a server key fingerprint (SHA256: and 43 base64 characters)")
    return text


class ServerKeyMismatch(Exception):
    """The server proved a static key other than the one expected: the one
    pinned in ``known_servers`` on an earlier contact, or the one the user
    gave (``server_key``). Nothing was sent on that session.  ``proven`` is
    None if the key the server proves now could not be learnt."""

    def __init__(self, server: str, expected: str, proven: str | None, pinned: bool,
                 via: str | None = None) -> None:
        """``via``: the node of the same network whose pinned key ``server`` had to prove."""
        self.server, self.expected, self.proven, self.pinned = server, expected, proven, pinned
        if via is not None:
            where = f"the key of its network, pinned for {via}"
        else:
            where = "pinned for it" if pinned else "given for it"
        now = f"the server now proves {proven}" if proven else "the key it proves now is unknown"
        super().__init__(f"server key mismatch for {server}: {where}: {expected}, {now}; "
                         "refusing to talk to it (someone may be impersonating the server, "
                         "or its key was replaced)")


class KnownServers:
    """The pinned keys, read from ``path`` (None: kept in memory only)."""

    def __init__(self, path: Path | None, keys: dict[str, bytes] | None = None) -> None:
        self.path = path
        self.keys: dict[str, bytes] = dict(keys or {})

    @classmethod
    def load(cls, directory: Path | str | None = None) -> "KnownServers":
        """The user's file in ``directory`` (default: the client's state dir)."""
        path = Path(directory if directory is not None else default_state_dir()) / FILE_NAME
        return cls(path, _read(path))

    def get(self, address: tuple[str, int]) -> bytes | None:
        return self.keys.get(server_name(address))

    def pin(self, address: tuple[str, int], key: bytes) -> None:
        """Remember ``key`` for ``address`` (replacing any other), on disk at
        once; entries other clients wrote since we read the file are kept."""
        if len(key) != KEY_SIZE:
            raise ValueError("a server key is 32 bytes")
        if self.path is not None:
            self.keys = {**_read(self.path), **self.keys}
        self.keys[server_name(address)] = key
        if self.path is not None:
            _write(self.path, self.keys)


def _read(path: Path) -> dict[str, bytes]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise StateError(f"cannot read {path}: {e}") from None
    keys = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            name, encoded = line.split()
            key = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error):
            key, name = b"", ""
        if len(key) != KEY_SIZE or not name.rpartition(":")[2].isdigit():
            raise StateError(f"{path}, line {number}: not HOST:PORT and a base64 32-byte key")
        keys[name.lower()] = key
    return keys


def _write(path: Path, keys: dict[str, bytes]) -> None:
    write_private(path, HEADER + "".join(
        f"{name} {base64.b64encode(key).decode()}  # {fingerprint(key)}\n"
        for name, key in sorted(keys.items())))
