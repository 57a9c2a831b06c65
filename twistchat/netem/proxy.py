"""
The Twisted side of netem: a UDP proxy that applies an ``Impairment`` to each
direction of traffic between its clients and one target.

Each distinct client address gets an upstream socket of its own, so the
target sees one source port per client (as it would without the proxy) and
its replies map back to the right client. Idle mappings expire so a long run
does not leak sockets, and their number is capped.

Upstream sockets are deliberately not ``connect()``ed: on a connected UDP
socket an ICMP port-unreachable (target restarting, not up yet) raises
EPOLLERR without EPOLLIN, which Twisted's epoll reactor takes for a
disconnection and closes the port for good. Unconnected sockets ignore ICMP
errors on Linux; replies are filtered by source address instead.

The reactor is injected; nothing here imports the global reactor, so tests
can drive the proxy in virtual time.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet import defer
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.error import CannotListenError, MessageLengthError
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from twistchat.endpoint.sockets import enlarge_buffers
from twistchat.netem.impairment import Impairment

DEFAULT_IDLE_TIMEOUT_SECONDS = 120.0
"""A client silent in both directions this long loses its upstream socket."""

DEFAULT_MAX_CLIENTS = 1024
"""At most this many client mappings (upstream sockets) at once."""

MAX_DATAGRAM_BYTES = 65535
"""Read buffer per datagram; Twisted's default of 8192 would truncate larger ones."""

MILLISECONDS_PER_SECOND = 1000.0

IPV4_ANY = ""
IPV6_ANY = "::"

Address = tuple[str, int]


@attrs.define
class DirectionCounters:
    """What happened to the datagrams of one direction."""

    received: int = 0
    dropped: int = 0
    duplicated: int = 0
    forwarded: int = 0
    cancelled: int = 0
    """Copies still delayed when their mapping closed or the proxy stopped."""
    send_errors: int = 0


@attrs.define
class ClientCounters:
    opened: int = 0
    expired: int = 0
    refused_datagrams: int = 0
    """Datagrams from new clients turned away because the mapping cap was reached."""


@attrs.define
class ProxyCounters:
    up: DirectionCounters = attrs.Factory(DirectionCounters)
    """Client to target."""
    down: DirectionCounters = attrs.Factory(DirectionCounters)
    """Target to client."""
    clients: ClientCounters = attrs.Factory(ClientCounters)
    foreign_datagrams: int = 0
    """Datagrams reaching an upstream socket from somewhere other than the target; ignored."""

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


class DelayLine:
    """
    The datagrams of one direction that are waiting out their delay, in order
    of due time behind a single timer.

    One timer per direction instead of one ``DelayedCall`` per datagram keeps
    the reactor's timer heap small under load, and the arrival sequence number
    breaks ties, so equal delays (no jitter) never reorder.
    """

    def __init__(self, clock: Any) -> None:
        self._clock = clock
        self._waiting: list[tuple[float, int, Callable[[], None]]] = []
        self._arrival_order = itertools.count()
        self._timer: Any = None
        self._timer_due = 0.0

    def __len__(self) -> int:
        return len(self._waiting)

    def schedule(self, delay_seconds: float, deliver: Callable[[], None]) -> None:
        due = self._clock.seconds() + delay_seconds
        heapq.heappush(self._waiting, (due, next(self._arrival_order), deliver))
        if self._timer is None or due < self._timer_due:
            self._arm()

    def discard_all(self) -> int:
        """Forget every waiting datagram; returns how many there were."""
        self._disarm()
        discarded = len(self._waiting)
        self._waiting.clear()
        return discarded

    def _arm(self) -> None:
        self._disarm()
        if self._waiting:
            self._timer_due = self._waiting[0][0]
            delay = max(0.0, self._timer_due - self._clock.seconds())
            self._timer = self._clock.callLater(delay, self._deliver_due, self._timer_due)

    def _disarm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _deliver_due(self, timer_due: float) -> None:
        self._timer = None
        # The timer firing means timer_due has come, even if float rounding
        # makes the clock read a hair earlier.
        now = max(self._clock.seconds(), timer_due)
        while self._waiting and self._waiting[0][0] <= now:
            _, _, deliver = heapq.heappop(self._waiting)
            deliver()
        self._arm()


@attrs.define(eq=False)
class ClientMapping:
    """One client address and the upstream socket that speaks for it."""

    client_address: Address
    upstream: Any
    last_active: float
    idle_check: Any = None
    closed: bool = False


class _ClientFacingProtocol(DatagramProtocol):
    """Receives what clients send to the proxy's listening port."""

    noisy = False

    def __init__(self, proxy: ImpairmentProxy) -> None:
        self._proxy = proxy

    def datagramReceived(self, datagram: bytes, address: Address) -> None:
        self._proxy._from_client(datagram, address)


class _UpstreamProtocol(DatagramProtocol):
    """Receives what the target sends back to one client's upstream socket."""

    noisy = False  # one socket per client: do not log each opening and closing

    def __init__(self, proxy: ImpairmentProxy) -> None:
        self._proxy = proxy
        self.mapping: ClientMapping | None = None

    def datagramReceived(self, datagram: bytes, address: Address) -> None:
        if self.mapping is not None:
            self._proxy._from_target(self.mapping, datagram, address)

    def stopProtocol(self) -> None:
        if self.mapping is not None and not self.mapping.closed:
            self._proxy._upstream_lost(self.mapping)


class ImpairmentProxy:
    """
    A UDP proxy from ``listen_host:listen_port`` to ``target`` that impairs
    client-to-target traffic with ``impairment_up`` and target-to-client
    traffic with ``impairment_down``.
    """

    log = Logger()

    def __init__(
        self,
        reactor: Any,
        listen_port: int,
        target: Address,
        impairment_up: Impairment | None = None,
        impairment_down: Impairment | None = None,
        listen_host: str = "127.0.0.1",
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT_SECONDS,
        max_clients: int = DEFAULT_MAX_CLIENTS,
    ) -> None:
        target_host, target_port = target
        if not (isIPAddress(target_host) or isIPv6Address(target_host)):
            raise ValueError(f"target host must be an IP address (resolve names first), not {target_host!r}")
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be > 0, not {idle_timeout!r}")
        if max_clients < 1:
            raise ValueError(f"max_clients must be >= 1, not {max_clients!r}")
        self._reactor = reactor
        self._listen_port = listen_port
        self._listen_host = listen_host
        self.target: Address = (target_host, target_port)
        self.impairment_up = impairment_up if impairment_up is not None else Impairment()
        self.impairment_down = impairment_down if impairment_down is not None else Impairment()
        self.idle_timeout = idle_timeout
        self.max_clients = max_clients
        self.counters = ProxyCounters()
        self.port: int | None = None
        self._upstream_interface = IPV6_ANY if isIPv6Address(target_host) else IPV4_ANY
        self._listening: Any = None
        self._mappings: dict[Address, ClientMapping] = {}
        self._up_line = DelayLine(reactor)
        self._down_line = DelayLine(reactor)
        self._warned_about_cap = False

    # -- life cycle ---------------------------------------------------------

    def start(self) -> int:
        """Start listening; returns the real listening port (useful with port 0)."""
        if self._listening is not None:
            raise RuntimeError("proxy already started")
        self._listening = self._reactor.listenUDP(
            self._listen_port,
            _ClientFacingProtocol(self),
            interface=self._listen_host,
            maxPacketSize=MAX_DATAGRAM_BYTES,
        )
        enlarge_buffers(self._listening)
        self.port = self._listening.getHost().port
        self.log.info(
            "netem listening on {host}:{port} -> {target}",
            host=self._listen_host,
            port=self.port,
            target=self.target,
        )
        return self.port

    def stop(self) -> defer.Deferred:
        """Stop listening, close every upstream socket and discard delayed datagrams."""
        self.counters.up.cancelled += self._up_line.discard_all()
        self.counters.down.cancelled += self._down_line.discard_all()
        closing = [self._close_mapping(mapping) for mapping in list(self._mappings.values())]
        if self._listening is not None:
            closing.append(defer.maybeDeferred(self._listening.stopListening))
            self._listening = None
        return defer.gatherResults(closing, consumeErrors=True).addCallback(lambda _: None)

    @property
    def client_addresses(self) -> list[Address]:
        return list(self._mappings)

    def mapping_for(self, client_address: Address) -> ClientMapping | None:
        return self._mappings.get(client_address)

    # -- client to target ----------------------------------------------------

    def _from_client(self, datagram: bytes, client_address: Address) -> None:
        mapping = self._mappings.get(client_address) or self._open_mapping(client_address)
        if mapping is None:
            self.counters.clients.refused_datagrams += 1
            return
        mapping.last_active = self._reactor.seconds()
        self.counters.up.received += 1
        self._impair(
            self.impairment_up,
            self._up_line,
            self.counters.up,
            lambda: self._send_to_target(mapping, datagram),
        )

    def _send_to_target(self, mapping: ClientMapping, datagram: bytes) -> None:
        if mapping.closed:
            self.counters.up.cancelled += 1
            return
        self._send(self.counters.up, mapping.upstream.write, datagram, self.target)

    # -- target to client ----------------------------------------------------

    def _from_target(self, mapping: ClientMapping, datagram: bytes, source: Address) -> None:
        if mapping.closed:
            return
        if source != self.target:
            self.counters.foreign_datagrams += 1
            return
        mapping.last_active = self._reactor.seconds()
        self.counters.down.received += 1
        self._impair(
            self.impairment_down,
            self._down_line,
            self.counters.down,
            lambda: self._send_to_client(mapping.client_address, datagram),
        )

    def _send_to_client(self, client_address: Address, datagram: bytes) -> None:
        if self._listening is None:
            self.counters.down.cancelled += 1
            return
        self._send(self.counters.down, self._listening.write, datagram, client_address)

    def _upstream_lost(self, mapping: ClientMapping) -> None:
        """An upstream socket closed under us: forget it, the client's next datagram opens another."""
        self.log.warn("upstream socket of client {client} closed unexpectedly", client=mapping.client_address)
        self._close_mapping(mapping)

    # -- shared --------------------------------------------------------------

    def _impair(
        self,
        impairment: Impairment,
        line: DelayLine,
        counters: DirectionCounters,
        send: Callable[[], None],
    ) -> None:
        decision = impairment.decide()
        if decision.dropped:
            counters.dropped += 1
            return
        counters.duplicated += decision.extra_copies
        for delay_ms in decision.delays_ms:
            if delay_ms <= 0:
                send()
            else:
                line.schedule(delay_ms / MILLISECONDS_PER_SECOND, send)

    def _send(self, counters: DirectionCounters, write: Callable[..., Any], *args: Any) -> None:
        try:
            write(*args)
        except (OSError, MessageLengthError) as failure:
            counters.send_errors += 1
            self.log.warn("dropping a datagram the kernel refused: {failure}", failure=failure)
        else:
            counters.forwarded += 1

    # -- mappings --------------------------------------------------------------

    def _open_mapping(self, client_address: Address) -> ClientMapping | None:
        if len(self._mappings) >= self.max_clients:
            if not self._warned_about_cap:
                self._warned_about_cap = True
                self.log.warn(
                    "{count} clients mapped, the maximum: refusing new clients until one expires",
                    count=len(self._mappings),
                )
            return None
        protocol = _UpstreamProtocol(self)
        try:
            upstream = self._reactor.listenUDP(
                0, protocol, interface=self._upstream_interface, maxPacketSize=MAX_DATAGRAM_BYTES
            )
        except CannotListenError as failure:
            self.log.warn("cannot open an upstream socket for {client}: {failure}", client=client_address, failure=failure)
            return None
        enlarge_buffers(upstream)
        now = self._reactor.seconds()
        mapping = ClientMapping(client_address=client_address, upstream=upstream, last_active=now)
        protocol.mapping = mapping
        self._schedule_idle_check(mapping, deadline=now + self.idle_timeout)
        self._mappings[client_address] = mapping
        self.counters.clients.opened += 1
        self.log.info(
            "client {client} mapped to upstream port {port}",
            client=client_address,
            port=upstream.getHost().port,
        )
        return mapping

    def _schedule_idle_check(self, mapping: ClientMapping, deadline: float) -> None:
        delay = max(0.0, deadline - self._reactor.seconds())
        mapping.idle_check = self._reactor.callLater(delay, self._check_idle, mapping, deadline)

    def _check_idle(self, mapping: ClientMapping, deadline: float) -> None:
        """Expire the mapping unless it was active since this check was scheduled.

        Rescheduling lazily (one timer per idle period rather than a timer
        reset per datagram) keeps the per-datagram cost to one assignment.
        """
        mapping.idle_check = None
        new_deadline = mapping.last_active + self.idle_timeout
        if new_deadline > deadline:
            self._schedule_idle_check(mapping, new_deadline)
            return
        self.counters.clients.expired += 1
        self.log.info("client {client} idle, unmapped", client=mapping.client_address)
        self._close_mapping(mapping)

    def _close_mapping(self, mapping: ClientMapping) -> defer.Deferred:
        if mapping.closed:
            return defer.succeed(None)
        mapping.closed = True
        if mapping.idle_check is not None and mapping.idle_check.active():
            mapping.idle_check.cancel()
        mapping.idle_check = None
        if self._mappings.get(mapping.client_address) is mapping:
            del self._mappings[mapping.client_address]
        self._warned_about_cap = False
        return defer.maybeDeferred(mapping.upstream.stopListening)
