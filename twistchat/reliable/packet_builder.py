"""
Filling DATA packets: what goes into the next datagram and in what order.

An ACK first when one is owed; then answers to the peer's path challenges,
probe copies of the oldest data in flight (RFC 9002 §6.2.4), lost chunks
and new chunks lane by lane (lane 0 first) as far as the congestion and
flow windows allow, unreliable
messages, and on a lossy path redundant copies of recent chunks whose ack is
overdue (a packet goes for them alone when nothing else does). A packet is
capped at what the congestion window has left rather than not sent at all,
so small messages are never held behind a full-size packet's worth of room.
Ack-eliciting packets (probes excepted) also wait for the pacer
(``pacing``); ``paced`` tells the session to wake when it allows the next.
Every packet gets a new packet number, and every ack-eliciting one is handed
to ``Recovery``.
"""

from __future__ import annotations

from typing import Callable, Final

from twistchat.reliable.acks import LOSSY_PATH_THRESHOLD, AckTracker
from twistchat.reliable.config import SessionStats
from twistchat.reliable.pacing import Pacer
from twistchat.reliable.paths import PathValidator
from twistchat.reliable.recovery import Recovery
from twistchat.reliable.sent_packet import SentPacket
from twistchat.reliable.rtt import K_GRANULARITY
from twistchat.reliable.sending import Chunk, SendBuffer
from twistchat.reliable.protection import PacketProtection
from twistchat.wire.packets import (
    CONNECTION_ID_SIZE, TAG_SIZE, Ack, MessageFields, PathChallenge, Ping, Window,
    derived_numbers_saving, encode_frame, encode_frames, frame_size, message_head,
)
from twistchat.wire.varint import varint_size

WINDOW_FRAME_MAX: Final = 1 + 8

MIN_USEFUL_ROOM: Final = 32
"""Below this much congestion-window room, wait for acks instead of sending."""

REPAIR_RTTVAR_MULTIPLIER: Final = 1.5
"""A recent chunk's acknowledgement is overdue once it is smoothed RTT +
1.5 x RTT variance old (the receiver acks at once on a lossy path, §6.2, so
no ack delay is added). RFC 6298 and RFC 9002 §6.2.1 take 4 x RTT variance
for a timeout that must rarely fire early, because firing early costs a
congestion response; an early repair costs one copy and nothing else, a
late one costs the latency the copy is for. 1.5 is measured, not derived:
the largest multiplier (of 1, 1.5, 2, 3, 4) that kept chat's p99 at 10%
loss at what copies in the very next packet gave (docs/benchmarks.md,
issue 15, step 6)."""


def encode_packet_frames(frames: list) -> bytes:
    """``encode_frames`` (the same bytes) for what a builder packs, whose
    messages are always the sender's own ``Chunk`` records: their fields are
    read natively, not as ``MessageLike`` (issue 16)."""
    parts: list[bytes] = []
    last_index = len(frames) - 1
    previous_seq = -2  # no message frame yet: none follows
    previous_lane = -1
    for index, frame in enumerate(frames):
        if isinstance(frame, Chunk):
            seq = frame.seq
            lane = frame.lane
            data = frame.data
            parts.append(message_head(seq, lane, frame.total, frame.offset, len(data),
                                      index == last_index,
                                      seq == previous_seq + 1 and lane == previous_lane))
            parts.append(data)
            previous_seq = seq
            previous_lane = lane
        elif isinstance(frame, MessageFields):
            raise TypeError(f"a builder packs chunks, not {frame!r}")
        else:
            parts.append(encode_frame(frame, index == last_index))
    return b"".join(parts)


class PacketBuilder:
    __slots__ = (
        "_on_ack_eliciting", "_window_in_flight", "acks", "buffer", "max_datagram_size",
        "next_packet_number", "paced", "pacer", "paths", "ping_pending", "probes_pending", "protection",
        "recovery", "repair_not_before", "stats", "window_update"
    )
    # One per session: no per-instance dict (issue 16, idle sessions).

    def __init__(self, max_datagram_size: int, acks: AckTracker, buffer: SendBuffer,
                 recovery: Recovery, paths: PathValidator, stats: SessionStats,
                 on_ack_eliciting: Callable[[float], None]) -> None:
        self.max_datagram_size = max_datagram_size
        self.acks = acks
        self.buffer = buffer
        self.recovery = recovery
        self.paths = paths
        self.stats = stats
        self._on_ack_eliciting = on_ack_eliciting
        """Told before each ack-eliciting packet is put in flight (liveness clocks)."""
        self.protection: PacketProtection | None = None
        """Set by the session when the handshake completes; nothing is built before."""
        self.next_packet_number = 0
        self.probes_pending = 0
        self.ping_pending = False
        self.window_update: int | None = None
        """A receive window to announce, until a packet carrying it is
        acknowledged; sent again if that packet is declared lost."""
        self._window_in_flight = False
        self.pacer = Pacer(max_datagram_size)
        self.paced = False
        """The last ``build`` held data back for the pacer: wake at ``pacer.next_send_time``."""
        self.repair_not_before = 0.0
        """A repair found due could not go (no room): not reported due again before this."""
        recovery.on_window_acked = self._window_acked
        recovery.on_window_lost = self._window_lost

    def build(self, dest_cid: int, now: float, flow_window: int) -> bytes | None:
        """The next DATA datagram, or None if nothing is due."""
        buffer = self.buffer
        acks = self.acks
        redundancy = self._redundancy_active()
        repair_due = redundancy and self._repair_due(now)
        if not (self.probes_pending or self.ping_pending or buffer.has_data_to_send()
                or self.paths.responses or repair_due
                or (self.window_update is not None and not self._window_in_flight)):
            # Nothing but an ACK could go: the common case of every wake-up
            # after the last datagram, and of an idle server's answer to a
            # keepalive (issue 16), which needs no room, window or pacer.
            self.paced = False
            if not acks.is_due(now):
                return None
            self._forget_old_recent(now)
            return self.seal([acks.frame(now)], dest_cid, now)
        congestion = self.recovery.congestion
        room = self.max_datagram_size - (1 + CONNECTION_ID_SIZE + varint_size(self.next_packet_number)) \
            - TAG_SIZE
        frames: list = []
        chunks: list = []
        ack_due = acks.is_due(now)
        ack = acks.frame(now) if acks.pending else None
        if ack is not None:
            room -= frame_size(ack)
        probing = self.probes_pending > 0
        self.paced = False
        if not probing:
            overhead = self.max_datagram_size - room
            room = min(room, congestion.available() - overhead)
            if room >= MIN_USEFUL_ROOM and not self.pacer.may_send(now):
                self.paced = repair_due or buffer.has_data_to_send()
                room = 0
        carries_window = False
        if probing or room >= MIN_USEFUL_ROOM:
            room = self.paths.add_responses(frames, room)
            # A probe carries it again too: it may be what the peer is missing.
            if self.window_update is not None and (probing or not self._window_in_flight) \
                    and room >= WINDOW_FRAME_MAX:
                frames.append(Window(self.window_update))
                room -= frame_size(frames[-1])
                self._window_in_flight = carries_window = True
            if probing:
                # The oldest data in flight first: it is what holds up delivery.
                room = buffer.add_probe_copies(self.recovery.sent.values(), frames, chunks, room, now)
            room = self._add_reliable(frames, chunks, room, now, flow_window)
            self._forget_old_recent(now)
            room = buffer.add_unreliable(frames, room)
            if (chunks or repair_due) and redundancy:
                room = buffer.add_redundant(frames, chunks, room, now,
                                            now + K_GRANULARITY - self._overdue_delay())
            if (probing or self.ping_pending) and not frames:
                frames.append(Ping())
        if repair_due and not self.paced and self._repair_due(now):
            # No room for it (a large ACK beside a fragment): look again a
            # timer granularity later rather than wake at once forever.
            self.repair_not_before = now + K_GRANULARITY
        if not frames:
            if not ack_due:
                return None
            return self.seal([ack], dest_cid, now)
        if probing:
            self.probes_pending -= 1
            self.stats.probes_sent += 1
        self.ping_pending = False
        if ack is not None:
            frames.insert(0, ack)
        return self.seal(frames, dest_cid, now, chunks=chunks, ack_eliciting=True,
                         carries_window=carries_window)

    def _forget_old_recent(self, now: float) -> None:
        """Redundancy candidates acknowledged, or older than two round trips, are no use to copy."""
        if self.buffer.recent:
            self.buffer.forget_old_recent(now - 2 * self.recovery.rtt.smoothed_rtt)

    def _add_reliable(self, frames: list, chunks: list, room: int, now: float,
                      flow_window: int) -> int:
        """``buffer.add_reliable``, then again with the room that sending
        messages as NEXT_MESSAGE (PROTOCOL.md §4) gave back: the buffer sizes
        each frame with its sequence number, as if alone."""
        room = self.buffer.add_reliable(frames, chunks, room, now, flow_window)
        if not self.buffer.has_data_to_send():
            return room  # it all went: nothing to refill with (most packets of a fan-out)
        refunded = 0
        while True:
            saving = derived_numbers_saving(frames) - refunded
            if saving <= 0:
                return room
            refunded += saving
            room += saving
            before = len(frames)
            room = self.buffer.add_reliable(frames, chunks, room, now, flow_window)
            if len(frames) == before:
                return room

    def seal(self, frames: list, dest_cid: int, now: float, chunks: list | None = None,
             ack_eliciting: bool = False, carries_window: bool = False) -> bytes:
        """An ACK, when a packet has one, is its first frame (``build`` puts it there)."""
        pn = self.next_packet_number
        self.next_packet_number += 1
        protection = self.protection
        assert protection is not None  # nothing is sealed before the handshake gave keys
        datagram = protection.seal(dest_cid, pn, encode_packet_frames(frames))
        size = len(datagram)
        if type(frames[0]) is Ack:
            self.acks.on_ack_sent()
        if ack_eliciting:
            self._on_ack_eliciting(now)
            congestion = self.recovery.congestion
            self.pacer.on_packet_sent(size, now, congestion.pacing_rate(self.recovery.rtt.smoothed_rtt))
            app_limited = congestion.bytes_in_flight + 2 * self.max_datagram_size \
                < congestion.window and not self.buffer.has_unsent()
            self.recovery.on_packet_sent(SentPacket(pn, now, size, chunks or [], app_limited,
                                                    carries_window))
        self.stats.packets_sent += 1
        self.stats.bytes_sent += size
        return datagram

    def path_challenge(self, dest_cid: int, now: float) -> tuple[bytes, tuple] | None:
        """A PATH_CHALLENGE datagram to a candidate address, if one is due and allowed."""
        if not self.paths.has_candidate:
            return None  # every call but after a peer's move: no probe timeout to work out
        due = self.paths.challenge_due(now, self.recovery.probe_timeout())
        if due is None:
            return None
        challenge, address = due
        pn = self.next_packet_number
        protection = self.protection
        assert protection is not None
        datagram = protection.seal(dest_cid, pn, encode_frames((PathChallenge(challenge),)))
        if not self.paths.may_send_challenge(len(datagram), now):
            return None  # anti-amplification: never more than it sent us
        self.next_packet_number += 1
        self.stats.packets_sent += 1
        self.stats.bytes_sent += len(datagram)
        return datagram, address

    def _window_acked(self) -> None:
        self.window_update = None
        self._window_in_flight = False

    def _window_lost(self) -> None:
        self._window_in_flight = False

    def _overdue_delay(self) -> float:
        rtt = self.recovery.rtt
        return rtt.smoothed_rtt + REPAIR_RTTVAR_MULTIPLIER * rtt.rttvar

    def repair_deadline(self) -> float | None:
        """When a recent chunk sent once will be overdue (and a packet
        should go with a copy of it, alone if nothing else goes), or None:
        only while redundancy is active (§6.5)."""
        if not self._redundancy_active():
            return None
        return self._next_repair()

    def _next_repair(self) -> float | None:
        """``repair_deadline`` once redundancy is known to be active."""
        if not self.buffer.recent:
            return None
        sent = self.buffer.oldest_unrepaired_send()
        if sent is None:
            return None
        return max(sent + self._overdue_delay(), self.repair_not_before)

    def _repair_due(self, now: float) -> bool:
        """A repair is due now, or within a timer granularity (RFC 9002
        §6.1.2's kGranularity): it goes in this packet rather than alone a
        moment later. Redundancy is active (``build`` asked once)."""
        due = self._next_repair()
        return due is not None and due <= now + K_GRANULARITY

    def _redundancy_active(self) -> bool:
        congestion = self.recovery.congestion
        return (self.buffer.redundancy > 0
                and self.recovery.loss_estimate > LOSSY_PATH_THRESHOLD
                and congestion.bytes_in_flight * 2 < congestion.window)
