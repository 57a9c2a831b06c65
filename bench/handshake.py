"""``python -m bench handshake``: what a connection costs before the first
message. In virtual time on the network simulator (20 ms RTT, seeded loss),
N clients connect one after another to one server: the time from
``connect()`` to established (p50/p99), and, in real time, the server's CPU
per accepted handshake (cookie, Noise message 1, ACCEPT). Run it against an
older checkout with PYTHONPATH to compare; it uses only the endpoint API."""

from __future__ import annotations

import argparse
import random
import statistics
import time

from twisted.internet.task import Clock

from twistchat.endpoint.api import MessageProtocol
from twistchat.endpoint.endpoint import ClientEndpoint, ServerEndpoint
from twistchat.netsim.network import SimulatedNetwork

SERVER = ("10.9.0.1", 9999)


def _admission():
    try:
        from twistchat.endpoint.server import Admission
    except ImportError:  # an older checkout without admission limits
        return {}
    return {"admission": Admission.for_load_generators()}


def handshake_times(loss: float, clients: int, seed: int) -> list[float]:
    clock = Clock()
    network = SimulatedNetwork(clock, seed=seed, rtt=0.02, loss=loss)
    server = ServerEndpoint(clock, lambda address: MessageProtocol(), rng=random.Random(seed),
                            **_admission())
    network.attach(server, SERVER)
    times: list[float] = []
    for i in range(clients):
        client = ClientEndpoint(clock, rng=random.Random(seed * 1000 + i))
        network.attach(client, (f"10.9.{1 + i // 250}.{1 + i % 250}", 40000))
        started = clock.seconds()
        done: list = []
        client.connect(SERVER, MessageProtocol()).addBoth(done.append)
        network.run(until=started + 15, stop=lambda: bool(done))
        if done and isinstance(done[0], MessageProtocol):
            times.append(clock.seconds() - started)
    return times


def server_cpu_per_handshake(count: int) -> float:
    """Seconds of this process's CPU per handshake, client and server sides
    together, with a lossless zero-delay network (the work, not the waiting)."""
    clock = Clock()
    network = SimulatedNetwork(clock, seed=1, rtt=0.0)
    server = ServerEndpoint(clock, lambda address: MessageProtocol(), rng=random.Random(1),
                            **_admission())
    network.attach(server, SERVER)
    client = ClientEndpoint(clock, rng=random.Random(2))
    network.attach(client, ("10.9.1.1", 40000))
    started = time.process_time()
    for _ in range(count):
        done: list = []
        client.connect(SERVER, MessageProtocol()).addBoth(done.append)
        network.run(until=clock.seconds() + 5, stop=lambda: bool(done))
    return (time.process_time() - started) / count


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench handshake")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--clients", type=int, default=None)
    args = parser.parse_args(argv)
    clients = args.clients or (100 if args.quick else 500)
    result = {"bench": "handshake", "rtt_ms": 20, "clients": clients, "loss": {}}
    for loss in (0.0, 0.1):
        times = handshake_times(loss, clients, seed=1)
        figures = {"connected": len(times), "p50_ms": round(1000 * statistics.median(times), 1),
                   "p99_ms": round(1000 * _quantile(times, 0.99), 1)}
        print(f"loss {loss:.0%}: {figures}", flush=True)
        result["loss"][f"{loss:g}"] = figures
    cpu = server_cpu_per_handshake(200 if args.quick else 1000)
    result["cpu_us_per_handshake_both_sides"] = round(cpu * 1e6, 1)
    print(f"CPU per handshake (client and server together): {cpu * 1e6:.0f} us", flush=True)
    return result
