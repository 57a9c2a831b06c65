"""
One measured transfer: a client endpoint sends numbered messages to a
server endpoint across a ``SimulatedNetwork``; the receiver checks every
message arrives exactly once and in order (in order within its lane, when
``bulk_every`` sends some on the bulk lane) and times it in virtual time.
This is what ``python -m twistchat.netsim`` runs and what the property
tests drive over many seeds.
"""

from __future__ import annotations

import random
import struct

import attrs
from twisted.internet.task import Clock

from twistchat.endpoint.api import BULK_LANE, INTERACTIVE_LANE, CloseReason, MessageProtocol
from twistchat.endpoint.endpoint import ClientEndpoint, ServerEndpoint
from twistchat.netsim.network import SimulatedNetwork
from twistchat.reliable.session import SessionConfig

SERVER_ADDRESS = ("127.0.0.10", 9999)
CLIENT_ADDRESS = ("127.0.0.20", 40000)
"""Simulated addresses: nothing is ever sent to them on a real socket."""

HEADER = struct.Struct(">Q")
MIN_MESSAGE_SIZE = HEADER.size
WINDOW_FEED_INTERVAL = 0.001
"""With ``rate == 0`` the sender tops up its queue this often (virtual s)."""
FEED_QUEUE_MESSAGES = 256


@attrs.define
class TransferSettings:
    loss: float = 0.0
    duplicate: float = 0.0
    rtt_ms: float = 20.0
    jitter_ms: float = 0.0
    messages: int = 1000
    size: int = 100
    rate: float = 50.0
    bandwidth_mbps: float | None = None
    queue_kb: int = 64
    seed: int = 1
    partition: tuple[float, float] | None = None
    """(start, end) in virtual seconds after the handshake."""
    rebind_at: float | None = None
    """Virtual seconds after the handshake at which the client's NAT mapping changes."""
    time_limit: float = 600.0
    config: SessionConfig = attrs.Factory(SessionConfig)
    bulk_every: int = 0
    """Every this many messages, one goes on the bulk lane (0: none)."""

    def lane_of(self, index: int) -> int:
        if self.bulk_every and index % self.bulk_every == self.bulk_every - 1:
            return BULK_LANE
        return INTERACTIVE_LANE


class Receiver(MessageProtocol):
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.arrivals: list[tuple[int, float]] = []
        self.closed: CloseReason | None = None

    def message_received(self, data: bytes) -> None:
        (index,) = HEADER.unpack_from(data)
        self.arrivals.append((index, self.clock.seconds()))

    def connection_lost(self, reason: CloseReason) -> None:
        self.closed = reason


class Sender(MessageProtocol):
    def __init__(self, clock: Clock, settings: TransferSettings) -> None:
        self.clock = clock
        self.settings = settings
        self.sent_at: list[float] = []
        self.closed: CloseReason | None = None

    def connection_made(self, connection) -> None:
        super().connection_made(connection)
        self.started_at = self.clock.seconds()
        self._next()

    def _payload(self, index: int) -> bytes:
        size = max(self.settings.size, MIN_MESSAGE_SIZE)
        return HEADER.pack(index) + bytes(size - HEADER.size)

    def _send_one(self) -> None:
        index = len(self.sent_at)
        self.sent_at.append(self.clock.seconds())
        self.connection.send_message(self._payload(index), lane=self.settings.lane_of(index))

    def _next(self) -> None:
        if self.closed is not None or len(self.sent_at) >= self.settings.messages:
            return
        if self.settings.rate > 0:
            self._send_one()
            self.clock.callLater(1 / self.settings.rate, self._next)
            return
        session = self.connection.session
        while len(self.sent_at) < self.settings.messages and \
                session.unsent_chunks < FEED_QUEUE_MESSAGES:
            self._send_one()
        self.clock.callLater(WINDOW_FEED_INTERVAL, self._next)

    def connection_lost(self, reason: CloseReason) -> None:
        self.closed = reason


@attrs.define
class TransferResult:
    settings: TransferSettings
    sent: int
    delivered_indices: list[int]
    latencies: list[float]
    wire_bytes: int
    payload_bytes: int
    retransmits: int
    redundant: int
    packets_lost: int
    seconds: float
    transfer_seconds: float
    closed: CloseReason | None
    unacked_reported: int
    network_stats: dict
    timed_out: bool = False
    """The time limit ended the run with messages still in flight (nothing
    was lost: the session was still working on them)."""

    @property
    def delivered(self) -> int:
        return len(set(self.delivered_indices))

    @property
    def duplicated(self) -> int:
        return len(self.delivered_indices) - self.delivered

    @property
    def reordered(self) -> int:
        """Messages delivered after a later one of their lane (across lanes
        nothing is promised)."""
        count, highest = 0, {}
        for index in self.delivered_indices:
            lane = self.settings.lane_of(index)
            if index < highest.get(lane, -1):
                count += 1
            highest[lane] = max(highest.get(lane, -1), index)
        return count

    @property
    def in_order(self) -> bool:
        """Each lane's messages delivered once each, in order, none missing before the last."""
        lanes: dict[int, list[int]] = {}
        for index in self.delivered_indices:
            lanes.setdefault(self.settings.lane_of(index), []).append(index)
        return all(delivered == [i for i in range(max(delivered) + 1)
                                 if self.settings.lane_of(i) == lane]
                   for lane, delivered in lanes.items())

    def percentile(self, fraction: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    def summary(self) -> dict:
        s = self.settings
        payload_mbit = self.payload_bytes * 8 / 1e6
        return {
            "sent": self.sent,
            "delivered": self.delivered,
            "missing": self.sent - self.delivered,
            "duplicated": self.duplicated,
            "reordered": self.reordered,
            "p50_ms": round(self.percentile(0.50) * 1000, 2),
            "p99_ms": round(self.percentile(0.99) * 1000, 2),
            "max_ms": round(max(self.latencies, default=0.0) * 1000, 2),
            "overhead": round(self.wire_bytes / self.payload_bytes, 4) if self.payload_bytes else None,
            "retransmits": self.retransmits,
            "redundant_copies": self.redundant,
            "packets_lost": self.packets_lost,
            "goodput_mbps": round(payload_mbit / self.transfer_seconds, 3) if self.transfer_seconds else 0.0,
            "link_mbps": s.bandwidth_mbps,
            "seconds": round(self.seconds, 3),
            "closed": self.closed.code.name if self.closed else None,
            "unacked_reported": self.unacked_reported,
            "timed_out": self.timed_out,
            "loss": s.loss, "dup": s.duplicate, "rtt_ms": s.rtt_ms, "jitter_ms": s.jitter_ms,
            "rate": s.rate, "size": s.size, "seed": s.seed,
        }


def run_transfer(settings: TransferSettings) -> TransferResult:
    clock = Clock()
    network = SimulatedNetwork(
        clock, seed=settings.seed, loss=settings.loss, duplicate=settings.duplicate,
        rtt=settings.rtt_ms / 1000, jitter=settings.jitter_ms / 1000,
        bandwidth_bps=settings.bandwidth_mbps * 1e6 if settings.bandwidth_mbps else None,
        queue_bytes=settings.queue_kb * 1024)
    receiver = Receiver(clock)
    server = ServerEndpoint(clock, lambda address: receiver, config=settings.config,
                            rng=random.Random(settings.seed * 7919 + 1))
    client = ClientEndpoint(clock, config=settings.config,
                            rng=random.Random(settings.seed * 7919 + 2))
    network.attach(server, SERVER_ADDRESS)
    network.attach(client, CLIENT_ADDRESS)
    sender = Sender(clock, settings)
    failures = []
    client.connect(SERVER_ADDRESS, sender).addErrback(failures.append)

    def established() -> bool:
        return sender.connection is not None or bool(failures)

    network.run(until=settings.time_limit, stop=established)
    timed_out = sender.connection is None and not failures
    if sender.connection is not None:
        start = sender.started_at
        if settings.partition is not None:
            network.partition(start + settings.partition[0], start + settings.partition[1])
        if settings.rebind_at is not None:
            clock.callLater(settings.rebind_at, network.rebind, CLIENT_ADDRESS,
                            (CLIENT_ADDRESS[0], CLIENT_ADDRESS[1] + 1))

        def finished() -> bool:
            if sender.closed is not None:
                return True
            # Every message sent and none queued or unacknowledged (none is empty).
            return len(sender.sent_at) >= settings.messages and \
                sender.connection.pending_bytes() == 0

        network.run(until=settings.time_limit, stop=finished)
        timed_out = not finished()
        if sender.closed is None:
            sender.connection.close("done")
            network.run(until=clock.seconds() + 5, stop=lambda: sender.closed is not None)
    indices = [index for index, _ in receiver.arrivals]
    latencies = []
    seen = set()
    for index, arrived in receiver.arrivals:
        if index not in seen and index < len(sender.sent_at):
            seen.add(index)
            latencies.append(arrived - sender.sent_at[index])
    size = max(settings.size, MIN_MESSAGE_SIZE)
    payload = len(seen) * size
    client_session = sender.connection.session if sender.connection else None
    first_send = sender.sent_at[0] if sender.sent_at else 0.0
    last_arrival = max((t for _, t in receiver.arrivals), default=first_send)
    closed = sender.closed
    if closed is None and failures:
        closed = failures[0].value.reason
    return TransferResult(
        settings=settings,
        sent=len(sender.sent_at),
        delivered_indices=indices,
        latencies=latencies,
        wire_bytes=server.counters.bytes_sent + client.counters.bytes_sent,
        payload_bytes=payload,
        retransmits=client_session.stats.retransmitted_frames if client_session else 0,
        redundant=client_session.stats.redundant_frames if client_session else 0,
        packets_lost=client_session.stats.packets_lost if client_session else 0,
        seconds=clock.seconds(),
        transfer_seconds=max(0.0, last_arrival - first_send),
        closed=closed if closed is not None and closed.code != 0 else None,
        unacked_reported=len(closed.unacked) if closed is not None else 0,
        network_stats=attrs.asdict(network.stats),
        timed_out=timed_out,
    )
