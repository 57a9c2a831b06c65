"""
Keeping bulk data from piling up in a transport, on both ends of a transfer.

A transfer's pieces go on the transport's bulk lane, so a chat line never
waits behind them (the interactive lane is sent first and ordered on its
own). Whoever feeds pieces into a transport (the client sending, the
server relaying) still queues one only while the transport has next to
nothing it has never sent (``transport_backlog`` at most
``LOW_WATER_CHUNKS``), so what waits for a slow peer waits in the
transfer's window, not in the transport's send queue. The bytes in flight
are the congestion window's business, so this costs no throughput once
the window is full.

``Pacer`` spreads what one user makes the server send (a piece to a room
of N is N pieces out) at a rate: the generic cell rate algorithm, which,
unlike a token bucket, handles a cost larger than the burst by delaying it.
"""

from __future__ import annotations

from typing import Any

LOW_WATER_CHUNKS = 2
"""Chunks (about a datagram each) a transport may hold never sent before the
next piece is queued on it."""

POLL_INTERVAL = 0.005
"""Seconds between looks at a transport whose backlog held a piece back
(there is no event for "the backlog went down"); only while one is held."""


def transport_backlog(connection: Any) -> int:
    """Chunks queued on ``connection``'s session and never sent yet (0 for a
    connection that does not say, as the test fakes)."""
    session = getattr(connection, "session", None)
    return getattr(session, "unsent_chunks", 0)


class Pacer:
    """GCRA: ``rate`` units per second, ``burst`` of them at once."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.tolerance = burst / rate
        self._theoretical = float("-inf")

    def delay(self, now: float, cost: float) -> float:
        """Seconds from ``now`` until ``cost`` may go; counted as spent then."""
        start = max(now, self._theoretical + cost / self.rate - self.tolerance)
        self._theoretical = max(self._theoretical, start) + cost / self.rate
        return start - now

    def spent_by(self, now: float) -> bool:
        """Whether all that was spent is paid back by ``now`` (a fresh pacer
        would then pace the same)."""
        return self._theoretical <= now
