"""``python -m bench fanout``: one room of N members (10, then 100); senders
keep a fixed window of lines in flight (a new line as soon as one is
answered) so they go as fast as the windows allow.  Measured: lines fanned
out per second, counted where they land (at the receiving sessions), for
the reliable server and, in the same run, for a plain Twisted UDP relay
with no reliability (``bench/relay.py``).  Ratio = reliable / plain; also per second of server CPU, which a busy
shared machine disturbs much less than per second of wall time.

Each room is measured in ``--pairs`` pairs of runs, twistchat and the relay
one after the other, the first of the two alternating from pair to pair;
the room's ratios are the median of the pairs' (with their least and
greatest).  One pair's ratio moved by a third between runs of one tree,
because the relay it divides by moves as much as twistchat does
(docs/benchmarks.md): a goal is judged on the median, not on one pair.

The server runs with the per-session request rate limit lifted (it would
otherwise measure the limiter: 20 lines/s per sender) and the room cap at
the room size (the twistd plugin's --rate, --burst, --max-room-members)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from twisted.internet import defer
from twisted.internet.protocol import DatagramProtocol

from bench import procstat
from bench.common import (
    LOOPBACK, Child, ServerProcess, client_endpoints, connect_many, emit,
    rounded, run_async, say, sleep, tracebacks,
)
from twistchat.endpoint.sockets import enlarge_buffers

PAIRS = 3
"""Pairs of runs (twistchat, relay) per room."""
WINDOW = 8
"""Lines each sender keeps in flight."""
TEXT = "x" * 32
ACK_TIMEOUT = 0.5
"""Plain relay: a line whose ack is lost frees its window slot after this."""


class Meter:
    """Deliveries counted between ``start`` and ``stop`` marks, and the CPU
    the server and this process spent meanwhile."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.count = 0
        self.sent = 0

    def start(self) -> None:
        self.c0, self.s0, self.t0 = self.count, self.sent, time.monotonic()
        self.cpu0 = procstat.cpu_seconds(self.server_pid)
        self.me0 = procstat.cpu_seconds_self()

    def stop(self) -> dict:
        elapsed = time.monotonic() - self.t0
        delivered, sent = self.count - self.c0, self.sent - self.s0
        server_cpu = procstat.cpu_seconds(self.server_pid) - self.cpu0
        return {"deliveries_per_s": round(delivered / elapsed, 1),
                "deliveries_per_server_cpu_s": round(delivered / max(server_cpu, 1e-9), 1),
                "lines_sent_per_s": round(sent / elapsed, 1),
                "seconds": round(elapsed, 2),
                "server_cpu_share": round(server_cpu / elapsed, 2),
                "generator_cpu_share": round((procstat.cpu_seconds_self() - self.me0) / elapsed, 2)}


async def reliable_run(reactor: Any, members: int, senders: int, seconds: float, warmup: float,
                       profile: str | None = None, flush_per_turn: bool = False) -> dict:
    server = ServerProcess(rate=1e9, burst=10**9, max_members=max(members, 100), load_generator=True,
                           profile=profile,
                           extra_args=("--flush-per-turn",) if flush_per_turn else ())
    endpoints = client_endpoints(reactor, max(1, members // 25))
    room = f"#fan{members}"
    meter = Meter(server.pid)

    def on_event(client: Any, data: bytes) -> None:
        if data.startswith(b'{"t":"message"'):
            meter.count += 1

    try:
        clients = await connect_many(endpoints, (LOOPBACK, server.port),
                                     [f"m{i}" for i in range(members)], room=room,
                                     on_event=on_event, concurrency=50)
        running = True
        errors = {"rejected": 0, "lost": 0}

        def pump(client: Any) -> None:
            while running and client.in_flight < WINDOW:
                client.in_flight += 1
                meter.sent += 1
                d = client.request({"t": "say", "room": room, "text": TEXT})
                d.addCallbacks(lambda r, c=client: answered(c, r),
                               lambda f: errors.__setitem__("lost", errors["lost"] + 1))

        def answered(client: Any, reply: dict) -> None:
            client.in_flight -= 1
            if reply["t"] != "ok":
                errors["rejected"] += 1
            pump(client)

        for client in clients[:senders]:
            client.in_flight = 0
            pump(client)
        await sleep(reactor, warmup)
        meter.start()
        await sleep(reactor, seconds)
        result = meter.stop()
        result["server_hot_path"] = procstat.hot_path(server.pid)
        running = False
        await sleep(reactor, 0.5)
        result.update(errors)
        for client in clients:
            client.connection.close(graceful=False)
        await sleep(reactor, 0.2)
    finally:
        for endpoint in endpoints:
            await endpoint.bench_port.stopListening()
        log = server.stop()
    result["server_tracebacks"] = tracebacks(log)
    result["server"] = server.kind
    return result


class RelayMember(DatagramProtocol):
    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self.in_flight: dict[int, Any] = {}
        self.next_id = 0
        self.joined = defer.Deferred()
        self.running = False
        self.timeouts = 0

    def datagramReceived(self, datagram: bytes, address: tuple) -> None:
        kind = datagram[:1]
        if kind == b"M":
            self.meter.count += 1
        elif kind == b"A":
            call = self.in_flight.pop(int(datagram[1:]), None)
            if call is not None:
                call.cancel()
                self.pump()
        elif datagram == b"OK" and not self.joined.called:
            self.joined.callback(None)

    def pump(self) -> None:
        from twisted.internet import reactor
        while self.running and len(self.in_flight) < WINDOW:
            self.next_id += 1
            rid = self.next_id
            self.in_flight[rid] = reactor.callLater(ACK_TIMEOUT, self.expired, rid)
            self.meter.sent += 1
            try:
                self.transport.write(b"S%d %s %s" % (rid, self.room, TEXT.encode()), self.relay)
            except OSError:
                pass

    def expired(self, rid: int) -> None:
        if self.in_flight.pop(rid, None) is not None:
            self.timeouts += 1
            self.pump()


async def relay_run(reactor: Any, members: int, senders: int, seconds: float, warmup: float) -> dict:
    relay = Child([sys.executable, "-m", "bench.relay"], "relay")
    port = int(relay.wait_for_line(r"relay listening on 127\.0\.0\.1:(\d+)").group(1))
    meter = Meter(relay.pid)
    protocols, ports = [], []
    try:
        for _ in range(members):
            member = RelayMember(meter)
            member.relay, member.room = (LOOPBACK, port), b"#fan%d" % members
            udp = reactor.listenUDP(0, member, interface=LOOPBACK, maxPacketSize=65535)
            enlarge_buffers(udp)
            protocols.append(member)
            ports.append(udp)
        for member in protocols:
            for _ in range(20):
                member.transport.write(b"J" + member.room, member.relay)
                try:
                    await member.joined.addTimeout(0.2, reactor) if not member.joined.called else None
                    break
                except defer.TimeoutError:
                    member.joined = defer.Deferred()
        for member in protocols[:senders]:
            member.running = True
            member.pump()
        await sleep(reactor, warmup)
        meter.start()
        await sleep(reactor, seconds)
        result = meter.stop()
        for member in protocols:
            member.running = False
        await sleep(reactor, ACK_TIMEOUT + 0.1)
        sent_lines = meter.sent
        result["ack_timeouts"] = sum(m.timeouts for m in protocols)
        result["lost_fraction"] = round(1 - meter.count / max(1, sent_lines * (members - 1)), 4)
    finally:
        for udp in ports:
            await udp.stopListening()
        relay.stop()
    return result


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench fanout")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", default="10,100,1000",
                        help="room sizes, comma-separated (issue 16 asks for 10, 100 and 1,000)")
    parser.add_argument("--pairs", type=int, default=PAIRS,
                        help="pairs of runs (twistchat and the relay, alternately first) per room; "
                             "the ratios reported are the pairs' median")
    parser.add_argument("--profile", default=None,
                        help="write the server's cProfile stats to PREFIX-N.prof (N = room size)")
    parser.add_argument("--flush-per-turn", action="store_true",
                        help="also measure a what-if server that flushes once per reactor turn "
                             "(the endpoint does so itself since d60f094; kept to reproduce "
                             "the measurement in docs/benchmarks.md)")
    args = parser.parse_args(argv)
    return run_async(lambda reactor: _main(reactor, args))


def ratios(reliable: dict, plain: dict) -> dict:
    """One pair's ratios, wall-clock and per server CPU-second."""
    return {"ratio": round(reliable["deliveries_per_s"] / max(plain["deliveries_per_s"], 1e-9), 3),
            "ratio_per_server_cpu_s": round(reliable["deliveries_per_server_cpu_s"]
                                            / max(plain["deliveries_per_server_cpu_s"], 1e-9), 3)}


def summarize_pairs(pairs: list[dict]) -> dict:
    """The room's ratios: the median of its pairs' (the lower middle of an
    even count, a figure that was measured), with their range."""
    summary: dict = {}
    for key in ("ratio", "ratio_per_server_cpu_s"):
        values = sorted(pair[key] for pair in pairs)
        summary[key] = values[(len(values) - 1) // 2]
        summary[key + "_range"] = [values[0], values[-1]]
    summary["goal_met"] = summary["ratio"] >= 1.0
    return summary


async def _main(reactor: Any, args: Any) -> dict:
    seconds, warmup = (4.0, 1.0) if args.quick else (15.0, 2.0)
    rooms = []
    for members in [int(x) for x in args.sizes.split(",")]:
        senders = min(members, 10)
        say(f"room of {members}, {senders} senders, window {WINDOW}, {seconds:g} s measured, "
            f"{args.pairs} pair(s)")
        pairs = []
        for index in range(args.pairs):
            profile = f"{args.profile}-{members}-{index}.prof" if args.profile else None
            runs = {"twistchat": lambda: reliable_run(reactor, members, senders, seconds,
                                                      warmup, profile),
                    "plain_relay": lambda: relay_run(reactor, members, senders, seconds, warmup)}
            order = list(runs) if index % 2 == 0 else list(reversed(runs))
            pair: dict = {"first": order[0]}
            for kind in order:
                pair[kind] = await runs[kind]()
                say(f"  {kind:11s}: {pair[kind]}")
            pair.update(ratios(pair["twistchat"], pair["plain_relay"]))
            say(f"  pair {index + 1}: ratio {pair['ratio']:.2f}; "
                f"per server CPU-second {pair['ratio_per_server_cpu_s']:.2f}")
            pairs.append(pair)
        room = {"members": members, "senders": senders, **summarize_pairs(pairs), "pairs": pairs}
        say(f"  median of {len(pairs)}: ratio {room['ratio']:.2f} (goal >= 1.0); per server "
            f"CPU-second {room['ratio_per_server_cpu_s']:.2f} "
            f"(pairs {room['ratio_per_server_cpu_s_range'][0]:.2f}"
            f"-{room['ratio_per_server_cpu_s_range'][1]:.2f})")
        if args.flush_per_turn:
            what_if = await reliable_run(reactor, members, senders, seconds, warmup, None, True)
            what_if.update(ratios(what_if, pairs[-1]["plain_relay"]))
            say(f"  what-if, flush once per turn: {what_if}")
            room["what_if_flush_per_turn"] = what_if
        rooms.append(room)
    return {"bench": "fanout", "quick": args.quick, "window": WINDOW, "pairs": args.pairs,
            "rooms": rooms}
