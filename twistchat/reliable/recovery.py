"""
Loss recovery on the sending side, as RFC 9002 describes it: the packets in
flight, what an ACK frame retires, loss by packet or time threshold, the
probe timeout, and the RTT and congestion state they feed.

Packet numbers are never reused, so every RTT sample is unambiguous
(RFC 9002 §2), and so is a late acknowledgement of a packet already
declared lost: that loss was spurious (the packet was only reordered). The
thresholds then widen (``rack``) and, if every loss of the episode that cut
the congestion window was spurious, the cut is undone (as RACK's and
Eifel's undo do). What a packet carried is handed back to the
``SendBuffer`` chunk by chunk: acknowledged, or lost (to be sent again in
a new packet).
"""

from __future__ import annotations

from typing import Callable, Final

from twistchat.reliable.acks import LOSS_ESTIMATE_GAIN
from twistchat.reliable.bbr import Bbr
from twistchat.reliable.config import SessionStats
from twistchat.reliable.congestion import K_PERSISTENT_CONGESTION_THRESHOLD, NewReno
from twistchat.reliable.delivery_rate import DeliveryRateEstimator
from twistchat.reliable.rack import ReorderingThresholds
from twistchat.reliable.rtt import K_GRANULARITY, RTTVAR_MULTIPLIER, RttEstimator
from twistchat.reliable.sending import SendBuffer
from twistchat.reliable.sent_packet import SentPacket
from twistchat.wire.packets import Ack

MAX_REMEMBERED_LOST: Final = 512
"""Packets declared lost are remembered (without their bytes) this long, in
packets, to tell a spurious loss when a late acknowledgement comes ..."""

LOST_MEMORY_RTTS: Final = 4
"""... and at most this many RTTs: an acknowledgement later than that is
not a reordering worth adapting to."""

MAX_PTO_BACKOFF: Final = 6
"""The probe timeout doubles at most this many times (64 x PTO) ..."""

MAX_PROBE_INTERVAL: Final = 1.0
"""... and never beyond one second: on a path losing 30% of packets each
way a probe round trip fails half the time, and a chat session should try
a dozen times before the give-up time rather than three."""


class Recovery:
    __slots__ = (
        "_ack_eliciting_sent", "_episode_losses", "_episode_start", "buffer", "congestion", "delivery",
        "episode", "first_rtt_sample_time", "largest_acked", "last_ack_eliciting_sent", "loss_estimate",
        "loss_time", "lost", "on_window_acked", "on_window_lost", "peer_max_ack_delay", "pto_count",
        "rtt", "sent", "stats", "thresholds"
    )
    # One per session: no per-instance dict (issue 16, idle sessions).

    def __init__(self, now: float, rtt: RttEstimator, congestion: NewReno | Bbr,
                 buffer: SendBuffer, stats: SessionStats, peer_max_ack_delay: float) -> None:
        self.rtt = rtt
        self.congestion = congestion
        self.buffer = buffer
        self.stats = stats
        self.peer_max_ack_delay = peer_max_ack_delay
        self.sent: dict[int, SentPacket] = {}
        """Ack-eliciting packets in flight, oldest first."""
        self.largest_acked: int | None = None
        self.loss_time: float | None = None
        """When the time threshold will declare the oldest unacked packet lost."""
        self.pto_count = 0
        self.last_ack_eliciting_sent = now
        self.loss_estimate = 0.0
        """Loss of our packets, from what acks retire and what is declared lost."""
        self.on_window_acked: Callable[[], None] = lambda: None
        """Told when a packet carrying a WINDOW frame is acknowledged ..."""
        self.on_window_lost: Callable[[], None] = lambda: None
        """... or declared lost."""
        self.delivery = DeliveryRateEstimator(now)
        self.thresholds = ReorderingThresholds()
        self.lost: dict[int, SentPacket] = {}
        """Packets declared lost lately, oldest first: a late ack of one is a spurious loss."""
        self.episode = 0
        """Loss episodes so far: one per loss of a packet sent after the last began."""
        self._episode_start: float | None = None
        self._episode_losses = 0
        """Losses of the current episode not (yet) shown spurious."""
        self._ack_eliciting_sent = 0
        self.first_rtt_sample_time: float | None = None
        """When the first RTT sample was taken: only packets sent after it
        can show persistent congestion (RFC 9002 §7.6.2)."""

    def rest(self) -> None:
        """An idle session gives back its emptied dicts' tables (as
        ``MessageReassembler.rest``)."""
        if not self.sent:
            self.sent.clear()
        if not self.lost:
            self.lost.clear()

    def probe_timeout(self) -> float:
        return self.rtt.probe_timeout(self.peer_max_ack_delay)

    def on_packet_sent(self, packet: SentPacket) -> None:
        self.sent[packet.packet_number] = packet
        packet.ordinal = self._ack_eliciting_sent
        self._ack_eliciting_sent += 1
        self.delivery.on_packet_sent(packet, self.congestion.bytes_in_flight, packet.sent_time,
                                     packet.app_limited)
        self.congestion.on_packet_sent(packet.size)
        self.last_ack_eliciting_sent = packet.sent_time

    def on_ack_received(self, frame: Ack, now: float) -> bool:
        """Retire what ``frame`` acknowledges; True if it acknowledged anything new."""
        largest = frame.largest
        if self.largest_acked is None or largest > self.largest_acked:
            self.largest_acked = largest
        late = bool(self.lost) and self._find_spurious_losses(frame.ranges, now)
        sent = self.sent
        if not sent:
            return late
        first_outstanding = next(iter(sent))
        newly_acked: list[SentPacket] = []
        for low, high in frame.ranges:
            if high < first_outstanding:
                break
            for pn in range(max(low, first_outstanding), high + 1):
                packet = sent.pop(pn, None)
                if packet is not None:
                    newly_acked.append(packet)
        if not newly_acked:
            return late
        newest = newly_acked[0]
        for packet in newly_acked:  # not max(key=lambda): a Python call per packet
            if packet.packet_number > newest.packet_number:
                newest = packet
        if newest.packet_number == largest:
            if self.first_rtt_sample_time is None:
                self.first_rtt_sample_time = now
            self.rtt.update(now - newest.sent_time, frame.delay_us / 1e6, self.peer_max_ack_delay)
        chunks_acked = self.buffer.on_chunks_acked
        delivery = self.delivery
        for packet in newly_acked:
            delivery.on_packet_acked(packet, now)
            self.congestion.on_packet_acked(packet.size, packet.sent_time, packet.app_limited)
            self.loss_estimate -= self.loss_estimate * LOSS_ESTIMATE_GAIN
            if packet.chunks:
                chunks_acked(packet.chunks)
            if packet.carries_window:
                self.on_window_acked()
        self.pto_count = 0
        self.detect_lost_packets(now)
        self.congestion.on_rate_sample(delivery.take_sample(self.rtt.min_rtt / 2), delivery.delivered,
                                       self.rtt.latest_rtt, RTTVAR_MULTIPLIER * self.rtt.rttvar, now)
        return True

    def detect_lost_packets(self, now: float) -> None:
        """RFC 9002 §6.1 (DetectAndRemoveLostPackets)."""
        self.loss_time = None
        if self.largest_acked is None:
            return
        thresholds = self.thresholds
        loss_delay = max(thresholds.time_threshold * max(self.rtt.latest_rtt, self.rtt.smoothed_rtt),
                         K_GRANULARITY)
        if thresholds.allowance:
            loss_delay = max(loss_delay, min(loss_delay + thresholds.allowance, self.probe_timeout()))
        packet_threshold = thresholds.packet_threshold
        lost: list[SentPacket] = []
        for pn, packet in self.sent.items():
            if pn > self.largest_acked:
                break
            # Compare deadlines computed the same way as the timer's, so that
            # waking at the deadline always declares the packet lost (float
            # rounding of ``now - loss_delay`` could otherwise spin forever).
            deadline = packet.sent_time + loss_delay
            if deadline <= now or self.largest_acked >= pn + packet_threshold:
                lost.append(packet)
            elif self.loss_time is None or deadline < self.loss_time:
                self.loss_time = deadline
        if lost:
            self._on_packets_lost(lost, now)

    def _on_packets_lost(self, lost: list[SentPacket], now: float) -> None:
        on_chunk_lost = self.buffer.on_chunk_lost
        newest_sent = max(p.sent_time for p in lost)
        if self._episode_start is None or newest_sent > self._episode_start:
            self.episode += 1
            self._episode_start = now
            self._episode_losses = 0
            self.thresholds.on_loss_episode()
        self._forget_old_losses(now)
        remembered = self.lost
        largest_acked = self.largest_acked
        assert largest_acked is not None  # losses are found from an acknowledgement
        for packet in lost:
            del self.sent[packet.packet_number]
            packet.declared_lost_at = now
            packet.largest_acked_at_loss = largest_acked
            packet.episode = self.episode
            remembered[packet.packet_number] = packet
            self._episode_losses += 1
            self.stats.packets_lost += 1
            self.loss_estimate += (1 - self.loss_estimate) * LOSS_ESTIMATE_GAIN
            for chunk in packet.chunks:
                on_chunk_lost(chunk)
            if packet.carries_window:
                self.on_window_lost()
        persistent = self._in_persistent_congestion(lost)
        if persistent:
            self.stats.persistent_congestion += 1
        self.congestion.on_packets_lost([(p.size, p.sent_time) for p in lost], now, persistent)

    def _in_persistent_congestion(self, lost: list[SentPacket]) -> bool:
        """RFC 9002 §7.6.2: two ack-eliciting packets of ``lost`` (in
        packet-number order), both sent after the first RTT sample, more
        than the persistent congestion duration apart, and every
        ack-eliciting packet sent between them lost too: the path carried
        nothing for that long, which no random loss explains."""
        first_sample = self.first_rtt_sample_time
        if first_sample is None:
            return False
        duration = self.probe_timeout() * K_PERSISTENT_CONGESTION_THRESHOLD  # RFC 9002 §7.6.1
        run_start: SentPacket | None = None
        previous: SentPacket | None = None
        for packet in lost:
            if packet.sent_time <= first_sample:
                continue
            if previous is None or packet.ordinal != previous.ordinal + 1:
                run_start = packet
            previous = packet
            assert run_start is not None  # set with the first packet taken
            if packet.sent_time - run_start.sent_time > duration:
                return True
        return False

    def _forget_old_losses(self, now: float) -> None:
        lost = self.lost
        horizon = now - LOST_MEMORY_RTTS * max(self.rtt.smoothed_rtt, K_GRANULARITY)
        while lost:
            pn = next(iter(lost))
            if len(lost) < MAX_REMEMBERED_LOST and lost[pn].declared_lost_at >= horizon:
                break
            del lost[pn]

    def _find_spurious_losses(self, ranges, now: float) -> bool:
        """A remembered lost packet that ``ranges`` acknowledge arrived after
        all: its data is acknowledged, the thresholds widen to forgive that
        much reordering, and a congestion cut all of whose losses were
        spurious is undone. True if there was any."""
        lowest = ranges[-1][0]
        highest = ranges[0][1]
        found = [pn for pn in self.lost if lowest <= pn <= highest
                 and any(low <= pn <= high for low, high in ranges)]
        chunks_acked = self.buffer.on_chunks_acked
        for pn in found:
            packet = self.lost.pop(pn)
            self.stats.spurious_losses += 1
            self.delivery.on_late_ack(packet.size, now)
            self.thresholds.on_spurious_loss(packet.largest_acked_at_loss - pn,
                                             now - packet.declared_lost_at)
            chunks_acked(packet.chunks, in_flight=False)
            if packet.carries_window:
                self.on_window_acked()
            if packet.episode == self.episode:
                self._episode_losses -= 1
                if self._episode_losses == 0:
                    self.congestion.undo_congestion_event()
        return bool(found)

    def timer(self) -> float | None:
        if self.loss_time is not None:
            return self.loss_time
        if self.sent:
            return self.pto_deadline()
        return None

    def on_timer(self, now: float) -> bool:
        """Run the loss timer or the probe timeout; True if probes are due."""
        if self.loss_time is not None and now >= self.loss_time:
            self.detect_lost_packets(now)
        elif self.loss_time is None and self.sent and now >= self.pto_deadline():
            self.pto_count += 1
            return True
        return False

    def pto_deadline(self) -> float:
        backoff = 2 ** min(self.pto_count, MAX_PTO_BACKOFF)
        pto = self.probe_timeout()
        interval = min(pto * backoff, max(MAX_PROBE_INTERVAL, pto))
        return self.last_ack_eliciting_sent + interval
