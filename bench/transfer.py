"""``python -m bench transfer``: a file sent in pieces (PROTOCOL.md C14)
from one real ``ChatClient`` to a room of two others, through the real
server and the netem proxy (20 ms round trip, ``--loss`` each way, 10 % by
default), with the issue's figure beside it: how late a room line said by
the sender reaches a recipient while the transfer runs, against the same
lines said without one (p50/p99/max, one line every ``LINE_EVERY`` s).
Prints the transfer rate and whether each copy's sha256 matched.
``--quick``: 1 MiB instead of 8 MiB."""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import tempfile
from pathlib import Path
from typing import Any

from twisted.internet import defer

from bench.common import NetemProcess, ServerProcess, percentile, rounded, run_async, say, sleep, tracebacks

RTT_MS = 20.0
LINE_EVERY = 0.1
BASELINE_LINES = 100
ROOM = "#bench"


class Timing:
    """The ChatObserver of a recipient: when each line and file arrived."""

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.said: dict[str, float] = {}
        self.delays: dict[str, float] = {}
        self.saved: list[Path] = []
        self.failed: list[str] = []

    def message(self, event: Any, replay: bool) -> None:
        if event.text in self.said and event.text not in self.delays:
            self.delays[event.text] = self.reactor.seconds() - self.said[event.text]

    def transfer_received(self, transfer: Any) -> None:
        self.saved.append(transfer.path)

    def transfer_failed(self, transfer: Any, error: Any) -> None:
        self.failed.append(str(error))

    def __getattr__(self, name: str) -> Any:  # every other observer method: nothing to do
        return lambda *args, **kwargs: None


def figures(delays: list[float]) -> dict[str, Any]:
    ms = [d * 1000 for d in delays]
    return {"lines": len(ms), "p50_ms": rounded(percentile(ms, 50)),
            "p99_ms": rounded(percentile(ms, 99)), "max_ms": rounded(max(ms) if ms else None)}


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench transfer")
    parser.add_argument("--quick", action="store_true", help="1 MiB instead of 8 MiB")
    parser.add_argument("--loss", type=float, default=0.1)
    parser.add_argument("--mib", type=float, default=None, help="file size in MiB")
    args = parser.parse_args(argv)
    return run_async(lambda reactor: _main(reactor, args))


async def _main(reactor: Any, args: Any) -> dict:
    from twistchat.client import ChatClient, client_endpoint

    size = int((args.mib or (1 if args.quick else 8)) * 1024 * 1024)
    server = ServerProcess(load_generator=True)
    netem = NetemProcess(server.port, loss=args.loss, delay_ms=RTT_MS / 2, seed=3)
    workdir = Path(tempfile.mkdtemp(prefix="bench-transfer-"))
    source = workdir / "payload.bin"
    source.write_bytes(random.Random(size).randbytes(size))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    say(f"server: {server.kind}; proxy at {args.loss:.0%} loss, {RTT_MS:g} ms RTT; "
        f"{size / 2**20:g} MiB to a room of two")
    clients, watchers = {}, {}
    try:
        for nick in ("sender", "bob", "carol"):
            endpoint = client_endpoint(reactor)
            reactor.listenUDP(0, endpoint, interface="127.0.0.1")
            watchers[nick] = Timing(reactor)
            clients[nick] = ChatClient(reactor, endpoint, ("127.0.0.1", netem.port),
                                       f"{nick}{os.getpid()}", watchers[nick],
                                       downloads=str(workdir / nick), reconnect=False)
            await clients[nick].connect()
            await clients[nick].join(ROOM)
        sender, bob = clients["sender"], watchers["bob"]

        async def say_line(tag: str) -> None:
            bob.said[tag] = reactor.seconds()
            await sender.say(ROOM, tag)

        for i in range(BASELINE_LINES):
            await say_line(f"quiet {i}")
            await sleep(reactor, LINE_EVERY)
        await sleep(reactor, 1.0)
        quiet = [bob.delays[t] for t in bob.said if t.startswith("quiet") and t in bob.delays]
        started = reactor.seconds()
        sent = sender.send_file(ROOM, str(source))
        during_tags = []
        while not sent.called:
            tag = f"busy {len(during_tags)}"
            during_tags.append(tag)
            # not awaited: one every LINE_EVERY whatever the answers
            defer.Deferred.fromCoroutine(say_line(tag)).addErrback(lambda f: say(f"  say: {f.value}"))
            await sleep(reactor, LINE_EVERY)
        result = await sent
        elapsed = reactor.seconds() - started
        await sleep(reactor, 2.0)
        during = [bob.delays[t] for t in during_tags if t in bob.delays]
        copies = {nick: [hashlib.sha256(p.read_bytes()).hexdigest() == digest
                         for p in watchers[nick].saved] for nick in ("bob", "carol")}
    finally:
        for client in clients.values():
            client.stop()
        proxy = netem.counters()
        log = server.stop()
    rate = size * 8 / elapsed / 1e6
    say(f"  {size / 2**20:g} MiB in {elapsed:.1f} s: {rate:.2f} Mbit/s; sha256 ok: {copies}")
    say(f"  room lines without a transfer: {figures(quiet)}")
    say(f"  room lines during the transfer: {figures(during)} "
        f"({len(during_tags) - len(during)} not arrived)")
    return {"bench": "transfer", "loss": args.loss, "rtt_ms": RTT_MS, "bytes": size,
            "seconds": rounded(elapsed), "mbit_per_s": rounded(rate, 3),
            "sha256_ok": copies, "missed": result.get("missed"),
            "lines_without_transfer": figures(quiet), "lines_during_transfer": figures(during),
            "lines_lost_during": len(during_tags) - len(during),
            "proxy": proxy, "server_tracebacks": tracebacks(log)}
