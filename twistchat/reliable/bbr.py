"""
A model-based congestion controller in the spirit of BBR (v1,
draft-cardwell-iccrg-bbr-congestion-control-00): it sends at the rate the
path was measured to deliver instead of backing off on every loss, so a
path that drops packets at random (radio, a bad link) is still filled, and
it keeps about two bandwidth-delay products in flight, so a bottleneck
queue it shares does not stay full.

- the bottleneck bandwidth: the largest delivery-rate sample
  (``delivery_rate``) of the last 10 round trips;
- the propagation RTT: the smallest RTT seen in the last 10 s;
- the pacing rate: gain x bandwidth; the window: 2 x bandwidth x (min RTT
  + 4 x RTT variance): the variance term is ours, for paths whose jitter
  is as large as their RTT (a window of 2 x bandwidth x min RTT there
  starves the pipe whenever acks come late);
- the states: Startup (gain 2/ln 2 until the bandwidth stops growing by a
  quarter for 3 rounds), Drain (its inverse, until the queue it built is
  gone), ProbeBW (a cycle of 8 phases of one min RTT each: 5/4, 3/4, then
  six at 1) and ProbeRTT (every 10 s without a new min RTT: 4 packets in
  flight for 200 ms, so flows sharing a queue see the empty-queue RTT).

Loss does not cut the window: random loss says nothing about the queue.
What it does on a full queue is what the model does (the bandwidth samples
stop growing, the 3/4 phase drains), plus one rule from BBR v2: a round
in which more than ``LOSS_THRESHOLD`` of the packets are lost *and* the RTT
is up by a quarter over the min RTT (a queue, not noise) lowers the
in-flight bound to the amount delivered in that round x ``BETA``; and so
does a round with any loss whose smallest RTT stood above 1.25 x (min RTT
+ spread), a full queue that every flow through it sees in the same round
(flows sharing a link cut together, so their shares even out).
"""

from __future__ import annotations

import math
from typing import Final

import attr

from twistchat.reliable.congestion import CongestionWindow, initial_window
from twistchat.reliable.delivery_rate import RateSample

STARTUP_GAIN: Final = 2 / math.log(2)
"""BBR: the smallest gain that doubles the sending rate every round."""
DRAIN_GAIN: Final = 1 / STARTUP_GAIN
CWND_GAIN: Final = 2.0
PROBE_BW_GAINS: Final = (5 / 4, 3 / 4, 1, 1, 1, 1, 1, 1)
BANDWIDTH_WINDOW_ROUNDS: Final = 10
MIN_RTT_WINDOW: Final = 10.0
"""Seconds a min RTT sample stays valid."""
PROBE_RTT_DURATION: Final = 0.2
MIN_WINDOW_PACKETS: Final = 4
FULL_BANDWIDTH_GROWTH: Final = 1.25
FULL_BANDWIDTH_ROUNDS: Final = 3
LOSS_THRESHOLD: Final = 0.2
"""BBR v2's loss bound (2%) is far under the random loss this controller is
built to carry (10% and more): a round counts as congested only above 20%
and with a grown RTT."""
QUEUE_RTT_FACTOR: Final = 1.25
BETA: Final = 0.7
"""BBR v2: how far the in-flight bound drops on a congested round."""


class _State:
    STARTUP: Final = "startup"  # Final: class constants to mypyc, not instance defaults
    DRAIN: Final = "drain"
    PROBE_BW: Final = "probe_bw"
    PROBE_RTT: Final = "probe_rtt"


@attr.s(auto_attribs=True, slots=True, eq=False)  # native to mypyc (twistchat/compiled.py)
class Bbr(CongestionWindow):
    now: float = 0.0
    state: str = _State.STARTUP
    pacing_gain: float = STARTUP_GAIN
    cwnd_gain: float = STARTUP_GAIN
    congestion_events: int = 0
    """Rounds judged congested (loss and a queue): the in-flight bound was lowered."""
    undone_events: int = 0
    min_rtt: float | None = None
    _min_rtt_stamp: float = 0.0
    _bandwidths: list = attr.Factory(list)
    """(round, bytes/s), the windowed max filter: decreasing bandwidths."""
    round_count: int = 0
    _next_round_delivered: int = 0
    _round_start: bool = False
    filled_pipe: bool = False
    _full_bandwidth: float = 0.0
    _full_bandwidth_rounds: int = 0
    _cycle_index: int = 0
    _cycle_stamp: float = 0.0
    _probe_rtt_done: float | None = None
    _prior_window: int = 0
    _pacing_rate: float = 0.0
    inflight_bound: float = float("inf")
    _round_lost: int = 0
    _round_acked: int = 0
    _round_max_rtt: float = 0.0
    _round_min_rtt: float = float("inf")
    _last_queue_cut_round: int = -2
    queue_events: int = 0
    """Rounds with a loss while every ack showed a standing queue: the in-flight bound was lowered."""
    _rtt_spread: float = 0.0

    # -- what the sender asks -----------------------------------------------

    @property
    def bandwidth(self) -> float:
        """The bottleneck bandwidth estimate, bytes per second (0 before any sample)."""
        return self._bandwidths[0][1] if self._bandwidths else 0.0

    def pacing_rate(self, smoothed_rtt: float) -> float:
        """Bytes per second the pacer lets out."""
        if self._pacing_rate == 0.0:
            # BBR: before the first sample, the initial window over the RTT.
            return STARTUP_GAIN * self.window / max(smoothed_rtt, 0.001)
        return self._pacing_rate

    # -- what recovery reports ----------------------------------------------

    def on_packet_sent(self, size: int) -> None:
        self.bytes_in_flight += size

    def on_packet_acked(self, size: int, sent_time: float, app_limited: bool) -> None:
        self.bytes_in_flight -= size
        self._round_acked += 1

    def on_packets_lost(self, sizes_and_times: list[tuple[int, float]], now: float,
                        persistent: bool = False) -> None:
        for size, _ in sizes_and_times:
            self.bytes_in_flight -= size
        self._round_lost += len(sizes_and_times)
        if persistent:
            # The path carried nothing for 3 PTOs: whatever the model said,
            # start again from the smallest bound and let the rounds that
            # follow raise it (as the loss response below does).
            self.inflight_bound = float(MIN_WINDOW_PACKETS * self.max_datagram_size)
            self._set_window()

    def on_packet_discarded(self, size: int) -> None:
        self.bytes_in_flight -= size

    def undo_congestion_event(self) -> None:
        """Losses shown spurious: nothing to undo, loss alone never cut the window."""

    def on_rate_sample(self, sample: RateSample | None, delivered: int, rtt: float,
                       rtt_spread: float, now: float) -> None:
        """Once per acknowledgement that retired packets: ``delivered`` is
        the bytes delivered so far, ``rtt`` the latest RTT sample,
        ``rtt_spread`` 4 x the RTT variance."""
        self.now = now
        self._rtt_spread = rtt_spread
        self._update_round(sample, delivered, rtt)
        self._update_bandwidth(sample)
        self._update_min_rtt(rtt, now)
        self._check_full_pipe(sample)
        self._update_state(now)
        self._set_pacing_rate()
        self._set_window()

    # -- the model -------------------------------------------------------------

    def _update_round(self, sample: RateSample | None, delivered: int, rtt: float) -> None:
        self._round_start = False
        self._round_max_rtt = max(self._round_max_rtt, rtt)
        if rtt > 0:
            self._round_min_rtt = min(self._round_min_rtt, rtt)
        if sample is not None and sample.delivered >= self._next_round_delivered:
            self._next_round_delivered = delivered
            self.round_count += 1
            self._round_start = True
            self._on_round_end()

    def _on_round_end(self) -> None:
        lost, acked = self._round_lost, self._round_acked
        if lost and self.min_rtt is not None and lost > LOSS_THRESHOLD * (lost + acked) \
                and self._round_max_rtt > QUEUE_RTT_FACTOR * self.min_rtt:
            self.congestion_events += 1
            bound = max(self.bytes_in_flight, self._bdp()) * BETA
            self.inflight_bound = max(bound, MIN_WINDOW_PACKETS * self.max_datagram_size)
        elif lost and self.min_rtt and self.state != _State.PROBE_RTT \
                and self._round_min_rtt > QUEUE_RTT_FACTOR * (self.min_rtt + self._rtt_spread) \
                and self.round_count > self._last_queue_cut_round + 1:
            # A loss in a round whose *smallest* RTT stood a quarter above
            # min RTT + spread: every packet waited, so the queue is full,
            # not the path lossy. Every flow through that queue sees it in
            # the same round, whatever its share and whatever its (maybe
            # inflated) min RTT, so all cut by the same factor and the
            # additive regrowth below evens them out (AIMD), where the 20%
            # rule above fires mostly for the smaller flow. Not in the round
            # right after a cut (its losses were sent before it).
            self.queue_events += 1
            self._last_queue_cut_round = self.round_count
            bound = min(self.bytes_in_flight, self.inflight_bound) * BETA
            self.inflight_bound = max(bound, MIN_WINDOW_PACKETS * self.max_datagram_size)
        elif self.inflight_bound != float("inf") and lost <= LOSS_THRESHOLD * (lost + acked):
            # No congestion this round: probe the bound back up (BBR v2's inflight_hi growth).
            self.inflight_bound += self.max_datagram_size * (1 << min(self.round_count % 8, 4))
            if self.inflight_bound >= CWND_GAIN * self._bdp() + 4 * self.max_datagram_size:
                self.inflight_bound = float("inf")
        self._round_lost = self._round_acked = 0
        self._round_max_rtt = 0.0
        self._round_min_rtt = float("inf")

    def _update_bandwidth(self, sample: RateSample | None) -> None:
        if sample is None:
            return
        rate = sample.delivery_rate
        if sample.is_app_limited and rate < self.bandwidth:
            return
        filt = self._bandwidths
        while filt and filt[-1][1] <= rate:
            filt.pop()
        filt.append((self.round_count, rate))
        while filt[0][0] + BANDWIDTH_WINDOW_ROUNDS <= self.round_count:
            del filt[0]

    def _update_min_rtt(self, rtt: float, now: float) -> None:
        expired = now > self._min_rtt_stamp + MIN_RTT_WINDOW
        if rtt > 0 and (self.min_rtt is None or rtt <= self.min_rtt or expired):
            self.min_rtt = rtt
            self._min_rtt_stamp = now
        if expired and self.state != _State.PROBE_RTT and self.filled_pipe:
            self.state = _State.PROBE_RTT
            self.pacing_gain = self.cwnd_gain = 1.0
            self._prior_window = max(self._prior_window, self.window)
            self._probe_rtt_done = None

    def _check_full_pipe(self, sample: RateSample | None) -> None:
        if self.filled_pipe or not self._round_start or sample is None or sample.is_app_limited:
            return
        if self.bandwidth >= self._full_bandwidth * FULL_BANDWIDTH_GROWTH:
            self._full_bandwidth = self.bandwidth
            self._full_bandwidth_rounds = 0
            return
        self._full_bandwidth_rounds += 1
        if self._full_bandwidth_rounds >= FULL_BANDWIDTH_ROUNDS:
            self.filled_pipe = True

    def _update_state(self, now: float) -> None:
        if self.state == _State.STARTUP and self.filled_pipe:
            self.state = _State.DRAIN
            self.pacing_gain, self.cwnd_gain = DRAIN_GAIN, STARTUP_GAIN
        if self.state == _State.DRAIN and self.bytes_in_flight <= self._queue_target():
            self._enter_probe_bw(now)
        elif self.state == _State.PROBE_BW:
            self._advance_cycle(now)
        elif self.state == _State.PROBE_RTT:
            self._probe_rtt(now)

    def _enter_probe_bw(self, now: float) -> None:
        self.state = _State.PROBE_BW
        self.cwnd_gain = CWND_GAIN
        self._cycle_index = 1  # BBR starts at a random phase but the probing one; 3/4 drains first
        self._cycle_stamp = now
        self.pacing_gain = PROBE_BW_GAINS[self._cycle_index]

    def _advance_cycle(self, now: float) -> None:
        gain = PROBE_BW_GAINS[self._cycle_index]
        elapsed = now - self._cycle_stamp > (self.min_rtt or 0.0)
        if gain > 1:
            done = elapsed and self.bytes_in_flight >= gain * self._queue_target()
            done = done or (elapsed and self._round_lost > 0)
        elif gain < 1:
            done = elapsed or self.bytes_in_flight <= self._queue_target()
        else:
            done = elapsed
        if done:
            self._cycle_index = (self._cycle_index + 1) % len(PROBE_BW_GAINS)
            self._cycle_stamp = now
            self.pacing_gain = PROBE_BW_GAINS[self._cycle_index]

    def _probe_rtt(self, now: float) -> None:
        floor = MIN_WINDOW_PACKETS * self.max_datagram_size
        if self._probe_rtt_done is None:
            if self.bytes_in_flight <= floor:
                self._probe_rtt_done = now + PROBE_RTT_DURATION
            return
        if now >= self._probe_rtt_done:
            self._min_rtt_stamp = now
            self.window = max(self.window, self._prior_window)
            self._prior_window = 0
            if self.filled_pipe:
                self._enter_probe_bw(now)
            else:
                self.state = _State.STARTUP
                self.pacing_gain = self.cwnd_gain = STARTUP_GAIN

    def _bdp(self) -> float:
        if self.min_rtt is None or not self.bandwidth:
            return float(initial_window(self.max_datagram_size))
        return self.bandwidth * (self.min_rtt + self._rtt_spread)

    def _queue_target(self) -> float:
        """What Drain and the 3/4 and 5/4 phases measure the flight against:
        bandwidth x the larger of min RTT and spread. The window keeps
        min RTT + spread (``_bdp``); measured against that, Drain and the
        3/4 phase stopped with a standing queue of up to 4 RTTVARs behind
        them (a lone flow on the clean 10 Mbit/s link ran at 36 ms smoothed
        RTT for a 21 ms path), and a second flow took that queue into its
        min RTT. On a path whose jitter exceeds its RTT the spread rules,
        as before."""
        if self.min_rtt is None or not self.bandwidth:
            return float(initial_window(self.max_datagram_size))
        return self.bandwidth * max(self.min_rtt, self._rtt_spread)

    def _set_pacing_rate(self) -> None:
        if not self.bandwidth:
            return
        rate = self.pacing_gain * self.bandwidth
        if not self._pacing_rate and self.min_rtt:
            # BBR: the first rate is the initial window over the RTT, and
            # Startup only ever raises it.
            self._pacing_rate = STARTUP_GAIN * self.window / max(self.min_rtt, 0.001)
        if self.filled_pipe or rate > self._pacing_rate:
            self._pacing_rate = rate

    def _set_window(self) -> None:
        floor = MIN_WINDOW_PACKETS * self.max_datagram_size
        if self.state == _State.PROBE_RTT:
            self.window = floor
            return
        target = self.cwnd_gain * self._bdp() + 3 * self.max_datagram_size
        if self.filled_pipe:
            window = target
        else:
            # Startup: grow with what is delivered, as slow start does.
            window = max(self.window, min(target, self.max_window))
            window = max(window, initial_window(self.max_datagram_size))
        window = min(window, self.inflight_bound, self.max_window)
        self.window = int(max(window, floor))
