"""``python -m bench abuse``: clients chat (3 senders x 10 lines/s, 2
receivers) first alone, then while (1) a flood of random and mutated
datagrams, (2) a handshake flood from many source sockets standing in for
spoofed addresses and (3) one logged-in client saying lines at 25x its rate
limit and (4) mutated copies of a live session's own datagrams, sent from
its address so they reach the session state machine, hit the server.  Goals: the server stays up and logs no traceback,
the flooder is refused (RATE_LIMITED; no session for the handshake flood),
bytes sent towards each spoofed source <= bytes received from it (1x), and
the chatting clients' p99 within 2x of the unloaded run."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from twisted.internet import defer

from bench.common import (
    LOOPBACK, Child, LoadClient, ServerProcess, client_endpoints, connect_client, run_async, say, sleep,
    tracebacks,
)
from bench.abuse_scenarios import SCENARIOS, run_all, summary_line, upper_median
from bench.latency import impaired_chat

CHAT_RATE = 10.0
FLOODER_RATE = 500.0
"""Lines per second from the abusive client; the server allows 20 (burst 40)."""


async def rate_flooder(reactor: Any, port: int, room: str, seconds: float) -> dict:
    endpoint = client_endpoints(reactor, 1)[0]
    try:
        client = await connect_client(endpoint, (LOOPBACK, port), "flooder", room=room)
        outcome = {"sent": 0, "ok": 0, "rate_limited": 0, "other": 0}

        def counted(reply: dict) -> None:
            if reply["t"] == "ok":
                outcome["ok"] += 1
            elif reply.get("code") == "RATE_LIMITED":
                outcome["rate_limited"] += 1
            else:
                outcome["other"] += 1

        start = time.monotonic()
        tick, due = 0.01, 0.0
        while time.monotonic() - start < seconds:
            due += FLOODER_RATE * tick
            while due >= 1:
                due -= 1
                outcome["sent"] += 1
                d = client.request({"t": "say", "room": room, "text": "spam spam spam"})
                d.addCallbacks(counted, lambda f: None)
            await sleep(reactor, tick)
        await sleep(reactor, 1.0)
        elapsed = time.monotonic() - start
        outcome["accepted_per_s"] = round(outcome["ok"] / elapsed, 1)
        outcome["session_still_open"] = client.lost is None
        client.connection.close(graceful=False)
        await sleep(reactor, 0.1)
        return outcome
    finally:
        await endpoint.bench_port.stopListening()


async def session_mutator(reactor: Any, port: int, seconds: float, rate: float) -> dict:
    """Mutated copies of a live session's own datagrams, sent from its own
    address, so they get past routing into ``Session.receive_datagram``: the
    connection id (bytes 1-8) is kept 80 % of the time, the packet number
    and frames are flipped, cut or grown."""
    import random
    rng = random.Random(5)
    endpoint = client_endpoints(reactor, 1)[0]
    seen: list[bytes] = []
    real_write = endpoint.transport.write

    def recording_write(datagram: bytes, address: Any = None) -> Any:
        if len(seen) < 200:
            seen.append(bytes(datagram))
        return real_write(datagram, address)
    endpoint.transport.write = recording_write
    outcome: dict = {"sent": 0, "bytes": 0, "sessions": 0, "closed": {}}

    async def fresh_session() -> tuple[Any, list[bytes]]:
        seen.clear()
        # No login: a registration costs the server ~40 ms of scrypt on its
        # reactor thread (see docs/benchmarks.md, findings), which would
        # measure that instead.  Requests before login get NOT_LOGGED_IN:
        # real DATA packets both ways all the same.
        from twistchat.endpoint.endpoint import ConnectError
        for attempt in range(3):
            client = LoadClient(f"mutant{outcome['sessions']}")
            try:
                await endpoint.connect((LOOPBACK, port), client)
                break
            except ConnectError:
                outcome["handshakes_failed"] = outcome.get("handshakes_failed", 0) + 1
                if attempt == 2:
                    raise
        outcome["sessions"] += 1
        for index in range(20):  # some real traffic to copy
            client.request({"t": "say", "room": "#mut", "text": f"line {index} " * 3}).addErrback(lambda f: None)
            await sleep(reactor, 0.01)
        return client, [d for d in seen if len(d) > 10 and (d[0] & 0x0F) == 5] or list(seen)

    try:
        client, data_packets = await fresh_session()
        start, tick, due = time.monotonic(), 0.01, 0.0
        while time.monotonic() - start < seconds:
            if client.lost is not None:  # the server closed it: note why, start another
                why = f"{client.lost.code.name}: {client.lost.message.split(' of packet')[0]}"
                outcome["closed"][why] = outcome["closed"].get(why, 0) + 1
                client, data_packets = await fresh_session()
            due += rate * tick
            while due >= 1:
                due -= 1
                datagram = bytearray(rng.choice(data_packets))
                low = 9 if rng.random() < 0.8 else 0
                for _ in range(rng.randrange(1, 4)):
                    if len(datagram) > low:
                        datagram[rng.randrange(low, len(datagram))] = rng.randrange(256)
                if rng.random() < 0.2:
                    datagram = datagram[:rng.randrange(low, len(datagram) + 1)]
                elif rng.random() < 0.1:
                    datagram += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
                try:
                    real_write(bytes(datagram), (LOOPBACK, port))
                except OSError:
                    continue
                outcome["sent"] += 1
                outcome["bytes"] += len(datagram)
            await sleep(reactor, tick)
        if client.lost is None:
            client.connection.close(graceful=False)
        await sleep(reactor, 0.1)
        return outcome
    finally:
        await endpoint.bench_port.stopListening()


def server_counters(log: str) -> dict | None:
    for line in reversed(log.splitlines()):
        if line.startswith("{") and "datagrams_received" in line:
            return json.loads(line)
    return None


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench abuse")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--junk-rate", type=float, default=3000.0)
    parser.add_argument("--hello-rate", type=float, default=3000.0)
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--mutant-rate", type=float, default=500.0,
                        help="mutated copies of a live session's datagrams per second")
    parser.add_argument("--scenarios", default="all",
                        help="hostile-peer scenarios of issue 12 to run: all, none, or a comma list of "
                             + ",".join(SCENARIOS))
    parser.add_argument("--seconds", type=float, default=None,
                        help="probe (and attack) length per scenario (default 4, --quick 3... see docs)")
    parser.add_argument("--attacker-nice", type=int, default=0,
                        help="run the scenarios' attacker processes at this nice value (19: they "
                             "stand for remote machines whose CPU is not the server's)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each scenario this many times; login and p99 goals are judged on "
                             "the median ratio, the others in every run")
    parser.add_argument("--no-floods", action="store_true",
                        help="skip the datagram floods (junk, spoofed HELLOs, rate flooder, mutator)")
    args = parser.parse_args(argv)
    if args.scenarios == "all":
        names = list(SCENARIOS)
    elif args.scenarios == "none":
        names = []
    else:
        names = [n for n in args.scenarios.split(",") if n]
        unknown = [n for n in names if n not in SCENARIOS]
        if unknown:
            parser.error(f"unknown scenarios {unknown}; known: {', '.join(SCENARIOS)}")
    return run_async(lambda reactor: _everything(reactor, args, names))


async def _everything(reactor: Any, args: Any, names: list[str]) -> dict:
    result: dict = {"bench": "abuse", "quick": args.quick}
    if not args.no_floods:
        runs = [await _main(reactor, args) for _ in range(args.repeat)]
        result["floods"] = runs[0] if args.repeat == 1 else floods_median(runs)
    if names:
        seconds = args.seconds or (3.0 if args.quick else 10.0)
        say(f"=== hostile peers (issue 12): {len(names)} scenarios, {seconds:g} s probe each, "
            "each on a fresh server")
        scenarios = await run_all(reactor, names, seconds, args.quick, args.attacker_nice, args.repeat)
        result["attacker_nice"] = args.attacker_nice
        result["scenarios"] = scenarios
        result["scenario_seconds"] = seconds
        say("=== per scenario")
        for name, r in scenarios.items():
            say(summary_line(name, r))
    goals = dict(result.get("floods", {}).get("goals", {}))
    for name, r in result.get("scenarios", {}).items():
        for goal, ok in r.get("goals", {"ran": False}).items():
            goals[f"{name}.{goal}"] = ok
    result["goals"] = goals
    return result


def floods_median(runs: list[dict]) -> dict:
    """As the scenarios' ``median_of_runs``: the p99 goal on the median
    ratio over the runs, every other goal in every run."""
    result = dict(runs[0])
    result["p99_ratio"] = upper_median([r["p99_ratio"] for r in runs])
    result["goals"] = {goal: all(r["goals"][goal] for r in runs) for goal in runs[0]["goals"]}
    result["goals"]["p99_within_2x"] = result["p99_ratio"] is not None and result["p99_ratio"] <= 2.0
    result["runs"] = runs
    say(f"floods: p99 ratio by run {[r['p99_ratio'] for r in runs]}, median {result['p99_ratio']}")
    return result


async def _main(reactor: Any, args: Any) -> dict:
    seconds = 6.0 if args.quick else 20.0
    per_sender = int(CHAT_RATE * seconds)
    # Here the floods and the chatting clients all come from 127.0.0.1, so
    # the per-address buckets (cookies, registrations) would throttle the
    # clients with the flood: lifted for this part, which measures floods;
    # the issue 12 scenarios below measure those buckets with each attacker
    # on its own address.
    lifted = ("registration_burst=1000", "registration_rate=1e6", "cookie_rate=1e6",
              "cookie_burst=1e6", "cookie_prefix_rate=1e6", "cookie_prefix_burst=1e6")
    server = ServerProcess(force_launcher=True,
                           extra_args=tuple(a for item in lifted for a in ("--set", item)))
    say(f"server ({server.kind}) on {server.port}; chat {seconds:g} s unloaded, then loaded")
    unloaded = await impaired_chat(reactor, server.port, senders=3, receivers=2,
                                   per_sender=per_sender, rate=CHAT_RATE, room="#calm", tag="a")
    say(f"unloaded: {unloaded}")
    flood = Child([sys.executable, "-m", "bench.flood", "--port", str(server.port),
                   "--seconds", str(seconds + 3), "--junk-rate", str(args.junk_rate),
                   "--hello-rate", str(args.hello_rate), "--sources", str(args.sources)], "flood")
    flood.wait_for_line("flooding")
    flooder = defer.Deferred.fromCoroutine(rate_flooder(reactor, server.port, "#calm2", seconds + 2))
    mutator = defer.Deferred.fromCoroutine(session_mutator(reactor, server.port, seconds, args.mutant_rate))
    loaded = await impaired_chat(reactor, server.port, senders=3, receivers=2,
                                 per_sender=per_sender, rate=CHAT_RATE, room="#calm2", tag="b")
    say(f"loaded:   {loaded}")
    abusive_client = await flooder
    say(f"rate flooder: {abusive_client}")
    mutant = await mutator
    say(f"mutated in-session datagrams: {mutant}")
    deadline = time.monotonic() + 15
    while flood.alive() and time.monotonic() < deadline:
        await sleep(reactor, 0.2)
    flood_text = flood.stop()
    flood_stats = json.loads(flood_text.strip().splitlines()[-1])
    say(f"datagram floods: {flood_stats}")
    server_up = server.alive()
    log = server.stop()
    counters = server_counters(log)
    p99_ratio = (loaded["p99_ms"] / unloaded["p99_ms"]) if unloaded.get("p99_ms") else None
    goals = {
        "server_stayed_up": server_up,
        "no_traceback_in_log": tracebacks(log) == 0,
        "flooder_refused": abusive_client["accepted_per_s"] <= 25 and abusive_client["rate_limited"] > 0,
        "amplification_le_1x": flood_stats["amplification_max_per_source"] <= 1.0
                               and flood_stats["junk_amplification"] <= 1.0,
        "no_session_from_flood": counters is None
                                 or counters["sessions_opened"] == 2 * (3 + 2) + 1 + mutant["sessions"],
        "no_internal_error": counters is None or counters["internal_errors"] == 0,
        "chat_intact": all(r["missing"] == r["duplicated"] == r["reordered"] == 0 for r in (unloaded, loaded)),
        "p99_within_2x": p99_ratio is not None and p99_ratio <= 2.0,
    }
    return {"bench": "abuse", "quick": args.quick, "seconds": seconds, "server": server.kind,
            "unloaded": unloaded, "loaded": loaded, "p99_ratio": rounded2(p99_ratio),
            "rate_flooder": abusive_client, "mutated_session_datagrams": mutant,
            "datagram_floods": flood_stats,
            "server_counters": counters, "goals": goals}


def rounded2(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
