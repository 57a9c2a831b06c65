"""
Pacing: ack-eliciting packets leave at the congestion controller's pacing
rate instead of in window-sized bursts, so a shallow bottleneck queue is
not overrun by one flight (RFC 9002 §7.7 recommends it; BBR needs it).

A token bucket: each packet sent moves the next send time on by its size
over the rate; after a pause ``BURST_DATAGRAMS`` x the datagram size may go
at once, so a chat message or its retransmission never waits for the
pacer (probes and ACK-only packets are not paced at all), and the
endpoint's one flush per reactor turn still packs a burst of sends.
"""

from __future__ import annotations

from typing import Final

BURST_DATAGRAMS: Final = 2
"""Datagrams that may leave back to back after a pause (Linux fq's quantum is 2 too)."""
MIN_PACING_RATE: Final = 12_000.0
"""Bytes per second: a pacer never holds a flow below ten datagrams a second."""


INITIAL_BURST_DATAGRAMS: Final = 10
"""The first flight, as the initial window allows (RFC 9002 §7.7), goes unpaced."""


class Pacer:
    __slots__ = ("_max_datagram_size", "next_send_time", "_initial_burst")

    def __init__(self, max_datagram_size: int) -> None:
        self._max_datagram_size = max_datagram_size
        self.next_send_time = 0.0
        """Before this, ack-eliciting packets wait (acks and probes do not)."""
        self._initial_burst = INITIAL_BURST_DATAGRAMS

    def may_send(self, now: float) -> bool:
        return now >= self.next_send_time

    def on_packet_sent(self, size: int, now: float, rate: float) -> None:
        if self._initial_burst:
            self._initial_burst -= 1
            return
        rate = max(rate, MIN_PACING_RATE)
        burst = BURST_DATAGRAMS * self._max_datagram_size / rate
        self.next_send_time = max(self.next_send_time, now - burst) + size / rate
