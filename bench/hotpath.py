"""
The reliable layer's server-side CPU per delivery, sans-IO: no sockets, no
reactor, no chat layer, so it measures the transport's own hot path (issue
16) and nothing the machine's other work or the kernel adds.

M server sessions, each past its handshake; every round the server queues B
lines of 60 bytes to every member (``send``), builds and seals its datagrams
(``build``), the clients take them and acknowledge, and the server takes the
acks (``ack``). Only the server's calls are timed (process time). Each run
is a child process; the baseline, in the same run, is the same measurement
of the tree at ``--base`` (by default ``BASELINE_COMMIT``, before issue
16's levers in the reliable layer), unpacked with ``git archive``. The
least of ``--repeat`` runs is kept: the machine is shared, and noise only
ever adds time.
"""

from __future__ import annotations

import gc
import random
import sys
import time

LINE = b"x" * 60
SERVER_ADDRESS = ("192.0.2.1", 9999)
BASELINE_COMMIT = "88251fa"
"""main before the hot-path levers of issue 16 in the reliable and wire
layers (docs/benchmarks.md, "fan-out, issue 16: the per-delivery path")."""
SHAPES = [(100, 100, 8), (10, 1000, 4)]
"""(members, rounds, lines a round): a room of 100 with 8 lines to pack in
each datagram, and a room of 10 with 4."""


def _pairs(members: int):
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from twistchat.reliable.protection import reset_token
    from twistchat.reliable.session import Session
    from twistchat.wire.packets import Connect, Cookie, decode_packet, encode_packet

    key = X25519PrivateKey.from_private_bytes(bytes(range(32)))
    pairs = []
    for i in range(members):
        address = ("198.51.100.7", 40000 + i)
        client = Session.client(now=0.0, server_address=SERVER_ADDRESS, rng=random.Random(i))
        [(hello, _)] = client.datagrams_to_send(0.0)
        cookie = b"\x00\x00\x00\x01" + b"m" * 16
        client.receive_datagram(encode_packet(Cookie(decode_packet(hello).client_cid, cookie)),
                                SERVER_ADDRESS, 0.0)
        [(connect, _)] = client.datagrams_to_send(0.0)
        packet = decode_packet(connect)
        assert isinstance(packet, Connect)
        server = Session.server(now=0.0, local_cid=0x5E5510 + i, connect=packet, client_address=address,
                                static_key=key, reset_token=reset_token(b"r" * 32, 0x5E5510 + i),
                                rng=random.Random(10_000 + i))
        for datagram, _ in server.datagrams_to_send(0.0):
            client.receive_datagram(datagram, SERVER_ADDRESS, 0.0)
        server.open_receive_window(0.0)
        for datagram, _ in client.datagrams_to_send(0.0):
            server.receive_datagram(datagram, address, 0.0)
        for datagram, _ in server.datagrams_to_send(0.0):
            client.receive_datagram(datagram, SERVER_ADDRESS, 0.0)
        for session in (client, server):
            while session.next_event() is not None:
                pass
        pairs.append((client, server, address))
    return pairs


def measure(members: int, rounds: int, lines: int) -> dict:
    """One run in this process: microseconds of server CPU per delivery, by section."""
    pairs = _pairs(members)
    spent = {"send": 0, "build": 0, "ack": 0}
    clock = time.process_time_ns
    now, delivered, datagrams, acks = 0.001, 0, 0, 0
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000)  # as the server runs (chat/server/collector.py)
    for _ in range(rounds):
        now += 0.002
        start = clock()
        for _, server, _ in pairs:
            for _ in range(lines):
                server.send_message(LINE, now)
        built = clock()
        outs = [server.datagrams_to_send(now) for _, server, _ in pairs]
        done = clock()
        spent["send"] += built - start
        spent["build"] += done - built
        answers = []
        for (client, _, _), out in zip(pairs, outs):
            datagrams += len(out)
            for datagram, _ in out:
                client.receive_datagram(datagram, SERVER_ADDRESS, now + 0.005)
            while client.next_event() is not None:
                delivered += 1
            deadline = client.get_timer()
            if deadline is not None and deadline <= now + 0.03:
                client.handle_timer(max(deadline, now + 0.005))
            answers.append(client.datagrams_to_send(now + 0.03))
        start = clock()
        for (_, server, address), out in zip(pairs, answers):
            for datagram, _ in out:
                server.receive_datagram(datagram, address, now + 0.01)
                acks += 1
            while server.next_event() is not None:
                pass
            deadline = server.get_timer()
            if deadline is not None and deadline <= now + 0.01:
                server.handle_timer(now + 0.01)
        spent["ack"] += clock() - start
    if delivered != members * rounds * lines:
        raise SystemExit(f"delivered {delivered} of {members * rounds * lines}")
    total = sum(spent.values())
    return {"us_per_delivery": round(total / 1e3 / delivered, 2),
            "send_us_per_line": round(spent["send"] / 1e3 / delivered, 2),
            "build_us_per_datagram": round(spent["build"] / 1e3 / max(1, datagrams), 2),
            "ack_us_per_ack": round(spent["ack"] / 1e3 / max(1, acks), 2),
            "lines_per_datagram": round(delivered / max(1, datagrams), 2),
            "acks_per_datagram": round(acks / max(1, datagrams), 2)}


def main(argv: list[str]) -> dict:
    from bench import trees
    args = trees.parse(argv, "python -m bench hotpath", BASELINE_COMMIT, repeat=5, child_args=3,
                       quick_repeat=2)
    if args.child:
        return trees.child(measure, args)
    shapes = []
    for members, rounds, lines in SHAPES:
        rounds = rounds // 4 if args.quick else rounds
        shapes.append(({"members": members, "lines_per_round": lines, "rounds": rounds},
                       [members, rounds, lines]))
    rows = trees.compare("bench.hotpath", shapes, args,
                         lambda row: f"{row['members']} members, {row['lines_per_round']} lines a round")
    return {"bench": "hotpath", "base": args.base, "repeat": args.runs, "shapes": rows}


if __name__ == "__main__":
    main(sys.argv[1:])
