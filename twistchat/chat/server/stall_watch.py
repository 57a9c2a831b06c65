"""
How long the reactor answered nobody (``StallWatch``): the server's own
event-loop lag, logged, so an operator (and ``bench scale``) can tell a
line that was slow because the server stood still from one slow on its way.

A full collection is timed by ``collector.FullCollectionWatch``; this sees
every other stall too (a long reactor turn, ``malloc_trim``, the process
not scheduled). A timer is set ``CHECK_INTERVAL`` ahead; by how much later
than that it fires is how long the reactor could not run it. A stall of S
seconds shows as at least S - ``CHECK_INTERVAL``.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from twisted.application.service import Service
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

CHECK_INTERVAL = 0.05
"""Seconds between checks: 20 timer calls a second, nothing beside the
~2,200 wake-ups a second of a server holding 100,000 idle sessions."""

STALL_WARN_SECONDS = 0.1
"""A check this late or later is logged as a warning (the fan-out goal of
issue 16 is a room of 1,000 in 100 ms); shorter ones are only counted."""


class StallWatch(Service):
    log = Logger()

    def __init__(self, reactor: Any, clock: Callable[[], float] = time.monotonic,
                 interval: float = CHECK_INTERVAL) -> None:
        """``reactor`` (an ``IReactorTime``) schedules the checks; ``clock``
        measures them (monotonic, so a wall-clock step is not a stall)."""
        self._reactor = reactor
        self._clock = clock
        self._interval = interval
        self._call: IDelayedCall | None = None
        self._due = 0.0
        self.count = 0
        """Stalls logged as warnings."""
        self.longest = 0.0
        """The latest any check has run since the start, in seconds."""

    def startService(self) -> None:
        super().startService()
        self._schedule()

    def stopService(self) -> None:
        super().stopService()
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _schedule(self) -> None:
        self._due = self._clock() + self._interval
        self._call = self._reactor.callLater(self._interval, self._check)

    def _check(self) -> None:
        late = self._clock() - self._due
        self.longest = max(self.longest, late)
        if late >= STALL_WARN_SECONDS:
            self.count += 1
            self.log.warn("the reactor stalled {ms:.0f} ms (a check came that late)",
                          ms=late * 1000)
        self._schedule()
