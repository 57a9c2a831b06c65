"""
One timer for a whole endpoint. Sessions say when they next want to be
woken; the endpoint keeps those deadlines in a heap and arms a single
``IDelayedCall`` for the earliest. Ten thousand sessions cost one pending
call, not ten thousand. A deadline moved earlier costs a heap push (stale
entries are skipped when popped, and compacted when they pile up); one
moved later costs nothing until its old entry comes to the top, which is
then moved to the new deadline. An idle server session's deadline moves
later at every keepalive (last heard + the idle timeout), so it is moved in
the heap once per idle timeout instead of pushed once per keepalive
(issue 16).
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


class TimerQueue:
    def __init__(self, clock: Any, fire: Callable[[list], None]) -> None:
        """``clock``: an ``IReactorTime``. ``fire`` is called with
        ``[(key, deadline), ...]`` for every key now due."""
        self._clock = clock
        self._fire = fire
        self._heap: list[tuple[float, int, Any]] = []
        self._deadlines: dict[Any, float] = {}
        self._counter = itertools.count()
        self._call: Any = None
        """The one ``IDelayedCall`` armed for the earliest deadline."""
        self._call_time: float | None = None

    def __len__(self) -> int:
        return len(self._deadlines)

    def set(self, key: Any, deadline: float | None) -> None:
        """Wake ``key`` at ``deadline`` (absolute time), or never if None."""
        if deadline is None:
            self._deadlines.pop(key, None)
            return
        current = self._deadlines.get(key)
        if current == deadline:
            return
        self._deadlines[key] = deadline
        if current is not None and current < deadline:
            # Later: the heap has an entry at or before ``current`` already
            # (every key has one at or before its deadline), moved when it
            # comes to the top; the timer armed for it may wake early, never late.
            if self._call is None:
                self._arm()
            return
        heapq.heappush(self._heap, (deadline, next(self._counter), key))
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
        self._heap = [(d, next(self._counter), k) for k, d in self._deadlines.items()]
        heapq.heapify(self._heap)

    def _earliest(self) -> float | None:
        heap = self._heap
        deadlines = self._deadlines
        while heap:
            entry_deadline, _, key = heap[0]
            deadline = deadlines.get(key)
            if deadline == entry_deadline:
                return deadline
            if deadline is None or deadline < entry_deadline:
                heapq.heappop(heap)  # discarded, or moved earlier (pushed again then)
            else:  # moved later since it was pushed: move it now
                heapq.heapreplace(heap, (deadline, next(self._counter), key))
        return None

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
        now = self._clock.seconds()
        due = []
        heap = self._heap
        deadlines = self._deadlines
        while heap and heap[0][0] <= now + TIME_EPSILON:
            entry_deadline, _, key = heap[0]
            deadline = deadlines.get(key)
            if deadline == entry_deadline:
                heapq.heappop(heap)
                del deadlines[key]
                due.append((key, deadline))
            elif deadline is None or deadline < entry_deadline:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, (deadline, next(self._counter), key))
        try:
            if due:
                self._fire(due)
        finally:
            self._arm()
