"""
What a session's transport has seen, for a person to read (a client's
``/status``): round-trip time, loss both ways, what is still
unacknowledged. A snapshot, read from the session without changing it.
"""

from __future__ import annotations

import attrs

from twistchat.reliable.session import Session


@attrs.frozen
class TransportStats:
    smoothed_rtt: float
    """Seconds (RFC 9002 §5.3); the initial 333 ms until ``rtt_sampled``."""
    latest_rtt: float
    rtt_sampled: bool
    loss_towards_peer: float
    """Running estimate (0..1, gain 1/32) of our packets declared lost."""
    loss_from_peer: float
    """Running estimate of the peer's packets missing (gaps in packet numbers)."""
    packets_sent: int
    packets_received: int
    packets_lost: int
    unacked_messages: int
    """Reliable messages sent or queued and not yet acknowledged by the peer."""
    unacked_bytes: int
    unreliable_dropped: int


def transport_stats(session: Session) -> TransportStats:
    towards, from_peer = session.loss_estimates
    stats = session.stats
    return TransportStats(
        smoothed_rtt=session.rtt.smoothed_rtt, latest_rtt=session.rtt.latest_rtt,
        rtt_sampled=session.rtt.has_sample, loss_towards_peer=towards, loss_from_peer=from_peer,
        packets_sent=stats.packets_sent, packets_received=stats.packets_received,
        packets_lost=stats.packets_lost, unacked_messages=session.unacked_message_count,
        unacked_bytes=session.pending_bytes(), unreliable_dropped=stats.unreliable_dropped)
