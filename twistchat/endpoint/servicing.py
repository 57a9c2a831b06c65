"""
An endpoint's work per session, compiled with the transport
(``twistchat/compiled.py``, issue 16): a datagram read and handed to its
session, a session serviced (its events to the protocol, its datagrams
written, its timer set), and the end-of-turn flush over every session that
has something to send. An idle server does this once per keepalive, a room
line once per member; compiled, a keepalive costs the server 13.8 % fewer
instructions (docs/benchmarks.md). The Twisted glue (the port, the reactor's calls, the rarer
events and packets) stays in ``base.py``, which holds one ``Servicer``.
"""

from __future__ import annotations

from typing import Any, Callable

from twistchat.endpoint.api import MessageProtocol
from twistchat.reliable.events import MessageAcked, MessageReceived, UnreliableReceived
from twistchat.reliable.session import Session
from twistchat.wire.packets import (
    MAX_ACCEPTED_DATAGRAM_SIZE, PROTOCOL_VERSION, DecodeError, PacketType, packet_version,
    peek_route,
)

_DATA = PacketType.DATA


class _Handle:
    """A session and the application protocol on top of it."""

    def __init__(self, session: Session, protocol: MessageProtocol, connection: Any = None,
                 connected: Any = None, made: bool = False,
                 client_key: tuple | None = None) -> None:
        self.session = session
        self.protocol = protocol
        self.connection: Any = connection
        """Its ``SessionConnection``, once the handshake made one."""
        self.connected: Any = connected
        """(client side) The Deferred ``connect`` returned, until it fires."""
        self.made = made
        self.client_key = client_key
        """(address, client connection id) of the CONNECT that opened it (server side)."""
        self.on_acked: dict[tuple[int, int], Callable[[], None]] = {}
        """Callbacks of tracked messages, by (lane, sequence number), until acknowledged."""

    def __repr__(self) -> str:
        return f"<_Handle of session {self.session.local_cid:x}>"


class Servicer:
    """The per-session part of one endpoint's reactor turn. It shares the
    endpoint's tables (``sessions``, ``untrusted``, ``dirty``: the same
    dicts) and calls back into it (``Endpoint``) for what is rare: its
    writes' transport, events other than messages, and internal errors."""

    def __init__(self, endpoint: Any, sessions: dict[int, _Handle], timers: Any,
                 seconds: Callable[[], float]) -> None:
        self.endpoint = endpoint
        self.counters: Any = endpoint.counters
        self.sessions = sessions
        self.untrusted: dict[_Handle, None] = {}
        """Sessions whose datagrams go through the endpoint's ``_route`` (a
        server's strangers, who get a share of each turn)."""
        self.dirty: dict[_Handle, None] = {}
        """Sessions to service at the end of this reactor turn."""
        self.timers = timers
        self.seconds = seconds
        self.flushing = False

    def receive(self, datagram: bytes, address: tuple) -> tuple[PacketType, int] | None:
        """A datagram from the port: dropped and counted when bad, delivered
        here when it is DATA of a known session nobody has to ration, else
        its (packet type, connection id) for the endpoint's ``_route``."""
        counters = self.counters
        counters.datagrams_received += 1
        counters.bytes_received += len(datagram)
        if len(datagram) > MAX_ACCEPTED_DATAGRAM_SIZE:
            counters.oversized += 1
            return None
        if datagram and packet_version(datagram) != PROTOCOL_VERSION:
            counters.unknown_version += 1
            return None
        try:
            packet_type, cid = peek_route(datagram)
        except DecodeError:
            counters.malformed += 1
            return None
        if packet_type is _DATA:
            handle = self.sessions.get(cid)
            if handle is not None and handle not in self.untrusted:
                self.deliver(handle, datagram, address)
                return None
        return packet_type, cid

    def deliver(self, handle: _Handle, datagram: bytes, address: tuple) -> None:
        dirty = self.dirty
        was_dirty = handle in dirty
        dirty[handle] = None
        session = handle.session
        unauthenticated = session.stats.unauthenticated
        try:
            accepted = session.receive_datagram(datagram, address, self.seconds())
        except Exception:
            self.endpoint._internal_error(handle)
            return
        if not accepted:
            if session.stats.unauthenticated > unauthenticated:
                self.counters.unauthenticated += 1
            else:
                self.counters.malformed += 1
        elif session.answer_at_once and not was_dirty and not self.flushing:
            # A keepalive: nothing to pack with its ACK, so no later turn
            # (a callLater(0) and a flush) for it: most of an idle server's work.
            del dirty[handle]
            self.service(handle)

    def flush(self) -> None:
        """Service every dirty session, and those they make dirty meanwhile."""
        self.flushing = True
        dirty = self.dirty
        try:
            while dirty:
                # A batch at a time, emptied with ``clear`` (no holes for a
                # later read of the dict to walk: a flush of a room of 1,000
                # read its first key again and again once, issue 16).
                batch = list(dirty)
                dirty.clear()
                for handle in batch:
                    dirty.pop(handle, None)  # marked again meanwhile: served now
                    self.service(handle)
        finally:
            self.flushing = False

    def service(self, handle: _Handle) -> None:
        session = handle.session
        now = self.seconds()
        self.dispatch_events(handle)
        for datagram, address in session.datagrams_to_send(now):
            self.write(datagram, address)
        self.dispatch_events(handle)
        if session.is_closed:
            self.forget(handle)
        else:
            self.timers.set(handle, session.get_timer())

    def timers_fired(self, due: list) -> None:
        now = self.seconds()
        dirty = self.dirty
        for handle, deadline in due:
            # The session asked for ``deadline``: never tell it an earlier time
            # (floating point can wake us a hair early).
            try:
                handle.session.handle_timer(max(now, deadline))
            except Exception:
                self.endpoint._internal_error(handle)
            dirty[handle] = None

    def forget(self, handle: _Handle) -> None:
        self.timers.discard(handle)
        self.dirty.pop(handle, None)
        cid = handle.session.local_cid
        if self.sessions.get(cid) is handle:
            del self.sessions[cid]

    def write(self, datagram: bytes, address: tuple) -> None:
        endpoint = self.endpoint
        transport = endpoint.transport
        if transport is None:
            return
        sendto = endpoint._sendto
        try:
            if sendto is not None:
                sendto(datagram, address)
            else:
                transport.write(datagram, address)
        except OSError as e:  # e.g. no route; the session's timers will cope
            self.counters.write_errors += 1
            endpoint.log.debug("write to {address} failed: {error}", address=address, error=e)
            return
        counters = self.counters
        counters.datagrams_sent += 1
        counters.bytes_sent += len(datagram)

    def dispatch_events(self, handle: _Handle) -> None:
        session = handle.session
        event = session.next_event()
        while event is not None:
            try:
                if isinstance(event, MessageReceived):
                    handle.protocol.message_received(event.data)
                elif isinstance(event, MessageAcked):
                    on_acked = handle.on_acked.pop((event.lane, event.seq), None)
                    if on_acked is not None:
                        on_acked()
                elif isinstance(event, UnreliableReceived):
                    handle.protocol.unreliable_received(event.data)
                else:
                    self.endpoint._dispatch(handle, event)
            except Exception:
                self.counters.internal_errors += 1
                self.endpoint.log.failure("application raised on {event}",
                                          event=type(event).__name__)
            event = session.next_event()
