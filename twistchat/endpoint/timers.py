"""
One timer for a whole endpoint. Sessions say when they next want to be
woken; the endpoint keeps those deadlines in a heap and arms a single
``IDelayedCall`` for the earliest. Ten thousand sessions cost one pending
call, not ten thousand.

Each key has one live heap entry, named by a sequence number kept with its
deadline. A deadline moved earlier pushes a new entry (the old one is
dropped when it comes to the top); one moved later costs nothing until its
entry comes to the top, which is then moved to the new deadline. An idle
server session's deadline moves later at every keepalive (last heard + the
idle timeout), so its entry is moved once per idle timeout instead of
pushed once per keepalive (issue 16).

That upkeep is spread over timer turns (``WALK_LIMIT``, ``DUE_LIMIT``):
with 100,000 idle sessions, whose deadlines all move later between two
turns, finding the earliest live deadline in one go walked up to ~15 s of
entries at once and stalled the reactor 150-480 ms (``bench scale``).
"""

from __future__ import annotations

import heapq
import itertools
from typing import Any, Callable, Final

COMPACT_SLACK: Final = 1024
TIME_EPSILON: Final = 1e-9
"""Deadlines this close to now count as due: ``now + (deadline - now)`` is
not always ``deadline`` in floating point, and a timer that wakes a hair
early must not re-arm itself forever."""
WALK_LIMIT: Final = 512
"""Heap entries (moved later, or dropped) one turn of the queue walks at
most; the rest are walked in the next turns, the timer armed early for
them (never late)."""
DUE_LIMIT: Final = 64
"""Keys one turn fires at most; the rest fire in the next reactor turn, at
the same time, after the reactor has read what came in. Each departure of
a room of 1,000 whose members all time out at once tells the rest: 256 a
turn took up to 444 ms on the simulator, collections included
(docs/benchmarks.md)."""


class TimerQueue:
    def __init__(self, clock: Any, fire: Callable[[list], None],
                 walk_limit: int = WALK_LIMIT, due_limit: int = DUE_LIMIT) -> None:
        """``clock``: an ``IReactorTime``. ``fire`` is called with
        ``[(key, deadline), ...]`` for keys now due, at most ``due_limit``
        at a time."""
        self._clock = clock
        self._fire = fire
        self._walk_limit = walk_limit
        self._due_limit = due_limit
        self._heap: list[tuple[float, int, Any]] = []
        self._deadlines: dict[Any, tuple[float, int]] = {}
        """Key to its deadline and the sequence number of its live entry."""
        self._counter = itertools.count()
        self._call: Any = None
        """The one ``IDelayedCall`` armed for the earliest deadline."""
        self._call_time: float | None = None
        self.entries_walked = 0
        """Heap entries moved later or dropped since the start: the upkeep."""

    def __len__(self) -> int:
        return len(self._deadlines)

    def set(self, key: Any, deadline: float | None) -> None:
        """Wake ``key`` at ``deadline`` (absolute time), or never if None."""
        if deadline is None:
            self.discard(key)
            return
        current = self._deadlines.get(key)
        if current is not None:
            if current[0] == deadline:
                return
            if current[0] < deadline:
                # Later: the live entry stays where it is, at or before the
                # new deadline, and is moved when it comes to the top; the
                # timer armed for it may wake early, never late.
                self._deadlines[key] = (deadline, current[1])
                if self._call is None:
                    self._arm()
                return
        sequence = next(self._counter)
        self._deadlines[key] = (deadline, sequence)
        heapq.heappush(self._heap, (deadline, sequence, key))
        if len(self._heap) > 2 * len(self._deadlines) + COMPACT_SLACK:
            self._compact()
        self._arm()

    def discard(self, key: Any) -> None:
        self._deadlines.pop(key, None)

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self._call_time = None

    def _compact(self) -> None:
        self._heap = [(deadline, sequence, key)
                      for key, (deadline, sequence) in self._deadlines.items()]
        heapq.heapify(self._heap)

    def _walk_top(self) -> bool:
        """Move the top entry later or drop it, if it is not live at its
        deadline; False if it is (or the heap is empty)."""
        heap = self._heap
        if not heap:
            return False
        entry_deadline, sequence, key = heap[0]
        current = self._deadlines.get(key)
        if current is None or current[1] != sequence:
            heapq.heappop(heap)  # discarded, or moved earlier (pushed again then)
        elif current[0] != entry_deadline:
            heapq.heapreplace(heap, (current[0], sequence, key))
        else:
            return False
        self.entries_walked += 1
        return True

    def _earliest(self) -> float | None:
        """The earliest deadline, or a time before it when the walk to it
        is longer than ``WALK_LIMIT`` (the timer goes on walking then)."""
        walked = 0
        while walked < self._walk_limit and self._walk_top():
            walked += 1
        return self._heap[0][0] if self._heap else None

    def _arm(self) -> None:
        earliest = self._earliest()
        if earliest is None:
            self.stop()
            return
        if self._call is not None and self._call.active() and self._call_time == earliest:
            return
        self.stop()
        delay = max(0.0, earliest - self._clock.seconds())
        self._call = self._clock.callLater(delay, self._expire)
        self._call_time = earliest

    def _expire(self) -> None:
        self._call = None
        self._call_time = None
        until = self._clock.seconds() + TIME_EPSILON
        due: list[tuple[Any, float]] = []
        heap = self._heap
        deadlines = self._deadlines
        walked = 0
        while heap and heap[0][0] <= until and len(due) < self._due_limit:
            if self._walk_top():
                walked += 1
                if walked >= self._walk_limit:
                    break
                continue
            entry_deadline, _, key = heapq.heappop(heap)
            del deadlines[key]
            due.append((key, entry_deadline))
        try:
            if due:
                self._fire(due)
        finally:
            self._arm()
