"""
The server process's garbage-collector settings (``tune_collector``), set by
``twistd twistchat`` once the service is built.

Fan-out allocates a few short-lived objects per delivery (a chunk, its
bookkeeping, a frame, a sent packet).  Reference counting frees them; the
cyclic collector only looks for cycles, but with CPython's default young
threshold (700 allocations) it runs every few dozen deliveries, and what
lives one round trip (a chunk in flight) survives it, is promoted, and is
walked again by every older collection.  A young generation of
``YOUNG_THRESHOLD`` lets such objects die before they are ever looked at,
and freezing what start-up built (modules, options, the store) keeps full
collections from walking it again (``gc.freeze``, as Instagram's servers
do).  Cyclic garbage waits a little longer to be found: at most about
``YOUNG_THRESHOLD`` objects more.  A full collection still walks every
session's objects, and the reactor waits for it: ``FullCollectionWatch``
logs how long each one took.
"""

from __future__ import annotations

import ctypes
import gc
import time
from typing import Callable

from twisted.application.internet import TimerService
from twisted.logger import Logger

YOUNG_THRESHOLD = 50_000
"""Allocations (net of frees) between young collections; CPython's default is 700."""

OLDER_THRESHOLDS = (2, 200)
"""Young collections per middle one, middle ones per full one (defaults 10,
10). A middle collection walks what the young ones since the last left, and
the reactor waits for it: sessions opened in a burst survive every young
collection, so at (20, 20) a middle one walked up to 20 x ``YOUNG_THRESHOLD``
of them, 278-524 ms at 100,000 sessions (docs/benchmarks.md), and could come
due at any later moment, a room line's fan-out included. At (2, 200) it
walks at most three young collections' worth (103-200 ms in the same bench),
and a full one still comes about as often (every 600 young ones, against
441), when CPython's own rule (a quarter of the long-lived objects new)
lets it."""


def tune_collector() -> None:
    """Freeze what exists now and collect less often (see above), and say
    how long each full collection stops the server (``FullCollectionWatch``)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
    if not any(isinstance(callback, FullCollectionWatch) for callback in gc.callbacks):
        gc.callbacks.append(FullCollectionWatch())


FULL_COLLECTION_WARN_SECONDS = 0.1
"""A full collection at least this long is logged as a warning: the reactor
answers nobody while it runs (10,000 sessions, both ends in one process,
800,000 tracked objects: 341 ms, an ad-hoc script), so a line said then
reaches its room that much later."""


class FullCollectionWatch:
    """A ``gc.callbacks`` hook that times every full (generation 2)
    collection and logs it, so an operator sees the stalls the collector
    causes, which grow with the number of sessions held.  A middle one
    (generation 1: what survived up to ``OLDER_THRESHOLDS[0]`` young
    collections of ``YOUNG_THRESHOLD`` each) and a young one (generation
    0) are timed too, and logged only when as long as a full one that
    would be warned about (a stall of the reactor with neither logged was
    seen in a fan-out of ``bench scale``)."""

    log = Logger()

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._started: float | None = None
        self.count = 0
        self.longest = 0.0
        self.middle_longest = 0.0
        """The longest generation-1 collection, in seconds."""
        self.young_longest = 0.0
        """The longest generation-0 collection, in seconds."""

    def __call__(self, phase: str, info: dict) -> None:
        generation = info.get("generation")
        if phase == "start":
            self._started = self._clock()
            return
        if self._started is None:
            return
        started, self._started = self._started, None
        seconds = self._clock() - started
        if generation == 2:
            self.collected(started, seconds, info)
            return
        if generation == 1:
            self.middle_longest = max(self.middle_longest, seconds)
        else:
            self.young_longest = max(self.young_longest, seconds)
        if seconds >= FULL_COLLECTION_WARN_SECONDS:
            self.log.warn("{which} garbage collection (generation {generation}) took {ms:.0f} ms "
                          "({collected} objects collected)",
                          which="middle" if generation == 1 else "young", generation=generation,
                          ms=seconds * 1000, collected=info.get("collected", 0))

    def collected(self, started: float, seconds: float, info: dict) -> None:
        """One full collection, from ``started`` (on this watch's clock), ended."""
        self.count += 1
        self.longest = max(self.longest, seconds)
        emit = self.log.warn if seconds >= FULL_COLLECTION_WARN_SECONDS else self.log.debug
        emit("full garbage collection took {ms:.0f} ms ({collected} objects collected)",
             ms=seconds * 1000, collected=info.get("collected", 0))


TRIM_INTERVAL = 60.0
"""Seconds between two ``malloc_trim`` calls: often enough that a burst's
freed pages do not linger. Not free: on an 825 MiB heap of 150,000 live
blocks among as many freed ones, one call took 36-59 ms (an ad-hoc
script), a stall of the reactor that long once a minute."""


def heap_trimmer() -> Callable[[], None] | None:
    """glibc's ``malloc_trim(0)`` (give free pages back to the system), or
    None where the C library has no such function."""
    try:
        malloc_trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    malloc_trim.argtypes = [ctypes.c_size_t]
    malloc_trim.restype = ctypes.c_int

    def trim() -> None:
        malloc_trim(0)
    return trim


def heap_trim_service() -> TimerService | None:
    """``heap_trimmer`` every ``TRIM_INTERVAL`` as a service (the twistd
    plugin's, and ``bench.server``'s), or None where there is none."""
    trim = heap_trimmer()
    return None if trim is None else TimerService(TRIM_INTERVAL, trim)
