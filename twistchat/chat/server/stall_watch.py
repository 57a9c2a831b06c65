"""
How long the reactor answered nobody (``StallWatch``): the server's own
event-loop lag, logged, so an operator (and ``bench scale``) can tell a
line that was slow because the server stood still from one slow on its way.

A full collection is timed by ``collector.FullCollectionWatch``; this sees
every other stall too (a long reactor turn, ``malloc_trim``, the process
not scheduled). A timer is set ``CHECK_INTERVAL`` ahead; by how much later
than that it fires is how long the reactor could not run it. A stall of S
seconds shows as at least S - ``CHECK_INTERVAL``.

How long is not why: the server's own watch (``start_sampling``) also
looks, from a thread of its own, at where the reactor's thread is while a
check is overdue, and the warning names the place it was seen most. A stall
with no sample is one where that thread could not run Python at all: the
interpreter held by one long C call (a collection), or the process not
scheduled.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from types import FrameType
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

SAMPLE_INTERVAL = 0.02
"""Seconds between two looks at the reactor's thread (``start_sampling``):
a stall of 100 ms gets a few, and a look costs only when a check is overdue."""

STACK_DEPTH = 6
"""Frames of the reactor's stack named in a warning, innermost first."""


def where(frame: FrameType | None, depth: int = STACK_DEPTH) -> str:
    """``file:line function`` of ``frame`` and its callers, innermost first."""
    places = []
    while frame is not None and len(places) < depth:
        code = frame.f_code
        path = code.co_filename.replace("\\", "/").rsplit("/", 2)
        places.append(f"{'/'.join(path[-2:])}:{frame.f_lineno} {code.co_name}")
        frame = frame.f_back
    return " < ".join(places)


class StallWatch(Service):
    log = Logger()

    def __init__(self, reactor: Any, clock: Callable[[], float] = time.monotonic,
                 interval: float = CHECK_INTERVAL,
                 reactor_frame: Callable[[], FrameType | None] | None = None,
                 sampling: bool = False) -> None:
        """``reactor`` (an ``IReactorTime``) schedules the checks; ``clock``
        measures them (monotonic, so a wall-clock step is not a stall).
        ``reactor_frame`` gives the reactor thread's innermost frame, for
        ``sample``; ``sampling`` starts a thread that samples the thread
        that starts the service (``start_sampling``)."""
        self._reactor = reactor
        self._clock = clock
        self._interval = interval
        self._reactor_frame = reactor_frame
        self._call: IDelayedCall | None = None
        self._due = float("inf")
        self._samples: list[str] = []
        """Where the reactor's thread was seen during the check overdue now."""
        self._stop_sampling = threading.Event()
        self._sampling = sampling
        self.count = 0
        """Stalls logged as warnings."""
        self.longest = 0.0
        """The latest any check has run since the start, in seconds."""

    def startService(self) -> None:
        super().startService()
        self._schedule()
        if self._sampling:
            self.start_sampling()

    def stopService(self) -> None:
        super().stopService()
        self._stop_sampling.set()
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self._due = float("inf")

    def start_sampling(self) -> None:
        """Look at the calling thread (the reactor's) every
        ``SAMPLE_INTERVAL`` from a daemon thread, until ``stopService``."""
        reactor_thread = threading.get_ident()
        self._reactor_frame = lambda: sys._current_frames().get(reactor_thread)
        self._stop_sampling.clear()
        threading.Thread(target=self._sample_until_stopped, name="stall sampler",
                         daemon=True).start()

    def _sample_until_stopped(self) -> None:
        while not self._stop_sampling.wait(SAMPLE_INTERVAL):
            self.sample()

    def sample(self) -> None:
        """(Any thread) Note where the reactor's thread is, if a check is
        overdue by a stall's length."""
        if self._reactor_frame is None or self._clock() - self._due < STALL_WARN_SECONDS:
            return
        frame = self._reactor_frame()
        if frame is not None:
            self._samples.append(where(frame))

    def _schedule(self) -> None:
        self._due = self._clock() + self._interval
        self._call = self._reactor.callLater(self._interval, self._check)

    def _check(self) -> None:
        late = self._clock() - self._due
        samples, self._samples = self._samples, []
        self.longest = max(self.longest, late)
        if late >= STALL_WARN_SECONDS:
            self.count += 1
            self.log.warn("the reactor stalled {ms:.0f} ms (a check came that late){seen}",
                          ms=late * 1000, seen=self._seen(samples))
        self._schedule()

    def _seen(self, samples: list[str]) -> str:
        if self._reactor_frame is None:
            return ""
        if not samples:
            return "; not seen in Python (a long C call, or the process not scheduled)"
        place, times = Counter(samples).most_common(1)[0]
        return f"; seen in {place} ({times} of {len(samples)} looks)"
