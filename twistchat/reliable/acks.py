"""
The receiving side's acknowledgements: which packet numbers arrived (for
duplicate suppression and ACK ranges) and when an ACK is owed.

Acks are delayed up to ``max_ack_delay`` and sent at once every second
ack-eliciting packet or on a gap (RFC 9000 §13.2.1-2). On a path that
loses packets towards us every ack may be the one that gets through, so
then they go at once too.

An ACK reports only the ranges that reach within ``ACK_HORIZON`` packet
numbers of the largest received (RFC 9000 §13.2.3 lets a receiver limit
them): each range is then in the next several ACKs, which is what makes
a lost ACK harmless, and a lossy path's ACKs stop carrying 32 ranges of
old gaps the sender settled long ago. A packet that arrives older than
that horizon is reported (with its range) in the next ``LATE_REPORTS``
ACKs, so reordering still shows as reordering, not loss.
"""

from __future__ import annotations

from typing import Final

from twistchat.reliable.rangeset import RangeSet
from twistchat.wire.packets import Ack

ACK_ELICITING_THRESHOLD: Final = 2
"""RFC 9000 §13.2.2: acknowledge at once every second ack-eliciting packet."""

MAX_ACK_RANGES_SENT: Final = 32

LOSS_ESTIMATE_GAIN: Final = 1 / 32
"""Weight of one packet's fate in the running loss estimates (both directions)."""
LOSSY_PATH_THRESHOLD: Final = 0.01
"""Above this estimated loss a path counts as lossy: acks go at once and
(sending side) recent data rides again in packets that go out anyway."""
ACK_HORIZON: Final = 16
LATE_REPORTS: Final = 3
MAX_LATE_TRACKED: Final = 32
MAX_GAP_SAMPLES: Final = 32
"""A jump in packet numbers counts as at most this many losses."""


class AckTracker:
    __slots__ = ("received", "largest_received_time", "pending", "deadline",
                 "_eliciting_unacked", "_max_ack_delay", "loss_estimate", "_late")

    def __init__(self, max_ack_delay: float) -> None:
        self.received = RangeSet()
        self.largest_received_time = 0.0
        self.pending = False
        """An ack-eliciting packet (or one out of order) is not acknowledged yet."""
        self.deadline: float | None = None
        self._eliciting_unacked = 0
        self._max_ack_delay = max_ack_delay
        self.loss_estimate = 0.0
        """Loss towards us, estimated from gaps in packet numbers."""
        self._late: dict[int, int] = {}
        """Packets that arrived below the horizon -> ACKs still to report them in."""

    def on_packet_number(self, pn: int, now: float) -> bool | None:
        """Record an arriving packet number: None for a duplicate (drop the
        packet), else whether it arrived out of order."""
        largest_before = self.received.largest()
        if not self.received.add(pn):
            return None
        if largest_before is None or pn > largest_before:
            self.largest_received_time = now
            missing = 0 if largest_before is None else pn - largest_before - 1
            self._note_gaps(missing)
        elif pn < largest_before - ACK_HORIZON and len(self._late) < MAX_LATE_TRACKED:
            self._late[pn] = LATE_REPORTS
        return largest_before is not None and pn != largest_before + 1

    def on_packet_processed(self, ack_eliciting: bool, out_of_order: bool, now: float,
                            only_ping: bool = False) -> None:
        """``only_ping``: the packet carried nothing but PING (and ACK), a
        keepalive or a probe, whose sender waits for this ACK alone:
        answered at once, which also spares a timer per keepalive (a
        server's idle work, issue 16)."""
        if ack_eliciting:
            self.pending = True
            self._eliciting_unacked += 1
            if out_of_order or only_ping or self._eliciting_unacked >= ACK_ELICITING_THRESHOLD \
                    or self.loss_estimate > LOSSY_PATH_THRESHOLD:
                self.deadline = now
            elif self.deadline is None:
                self.deadline = now + self._max_ack_delay
        elif out_of_order and self.pending:
            self.deadline = now

    def is_due(self, now: float) -> bool:
        return self.pending and self.deadline is not None and now >= self.deadline

    def timer(self) -> float | None:
        return self.deadline if self.pending else None

    def frame(self, now: float) -> Ack | None:
        ranges = self.received.descending(MAX_ACK_RANGES_SENT)
        if not ranges:
            return None
        floor = ranges[0][1] - ACK_HORIZON
        if self._late:
            floor = min(floor, min(self._late))
        if ranges[-1][1] < floor:
            ranges = tuple(r for i, r in enumerate(ranges) if i == 0 or r[1] >= floor)
        delay_us = int(max(0.0, now - self.largest_received_time) * 1e6)
        return Ack(ranges, delay_us)

    def on_ack_sent(self) -> None:
        late = self._late
        if late:
            for pn in list(late):
                late[pn] -= 1
                if not late[pn]:
                    del late[pn]
        self.pending = False
        self.deadline = None
        self._eliciting_unacked = 0

    def _note_gaps(self, missing: int) -> None:
        """Reordering counts as loss too, which errs on the side of acking more."""
        estimate = self.loss_estimate
        for _ in range(min(missing, MAX_GAP_SAMPLES)):
            estimate += (1 - estimate) * LOSS_ESTIMATE_GAIN
        self.loss_estimate = estimate * (1 - LOSS_ESTIMATE_GAIN)
