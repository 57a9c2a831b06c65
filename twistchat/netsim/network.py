"""
A seeded, deterministic network for endpoints, in virtual time.

Every datagram written by an attached ``DatagramProtocol`` goes through the
impairments of the link it leaves on: a partition drops it, ``loss`` drops
it, ``duplicate`` sends it twice, the sender's link serialises it at
``bandwidth`` behind a drop-tail queue, and it arrives after half the round
trip plus a uniform jitter of +-``jitter`` (as ``tc netem delay D J`` does),
which reorders. The same seed gives the same run, byte for byte.
"""

from __future__ import annotations

import random

import attrs
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import Clock

IP_UDP_HEADER_BYTES = 28
"""IPv4 + UDP headers: counted against the simulated link's bandwidth."""


@attrs.define
class LinkStats:
    datagrams: int = 0
    bytes: int = 0
    lost: int = 0
    duplicated: int = 0
    queue_drops: int = 0
    partitioned: int = 0


class SimulatedTransport:
    """What a protocol attached to the simulator writes to."""

    def __init__(self, network: "SimulatedNetwork", address: tuple) -> None:
        self.network = network
        self.address = address

    def write(self, datagram: bytes, address: tuple) -> None:
        self.network.send(bytes(datagram), self.address, address)

    def getHost(self):
        return self.address

    def stopListening(self) -> None:
        self.network.detach(self.address)

    def loseConnection(self) -> None:
        self.stopListening()


@attrs.define(eq=False)
class SimulatedNetwork:
    clock: Clock
    seed: int = 0
    loss: float = 0.0
    duplicate: float = 0.0
    rtt: float = 0.02
    jitter: float = 0.0
    bandwidth_bps: float | None = None
    queue_bytes: int = 64 * 1024
    stats: LinkStats = attrs.Factory(LinkStats)
    _rng: random.Random = attrs.field(init=False)
    _hosts: dict = attrs.Factory(dict)
    _link_free_at: dict = attrs.Factory(dict)
    _partitions: list = attrs.Factory(list)
    _isolations: list = attrs.Factory(list)
    links: dict = attrs.Factory(dict)
    """Source address -> the link it sends on; by default each host has its
    own. Two hosts given one link share its bandwidth and queue (a bottleneck)."""
    queue_delays: dict = attrs.Factory(dict)
    """Link -> [seconds waited in its queue in all, datagrams, longest wait]."""
    taps: list = attrs.Factory(list)
    """Callables given (datagram, source, destination) for every datagram
    written, before impairment: what tests use to watch the wire."""

    def __attrs_post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def attach(self, protocol: DatagramProtocol, address: tuple) -> SimulatedTransport:
        transport = SimulatedTransport(self, address)
        self._hosts[address] = protocol
        protocol.makeConnection(transport)
        return transport

    def detach(self, address: tuple) -> None:
        self._hosts.pop(address, None)

    def rebind(self, old: tuple, new: tuple) -> None:
        """NAT rebinding: the host at ``old`` now sends from and receives at ``new``."""
        protocol = self._hosts.pop(old)
        self._hosts[new] = protocol
        protocol.transport.address = new

    def partition(self, start: float, end: float) -> None:
        """Drop everything sent between ``start`` and ``end`` (virtual seconds)."""
        self._partitions.append((start, end))

    def isolate(self, address: tuple, start: float, end: float) -> None:
        """Drop everything to or from one host between ``start`` and ``end``."""
        self._isolations.append((address, start, end))

    def _cut_off(self, source: tuple, destination: tuple, now: float) -> bool:
        if any(start <= now < end for start, end in self._partitions):
            return True
        return any(start <= now < end and address in (source, destination)
                   for address, start, end in self._isolations)

    def send(self, datagram: bytes, source: tuple, destination: tuple) -> None:
        now = self.clock.seconds()
        for tap in self.taps:
            tap(datagram, source, destination)
        stats = self.stats
        stats.datagrams += 1
        stats.bytes += len(datagram)
        if self._cut_off(source, destination, now):
            stats.partitioned += 1
            return
        if self._rng.random() < self.loss:
            stats.lost += 1
            return
        copies = 1
        if self._rng.random() < self.duplicate:
            stats.duplicated += 1
            copies = 2
        for _ in range(copies):
            departure = self._serialise(source, len(datagram), now)
            if departure is None:
                stats.queue_drops += 1
                continue
            one_way = self.rtt / 2 + self._rng.uniform(-self.jitter, self.jitter)
            arrival = departure + max(0.0, one_way)
            self.clock.callLater(arrival - now, self._deliver, datagram, source, destination)

    def _serialise(self, source: tuple, size: int, now: float) -> float | None:
        if not self.bandwidth_bps:
            return now
        link = self.links.get(source, source)
        free_at = max(now, self._link_free_at.get(link, now))
        if (free_at - now) * self.bandwidth_bps / 8 > self.queue_bytes:
            return None
        delays = self.queue_delays.setdefault(link, [0.0, 0, 0.0])
        delays[0] += free_at - now
        delays[1] += 1
        delays[2] = max(delays[2], free_at - now)
        done = free_at + (size + IP_UDP_HEADER_BYTES) * 8 / self.bandwidth_bps
        self._link_free_at[link] = done
        return done

    def _deliver(self, datagram: bytes, source: tuple, destination: tuple) -> None:
        protocol = self._hosts.get(destination)
        if protocol is not None:
            protocol.datagramReceived(datagram, source)

    def run(self, until: float, stop=lambda: False) -> None:
        """Advance virtual time event by event until ``until`` or ``stop()``."""
        clock = self.clock
        while clock.calls and not stop():
            next_time = clock.calls[0].getTime()
            if next_time > until:
                clock.advance(until - clock.seconds())
                return
            clock.advance(max(0.0, next_time - clock.seconds()))
