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
``YOUNG_THRESHOLD`` objects more.
"""

from __future__ import annotations

import ctypes
import gc
from typing import Callable

from twisted.application.internet import TimerService

YOUNG_THRESHOLD = 50_000
"""Allocations (net of frees) between young collections; CPython's default is 700."""

OLDER_THRESHOLDS = (20, 20)
"""Young collections per middle one, middle ones per full one (defaults 10, 10)."""


def tune_collector() -> None:
    """Freeze what exists now and collect less often (see above)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)


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
