"""The one channel every implementation in ``python -m bench transport`` runs
through: twistchat's own simulator (``twistchat.netsim``), in virtual time,
built from the same ``TransferSettings`` that netsim's transfer takes, plus
what the bench adds on top of it without changing it:

- ``SharedBottleneckNetwork``: netsim serialises each *source* on its own
  link; two senders must share one link (one drop-tail queue, one
  bandwidth) to show fairness, so several sources can be mapped to one link.
- ``SansIOPeer``: the Twisted glue for a foreign sans-IO transport (KCP,
  aioquic): datagrams in, datagrams out, one timer.
- ``MessageTrace``: the same numbered messages (netsim's 8-byte index header
  and zero padding) and the same accounting as netsim (its ``TransferResult``),
  so every implementation's p50/p99, overhead and goodput come from one place.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import attrs
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import Clock

from twistchat.netsim.network import SimulatedNetwork
from twistchat.netsim.transfer import (
    CLIENT_ADDRESS, FEED_QUEUE_MESSAGES, HEADER, MIN_MESSAGE_SIZE, SERVER_ADDRESS, WINDOW_FEED_INTERVAL,
    TransferResult, TransferSettings,
)

__all__ = ["CLIENT_ADDRESS", "SERVER_ADDRESS", "FEED_QUEUE_MESSAGES", "WINDOW_FEED_INTERVAL",
           "SharedBottleneckNetwork", "SansIOPeer", "MessageTrace", "RunCap", "network_for",
           "message_payload", "message_index", "message_size"]


class SharedBottleneckNetwork(SimulatedNetwork):
    """netsim's network, except that the sources named in ``link_of`` share
    the link (bandwidth and drop-tail queue) their value names: datagrams
    from two senders then wait behind each other in one queue, and a sender
    that overruns it makes the other lose too, as at a real bottleneck."""

    def __init__(self, *args: Any, link_of: dict[tuple, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.link_of = dict(link_of or {})

    def _serialise(self, source: tuple, size: int, now: float) -> float | None:
        return super()._serialise(self.link_of.get(source, source), size, now)


def network_for(settings: TransferSettings, clock: Clock, *,
                link_of: dict[tuple, Any] | None = None) -> SharedBottleneckNetwork:
    """The network ``run_transfer`` builds for ``settings`` (same arguments,
    same seed, so the same loss, duplication, jitter and queue model)."""
    return SharedBottleneckNetwork(
        clock, seed=settings.seed, loss=settings.loss, duplicate=settings.duplicate,
        rtt=settings.rtt_ms / 1000, jitter=settings.jitter_ms / 1000,
        bandwidth_bps=settings.bandwidth_mbps * 1e6 if settings.bandwidth_mbps else None,
        queue_bytes=settings.queue_kb * 1024, link_of=link_of)


def message_size(settings: TransferSettings) -> int:
    return max(settings.size, MIN_MESSAGE_SIZE)


def message_payload(index: int, settings: TransferSettings) -> bytes:
    """Message ``index`` exactly as netsim's ``Sender`` makes it."""
    return HEADER.pack(index) + bytes(message_size(settings) - HEADER.size)


def message_index(message: bytes) -> int:
    return HEADER.unpack_from(message)[0]


MIN_TIMER_STEP = 1e-6
"""A timer fires at least this long after it is armed, as on a real clock,
which never reads the same instant twice.  Without it a deadline that float
rounding leaves a hair unexpired (aioquic 1.7.2 computes a time-threshold
loss time as ``sent + delay`` and tests ``sent <= now - delay``) is re-armed
at the same virtual instant for ever and the simulator never moves on."""


class SansIOPeer(DatagramProtocol):
    """Glue between the simulator and one foreign sans-IO connection.
    Subclasses say how datagrams go in (``feed``), what is waiting to go out
    (``outgoing``) and when the connection next wants to be woken
    (``next_timer``, absolute virtual seconds, or None)."""

    def __init__(self, clock: Clock, peer_address: tuple) -> None:
        self.clock = clock
        self.peer_address = peer_address
        self.bytes_sent = 0
        self.cap: "RunCap | None" = None
        """Once its wall time is spent no timer is armed again, so even a
        run stuck at one virtual instant hands control back."""
        self._timer = None

    # -- what a subclass provides
    def feed(self, datagram: bytes, address: tuple, now: float) -> None:
        raise NotImplementedError

    def outgoing(self, now: float) -> list[bytes]:
        raise NotImplementedError

    def on_timer(self, now: float) -> None:
        raise NotImplementedError

    def next_timer(self) -> float | None:
        raise NotImplementedError

    # -- glue
    def datagramReceived(self, datagram: bytes, address: tuple) -> None:
        self.feed(datagram, address, self.clock.seconds())
        self.flush()

    def flush(self) -> None:
        """Send what the connection wants sent, then re-arm its one timer."""
        now = self.clock.seconds()
        for datagram in self.outgoing(now):
            self.bytes_sent += len(datagram)
            self.transport.write(datagram, self.peer_address)
        self._rearm()

    def _rearm(self) -> None:
        when = self.next_timer()
        if self._timer is not None and self._timer.active():
            if when is not None and abs(self._timer.getTime() - when) < 1e-9:
                return
            self._timer.cancel()
        self._timer = None
        if when is not None and not (self.cap is not None and self.cap.wall_exceeded()):
            delay = max(MIN_TIMER_STEP, when - self.clock.seconds())
            self._timer = self.clock.callLater(delay, self._fire, when)

    def _fire(self, when: float) -> None:
        """``now`` is never before the time asked for (aioquic's asyncio glue
        does the same), and a timer always fires a little later than the
        instant it was armed (``MIN_TIMER_STEP``)."""
        self._timer = None
        self.on_timer(max(when, self.clock.seconds()))
        self.flush()

    def stop(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None


@attrs.define
class RunCap:
    """How long one run may go on: ``virtual_s`` of simulated time (netsim's
    ``time_limit``) and, for the foreign drivers, ``wall_s`` of real time, so
    a pathological run is reported as unfinished instead of hanging the bench."""
    virtual_s: float = 600.0
    wall_s: float | None = 120.0
    _started: float = attrs.field(init=False, factory=time.monotonic)

    def wall_exceeded(self) -> bool:
        return self.wall_s is not None and time.monotonic() - self._started > self.wall_s

    def restart(self) -> None:
        self._started = time.monotonic()


class MessageTrace:
    """What the sender handed over and when, what arrived in order and when:
    turned into netsim's own ``TransferResult`` so all columns share one
    accounting (latency from hand-over to in-order delivery, overhead as
    bytes written to the wire by both ends over payload delivered)."""

    def __init__(self, clock: Clock, settings: TransferSettings) -> None:
        self.clock = clock
        self.settings = settings
        self.sent_at: list[float] = []
        self.arrivals: list[tuple[int, float]] = []

    @property
    def all_sent(self) -> bool:
        return len(self.sent_at) >= self.settings.messages

    @property
    def all_delivered(self) -> bool:
        return len(self.arrivals) >= self.settings.messages

    def next_message(self) -> bytes:
        index = len(self.sent_at)
        self.sent_at.append(self.clock.seconds())
        return message_payload(index, self.settings)

    def delivered(self, message: bytes) -> None:
        self.arrivals.append((message_index(message), self.clock.seconds()))

    def result(self, *, wire_bytes: int, network: SimulatedNetwork, timed_out: bool,
               retransmits: int = 0, packets_lost: int = 0) -> TransferResult:
        indices = [index for index, _ in self.arrivals]
        latencies, seen = [], set()
        for index, arrived in self.arrivals:
            if index not in seen and index < len(self.sent_at):
                seen.add(index)
                latencies.append(arrived - self.sent_at[index])
        first_send = self.sent_at[0] if self.sent_at else 0.0
        last_arrival = max((t for _, t in self.arrivals), default=first_send)
        return TransferResult(
            settings=self.settings, sent=len(self.sent_at), delivered_indices=indices,
            latencies=latencies, wire_bytes=wire_bytes,
            payload_bytes=len(seen) * message_size(self.settings), retransmits=retransmits,
            redundant=0, packets_lost=packets_lost, seconds=self.clock.seconds(),
            transfer_seconds=max(0.0, last_arrival - first_send), closed=None, unacked_reported=0,
            network_stats=attrs.asdict(network.stats), timed_out=timed_out)


def run_until_done(network: SimulatedNetwork, cap: RunCap, done: Callable[[], bool]) -> str | None:
    """Advance the simulator until ``done()``; why it stopped short, or None."""
    network.run(until=cap.virtual_s, stop=lambda: done() or cap.wall_exceeded())
    if done():
        return None
    if cap.wall_exceeded():
        return (f"did not finish in {cap.wall_s:g} s wall "
                f"(reached {network.clock.seconds():.1f} s virtual)")
    return f"did not finish in {cap.virtual_s:g} s virtual"
