"""``python -m bench scale``: 1,000, then 5,000, then 10,000 concurrent
sessions held by one server process, each logged in and kept alive at the
default keepalive (the transport's own PING every ``KEEPALIVE_INTERVAL``,
25 s since issue 16, 15 s before; ``--chat-ping`` adds a chat-level ping
as often, which clients needed before a085957).  At
each step: the server's CPU share while idle, its resident memory per
session (from /proc), and the time to fan one line out to a room of 1,000
members (median and worst of several lines).

The room's members live in this process; the other sessions are held by
``--holders`` other processes (``bench/scale_holder.py``; one by default), so
that a line's fan-out waits for the server and the members, not for the
keepalives of 99,000 strangers sharing the members' CPU (issue 16: at
100,000 sessions in one process that process took 80 % of a core).
``--holders 0`` keeps every session here, as the bench did before. Holders
run at the lowest priority (``--holder-nice``, ``HOLDER_NICE``).

The server runs with the room cap at the room size and login hashing
cheapened (registering 10,000 nicks at ~40 ms of scrypt each would take
minutes and is not what is measured)."""

from __future__ import annotations

import argparse
import gc
import re
import signal
import statistics
import sys
import time
from typing import Any

from twisted.internet import defer, task

from bench import procstat
from bench.common import (
    LOOPBACK, Child, ServerProcess, client_endpoints, connect_many, rounded, run_async, say, sleep,
    tracebacks,
)
from twistchat.chat.server.collector import FullCollectionWatch, tune_collector
from twistchat.reliable.config import KEEPALIVE_INTERVAL

SESSIONS_PER_ENDPOINT = 250
KEEPALIVE = KEEPALIVE_INTERVAL
HOLDER_NICE = 19
"""Holders run at the lowest priority: they stand for 99,000 remote
machines, whose keepalives cost the server but whose CPU is not the
server's or the room's. At the bench's own priority a holder of 99,000
sessions took 77 % of a core, shared with the room's members, whose
handling of a line is what the fan-out time measures (issue 16)."""
TABLE_SLACK = 1.1
"""The server's session table holds this many times the sessions measured
(its default, 100,000, is the largest step): a handshake tried again leaves
a half-open session behind for a while, and a run of 100,000 ended at
99,997 on a full table (issue 16)."""


class Pinger:
    """Every client sends a chat ping once per ``KEEPALIVE``, spread evenly."""

    def __init__(self, reactor: Any) -> None:
        self.clients: list = []
        self.cursor = 0
        self.tick = 0.25
        self.loop = task.LoopingCall(self._tick)
        self.loop.clock = reactor
        self.sent = 0

    def start(self) -> None:
        self.loop.start(self.tick, now=False)

    def _tick(self) -> None:
        if not self.clients:
            return
        per_tick = max(1, round(len(self.clients) * self.tick / KEEPALIVE))
        for _ in range(per_tick):
            client = self.clients[self.cursor % len(self.clients)]
            self.cursor += 1
            if client.lost is None and client.connection is not None:
                d = client.request({"t": "ping"})
                d.addErrback(lambda f: None)
                self.sent += 1


class FullCollections(FullCollectionWatch):
    """This process's full collections, as (start, end) in
    ``time.monotonic``: the room's members live here, so a line's fan-out
    waits for one of them as it would for the server."""

    def __init__(self) -> None:
        super().__init__(clock=time.monotonic)
        self.spans: list[tuple[float, float]] = []

    def collected(self, started: float, seconds: float, info: dict) -> None:
        super().collected(started, seconds, info)
        self.spans.append((started, started + seconds))

    def seconds_within(self, start: float, end: float) -> float:
        return sum(max(0.0, min(b, end) - max(a, start)) for a, b in self.spans)


class Holder(Child):
    """A ``bench.scale_holder`` process: ``count`` idle sessions, nicks from ``first`` on."""

    STATUS = re.compile(r"^status (\d+) (\d+)$", re.M)

    def __init__(self, port: int, first: int, count: int, nice: int = 0) -> None:
        super().__init__([sys.executable, "-m", "bench.scale_holder", "--port", str(port),
                          "--first", str(first), "--count", str(count), "--prefix", "u"],
                         f"holder{first}", nice=nice)
        self.count = count

    def status(self) -> tuple[int, int]:
        """(sessions connected, sessions lost), as last printed."""
        found = self.STATUS.findall(self.log_text())
        return (int(found[-1][0]), int(found[-1][1])) if found else (0, 0)

    def ready(self) -> bool:
        return "\nready " in self.log_text()


async def start_holders(reactor: Any, port: int, first: int, count: int, processes: int,
                        nice: int = 0) -> list[Holder]:
    """``count`` sessions over ``processes`` holders, once all are in."""
    share = -(-count // processes)
    holders = [Holder(port, start, min(share, first + count - start), nice)
               for start in range(first, first + count, share)]
    shown = 0
    try:
        while not all(h.ready() for h in holders):
            for holder in holders:
                if not holder.alive():
                    raise RuntimeError(f"{holder.name} ended:\n{holder.log_text()[-3000:]}")
            await sleep(reactor, 1.0)
            connected = sum(h.status()[0] for h in holders)
            if connected >= shown + 5000:
                shown = connected
                say(f"  ... {first + connected} sessions (held by {len(holders)} other process(es))")
    except BaseException:
        for holder in holders:  # not yet the caller's to stop: leave no process behind
            holder.stop()
        raise
    return holders


FULL_COLLECTION = re.compile(r"full garbage collection took (\d+) ms")
MIDDLE_COLLECTION = re.compile(r"middle garbage collection \(generation 1\) took (\d+) ms")
YOUNG_COLLECTION = re.compile(r"young garbage collection \(generation 0\) took (\d+) ms")
STALL = re.compile(r"the reactor stalled (\d+) ms")
SLOW_TIMERS = re.compile(r"the endpoint's timers took (\d+) ms")
SERVER_WARNINGS = {
    "server_full_collections_ms": FULL_COLLECTION,  # collector.FullCollectionWatch
    "server_middle_collections_ms": MIDDLE_COLLECTION,  # the same, generation 1
    "server_young_collections_ms": YOUNG_COLLECTION,  # the same, generation 0
    "server_stalls_ms": STALL,  # stall_watch.StallWatch (a full collection is one too)
    "server_slow_timers_ms": SLOW_TIMERS,  # endpoint.base.Endpoint._timers_fired
}
"""What each step lists of the server's warnings, by the pattern of its message."""


def logged_ms(pattern: re.Pattern, log: str) -> list[int]:
    """The ms of each of the server's warnings that ``pattern`` finds in
    ``log``, in the order they came."""
    return [int(ms) for ms in pattern.findall(log)]


async def fan_once(reactor: Any, sender: Any, members: list, room: str,
                   timeout: float = 30.0) -> tuple[float, float, float | None] | None:
    """Seconds from the send call until the first other member has the line,
    until every other member has it, and until the server took the say (the
    ``ts`` of its ok, the server's wall clock in ms, this machine's: None if
    no ok came), which tells a line late into the server from one late out."""
    waiting = {id(m) for m in members if m is not sender}
    done = defer.Deferred()
    tag = f"F{time.monotonic_ns()}"
    started = time.monotonic()
    finish: dict[str, float] = {}

    def seen(client: Any, data: bytes) -> None:
        if tag.encode() in data and id(client) in waiting:
            waiting.discard(id(client))
            finish.setdefault("first", time.monotonic())
            if not waiting and not done.called:
                finish["t"] = time.monotonic()
                done.callback(None)

    for member in members:
        member.on_event = seen
    sent_at = time.time()
    answer: dict[str, Any] = {}
    sender.request({"t": "say", "room": room, "text": tag}).addCallbacks(
        answer.update, lambda f: None)
    try:
        await done.addTimeout(timeout, reactor)
    except defer.TimeoutError:
        return None
    finally:
        for member in members:
            member.on_event = None
    taken = answer.get("ts")
    return (finish["first"] - started, finish["t"] - started,
            None if taken is None else taken / 1000 - sent_at)


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench scale")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps", default=None, help="session counts, e.g. 1000,5000,10000")
    parser.add_argument("--room", type=int, default=None)
    parser.add_argument("--idle-seconds", type=float, default=None)
    parser.add_argument("--chat-ping", action="store_true",
                        help="clients also send a chat ping every keepalive interval (needed "
                             "before a085957, when only chat traffic counted as life; the "
                             "transport's own keepalive counts since)")
    parser.add_argument("--holders", type=int, default=1,
                        help="processes holding the sessions that are not in the room (0: this "
                             "process holds every session, as before issue 16's last runs)")
    parser.add_argument("--holder-nice", type=int, default=HOLDER_NICE,
                        help="niceness the holders add to this process's own (0: as before)")
    parser.add_argument("--profile", default=None,
                        help="cProfile the server during the last idle window, stats to this file")
    args = parser.parse_args(argv)
    return run_async(lambda reactor: _main(reactor, args))


async def _main(reactor: Any, args: Any) -> dict:
    steps = [int(x) for x in (args.steps or ("200,500,1000" if args.quick else "1000,5000,10000")).split(",")]
    room_size = args.room or (200 if args.quick else 1000)
    idle_seconds = args.idle_seconds or (4.0 if args.quick else 30.0)
    fan_repeats = 3 if args.quick else 7
    server = ServerProcess(max_members=room_size, scrypt_n=2, profile=args.profile,
                           profile_on_signal=bool(args.profile), load_generator=True,
                           extra_args=("--set", f"max_sessions={int(max(steps) * TABLE_SLACK)}"))
    await sleep(reactor, 0.5)
    rss0 = server.rss()
    say(f"server ({server.kind}) pid {server.pid}, RSS at start {rss0 / 2**20:.1f} MiB")
    # A chat ping reaches only this process's clients: with it, hold every session here.
    holders_per_step = 0 if args.chat_ping else args.holders
    held_here = room_size if holders_per_step else max(steps)
    endpoints = client_endpoints(reactor, (held_here + SESSIONS_PER_ENDPOINT - 1) // SESSIONS_PER_ENDPOINT)
    clients: list = []
    pinger = Pinger(reactor)
    if args.chat_ping:
        pinger.start()
    results = []
    room = "#big"
    members_collections = FullCollections()
    gc.callbacks.append(members_collections)
    holders: list[Holder] = []
    try:
        for target in steps:
            started = time.monotonic()
            here = len(clients)
            base = here + sum(h.count for h in holders)  # sessions so far, held elsewhere too
            new = target - base
            # The first ``room_size`` sessions are the big room; the rest idle, in no room.
            in_room = max(0, min(new, room_size - base))
            joined = await connect_many(endpoints[here // SESSIONS_PER_ENDPOINT:] or endpoints,
                                        (LOOPBACK, server.port),
                                        [f"u{i}" for i in range(base, base + in_room)],
                                        room=room, concurrency=50, connected=pinger.clients.append,
                                        progress=lambda n: say(f"  ... {base + n} in {room}"))
            if holders_per_step and target > base + in_room:
                holders += await start_holders(reactor, server.port, base + in_room,
                                               target - base - in_room, holders_per_step,
                                               args.holder_nice)
                rest = []
            else:
                rest = await connect_many(endpoints, (LOOPBACK, server.port),
                                          [f"u{i}" for i in range(base + in_room, target)],
                                          concurrency=200, connected=pinger.clients.append,
                                          progress=lambda n: n % 1000 or say(f"  ... {base + in_room + n} sessions"))
            clients += joined + rest
            held = sum(h.count for h in holders)
            connect_seconds = time.monotonic() - started
            # This process stands for the room's 1,000 machines: its
            # collector runs as the server's does (what connecting built,
            # frozen), or one full collection walks every member's session
            # and stalls a line (up to 37 ms seen during one, issue 16).
            tune_collector()
            await sleep(reactor, 2.0)
            log_before = server.log_text()
            warned_before = {key: len(logged_ms(pattern, log_before))
                             for key, pattern in SERVER_WARNINGS.items()}
            profiling = args.profile and target == steps[-1]
            if profiling:
                server.proc.send_signal(signal.SIGUSR1)
            cpu0, me0, t0 = server.cpu(), procstat.cpu_seconds_self(), time.monotonic()
            others0 = [procstat.cpu_seconds(h.pid) for h in holders]
            await sleep(reactor, idle_seconds)
            if profiling:
                server.proc.send_signal(signal.SIGUSR2)
            elapsed = time.monotonic() - t0
            idle_share = (server.cpu() - cpu0) / elapsed
            room_generator_share = (procstat.cpu_seconds_self() - me0) / elapsed
            holders_share = sum(procstat.cpu_seconds(h.pid) - c for h, c in zip(holders, others0)) / elapsed
            rss = server.rss()
            members = clients[:room_size]
            fans = []
            members_collected = []
            for _ in range(fan_repeats):
                line_started = time.monotonic()
                fans.append(await fan_once(reactor, members[0], members, room))
                members_collected.append(members_collections.seconds_within(
                    line_started, time.monotonic()))
                await sleep(reactor, 0.2)
            good = [fan[1] for fan in fans if fan is not None]
            firsts = [fan[0] for fan in fans if fan is not None]
            sessions = len(clients) + held
            log_after = server.log_text()
            warned = {key: logged_ms(pattern, log_after)[warned_before[key]:]
                      for key, pattern in SERVER_WARNINGS.items()}
            step = {
                "sessions": sessions,
                "sessions_in_other_processes": held,
                "connect_s": round(connect_seconds, 1),
                "idle_cpu_share": round(idle_share, 4),
                "generator_idle_cpu_share": round(room_generator_share + holders_share, 4),
                "room_process_idle_cpu_share": round(room_generator_share, 4),
                "rss_mib": round(rss / 2**20, 1),
                "rss_per_session_kib": round((rss - rss0) / sessions / 1024, 2),
                "room_members": len(members),
                "fanout_ms_median": rounded(statistics.median(good) * 1000 if good else None),
                "fanout_ms_max": rounded(max(good) * 1000 if good else None),
                "fanout_first_member_ms_median": rounded(statistics.median(firsts) * 1000
                                                         if firsts else None),
                "fanout_timeouts": len(fans) - len(good),
                # Each line, in order, (first member, last member) in ms: which
                # of the seven a worst line was, and whether the first waited too.
                "fanout_lines_ms": [None if fan is None else [rounded(t * 1000) for t in fan[:2]]
                                    for fan in fans],
                # ... and when the server took each line's say (its ok's ts, ms resolution).
                "fanout_lines_server_ms": [None if fan is None or fan[2] is None
                                           else rounded(fan[2] * 1000) for fan in fans],
                **warned,  # the server's collections and stalls logged in that time
                # The members' own full collections during each line, in ms:
                # a stall of the measuring process, not of the server.
                "fanout_lines_members_gc_ms": [rounded(t * 1000) for t in members_collected],
                "sessions_lost": (sum(1 for c in clients if c.lost is not None)
                                  + sum(h.status()[1] for h in holders)),
            }
            say(f"{target} sessions: {step}")
            results.append(step)
    finally:
        gc.callbacks.remove(members_collections)
        if pinger.loop.running:
            pinger.loop.stop()
        for client in clients:
            try:
                client.connection.close(graceful=False)
            except Exception:
                pass
        await sleep(reactor, 0.5)
        for endpoint in endpoints:
            await endpoint.bench_port.stopListening()
        for holder in holders:
            holder.stop()
        log = server.stop()
    first, last = results[0], results[-1]
    growth = {
        "sessions_x": round(last["sessions"] / first["sessions"], 1),
        # /proc counts CPU in 10 ms ticks: a share under ~1 % over a short window is noise
        "idle_cpu_x": (round(last["idle_cpu_share"] / first["idle_cpu_share"], 1)
                       if first["idle_cpu_share"] >= 0.01 else None),
        "rss_per_session_x": round(last["rss_per_session_kib"] / max(first["rss_per_session_kib"], 1e-6), 2),
    }
    return {"bench": "scale", "quick": args.quick, "room_size": room_size, "keepalive_s": KEEPALIVE,
            "chat_ping": args.chat_ping, "holders": holders_per_step, "holder_nice": args.holder_nice,
            "idle_window_s": idle_seconds, "steps": results, "growth": growth,
            "server_tracebacks": tracebacks(log)}
