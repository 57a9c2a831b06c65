"""Fakes for driving the chat server without a network: a MessageConnection
that records what is sent (and acknowledges it at once, or holds the acks
back until told), and a harness with a Clock and a MemoryStore."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet.task import Clock

from twistchat.chat import protocol as p
from twistchat.chat.server import ChatServer, ServerConfig
from twistchat.endpoint.api import (
    INTERACTIVE_LANE, CloseCode, CloseReason, ConnectionClosed, MessageProtocol, MessageTooLarge,
)
from twisted.internet.defer import Deferred

from twistchat.store.memory import MemoryStore

FAST_SCRYPT = {"scrypt_n": 16, "scrypt_r": 1, "scrypt_p": 1}
"""Real scrypt, tiny cost: keeps the suite fast."""

CLIENT_MAX_MESSAGE_SIZE = 256 * 1024
"""What the reference client announces (PROTOCOL.md C10): at least the
server's ``max_message_bytes``."""

_connection_ids = itertools.count(1)


class FakeConnection:
    """Records sent messages; ``close`` ends the session at once, as a transport
    reporting ``connection_lost`` would.

    Acknowledgements: by default the peer acknowledges each message as it is
    sent (``on_acked`` runs at once, ``acked_below`` passes it).  After
    ``hold_acks()`` they wait in ``held`` (data, on_acked, seq) until
    ``release_acks()`` or ``ack_held()``; ``acked_below`` stays at the oldest
    held, as a transport's cumulative mark does; a session that ends
    meanwhile reports them in ``CloseReason.unacked`` and never calls their
    ``on_acked``."""

    def __init__(self, protocol: MessageProtocol, address: tuple[str, int] = ("192.0.2.1", 4000),
                 max_message_size: int = CLIENT_MAX_MESSAGE_SIZE) -> None:
        self.protocol = protocol
        self.sent: list[bytes] = []
        self.lanes: list[int] = []
        """The transport lane each of ``sent`` went on."""
        self.unreliable: list[bytes] = []
        self.closed: tuple[str, CloseCode, bool] | None = None
        self.peer_max_message_size = max_message_size
        self.trusted = False
        """The server vouched for this session (``mark_trusted``: its user logged in)."""
        self.auto_ack = True
        self.held: list[tuple[bytes, Callable[[], None] | None, int | None]] = []
        """Sent while acks are held back, oldest first: (data, on_acked, its
        interactive-lane sequence number, or None on another lane)."""
        self.next_seq = 0
        """The interactive lane's next sequence number (what ``acked_below`` counts)."""
        self.next_bulk_seq = 0
        self._address = address
        self._id = next(_connection_ids)

    @property
    def peer_address(self) -> tuple[str, int]:
        return self._address

    @property
    def connection_id(self) -> int:
        return self._id

    def send_message(self, data: bytes, on_acked: Callable[[], None] | None = None,
                     lane: int = INTERACTIVE_LANE) -> int:
        if self.closed is not None:
            raise ConnectionClosed("closed")
        assert isinstance(data, bytes)
        if len(data) > self.peer_max_message_size:
            raise MessageTooLarge(f"{len(data)} bytes over the peer's cap of {self.peer_max_message_size}")
        self.sent.append(data)
        self.lanes.append(lane)
        if lane == INTERACTIVE_LANE:
            seq, self.next_seq = self.next_seq, self.next_seq + 1
            mark = seq
        else:  # numbered apart, and no part of acked_below
            seq, self.next_bulk_seq = self.next_bulk_seq, self.next_bulk_seq + 1
            mark = None
        if not self.auto_ack:
            self.held.append((data, on_acked, mark))
        elif on_acked is not None:
            on_acked()
        return seq

    @property
    def acked_below(self) -> int:
        if self.closed is not None:
            return self._acked_below_at_end
        return next((seq for _, _, seq in self.held if seq is not None), self.next_seq)

    def ack_held(self, index: int) -> None:
        """The peer acknowledges one held message, maybe out of order."""
        _, on_acked, _ = self.held.pop(index)
        if on_acked is not None:
            on_acked()

    def hold_acks(self) -> None:
        """From now on the peer acknowledges nothing until ``release_acks``."""
        self.auto_ack = False

    def release_acks(self, count: int | None = None) -> None:
        """The peer acknowledges the oldest ``count`` held messages (all by default)."""
        count = len(self.held) if count is None else count
        released, self.held = self.held[:count], self.held[count:]
        for _, on_acked, _ in released:
            if on_acked is not None:
                on_acked()

    def _end(self, code: CloseCode, message: str, graceful: bool, by_peer: bool) -> None:
        self._acked_below_at_end = self.acked_below  # a transport's mark stays where it was
        self.closed = (message, code, graceful)
        unacked, self.held = tuple(data for data, _, _ in self.held), []
        self.protocol.connection_lost(CloseReason(code=code, message=message, by_peer=by_peer,
                                                  unacked=unacked))

    def send_unreliable(self, data: bytes) -> None:
        self.unreliable.append(data)

    def mark_trusted(self) -> None:
        self.trusted = True

    def close(self, message: str = "", code: CloseCode = CloseCode.NORMAL, graceful: bool = True) -> None:
        if self.closed is not None:
            return
        self._end(code, message, graceful, by_peer=False)

    def peer_vanishes(self, code: CloseCode = CloseCode.PEER_UNRESPONSIVE, message: str = "") -> None:
        """The transport gave up on the peer."""
        self._end(code, message, False, by_peer=True)


class SlowStore:
    """Wraps a store and holds back the named writes until ``commit()``, as a
    worker thread still busy would: shows what waits for the commit, and
    that checks happen in the store with the write, not before it."""

    def __init__(self, inner: Any, held: tuple[str, ...] = ("store_dm",)) -> None:
        self._inner = inner
        self._held = held
        self.pending: list[tuple[str, tuple[Any, ...], Deferred[Any]]] = []

    def __getattr__(self, name: str) -> Any:
        if name not in self._held:
            return getattr(self._inner, name)

        def later(*args: Any, **kwargs: Any) -> Deferred[Any]:
            d: Deferred[Any] = Deferred()
            self.pending.append((name, args, kwargs, d))
            return d
        return later

    def commit(self) -> None:
        """Run every held write, in the order issued."""
        pending, self.pending = self.pending, []
        for name, args, kwargs, d in pending:
            getattr(self._inner, name)(*args, **kwargs).chainDeferred(d)


@attrs.define
class FakeClient:
    """One connected client: sends requests, collects replies and events."""

    protocol: Any
    connection: FakeConnection
    ids: Any = attrs.field(factory=lambda: itertools.count(1))
    read: int = 0

    def send_raw(self, data: bytes) -> None:
        self.protocol.message_received(data)

    def messages(self) -> list[p.Message]:
        return [p.decode_server_message(data) for data in self.connection.sent]

    def request(self, kind: str, **fields: Any) -> p.Message:
        """Send one request; return its reply (asserting there is exactly one)."""
        rid = next(self.ids)
        self.send_raw(p.encode(p.REQUESTS[kind](id=rid, **fields)))
        replies = [m for m in self.messages() if isinstance(m, p.Ok | p.ErrorReply) and m.id == rid]
        assert len(replies) == 1, f"{kind}: expected one reply, got {replies}"
        return replies[0]

    def ok(self, kind: str, **fields: Any) -> p.Ok:
        reply = self.request(kind, **fields)
        assert isinstance(reply, p.Ok), f"{kind} failed: {reply}"
        return reply

    def error(self, kind: str, **fields: Any) -> str:
        reply = self.request(kind, **fields)
        assert isinstance(reply, p.ErrorReply), f"{kind} unexpectedly succeeded: {reply}"
        return reply.code

    def events(self, cls: type | None = None) -> list[p.Message]:
        """Events received since the last call (all types, or one class)."""
        new = self.messages()[self.read:]
        self.read = len(self.connection.sent)
        return [m for m in new if isinstance(m, p.Event) and (cls is None or isinstance(m, cls))]

    def drain(self) -> None:
        self.read = len(self.connection.sent)

    @property
    def closed(self) -> tuple[str, CloseCode, bool] | None:
        return self.connection.closed


class Harness:
    def __init__(self, store: Any = None, clock: Clock | None = None, broker: Any = None,
                 **config: Any) -> None:
        """``clock``, ``store`` and ``broker`` may be shared with other
        harnesses: nodes of one network (tests/cluster/)."""
        if clock is None:
            clock = Clock()
            clock.advance(1_700_000_000)  # a realistic epoch, in virtual time
        self.clock = clock
        self.store = store if store is not None else MemoryStore()
        self.config = ServerConfig(**{**FAST_SCRYPT, **config})
        self.server = ChatServer(self.store, self.clock, self.config, rng=random.Random(7),
                                 broker=broker)
        self.server.start()
        self._hosts = itertools.count(1)

    def connect(self, port: int = 4000, max_message_size: int = CLIENT_MAX_MESSAGE_SIZE,
                host: str | None = None) -> FakeClient:
        """A new client; each from an address of its own, in a /24 of its
        own (so per-source limits apply per client), unless ``host`` is given."""
        protocol = self.server.build_protocol()
        if host is None:
            n = next(self._hosts)
            host = f"10.{n >> 8 & 255}.{n & 255}.1"
        connection = FakeConnection(protocol, (host, port), max_message_size)
        protocol.connection_made(connection)
        return FakeClient(protocol, connection)

    def login(self, nick: str, max_message_size: int = CLIENT_MAX_MESSAGE_SIZE,
              host: str | None = None, **credential: Any) -> FakeClient:
        client = self.connect(max_message_size=max_message_size, host=host)
        client.ok("login", nick=nick, **credential)
        client.drain()
        return client

    def room_of(self, room: str, *nicks: str) -> list[FakeClient]:
        """``nicks`` logged in and joined to ``room`` in that order (the first
        is its operator), their events so far drained."""
        clients = [self.login(nick) for nick in nicks]
        for client in clients:
            client.ok("join", room=room)
        for client in clients:
            client.drain()
        return clients

    def advance(self, seconds: float, step: float = 1.0) -> None:
        """Advance virtual time in steps so LoopingCalls fire as they would."""
        while seconds > 0:
            self.clock.advance(min(step, seconds))
            seconds -= step
