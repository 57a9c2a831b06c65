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

import argparse
import gc
import io
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

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


def _mode() -> str:
    """What the child ran: compiled or pure (``twistchat.compiled``, issue 16)."""
    chosen = sys.modules.get("twistchat.compiled")
    if chosen is None:
        return "pure (a tree without twistchat.compiled)"
    return f"{chosen.MODE} ({chosen.REASON})"


def _child(tree: Path | None, members: int, rounds: int, lines: int, pure: bool = False) -> dict:
    command = [sys.executable, "-m", "bench.hotpath", "--child", str(members), str(rounds), str(lines)]
    if tree is not None:
        command += ["--tree", str(tree)]
    from bench.common import REPO  # in the parent only: it imports twistchat
    from twistchat.compiled import PURE_ENV
    env = {**os.environ, PURE_ENV: "1"} if pure else None
    out = subprocess.run(command, cwd=REPO, check=True, env=env,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _unpack(commit: str, into: Path) -> Path:
    """The ``twistchat`` package as it was at ``commit``."""
    from bench.common import REPO
    archive = subprocess.run(["git", "archive", "--format=tar", commit, "twistchat"], cwd=REPO,
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench hotpath")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=5,
                        help="runs of each shape and tree; the least is kept (default 5)")
    parser.add_argument("--base", default=BASELINE_COMMIT,
                        help=f"the commit to compare with (default {BASELINE_COMMIT})")
    parser.add_argument("--pure-too", action="store_true",
                        help="also run this tree pure Python (TWISTCHAT_PURE_PYTHON=1), issue 16")
    parser.add_argument("--child", nargs=3, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tree", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        if args.tree is not None:
            sys.path.insert(0, str(args.tree))  # before anything imports twistchat
        result = measure(*args.child)
        result["mode"] = _mode()
        print(json.dumps(result))
        return result
    from bench.common import say
    repeat = 2 if args.quick else args.repeat
    rows = []
    with tempfile.TemporaryDirectory(prefix="twistchat-hotpath-") as scratch:
        base_tree = _unpack(args.base, Path(scratch))
        for members, rounds, lines in SHAPES:
            if args.quick:
                rounds //= 4
            row = {"members": members, "lines_per_round": lines, "rounds": rounds}
            trees = [("base", base_tree, False), ("this tree", None, False)]
            if args.pure_too:
                trees.insert(1, ("this tree, pure", None, True))
            for name, tree, pure in trees:
                runs = [_child(tree, members, rounds, lines, pure) for _ in range(repeat)]
                row[name] = min(runs, key=lambda r: r["us_per_delivery"])
                say(f"{members} members, {lines} lines a round, {name}: {row[name]}")
            ratio = row["base"]["us_per_delivery"] / max(row["this tree"]["us_per_delivery"], 1e-9)
            row["speedup"] = round(ratio, 2)
            say(f"  this tree takes 1/{ratio:.2f} of base {args.base}'s CPU per delivery")
            if args.pure_too:
                pure_ratio = row["this tree, pure"]["us_per_delivery"] / max(
                    row["this tree"]["us_per_delivery"], 1e-9)
                row["compiled_vs_pure"] = round(pure_ratio, 2)
                say(f"  compiled: 1/{pure_ratio:.2f} of pure Python's CPU per delivery")
            rows.append(row)
    return {"bench": "hotpath", "base": args.base, "repeat": repeat, "shapes": rows}


if __name__ == "__main__":
    main(sys.argv[1:])
