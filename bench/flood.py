"""``python -m bench.flood``: the hostile traffic of the ``abuse`` bench, in
its own process so it does not slow the measuring clients.

* junk: random datagrams and mutated real ones (HELLO, CONNECT with a forged
  cookie, DATA to random connection ids, each with bytes flipped, cut or
  grown) from one socket;
* spoofed handshakes: HELLOs from ``--sources`` sockets, each its own source
  address, standing in for spoofed addresses (loopback cannot spoof); each
  source counts bytes out and bytes in: the amplification a victim at that
  address would see.

Prints one JSON line of counters when done."""

from __future__ import annotations

import argparse
import json
import os
import random
import selectors
import socket
import sys
import time

from twistchat.reliable.config import SessionConfig
from twistchat.wire.packets import (
    MIN_HELLO_SIZE, Ack, Close, Connect, Data, Hello, MessageFrame, Ping, 
    encode_packet,
)

TICK = 0.01


def samples(rng: random.Random) -> list[bytes]:
    cid = lambda: rng.getrandbits(64)  # noqa: E731
    return [
        encode_packet(Hello(cid()), pad_to=MIN_HELLO_SIZE),
        encode_packet(Connect(cid(), os.urandom(32), os.urandom(32) + SessionConfig().transport_parameters().encode())),
        encode_packet(Data(cid(), rng.randrange(1 << 20), (Ping(),))),
        encode_packet(Data(cid(), 7, (Ack(((0, 5),)), MessageFrame(0, b'{"t":"login","id":1,"nick":"x"}')))),
        encode_packet(Data(cid(), 9, (Close(0, "bye"),))),
    ]


def junk(rng: random.Random, base: list[bytes]) -> bytes:
    choice = rng.random()
    if choice < 0.25:
        return os.urandom(rng.randrange(0, 1500))
    data = bytearray(rng.choice(base))
    if choice < 0.35:  # right version nibble, random rest
        return bytes([0x10 | rng.randrange(16)]) + os.urandom(rng.randrange(0, 1400))
    for _ in range(rng.randrange(1, 5)):
        if data:
            data[rng.randrange(len(data))] = rng.randrange(256)
    if rng.random() < 0.3:
        data = data[:rng.randrange(len(data) + 1)]
    elif rng.random() < 0.2:
        data += os.urandom(rng.randrange(1, 64))
    return bytes(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flood")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--junk-rate", type=float, default=2000.0)
    parser.add_argument("--hello-rate", type=float, default=2000.0)
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    target = ("127.0.0.1", args.port)
    selector = selectors.DefaultSelector()
    junk_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    junk_sock.bind(("127.0.0.1", 0))
    junk_sock.setblocking(False)
    selector.register(junk_sock, selectors.EVENT_READ, -1)
    sources = []
    for index in range(args.sources):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        selector.register(s, selectors.EVENT_READ, index)
        sources.append(s)
    out = [0] * args.sources
    inn = [0] * args.sources
    counts = {"junk_sent": 0, "junk_bytes_out": 0, "junk_bytes_in": 0, "junk_replies": 0,
              "hellos_sent": 0, "short_hellos_sent": 0, "hello_replies": 0}
    base = samples(rng)
    print(f"flooding 127.0.0.1:{args.port} for {args.seconds:g} s", flush=True)
    start = time.monotonic()
    end = start + args.seconds
    ticks = 0
    junk_due = hello_due = 0.0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        junk_due += args.junk_rate * TICK
        hello_due += args.hello_rate * TICK
        while junk_due >= 1:
            junk_due -= 1
            datagram = junk(rng, base)
            try:
                junk_sock.sendto(datagram, target)
            except OSError:
                continue
            counts["junk_sent"] += 1
            counts["junk_bytes_out"] += len(datagram)
        while hello_due >= 1:
            hello_due -= 1
            index = rng.randrange(args.sources)
            short = rng.random() < 0.1  # under the 1,200-byte floor: must get no answer
            datagram = encode_packet(Hello(rng.getrandbits(64)),
                                     pad_to=rng.randrange(9, MIN_HELLO_SIZE) if short else MIN_HELLO_SIZE)
            try:
                sources[index].sendto(datagram, target)
            except OSError:
                continue
            out[index] += len(datagram)
            counts["short_hellos_sent" if short else "hellos_sent"] += 1
        for key, _ in selector.select(timeout=0):
            sock = key.fileobj
            while True:
                try:
                    data = sock.recv(65535)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                if key.data == -1:
                    counts["junk_bytes_in"] += len(data)
                    counts["junk_replies"] += 1
                else:
                    inn[key.data] += len(data)
                    counts["hello_replies"] += 1
        ticks += 1
        sleep = start + ticks * TICK - time.monotonic()
        if sleep > 0:
            time.sleep(sleep)
    time.sleep(0.3)  # late answers count too
    for key, _ in selector.select(timeout=0):
        while True:
            try:
                data = key.fileobj.recv(65535)
            except (BlockingIOError, ConnectionRefusedError):
                break
            if key.data == -1:
                counts["junk_bytes_in"] += len(data)
            else:
                inn[key.data] += len(data)
    ratios = [i / o for i, o in zip(inn, out) if o]
    counts.update({
        "seconds": round(time.monotonic() - start, 2),
        "sources": args.sources,
        "hello_bytes_out": sum(out), "hello_bytes_in": sum(inn),
        "amplification_max_per_source": round(max(ratios), 4) if ratios else 0.0,
        "amplification_total": round(sum(inn) / max(1, sum(out)), 4),
        "junk_amplification": round(counts["junk_bytes_in"] / max(1, counts["junk_bytes_out"]), 4),
    })
    print(json.dumps(counts, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
