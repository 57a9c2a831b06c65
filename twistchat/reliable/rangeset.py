"""
Sets of packet numbers as sorted, disjoint, inclusive ranges: what the
receiver has seen (for duplicate suppression and ACK frames) and what the
sender has had acknowledged.
"""

from __future__ import annotations

import bisect


class RangeSet:
    """Inclusive ranges ``[low, high]``, kept sorted and merged.

    At most ``max_ranges`` are kept; when more would be needed, the lowest
    range is forgotten and everything at or below it counts as "seen"
    (``floor``), which is safe for duplicate suppression because the sender
    retransmits data in new packets anyway.
    """

    def __init__(self, max_ranges: int = 64) -> None:
        self._lows: list[int] = []
        self._highs: list[int] = []
        self.max_ranges = max_ranges
        self.floor = -1

    def __len__(self) -> int:
        return len(self._lows)

    def __iter__(self):
        return iter(zip(self._lows, self._highs))

    def __contains__(self, value: int) -> bool:
        if value <= self.floor:
            return True
        index = bisect.bisect_right(self._lows, value) - 1
        return index >= 0 and value <= self._highs[index]

    def add(self, value: int) -> bool:
        """Add one number; False when it was already in the set."""
        if value in self:
            return False
        lows, highs = self._lows, self._highs
        index = bisect.bisect_right(lows, value)
        joins_left = index > 0 and highs[index - 1] == value - 1
        joins_right = index < len(lows) and lows[index] == value + 1
        if joins_left and joins_right:
            highs[index - 1] = highs[index]
            del lows[index], highs[index]
        elif joins_left:
            highs[index - 1] = value
        elif joins_right:
            lows[index] = value
        else:
            lows.insert(index, value)
            highs.insert(index, value)
            if len(lows) > self.max_ranges:
                self.floor = highs[0]
                del lows[0], highs[0]
        return True

    def largest(self) -> int | None:
        return self._highs[-1] if self._highs else None

    def descending(self, limit: int) -> tuple[tuple[int, int], ...]:
        """The ``limit`` highest ranges, highest first, as an ACK frame wants them."""
        count = min(limit, len(self._lows))
        return tuple(
            (self._lows[i], self._highs[i])
            for i in range(len(self._lows) - 1, len(self._lows) - 1 - count, -1)
        )
