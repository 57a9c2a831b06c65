"""``python -m bench.login_stall``: reproduction of a finding, not a bench.

Password-less registration hashes a new secret with scrypt (N=2^14, tens of
ms) synchronously on the reactor thread, so every other client waits while
it runs.  Two clients chat (10 lines/s each) through a real server with the
default configuration; then ``--nicks`` fresh sessions register at once.
Prints the chatting clients' latency before and during the registrations."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from twisted.internet import defer

from bench.common import (
    LOOPBACK, ServerProcess, client_endpoints, connect_many, percentile, rounded, run_async,
    sleep,
)
from bench.latency import impaired_chat


async def _main(reactor: Any, args: Any) -> dict:
    server = ServerProcess(load_generator=True)
    try:
        calm = await impaired_chat(reactor, server.port, senders=1, receivers=1, per_sender=40,
                                   rate=10.0, room="#calm", tag="a")
        endpoints = client_endpoints(reactor, 4)
        box: dict = {}

        def register() -> None:  # once the chatting clients are in and talking
            box["started"] = time.monotonic()
            box["logins"] = defer.Deferred.fromCoroutine(connect_many(
                endpoints, (LOOPBACK, server.port), [f"new{i}" for i in range(args.nicks)],
                concurrency=args.nicks))
        reactor.callLater(1.5, register)
        during = await impaired_chat(reactor, server.port, senders=1, receivers=1, per_sender=40,
                                     rate=10.0, room="#busy", tag="b")
        await box["logins"]
        login_seconds = time.monotonic() - box["started"]
        for endpoint in endpoints:
            await endpoint.bench_port.stopListening()
    finally:
        server.stop()
    return {"finding": "login_stall", "server": server.kind, "new_registrations": args.nicks,
            "registrations_took_s": round(login_seconds, 2),
            "chat_p99_ms_before": calm["p99_ms"], "chat_max_ms_before": calm["max_ms"],
            "chat_p99_ms_during": during["p99_ms"], "chat_max_ms_during": during["max_ms"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.login_stall")
    parser.add_argument("--nicks", type=int, default=100)
    args = parser.parse_args(argv)
    print(json.dumps(run_async(lambda reactor: _main(reactor, args)), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
