"""``python -m bench.scale_holder``: a process of ``bench scale``'s that holds
idle sessions, so that the room's members are not in the same process.

At 100,000 sessions the load generator's own keepalives took 80 % of a core
(issue 16): with every session in one process, the fan-out of one line to
the room's 1,000 members waited for that process, not for the server (real
members do not share a CPU with 99,000 strangers). This process connects
and logs in ``--count`` sessions, keeps them alive at the default keepalive,
and prints a status line every second (``status CONNECTED LOST``) and
``ready CONNECTED`` once all are in; it stops on SIGTERM."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from twisted.internet import defer, task

from bench.common import LOOPBACK, client_endpoints, connect_many, run_async, say

SESSIONS_PER_ENDPOINT = 250
"""As in the room's process: many sessions share a socket, as behind a NAT."""
STATUS_INTERVAL = 1.0
CONNECT_CONCURRENCY = 200


def status_line(clients: list) -> str:
    lost = sum(1 for c in clients if c.lost is not None)
    return f"status {len(clients)} {lost}"


async def hold(reactor: Any, args: Any) -> None:
    endpoints = client_endpoints(reactor, (args.count + SESSIONS_PER_ENDPOINT - 1) // SESSIONS_PER_ENDPOINT)
    clients: list = []
    status = task.LoopingCall(lambda: say(status_line(clients)))
    status.clock = reactor
    status.start(STATUS_INTERVAL)
    nicks = [f"{args.prefix}{i}" for i in range(args.first, args.first + args.count)]
    await connect_many(endpoints, (LOOPBACK, args.port), nicks, concurrency=CONNECT_CONCURRENCY,
                       connected=clients.append)
    say(f"ready {len(clients)}")
    await defer.Deferred()  # until SIGTERM stops the reactor


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_holder")
    parser.add_argument("--port", type=int, required=True, help="the server's UDP port on 127.0.0.1")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--first", type=int, default=0, help="number of the first nick")
    parser.add_argument("--prefix", default="h", help="nicks are PREFIX + number")
    args = parser.parse_args(argv)
    run_async(lambda reactor: hold(reactor, args))


if __name__ == "__main__":
    main(sys.argv[1:])
