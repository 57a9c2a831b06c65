"""
Delivery-rate samples, one per acknowledgement, as
draft-cheng-iccrg-delivery-rate-estimation describes them: what a model-based
congestion controller (``bbr``) measures the path's bandwidth with.

Each packet is stamped when sent with how much had been delivered by then
and when; its acknowledgement then says how many bytes were delivered over
how long, taking the longer of the send and the ack intervals so that a
burst of acks (compression) does not inflate the rate. Samples taken while
the sender had too little to send are marked application-limited: they
show what the sender offered, not what the path can carry.
"""

from __future__ import annotations

from twistchat.reliable.sent_packet import SentPacket


class RateSample:
    """One per acknowledgement: a plain class, so that mypyc compiles its
    ``__init__`` (an attrs one stays a Python call; issue 16)."""

    __slots__ = ("delivery_rate", "delivered", "is_app_limited", "rtt")

    def __init__(self, delivery_rate: float, delivered: int, is_app_limited: bool,
                 rtt: float) -> None:
        self.delivery_rate = delivery_rate
        """Bytes per second delivered over the sample's interval."""
        self.delivered = delivered
        """Bytes delivered in all when the sampled packet was sent (its round)."""
        self.is_app_limited = is_app_limited
        self.rtt = rtt
        """The sampled packet's own round trip."""


class DeliveryRateEstimator:
    __slots__ = ("delivered", "delivered_time", "first_sent_time", "app_limited_until",
                 "_best", "_best_ack_elapsed", "_best_send_elapsed", "_best_rtt")

    def __init__(self, now: float) -> None:
        self.delivered = 0
        """Bytes acknowledged so far."""
        self.delivered_time = now
        self.first_sent_time = now
        self.app_limited_until = 0
        """Samples are application-limited until this much has been delivered."""
        self._best: SentPacket | None = None

    def on_packet_sent(self, packet: SentPacket, bytes_in_flight: int, now: float,
                       app_limited: bool) -> None:
        """Stamp ``packet`` (a ``SentPacket``) before it counts as in flight."""
        if bytes_in_flight == 0:
            self.first_sent_time = self.delivered_time = now
        if app_limited:
            self.app_limited_until = max(self.app_limited_until,
                                         self.delivered + bytes_in_flight + packet.size) or 1
        packet.delivered = self.delivered
        packet.delivered_time = self.delivered_time
        packet.first_sent_time = self.first_sent_time
        packet.rate_app_limited = self.app_limited_until > 0

    def on_packet_acked(self, packet: SentPacket, now: float) -> None:
        self.delivered += packet.size
        self.delivered_time = now
        best = self._best
        if best is None or packet.delivered >= best.delivered:
            self._best = packet
            self.first_sent_time = packet.sent_time
            self._best_send_elapsed = packet.sent_time - packet.first_sent_time
            self._best_ack_elapsed = now - packet.delivered_time
            self._best_rtt = now - packet.sent_time

    def on_late_ack(self, size: int, now: float) -> None:
        """A packet declared lost arrived after all: delivered, but no sample."""
        self.delivered += size
        self.delivered_time = now

    def take_sample(self, min_rtt: float = 0.0) -> RateSample | None:
        """The sample of the acknowledgement just processed, if it gave one
        (none over an interval shorter than ``min_rtt``: ack compression)."""
        best, self._best = self._best, None
        if best is None:
            return None
        if self.app_limited_until and self.delivered > self.app_limited_until:
            self.app_limited_until = 0
        interval = max(self._best_send_elapsed, self._best_ack_elapsed)
        if interval <= 0 or interval < min_rtt:
            return None
        return RateSample((self.delivered - best.delivered) / interval, best.delivered,
                          best.rate_app_limited, self._best_rtt)
