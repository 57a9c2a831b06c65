"""
NewReno congestion control in bytes, as RFC 9002 §7 and Appendix B
describe it, with a bounded window.
"""

from __future__ import annotations

from typing import Final

import attr

K_LOSS_REDUCTION_FACTOR: Final = 0.5
"""RFC 9002 §7.3.2: the window is halved on a congestion event."""

K_PERSISTENT_CONGESTION_THRESHOLD: Final = 3
"""RFC 9002 §7.6.1: losses spanning 3 PTOs collapse the window."""

DEFAULT_MAX_WINDOW: Final = 1024 * 1024
"""Upper bound on the window: enough for 100 Mbit/s at 80 ms, bounded memory."""


def initial_window(max_datagram_size: int) -> int:
    """RFC 9002 §7.2: min(10 * max_datagram_size, max(14720, 2 * max_datagram_size))."""
    return min(10 * max_datagram_size, max(14720, 2 * max_datagram_size))


def minimum_window(max_datagram_size: int) -> int:
    """RFC 9002 §7.2: 2 * max_datagram_size."""
    return 2 * max_datagram_size


@attr.s(auto_attribs=True, slots=True, eq=False)  # native to mypyc (twistchat/compiled.py)
class CongestionWindow:
    """What every controller keeps and the sender asks: a window in bytes
    and what is in flight under it (RFC 9002 §7)."""

    max_datagram_size: int
    max_window: int = DEFAULT_MAX_WINDOW
    window: int = attr.ib(default=0)
    bytes_in_flight: int = 0

    def __attrs_post_init__(self) -> None:
        if not self.window:
            self.window = initial_window(self.max_datagram_size)

    def can_send(self, size: int) -> bool:
        return self.bytes_in_flight + size <= self.window

    def available(self) -> int:
        """Bytes that may still be put in flight."""
        return max(0, self.window - self.bytes_in_flight)


@attr.s(auto_attribs=True, slots=True, eq=False)  # native to mypyc (twistchat/compiled.py)
class NewReno(CongestionWindow):
    ssthresh: float = float("inf")
    recovery_start_time: float | None = None
    _acked_in_avoidance: int = 0
    congestion_events: int = 0
    undone_events: int = 0
    _before_cut: tuple[int, float, float | None] | None = None
    """(window, ssthresh, recovery start) before the last cut, for its undo."""

    def on_packet_sent(self, size: int) -> None:
        self.bytes_in_flight += size

    def on_packet_acked(self, size: int, sent_time: float, app_limited: bool) -> None:
        """RFC 9002 §7.3.1-7.3.3 and §7.8 (no growth while application-limited)."""
        self.bytes_in_flight -= size
        if app_limited or self.in_recovery(sent_time):
            return
        if self.window < self.ssthresh:
            self.window += size
        else:
            self._acked_in_avoidance += size
            if self._acked_in_avoidance >= self.window:
                self._acked_in_avoidance -= self.window
                self.window += self.max_datagram_size
        self.window = min(self.window, self.max_window)

    def on_packets_lost(self, sizes_and_times: list[tuple[int, float]], now: float,
                        persistent: bool = False) -> None:
        """One congestion event per recovery period (RFC 9002 §7.3.2)."""
        if not sizes_and_times:
            return
        for size, _ in sizes_and_times:
            self.bytes_in_flight -= size
        newest_sent = max(sent for _, sent in sizes_and_times)
        if not self.in_recovery(newest_sent):
            self._before_cut = (self.window, self.ssthresh, self.recovery_start_time)
            self.congestion_events += 1
            self.recovery_start_time = now
            self.window = max(int(self.window * K_LOSS_REDUCTION_FACTOR),
                              minimum_window(self.max_datagram_size))
            self.ssthresh = float(self.window)  # a float either way (mypyc keeps it one)
            self._acked_in_avoidance = 0
        if persistent:
            self._before_cut = None
            self.window = minimum_window(self.max_datagram_size)
            self.recovery_start_time = None  # RFC 9002 B.8: slow start again at once

    def undo_congestion_event(self) -> None:
        """Every loss that made the last cut was spurious (the packets were
        reordered, not lost): restore the window and slow-start threshold
        from before it, as RFC 8985 §9.3 and Eifel (RFC 3522) do."""
        if self._before_cut is None:
            return
        window, self.ssthresh, self.recovery_start_time = self._before_cut
        self._before_cut = None
        self.window = max(self.window, window)
        self.undone_events += 1

    def on_rate_sample(self, sample, delivered: int, rtt: float, rtt_spread: float,
                       now: float) -> None:
        """NewReno needs no delivery-rate samples (``bbr`` does)."""

    def pacing_rate(self, smoothed_rtt: float) -> float:
        """Bytes per second: the window over the RTT, x2 in slow start and
        x1.25 after, as Linux paces Reno and CUBIC."""
        gain = 2.0 if self.window < self.ssthresh else 1.25
        return gain * self.window / max(smoothed_rtt, 0.001)

    def on_packet_discarded(self, size: int) -> None:
        self.bytes_in_flight -= size

    def in_recovery(self, sent_time: float) -> bool:
        return self.recovery_start_time is not None and sent_time <= self.recovery_start_time
