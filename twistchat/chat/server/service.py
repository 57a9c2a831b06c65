"""
The server as a Twisted service: the store, the chat logic and one UDP
``ServerEndpoint``, started and stopped in the right order.

``twistd twistchat`` builds one with ``make_service(options)``; stopping it
(SIGTERM, SIGINT) tells every client, waits for every store write, closes
the sessions gracefully (bounded by ``SHUTDOWN_GRACE``) and only then stops
listening and closes the store, so nothing acknowledged is lost.
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.application import internet, service
from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python import usage

from twistchat.chat.server.config import ServerConfig
from twistchat.chat.server.server import ChatServer
from twistchat.endpoint.endpoint import DEFAULT_MAX_SESSIONS, ServerEndpoint
from twistchat.reliable.session import SessionConfig
from twistchat.store.base import open_store

DEFAULT_PORT = 9999
DEFAULT_DB = "twistchat.sqlite3"
SHUTDOWN_GRACE = 3.0
"""Seconds to let sessions deliver their last messages and CLOSE frames."""
SHUTDOWN_POLL = 0.05


class Options(usage.Options):
    synopsis = "[options]"
    longdesc = ("Run a twistchat server: rooms, nicknames, direct messages, presence and "
                "offline messages over twistchat's reliable UDP transport.")
    defaults = ServerConfig()
    optParameters = [
        ["port", "p", DEFAULT_PORT, "UDP port to listen on.", int],
        ["interface", "i", "", "Address to listen on ('' = all IPv4, '::' = IPv6 and IPv4)."],
        ["db", None, DEFAULT_DB, "SQLite database file (':memory:' for a throwaway server)."],
        ["keepalive", None, defaults.keepalive_interval,
         "Keepalive interval suggested to clients, seconds.", float],
        ["idle-timeout", None, None,
         "Drop a client silent for this long, seconds (default 3 x keepalive).", float],
        ["room-ttl", None, defaults.room_ttl,
         "Remove an empty room after this many seconds.", float],
        ["kept-room-ttl", None, defaults.kept_room_ttl,
         "...or after this many, if it has a topic, bans, a key or invite-only.", float],
        ["history", None, defaults.history_size, "Messages of history kept per room.", int],
        ["max-room-members", None, defaults.max_members_per_room, "Members per room.", int],
        ["max-rooms-per-client", None, defaults.max_rooms_per_client,
         "Rooms one client may be in.", int],
        ["max-rooms-created", None, defaults.max_rooms_created,
         "Rooms one client may create.", int],
        ["max-text", None, defaults.max_text_bytes, "Largest text message, UTF-8 bytes.", int],
        ["mailbox-size", None, defaults.mailbox_size,
         "Offline messages kept per user.", int],
        ["rate", None, defaults.rate, "Requests per second per client (token bucket).", float],
        ["burst", None, defaults.burst, "Token bucket size per client.", int],
        ["max-sessions", None, DEFAULT_MAX_SESSIONS, "Concurrent sessions.", int],
        ["unclaimed-expiry", None, defaults.unclaimed_expiry,
         "Forget password-less nicks after this many seconds of absence.", float],
        ["scrypt-n", None, defaults.scrypt_n,
         "scrypt cost for credentials (a power of two; memory = 128 x 8 x N bytes).", int],
    ]

    def postOptions(self) -> None:
        for name in ("port",):
            if not 0 <= self[name] <= 65535:
                raise usage.UsageError(f"--{name} must be 0-65535")
        for name in ("keepalive", "room-ttl", "history", "max-room-members",
                     "max-rooms-per-client", "max-text", "rate", "burst", "max-sessions"):
            if self[name] <= 0:
                raise usage.UsageError(f"--{name} must be positive")
        n = self["scrypt-n"]
        if n < 2 or n & (n - 1):
            raise usage.UsageError("--scrypt-n must be a power of two, at least 2")
        if self["idle-timeout"] is not None and self["idle-timeout"] <= self["keepalive"]:
            raise usage.UsageError("--idle-timeout must be longer than --keepalive")

    def server_config(self) -> ServerConfig:
        changes: dict[str, Any] = dict(
            keepalive_interval=self["keepalive"], room_ttl=self["room-ttl"],
            kept_room_ttl=self["kept-room-ttl"], history_size=self["history"],
            max_members_per_room=self["max-room-members"],
            max_rooms_per_client=self["max-rooms-per-client"],
            max_rooms_created=self["max-rooms-created"], max_text_bytes=self["max-text"],
            mailbox_size=self["mailbox-size"], rate=self["rate"], burst=self["burst"],
            unclaimed_expiry=self["unclaimed-expiry"], scrypt_n=self["scrypt-n"])
        if self["idle-timeout"] is not None:
            changes["idle_timeout"] = self["idle-timeout"]
        else:
            changes["idle_timeout"] = 3 * self["keepalive"]
        return attrs.evolve(ServerConfig(), **changes)


def session_config(config: ServerConfig) -> SessionConfig:
    """The transport follows the chat server's liveness settings: clients are
    told the keepalive interval, and a silent one times out with the chat idle
    timeout (the chat reaper is the backstop)."""
    return attrs.evolve(SessionConfig(), keepalive_interval=config.keepalive_interval,
                        idle_timeout=config.idle_timeout)


class ChatService(service.MultiService):
    log = Logger()

    def __init__(self, reactor: Any, port: int, interface: str, db: str,
                 config: ServerConfig, max_sessions: int = DEFAULT_MAX_SESSIONS) -> None:
        super().__init__()
        self.reactor = reactor
        self.db = db
        self.store = open_store(reactor, db)
        self.chat = ChatServer(self.store, reactor, config)
        self.endpoint = ServerEndpoint(reactor, lambda address: self.chat.build_protocol(),
                                       config=session_config(config), max_sessions=max_sessions)
        self.udp = internet.UDPServer(port, self.endpoint, interface=interface, reactor=reactor)
        self.udp.setServiceParent(self)

    @property
    def port(self) -> int:
        """The bound port (useful with --port 0)."""
        return self.udp._port.getHost().port

    def startService(self) -> None:
        super().startService()
        self.log.info("twistchat listening on UDP {interface}:{port}, store {db}",
                      interface=self.udp.kwargs.get("interface") or "*", port=self.port,
                      db=self.db)
        self.chat.start().addErrback(self._start_failed)

    def _start_failed(self, failure) -> None:
        self.log.failure("could not load the store; stopping", failure)
        self.reactor.stop()

    @defer.inlineCallbacks
    def stopService(self):
        self.log.info("stopping: telling {count} sessions", count=len(self.endpoint.sessions))
        try:
            yield self.chat.shutdown("server shutting down")
        except Exception:
            self.log.failure("shutdown of the chat server failed")
        deadline = self.reactor.seconds() + SHUTDOWN_GRACE
        while self.endpoint.sessions and self.reactor.seconds() < deadline:
            yield task.deferLater(self.reactor, SHUTDOWN_POLL, lambda: None)
        self.endpoint.close_all()
        yield super().stopService()
        yield self.store.close()
        self.log.info("stopped")


def make_service(options: Options, reactor: Any = None) -> ChatService:
    if reactor is None:
        from twisted.internet import reactor
    return ChatService(reactor, options["port"], options["interface"], options["db"],
                       options.server_config(), max_sessions=options["max-sessions"])
