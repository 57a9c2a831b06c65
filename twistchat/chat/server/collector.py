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

import gc

YOUNG_THRESHOLD = 50_000
"""Allocations (net of frees) between young collections; CPython's default is 700."""

OLDER_THRESHOLDS = (20, 20)
"""Young collections per middle one, middle ones per full one (defaults 10, 10)."""


def tune_collector() -> None:
    """Freeze what exists now and collect less often (see above)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
