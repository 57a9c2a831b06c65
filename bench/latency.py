"""``python -m bench latency``: real server and clients through the netem
proxy at 0, 10 and 30 % loss with a 20 ms round trip (10 ms each way, both
directions impaired).  Several senders say numbered lines into one room;
several receivers record send-to-delivery latency and check every line
arrived exactly once and in order.  The simulator's figures for the same
settings are taken in the same run."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from twisted.internet import defer

from bench.common import (
    HANDSHAKE_RETRIES, LOOPBACK, NetemProcess, ServerProcess, client_endpoints, connect_many, emit, percentile,
    rounded, run_async, run_netsim, say, sleep, tracebacks,
)

RTT_MS = 20.0
LINE_PREFIX = "L"


class LineChecker:
    """Per receiver, per sender: what arrived, in what order, how late."""

    def __init__(self, senders: list[str], receivers: list[str], per_sender: int) -> None:
        self.per_sender = per_sender
        self.seen = {r: {s: [] for s in senders} for r in receivers}
        self.latencies: list[float] = []
        self.last_arrival = time.monotonic()

    def on_event(self, client: Any, data: bytes) -> None:
        if not data.startswith(b'{"t":"message"'):
            return
        now = time.time()
        obj = json.loads(data)
        parts = obj["text"].split(" ")
        if parts[0] != LINE_PREFIX:
            return
        per = self.seen.get(client.nick)
        if per is None or obj["nick"] not in per:
            return
        seq, sent = int(parts[1]), float(parts[2])
        per[obj["nick"]].append(seq)
        self.latencies.append((now - sent) * 1000.0)
        self.last_arrival = time.monotonic()

    def complete(self) -> bool:
        return all(len(set(seqs)) >= self.per_sender for per in self.seen.values() for seqs in per.values())

    def tally(self) -> dict:
        missing = duplicated = reordered = 0
        for per in self.seen.values():
            for seqs in per.values():
                distinct = set(seqs)
                missing += self.per_sender - len(distinct & set(range(self.per_sender)))
                duplicated += len(seqs) - len(distinct)
                reordered += sum(1 for a, b in zip(seqs, seqs[1:]) if b < a)
        return {"missing": missing, "duplicated": duplicated, "reordered": reordered,
                "delivered": sum(len(s) for per in self.seen.values() for s in per.values()),
                "expected": self.per_sender * sum(len(per) for per in self.seen.values())}


async def impaired_chat(reactor: Any, port: int, *, senders: int = 3, receivers: int = 2,
                        per_sender: int = 100, rate: float = 15.0, room: str = "#lat",
                        drain_timeout: float = 20.0, tag: str = "c") -> dict:
    """Connect through ``port`` (the proxy), exchange numbered lines, check them.
    ``rate`` is per sender, in lines per second (the server allows 20/s)."""
    sender_nicks = [f"{tag}s{i}" for i in range(senders)]
    receiver_nicks = [f"{tag}r{i}" for i in range(receivers)]
    checker = LineChecker(sender_nicks, receiver_nicks, per_sender)
    endpoints = client_endpoints(reactor, senders + receivers)
    failed_before = HANDSHAKE_RETRIES["failed"]
    address = (LOOPBACK, port)
    try:
        started = time.monotonic()
        clients = await connect_many(endpoints, address, receiver_nicks + sender_nicks, room=room,
                                     on_event=checker.on_event, concurrency=10)
        connect_seconds = time.monotonic() - started
        talkers = clients[receivers:]
        rejected: list[dict] = []
        replies: list[defer.Deferred] = []
        interval = 1.0 / rate
        begin = time.monotonic()
        for seq in range(per_sender):
            for client in talkers:
                text = f"{LINE_PREFIX} {seq} {time.time():.6f}"
                d = client.request({"t": "say", "room": room, "text": text})
                d.addCallback(lambda r: r["t"] == "ok" or rejected.append(r))
                d.addErrback(lambda f: None)  # session lost: counted via sessions_lost
                replies.append(d)
            delay = begin + (seq + 1) * interval - time.monotonic()
            await sleep(reactor, max(0.0, delay))
        deadline = time.monotonic() + drain_timeout
        while not checker.complete() and time.monotonic() < deadline:
            await sleep(reactor, 0.05)
        result = checker.tally()
        result.update({
            "p50_ms": rounded(percentile(checker.latencies, 50)),
            "p99_ms": rounded(percentile(checker.latencies, 99)),
            "max_ms": rounded(max(checker.latencies) if checker.latencies else None),
            "rejected_says": len(rejected), "connect_s": round(connect_seconds, 2),
            "sessions_lost": sum(1 for c in clients if c.lost is not None),
            "complete": checker.complete(),
            "handshakes_failed_then_retried": HANDSHAKE_RETRIES["failed"] - failed_before,
        })
        for client in clients:
            try:
                client.connection.close()
            except Exception:
                pass
        await sleep(reactor, 0.2)
        return result
    finally:
        for endpoint in endpoints:
            await endpoint.bench_port.stopListening()


async def handshakes(reactor: Any, port: int, count: int, concurrency: int = 10) -> dict:
    """``count`` bare handshakes (no login) through ``port``: how long each
    took, and how many failed within the transport's handshake timeout."""
    from twistchat.endpoint.endpoint import ConnectError
    from bench.common import LoadClient
    endpoints = client_endpoints(reactor, concurrency)
    times: list[float] = []
    failed = 0
    semaphore = defer.DeferredSemaphore(concurrency)

    async def one(index: int) -> None:
        nonlocal failed
        await semaphore.acquire()
        try:
            client = LoadClient(f"h{index}")
            started = time.monotonic()
            try:
                await endpoints[index % concurrency].connect((LOOPBACK, port), client)
            except ConnectError:
                failed += 1
                return
            times.append((time.monotonic() - started) * 1000.0)
            client.connection.close(graceful=False)
        finally:
            semaphore.release()
    try:
        await defer.gatherResults([defer.Deferred.fromCoroutine(one(i)) for i in range(count)])
    finally:
        for endpoint in endpoints:
            await endpoint.bench_port.stopListening()
    return {"attempted": count, "failed": failed, "p50_ms": rounded(percentile(times, 50)),
            "p90_ms": rounded(percentile(times, 90)), "max_ms": rounded(max(times) if times else None)}


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench latency")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--losses", default="0,0.1,0.3")
    parser.add_argument("--jitter", type=float, default=0.0,
                        help="netem jitter in ms (reorders datagrams); the issue's runs use 0")
    parser.add_argument("--handshakes", type=int, default=None,
                        help="bare handshakes timed per loss level (default 20, --quick 10)")
    args = parser.parse_args(argv)
    return run_async(lambda reactor: _main(reactor, args))


async def _main(reactor: Any, args: Any) -> dict:
    per_sender = 60 if args.quick else 300
    senders, receivers, rate = 3, 2, 15.0
    losses = [float(x) for x in args.losses.split(",")]
    server = ServerProcess(load_generator=True)
    say(f"server: {server.kind} on port {server.port}")
    levels = []
    try:
        for index, loss in enumerate(losses):
            netem = NetemProcess(server.port, loss=loss, delay_ms=RTT_MS / 2, seed=index + 1,
                                 jitter_ms=args.jitter)
            say(f"loss {loss:.0%}: proxy on {netem.port}, {senders} senders x {per_sender} lines "
                f"at {rate:g}/s, {receivers} receivers")
            try:
                real = await impaired_chat(reactor, netem.port, senders=senders, receivers=receivers,
                                           per_sender=per_sender, rate=rate, room=f"#lat{index}",
                                           tag=f"l{index}", drain_timeout=30.0)
            except Exception as error:  # a failed handshake etc.: record it, go on
                real = {"error": repr(error)}
            count = args.handshakes if args.handshakes is not None else (10 if args.quick else 20)
            shakes = await handshakes(reactor, netem.port, count) if count else None
            proxy = netem.counters()
            # netem adds U[0, j) to each one-way delay, netsim U[-j, +j]: same mean and spread
            sim = run_netsim(loss, RTT_MS + args.jitter, messages=senders * per_sender,
                             rate=senders * rate, size=40, seed=index + 1, jitter_ms=args.jitter / 2)
            level = {"loss": loss, "real": real, "proxy": proxy, "handshakes": shakes,
                     "netsim": {k: sim.get(k) for k in ("p50_ms", "p99_ms", "max_ms", "missing",
                                                        "duplicated", "reordered", "error")}}
            say(f"  real  : {json.dumps(real, sort_keys=True)}")
            say(f"  netsim: {json.dumps(level['netsim'], sort_keys=True)}")
            say(f"  handshakes: {json.dumps(shakes, sort_keys=True)}")
            levels.append(level)
    finally:
        log = server.stop()
    clean = all(l["real"].get("missing") == 0 and l["real"].get("duplicated") == 0
                and l["real"].get("reordered") == 0 for l in levels)
    return {"bench": "latency", "quick": args.quick, "rtt_ms": RTT_MS, "jitter_ms": args.jitter,
            "server": server.kind,
            "levels": levels, "goal_zero_missing_dup_reordered": clean,
            "server_tracebacks": tracebacks(log)}
