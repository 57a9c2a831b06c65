"""
What a client remembers between runs, per nick and network: the random
secret of a password-less registration (or that the nick needs a password),
the last message id seen in each room, for catching up, and the ids of the
latest DMs shown (a DM whose deletion a server crash undid comes again,
maybe to the next run: it is not shown twice).

Files live in ``$XDG_STATE_HOME/twistchat`` (default ``~/.local/state/twistchat``),
one JSON file per nick and network, written atomically and readable only by
the user, since the secret is a credential. A network of several nodes
(``servers.py``) is one network: its file is named after its first
``host:port``, so a one-server network's file is the one a client of a
single server always wrote, and moving node loses no mark.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs


KEPT_DM_IDS = 1000
"""DM ids kept between runs: a mailbox's worth (the server's default
``mailbox_size``), all of which a crash of the server may send again."""


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "twistchat"


class StateError(Exception):
    """The state file exists but cannot be read or written."""


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically (a reader sees the old file
    or the new one, never half), readable only by the user."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
        try:
            with os.fdopen(fd, "w") as out:
                out.write(text)
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as e:
        raise StateError(f"cannot write {path}: {e}") from None


@attrs.define
class ClientState:
    path: Path | None
    """None: keep nothing on disk (tests, throwaway sessions)."""
    secret: str | None = None
    password_required: bool = False
    last_seen: dict[str, int] = attrs.Factory(dict)
    dm_ids: list[int] = attrs.Factory(list)
    """The latest ``KEPT_DM_IDS`` DM ids shown, oldest first."""

    @classmethod
    def load(cls, directory: Path | str, nick: str, host: str, port: int) -> "ClientState":
        """The state for ``nick`` on the server (or network) named ``host:port``."""
        path = _path(directory, nick, host, port)
        return cls._read(path, path)

    @classmethod
    def for_network(cls, directory: Path | str, nick: str,
                    servers: Iterable[tuple[str, int]]) -> "ClientState":
        """The state for ``nick`` on the network of ``servers``, kept in the
        file of the first. If there is none yet, the file an earlier run
        kept for another of them alone is read (an upgrade from one server
        to its network: no mark is lost), and saved as the network's."""
        servers = list(servers)
        path = _path(directory, nick, *servers[0])
        for host, port in servers:
            source = _path(directory, nick, host, port)
            if source.exists():
                return cls._read(source, path)
        return cls(path)

    @classmethod
    def _read(cls, source: Path, path: Path) -> "ClientState":
        """What ``source`` holds, to be saved to ``path``."""
        try:
            data: dict[str, Any] = json.loads(source.read_text())
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError) as e:
            raise StateError(f"cannot read {source}: {e}") from None
        last_seen = data.get("last_seen") or {}
        return cls(path, secret=data.get("secret"),
                   password_required=bool(data.get("password_required")),
                   last_seen={str(k): int(v) for k, v in last_seen.items()},
                   dm_ids=[int(i) for i in data.get("dm_ids") or []][-KEPT_DM_IDS:])

    def save(self) -> None:
        if self.path is None:
            return
        data = {"secret": self.secret, "password_required": self.password_required,
                "last_seen": self.last_seen, "dm_ids": self.dm_ids}
        write_private(self.path, json.dumps(data))

    def saw_dm(self, dm_id: int) -> None:
        self.dm_ids.append(dm_id)
        del self.dm_ids[:-KEPT_DM_IDS]

    def saw(self, room_key: str, msg_id: int) -> None:
        if msg_id > self.last_seen.get(room_key, 0):
            self.last_seen[room_key] = msg_id


def _path(directory: Path | str, nick: str, host: str, port: int) -> Path:
    safe_host = host.replace(":", "_").replace("/", "_")
    return Path(directory) / f"{nick.lower()}@{safe_host}_{port}.json"
