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

from twistchat.chat.protocol import max_login_request_bytes
from twistchat.chat.server.config import ServerConfig
from twistchat.chat.server.keyfile import DEFAULT_KEY_NAME, ServerKeyError, key_path, load_server_key
from twistchat.chat.server.options import build_config, opt_parameters, option, option_problems, port_number
from twistchat.chat.server.server import ChatServer
from twistchat.cluster import Broker
from twistchat.endpoint.endpoint import ServerEndpoint
from twistchat.endpoint.keys import key_fingerprint
from twistchat.endpoint.ratelimit import Rate
from twistchat.endpoint.server import Admission
from twistchat.endpoint.shedding import ShedPolicy
from twistchat.reliable.config import stranger_window
from twistchat.reliable.session import SessionConfig
from twistchat.store import open_store
from twistchat.store.redis_address import RedisUnreachable, parse_redis_url, probe, redis_url_problem

DEFAULT_PORT = 9999
DEFAULT_DB = "twistchat.sqlite3"
SHUTDOWN_GRACE = 3.0
"""Seconds to let sessions deliver their last messages and CLOSE frames."""
SHUTDOWN_POLL = 0.05


@attrs.frozen
class ListenConfig:
    """Where the service listens and keeps its data (the rest is ServerConfig)."""

    port: int = option("port", "UDP port to listen on.", port_number, short="p",
                       default=DEFAULT_PORT)
    interface: str = option("interface", "Address to listen on ('' = all IPv4, '::' = IPv6 and IPv4).",
                            short="i", default="")
    db: str = option("db", "SQLite database file (':memory:' for a throwaway server); unused "
                     "with --redis.",
                     default=DEFAULT_DB)
    redis: str = option(
        "redis", "Keep everything in the Redis at this URL (redis://HOST:PORT/DB) instead of the "
        "--db file: a node of a network of twistd nodes sharing it (docs/CLUSTER.md).",
        redis_url_problem, default="")
    key: str = option(
        "key", f"The server's long-term key file, created mode 0600 if missing (default "
        f"{DEFAULT_KEY_NAME} beside the --db file; with --db :memory: a throwaway key "
        "unless --key is given). Clients pin its fingerprint.", default="")

    @property
    def key_path(self):
        return key_path(self.key, self.db)


class Options(usage.Options):
    """Generated from the ``option(...)`` fields of ListenConfig and ServerConfig."""

    synopsis = "[options]"
    longdesc = ("Run a twistchat server: rooms, nicknames, direct messages, presence and "
                "offline messages over twistchat's reliable UDP transport.")
    optParameters = opt_parameters(ListenConfig) + opt_parameters(ServerConfig)
    optFlags = [["fingerprint", None, "Print the server key's fingerprint (creating the key "
                 "file if there is none yet) and exit, without starting the server."]]

    def postOptions(self) -> None:
        problems = [*option_problems(ListenConfig, self), *option_problems(ServerConfig, self)]
        if problems:
            raise usage.UsageError("; ".join(problems))
        if self["idle-timeout"] is not None and self["idle-timeout"] <= self["keepalive"]:
            raise usage.UsageError("--idle-timeout must be longer than --keepalive")
        transport = session_config(self.server_config())
        if transport.max_send_queue < transport.max_message_size:
            raise usage.UsageError(f"--max-send-queue must hold the largest message "
                                   f"({transport.max_message_size} bytes)")
        if self["login-backoff-max"] < self["login-backoff"]:
            raise usage.UsageError("--login-backoff-max must not be shorter than --login-backoff")
        if self["fingerprint"]:
            print_fingerprint(self.listen_config())

    def listen_config(self) -> ListenConfig:
        return build_config(ListenConfig, self)

    def server_config(self) -> ServerConfig:
        return build_config(ServerConfig, self)


def session_config(config: ServerConfig) -> SessionConfig:
    """The transport follows the chat server's settings: clients are told the
    keepalive interval, a silent one times out with the chat idle timeout (the
    chat reaper is the backstop), and the largest message it takes covers the
    largest request the chat limits allow (a payload at ``max_payload_bytes``
    with its envelope), so the announced limits are the real ones; and the
    largest event, since the transport sends a peer no more than it takes.
    Until a user logs in on it (``mark_trusted``), a session is offered only
    the receive window its largest login needs (``stranger_window`` of
    ``max_login_request_bytes``): a peer that never logs in can make the
    server hold and decrypt no more than that."""
    default = SessionConfig()
    max_message_size = max(default.max_message_size, config.max_request_bytes,
                           config.max_message_bytes)
    return attrs.evolve(default, keepalive_interval=config.keepalive_interval,
                        idle_timeout=config.idle_timeout, max_message_size=max_message_size,
                        initial_receive_window=min(stranger_window(max_login_request_bytes()),
                                                   default.receive_window),
                        max_send_queue=config.max_send_queue)


def admission(config: ServerConfig) -> Admission:
    """Who the transport lets in, and how many (PROTOCOL.md Part 1 §9), from
    the options."""
    c = config
    return Admission(
        max_sessions=c.max_sessions, max_sessions_per_address=c.max_sessions_per_address,
        cookies_per_address=Rate(per_second=c.cookie_rate, burst=c.cookie_burst),
        cookies_per_prefix=Rate(per_second=c.cookie_prefix_rate, burst=c.cookie_prefix_burst),
        sessions_per_address=Rate(per_second=c.connect_rate, burst=c.connect_burst),
        sessions_per_prefix=Rate(per_second=c.connect_prefix_rate, burst=c.connect_prefix_burst),
        sessions_in_total=Rate(per_second=c.connect_total_rate, burst=c.connect_total_burst),
        reassembly_budget=c.reassembly_budget, send_queue_budget=c.send_queue_budget,
        shedding=ShedPolicy(refusals=Rate(per_second=c.shed_refusal_rate, burst=c.shed_refusal_burst),
                            first_period=c.shed_seconds))


class ChatService(service.MultiService):
    log = Logger()

    def __init__(self, reactor: Any, port: int, interface: str, db: str,
                 config: ServerConfig, static_key: Any = None, key_file: Any = None,
                 redis: str = "", broker: Broker | None = None) -> None:
        """``static_key``: the server's X25519 key (``keyfile.load_server_key``),
        loaded from ``key_file`` (None: a throwaway key, or none given: a fresh one);
        ``redis``: a URL to keep everything in Redis instead of ``db``;
        ``broker``: this node's link to the others of its network
        (``cluster_broker``); none for a single node."""
        super().__init__()
        self.reactor = reactor
        self.db = parse_redis_url(redis).url if redis else db
        self.static_key = static_key if static_key is not None else load_server_key(None)
        self.key_file = key_file
        self.store = open_store(reactor, db, redis=redis)
        self.chat = ChatServer(self.store, reactor, config, broker=broker)
        self.endpoint = ServerEndpoint(reactor, lambda address: self.chat.build_protocol(),
                                       config=session_config(config),
                                       admission=admission(config),
                                       static_key=self.static_key)
        self.udp = internet.UDPServer(port, self.endpoint, interface=interface, reactor=reactor)
        self.udp.setServiceParent(self)

    @property
    def port(self) -> int:
        """The bound port (useful with --port 0)."""
        return self.endpoint.transport.getHost().port

    def startService(self) -> None:
        super().startService()
        self.log.info("twistchat listening on UDP {interface}:{port}, store {db}, "
                      "server key {fingerprint} ({key_file})",
                      interface=self.udp.kwargs.get("interface") or "*", port=self.port,
                      db=self.db, fingerprint=key_fingerprint(self.static_key),
                      key_file=self.key_file or "throwaway, not saved")
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


def cluster_broker(redis_url: str, reactor: Any, config: ServerConfig) -> Broker:
    """The broker of a node on ``--redis URL`` (docs/CLUSTER.md): named
    ``--node-name``, its calls bounded by ``--redis-timeout``.  txredisapi
    is imported only here: importing it installs the global reactor."""
    from twistchat.cluster.redis_broker import redis_broker

    return redis_broker(redis_url, reactor, config.node_name, timeout=config.redis_timeout)


def make_service(options: Options, reactor: Any = None) -> ChatService:
    if reactor is None:
        from twisted.internet import reactor
    listen = options.listen_config()
    config = options.server_config()
    broker = None
    if listen.redis:
        _check_redis(listen.redis)
        broker = cluster_broker(listen.redis, reactor, config)
    return ChatService(reactor, listen.port, listen.interface, listen.db, config,
                       static_key=_server_key(listen), key_file=listen.key_path, redis=listen.redis,
                       broker=broker)


def _check_redis(url: str) -> None:
    """A node whose Redis does not answer refuses to start, in one line."""
    address = parse_redis_url(url)
    try:
        probe(address)
    except RedisUnreachable as e:
        raise SystemExit(f"twistd twistchat: cannot reach Redis at {address.url}: {e}") from None


def _server_key(listen: ListenConfig):
    try:
        return load_server_key(listen.key_path)
    except ServerKeyError as e:
        raise SystemExit(f"twistd twistchat: {e}") from None


def print_fingerprint(listen: ListenConfig) -> None:
    """``twistd twistchat --fingerprint``: what clients pin, for the operator
    to hand out (``twistchat-client --server-key``); exits."""
    key = _server_key(listen)
    where = listen.key_path or "a throwaway key: --db :memory: without --key"
    print(f"{key_fingerprint(key)} {where}", flush=True)
    raise SystemExit(0)
