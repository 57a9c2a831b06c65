"""
The Twisted glue: one ``DatagramProtocol`` per socket that routes each
datagram to its session by the connection id in its header (the session
decodes it; the endpoint decodes only the packets it answers itself, before
any session exists), writes what sessions want written and wakes them with
one shared timer (``timers.TimerQueue``) on the injected reactor. The work
done per session (a datagram in, a session serviced, the flush) is in
``servicing.py``, compiled with the transport. What servers add (cookies,
accepting sessions, RESETs) is in ``server.py``, what clients add
(connecting) in ``client.py``.

Bad input never raises out of ``datagramReceived``: it is dropped and
counted in ``EndpointCounters`` (answering would help an attacker), and no
state is kept for an address until a cookie has proved it real.
"""

from __future__ import annotations

import random
from time import perf_counter
from typing import Callable

import attrs
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from twistchat.endpoint.api import CloseCode, CloseReason
from twistchat.endpoint.connection import SessionConnection
from twistchat.endpoint.servicing import Servicer, _Handle
from twistchat.endpoint.timers import TimerQueue
from twistchat.reliable.events import HandshakeCompleted, PathMigrated, SessionClosed
from twistchat.reliable.session import SessionConfig
from twistchat.wire.packets import DecodeError, Packet, PacketType, decode_packet

SLOW_TIMERS_WARN_SECONDS = 0.1
"""Sessions' timers that take this long to fire, with the flush they make,
are logged as a warning (the same bound as ``StallWatch``'s)."""


@attrs.define
class EndpointCounters:
    """What an endpoint dropped, and why: the operator's view of bad input."""

    datagrams_received: int = 0
    datagrams_sent: int = 0
    bytes_received: int = 0
    bytes_sent: int = 0
    malformed: int = 0
    unknown_version: int = 0
    oversized: int = 0
    unknown_connection: int = 0
    unexpected_packet: int = 0
    short_hello: int = 0
    bad_cookie: int = 0
    replayed_connect: int = 0
    sessions_refused: int = 0
    sessions_throttled: int = 0
    sessions_throttled_in_total: int = 0
    handshakes_dropped: int = 0
    """Valid CONNECTs dropped because too many waited for their turn already."""
    stranger_datagrams_queued: int = 0
    """Datagrams of sessions not logged in that waited for a later reactor turn."""
    stranger_datagrams_dropped: int = 0
    """... dropped because too many (from their source, or in all) waited already."""
    sessions_evicted: int = 0
    cookies_throttled: int = 0
    shed: int = 0
    """Handshake packets from a shed prefix that reached Python (``shedding.py``)."""
    prefixes_shed: int = 0
    bad_parameters: int = 0
    bad_handshake: int = 0
    unauthenticated: int = 0
    cookies_sent: int = 0
    resets_sent: int = 0
    sessions_opened: int = 0
    sessions_closed: int = 0
    write_errors: int = 0
    internal_errors: int = 0


class ConnectError(Exception):
    """The handshake did not complete; ``reason`` is the ``CloseReason``."""

    def __init__(self, reason: CloseReason) -> None:
        super().__init__(f"{reason.code.name}: {reason.message}")
        self.reason = reason


class Endpoint(DatagramProtocol):
    """What client and server endpoints share: routing, flushing, timers."""

    log = Logger()

    def __init__(self, reactor: IReactorTime, config: SessionConfig | None = None,
                 rng: random.Random | None = None) -> None:
        self.reactor = reactor
        self.config = config or SessionConfig()
        self.rng = rng or random.SystemRandom()
        self.counters = EndpointCounters()
        self.sessions: dict[int, _Handle] = {}
        self._timers = TimerQueue(reactor, self._timers_fired)
        self._servicer = Servicer(self, self.sessions, self._timers, reactor.seconds)
        self._dirty = self._servicer.dirty
        self._flush_call = None
        self._sendto: Callable[[bytes, tuple], object] | None = None
        """Set by endpoints that write straight to their socket (``ServerEndpoint``)."""

    def now(self) -> float:
        return self.reactor.seconds()

    # -- sending -------------------------------------------------------------

    def _write(self, datagram: bytes, address: tuple) -> None:
        self._servicer.write(datagram, address)

    def mark_dirty(self, handle: _Handle) -> None:
        """Service ``handle`` at the end of this reactor turn."""
        self._dirty[handle] = None
        self._schedule_flush()

    def mark_all_dirty(self, handles: list[_Handle]) -> None:
        """``mark_dirty`` for many (a room line's recipients), in one call."""
        self._dirty.update(dict.fromkeys(handles))
        self._schedule_flush()

    def flush_now(self) -> None:
        """Service every session now, not at the end of the reactor turn: for
        a program about to exit, whose CLOSE must go out and whose sessions
        must hand over what they already read (and acknowledge with it)."""
        self._flush()

    def _schedule_flush(self) -> None:
        # Once per reactor turn, not once per datagram: everything read and
        # sent in one turn (a burst of messages and acks) shares datagrams.
        if self._flush_call is None and not self._servicer.flushing:
            self._flush_call = self.reactor.callLater(0, self._flush)

    def _flush(self) -> None:
        if self._servicer.flushing:
            return  # called from a callback inside a flush: the running loop takes it
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
        self._servicer.flush()

    def _timers_fired(self, due: list) -> None:
        started = perf_counter()
        self._servicer.timers_fired(due)
        self._flush()
        took = perf_counter() - started
        if took >= SLOW_TIMERS_WARN_SECONDS:
            # The reactor answered nobody meanwhile (a stall StallWatch can
            # only see the end of: this runs compiled).
            self.log.warn("the endpoint's timers took {ms:.0f} ms for {due} sessions due "
                          "(and the flush after them)", ms=took * 1000, due=len(due))

    def _internal_error(self, handle: _Handle) -> None:
        """A bug in one session must not take the endpoint down with it."""
        self.counters.internal_errors += 1
        self.log.failure("internal error in session {cid:x}", cid=handle.session.local_cid)
        if not handle.session.has_ended:
            handle.session.close(self.now(), CloseCode.PROTOCOL_VIOLATION,
                                 "internal error", graceful=False)

    # -- events -------------------------------------------------------------

    def _dispatch(self, handle: _Handle, event) -> None:
        """The events that are not a message (``Servicer.dispatch_events``
        hands those to the protocol itself)."""
        protocol = handle.protocol
        if isinstance(event, HandshakeCompleted):
            self._make_connection(handle)
            if handle.connected is not None:
                connected, handle.connected = handle.connected, None
                connected.callback(protocol)
        elif isinstance(event, PathMigrated):
            self.log.info("session {cid:x} moved from {old} to {new}",
                          cid=handle.session.local_cid, old=event.old, new=event.new)
        elif isinstance(event, SessionClosed):
            handle.on_acked.clear()
            reason = CloseReason(event.code, event.reason, event.by_peer, event.unacked)
            self.counters.sessions_closed += 1
            self._on_closed(handle, reason)
            if handle.connected is not None:
                connected, handle.connected = handle.connected, None
                connected.errback(ConnectError(reason))
            elif handle.made:
                protocol.connection_lost(reason)

    def _make_connection(self, handle: _Handle) -> None:
        if handle.made:
            return
        handle.made = True
        handle.connection = SessionConnection(self, handle)
        self.counters.sessions_opened += 1
        handle.protocol.connection_made(handle.connection)

    def _on_closed(self, handle: _Handle, reason: CloseReason) -> None:
        """Hook for subclasses: bookkeeping when a session ends."""

    def trust(self, handle: _Handle) -> None:
        """Hook for subclasses: ``SessionConnection.mark_trusted``."""

    # -- receiving ------------------------------------------------------------

    def datagramReceived(self, datagram: bytes, address: tuple) -> None:
        route = self._servicer.receive(datagram, address)
        if route is not None:
            self._route(route[0], route[1], datagram, address)
        if self._dirty:
            self._schedule_flush()

    def _route(self, packet_type: PacketType, cid: int, datagram: bytes, address: tuple) -> None:
        raise NotImplementedError

    def _decode(self, datagram: bytes) -> Packet | None:
        """For the packets the endpoint itself answers (no session yet)."""
        try:
            return decode_packet(datagram)
        except DecodeError:
            self.counters.malformed += 1
            return None

    def _unknown_connection(self, datagram: bytes) -> bool:
        """Count a packet for no session of ours; True if it was well formed."""
        if self._decode(datagram) is None:
            return False
        self.counters.unknown_connection += 1
        return True

    def _deliver(self, handle: _Handle, datagram: bytes, address: tuple) -> None:
        self._servicer.deliver(handle, datagram, address)

    def close_all(self, code: CloseCode = CloseCode.SHUTTING_DOWN, message: str = "",
                  graceful: bool = False) -> None:
        """Close every session (each peer is sent a CLOSE)."""
        now = self.now()
        for handle in list(self.sessions.values()):
            handle.session.close(now, code, message, graceful)
            self._dirty[handle] = None
        self._flush()

    def stopProtocol(self) -> None:
        self._timers.stop()
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
