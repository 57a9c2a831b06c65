"""
Where the Redis of ``--redis URL`` is, and the check at startup that it
answers.  The URL is ``redis://[:PASSWORD@]HOST[:PORT][/DB]`` (port 6379
and database 0 by default), the scheme redis-cli and the Redis clients
share.

``probe`` is blocking on purpose: twistd calls it while building the
service, before the reactor runs, so a node that cannot reach its store
refuses to start with one clear line instead of starting and failing
every request.  It needs no client library: three inline RESP commands.
"""

from __future__ import annotations

import socket
from urllib.parse import unquote, urlsplit

import attrs

DEFAULT_PORT = 6379
"""The port Redis listens on unless told otherwise."""
SCHEME = "redis"
PROBE_TIMEOUT = 5.0
"""Seconds the startup check waits for Redis to answer."""
MAX_PROBE_REPLY = 4096
"""Bytes of replies the startup check reads at most (its replies are short lines)."""


class RedisUnreachable(Exception):
    """The startup check got no good answer from Redis."""


@attrs.frozen
class RedisAddress:
    host: str
    port: int = DEFAULT_PORT
    db: int = 0
    password: str | None = attrs.field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The URL without the password: what logs may show."""
        return f"{SCHEME}://{self.host}:{self.port}/{self.db}"


def parse_redis_url(url: str) -> RedisAddress:
    """ValueError, saying what is wrong, for anything but a redis:// URL."""
    parts = urlsplit(url)
    if parts.scheme != SCHEME or not parts.hostname:
        raise ValueError(f"must be {SCHEME}://HOST[:PORT][/DB]")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ValueError("has a port that is not a number 0-65535") from None
    path = parts.path.lstrip("/")
    if path and not path.isdigit():
        raise ValueError("must name its database by number (/0, /1, ...)")
    if parts.query or parts.fragment:
        raise ValueError("takes no ?query or #fragment")
    password = unquote(parts.password) if parts.password is not None else None
    return RedisAddress(parts.hostname, port, int(path or 0), password)


def redis_url_problem(url: str) -> str | None:
    """The ``--redis`` option's check ('' is no Redis: the SQLite node)."""
    if not url:
        return None
    try:
        parse_redis_url(url)
    except ValueError as wrong:
        return str(wrong)
    return None


def _command(*words: str) -> bytes:
    """One command as a RESP array of bulk strings."""
    encoded = [word.encode() for word in words]
    return b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in encoded)


def probe(address: RedisAddress, timeout: float = PROBE_TIMEOUT) -> None:
    """Connect, authenticate if a password is given, select the database
    and PING; RedisUnreachable (one line) unless every reply is good."""
    commands = [("AUTH", address.password)] if address.password is not None else []
    commands += [("SELECT", str(address.db)), ("PING",)]
    try:
        with socket.create_connection((address.host, address.port), timeout=timeout) as conn:
            conn.sendall(b"".join(_command(*words) for words in commands))
            replies = b""
            while replies.count(b"\r\n") < len(commands) and len(replies) < MAX_PROBE_REPLY:
                chunk = conn.recv(MAX_PROBE_REPLY)
                if not chunk:
                    raise RedisUnreachable("the connection was closed before it answered")
                replies += chunk
    except OSError as error:
        raise RedisUnreachable(error.strerror or str(error)) from None
    for reply in replies.split(b"\r\n")[:len(commands)]:
        if not reply.startswith(b"+"):
            raise RedisUnreachable(reply.lstrip(b"-").decode("utf-8", "replace") or "no answer")
