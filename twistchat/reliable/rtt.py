"""
Round-trip time estimation and the probe timeout, as RFC 9002 §5 and §6.2
specify them (which refine RFC 6298's SRTT/RTTVAR/RTO). Unlike TCP we put
no 200 ms or 1 s floor under the timeout: the floor is the timer
granularity, so on a 20 ms path the first retransmission comes after tens
of milliseconds, not a second.
"""

from __future__ import annotations

from typing import Final

import attr

K_INITIAL_RTT: Final = 0.333
"""RFC 9002 §6.2.2: RTT assumed before the first sample."""

K_GRANULARITY: Final = 0.001
"""RFC 9002 §6.1.2: timer granularity, the floor under any timeout."""

RTTVAR_GAIN: Final = 1 / 4    # RFC 6298 §2.3 beta
SRTT_GAIN: Final = 1 / 8      # RFC 6298 §2.3 alpha
RTTVAR_MULTIPLIER: Final = 4  # RFC 6298 §2.3 K


@attr.s(auto_attribs=True, slots=True, eq=False)  # native to mypyc (twistchat/compiled.py)
class RttEstimator:
    initial_rtt: float = K_INITIAL_RTT
    latest_rtt: float = 0.0
    min_rtt: float = 0.0
    # RFC 9002 §5.3: before any sample, smoothed = initial, rttvar = initial / 2
    # (never None: a float to mypyc).
    smoothed_rtt: float = attr.Factory(lambda self: self.initial_rtt, takes_self=True)
    rttvar: float = attr.Factory(lambda self: self.initial_rtt / 2, takes_self=True)
    has_sample: bool = False

    def update(self, latest_rtt: float, ack_delay: float, max_ack_delay: float) -> None:
        """Take one sample (RFC 9002 §5.3)."""
        self.latest_rtt = latest_rtt
        if not self.has_sample:
            self.has_sample = True
            self.min_rtt = latest_rtt
            self.smoothed_rtt = latest_rtt
            self.rttvar = latest_rtt / 2
            return
        self.min_rtt = min(self.min_rtt, latest_rtt)
        ack_delay = min(ack_delay, max_ack_delay)
        adjusted = latest_rtt
        if latest_rtt >= self.min_rtt + ack_delay:
            adjusted = latest_rtt - ack_delay
        self.rttvar = (1 - RTTVAR_GAIN) * self.rttvar + RTTVAR_GAIN * abs(self.smoothed_rtt - adjusted)
        self.smoothed_rtt = (1 - SRTT_GAIN) * self.smoothed_rtt + SRTT_GAIN * adjusted

    def probe_timeout(self, max_ack_delay: float) -> float:
        """PTO = smoothed_rtt + max(4 * rttvar, kGranularity) + max_ack_delay (RFC 9002 §6.2.1)."""
        return (self.smoothed_rtt + max(RTTVAR_MULTIPLIER * self.rttvar, K_GRANULARITY)
                + max_ack_delay)
