"""
``IdleWatch``: who the reaper must look at on a tick, without looking at
everyone (issue 16).

A user's idle deadline (last heard + the idle timeout) moves later with
every keepalive, and nobody tells the chat server: the transport notes the
time. Walking every live user on every tick to find the few past their
deadline cost a walk of 100,000 users every 5 s. Here each key is filed in
the bucket of the deadline last seen for it, one bucket per tick's width;
a tick takes only the buckets that have begun, and its owner files each key
taken again at its current deadline, or drops it. Deadlines only move
later, so a key is never found late: its true deadline is at or after the
one it is filed at. A key is looked at about once per idle timeout, not
once per tick.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class IdleWatch(Generic[K]):
    def __init__(self, width: float) -> None:
        """``width``: seconds a bucket spans, the owner's tick (a key filed
        at a deadline in a bucket that has begun is taken on that tick)."""
        self._width = width
        self._buckets: dict[int, dict[K, None]] = {}
        """Bucket number (deadline // width) to its keys, in filing order."""
        self._bucket_of: dict[K, int] = {}

    def __len__(self) -> int:
        return len(self._bucket_of)

    def __contains__(self, key: K) -> bool:
        return key in self._bucket_of

    def file(self, key: K, deadline: float) -> None:
        """Watch ``key`` for ``deadline`` (it may be filed already: it moves)."""
        self.discard(key)
        number = math.floor(deadline / self._width)
        bucket = self._buckets.get(number)
        if bucket is None:
            bucket = self._buckets[number] = {}
        bucket[key] = None
        self._bucket_of[key] = number

    def discard(self, key: K) -> None:
        number = self._bucket_of.pop(key, None)
        if number is None:
            return
        bucket = self._buckets[number]
        del bucket[key]
        if not bucket:
            del self._buckets[number]

    def take_due(self, now: float) -> list[K]:
        """Every key filed at a deadline in a bucket begun by ``now``, oldest
        bucket first, no longer watched: each is past its filed deadline or
        will be within one ``width``; the owner files again those it keeps."""
        last = math.floor(now / self._width)
        begun = sorted(number for number in self._buckets if number <= last)
        taken: list[K] = []
        for number in begun:
            for key in self._buckets.pop(number):
                del self._bucket_of[key]
                taken.append(key)
        return taken
