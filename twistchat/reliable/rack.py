"""
How much reordering the loss detector forgives: the packet and time
thresholds of RFC 9002 §6.1, adapted as RFC 9002 §6.1.1-6.1.2 permit and as
RACK (RFC 8985 §6.2) does with its reordering window.

They start at RFC 9002's 3 packets and 9/8 RTT, so on a path that does not
reorder a loss is found as fast as before (chat at 10% loss relies on it).
A packet declared lost and then acknowledged was only late (a *spurious*
loss): the packet threshold grows to the reordering distance it showed,
the time threshold by a quarter RTT, up to 2 RTT, and a reordering
allowance to how late the acknowledgement came after the declaration
(the RTT samples of a path that reorders come from its fastest packets,
so a window in RTTs alone can stay too narrow; the allowance is bounded by
the probe timeout where it is used). Sixteen loss episodes
in a row with no spurious loss step both back towards the start (RACK's
``reo_wnd_persist``), so a path that stopped reordering gets fast
detection back.
"""

from __future__ import annotations

from typing import Final

import attr

K_PACKET_THRESHOLD: Final = 3
"""RFC 9002 §6.1.1: a packet is lost once 3 later packets are acknowledged ..."""

K_TIME_THRESHOLD: Final = 9 / 8
"""RFC 9002 §6.1.2: ... or once it is 9/8 RTT older than an acknowledged one."""

MAX_PACKET_THRESHOLD: Final = 1024
"""The packet threshold grows at most this far: beyond it the time
threshold alone decides (RACK's rule once reordering is seen)."""

TIME_THRESHOLD_STEP: Final = 1 / 4
"""Each spurious loss widens the time threshold by a quarter RTT (RACK's
reo_wnd step is min_rtt / 4) ..."""

MAX_TIME_THRESHOLD: Final = 2.0
"""... up to 2 RTT: the reordering window at most one whole RTT, as RACK's."""

EPISODES_BEFORE_NARROWING: Final = 16
"""RFC 8985 §6.2 (reo_wnd_persist): this many loss episodes without a
spurious one and the thresholds step back towards the start."""


@attr.s(auto_attribs=True, slots=True, eq=False)  # native to mypyc (twistchat/compiled.py)
class ReorderingThresholds:
    packet_threshold: int = K_PACKET_THRESHOLD
    time_threshold: float = K_TIME_THRESHOLD
    allowance: float = 0.0
    """Seconds added to the time threshold's delay."""
    spurious_losses: int = 0
    _clean_episodes: int = 0

    def on_spurious_loss(self, distance: int, lateness: float) -> None:
        """A packet declared lost was acknowledged after all; ``distance``:
        how many packet numbers past it had been acknowledged when it was
        declared lost, ``lateness``: how long after that its ack came."""
        self.spurious_losses += 1
        self.allowance = max(self.allowance, lateness)
        self._clean_episodes = 0
        self.packet_threshold = min(MAX_PACKET_THRESHOLD, max(self.packet_threshold, distance + 1))
        self.time_threshold = min(MAX_TIME_THRESHOLD, self.time_threshold + TIME_THRESHOLD_STEP)

    def on_loss_episode(self) -> None:
        """A new congestion episode began (losses after the last one ended)."""
        self._clean_episodes += 1
        if self._clean_episodes < EPISODES_BEFORE_NARROWING:
            return
        self._clean_episodes = 0
        self.packet_threshold = max(K_PACKET_THRESHOLD, self.packet_threshold // 2)
        self.time_threshold = max(K_TIME_THRESHOLD, self.time_threshold - TIME_THRESHOLD_STEP)
        self.allowance /= 2
