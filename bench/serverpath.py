"""
The whole server's CPU per room line delivered, sans-IO: ``bench hotpath``
times the reliable layer alone; this times everything a real server does
for a line (the ``say`` read and opened, decoded, dispatched, kept in the
store, encoded once, queued to every member, packed, sealed, written, and
the members' acks taken), with nothing the kernel or the machine's other
work adds.

A ``ChatServer`` on a ``ServerEndpoint`` and real ``ChatClient``s on the
network simulator, in virtual time; every round, ``senders`` members say a
line each and wait for its ok. Only the server endpoint's entry points are
timed (process time): datagrams in, its timers, its end-of-turn flush. Its
writes are kept aside and handed to the simulator after each timed call,
and the simulator's clock sorts its calls when it runs them rather than at
every ``callLater`` (the reactor keeps a heap), so neither is charged to
the server. Each timed call also runs through ``operator.call``, so the
same loop can be counted in instructions (``valgrind --tool=callgrind
--collect-atstart=no --toggle-collect=_operator_call python -m
bench.serverpath --child MEMBERS ROUNDS``) or sampled (py-spy, keeping the
stacks that pass through ``timed``); cProfile switched on and off around
each call misattributes time, so there is no profile option.

Each run is a child process; the base, in the same run, is the tree at
``--base`` unpacked with ``git archive`` (``bench/trees.py``, shared with ``bench hotpath``); the
least of ``--repeat`` runs is kept.
"""

from __future__ import annotations

import gc
import operator
import random
import sys
import time
from typing import Any

BASELINE_COMMIT = "27460d4"
"""main before this bench existed (and before the chat codec's lever)."""
SHAPES = [(10, 200), (100, 20)]
"""(members, rounds): ten senders a round (every member of the room of 10)."""
SENDERS = 10
TEXT = "x" * 32
SERVER = ("192.0.2.10", 9999)
UNLIMITED = dict(registration_rate=1e9, registration_burst=1e9, rate=1e9, burst=10**9,
                 credential_per_source=10**6, credential_per_source_waiting=10**6,
                 scrypt_n=16, scrypt_r=1, scrypt_p=1)
"""The load generator's logins and lines all come from one /24: the limits
that would otherwise be measured are lifted (as ``bench fanout`` does), and
scrypt made cheap (it runs once a client, before the timing)."""


def _lazy_clock():
    from twisted.internet import base
    from twisted.internet.task import Clock

    class LazyClock(Clock):
        """``task.Clock`` sorts all its calls at every ``callLater`` and
        removes a cancelled one from a list; this one does both when the
        calls are read, so what the server's timers cost is what they cost."""

        def __init__(self) -> None:
            self._calls: list[base.DelayedCall] = []
            self._dirty = False
            super().__init__()

        @property  # type: ignore[override]
        def calls(self) -> list[base.DelayedCall]:
            if self._dirty:
                self._calls[:] = sorted((c for c in self._calls if not c.cancelled),
                                        key=base.DelayedCall.getTime)
                self._dirty = False
            return self._calls

        @calls.setter
        def calls(self, value: list[base.DelayedCall]) -> None:
            self._calls = value

        def _sortCalls(self) -> None:
            self._dirty = True

        def _changed(self, _call: base.DelayedCall) -> None:
            self._dirty = True

        def callLater(self, delay, callable, *args, **kw):  # noqa: A002 (Twisted's names)
            call = base.DelayedCall(self.seconds() + delay, callable, args, kw,
                                    self._changed, self._changed, self.seconds)
            self._calls.append(call)
            self._dirty = True
            return call

        def getDelayedCalls(self):
            return list(self.calls)

    return LazyClock()


def measure(members: int, rounds: int) -> dict:
    """One run in this process: microseconds of server CPU per delivery."""
    from twistchat.chat.server import ChatServer, ServerConfig
    from twistchat.chat.server.service import session_config
    from twistchat.client import ChatClient, ChatObserver, ClientState
    from twistchat.client.limits import client_endpoint
    from twistchat.endpoint.endpoint import ServerEndpoint
    from twistchat.netsim.network import SimulatedNetwork
    from twistchat.store.memory import MemoryStore

    clock = _lazy_clock()
    clock.advance(1_700_000_000)
    network = SimulatedNetwork(clock, seed=1, rtt=0.02)
    config = ServerConfig(**UNLIMITED, max_members_per_room=max(members, 100))
    server = ChatServer(MemoryStore(), clock, config, rng=random.Random(1))
    endpoint = ServerEndpoint(clock, lambda address: server.build_protocol(),
                              config=session_config(config), rng=random.Random(2))
    network.attach(endpoint, SERVER)
    server.start()

    delivered = [0]

    class Counting(ChatObserver):
        def message(self, event: Any, replay: bool) -> None:
            delivered[0] += 1

    def wait(deferred: Any) -> Any:
        results: list = []
        deferred.addBoth(results.append)
        network.run(until=clock.seconds() + 30, stop=lambda: bool(results))
        if not results or hasattr(results[0], "raiseException"):
            raise SystemExit(f"a client step failed: {results}")
        return results[0]

    clients = []
    for i in range(members):
        client_side = client_endpoint(clock, rng=random.Random(1000 + i))
        network.attach(client_side, ("198.51.100.7", 40000 + i))
        client = ChatClient(clock, client_side, SERVER, f"m{i}", Counting(),
                            state=ClientState(None), rng=random.Random(i))
        wait(client.connect())
        wait(client.join("#fan"))
        clients.append(client)
    network.run(until=clock.seconds() + 2.0)

    spent = [0]
    held: list[tuple[bytes, tuple]] = []
    write = endpoint.transport.write

    depth = [0]

    def timed(function: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if depth[0]:  # called from another timed call (a flush from a read): counted there
                return function(*args, **kwargs)
            depth[0] += 1
            start = time.process_time_ns()
            try:
                return operator.call(function, *args, **kwargs)
            finally:
                spent[0] += time.process_time_ns() - start
                depth[0] -= 1
                for datagram, address in held:
                    write(datagram, address)
                held.clear()
        return call

    endpoint._sendto = lambda datagram, address: held.append((datagram, address))
    for name in ("datagramReceived", "_timers_fired", "_flush"):
        setattr(endpoint, name, timed(getattr(endpoint, name)))
    start_count, start_datagrams = delivered[0], endpoint.counters.datagrams_sent
    threshold = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000)  # as the server runs (chat/server/collector.py)
    try:
        senders = clients[:SENDERS]
        for _ in range(rounds):
            for said in [client.say("#fan", TEXT) for client in senders]:
                wait(said)
        network.run(until=clock.seconds() + 1.0)
    finally:  # a test runs this in its own process: leave the collector as it was
        gc.set_threshold(*threshold)
        gc.unfreeze()
    count = delivered[0] - start_count
    expected = rounds * len(senders) * (members - 1)
    if count != expected:
        raise SystemExit(f"delivered {count} of {expected}")
    datagrams = endpoint.counters.datagrams_sent - start_datagrams
    return {"us_per_delivery": round(spent[0] / 1e3 / count, 2), "deliveries": count,
            "datagrams_out": datagrams, "lines_per_datagram": round(count / max(datagrams, 1), 2)}


def main(argv: list[str]) -> dict:
    from bench import trees
    args = trees.parse(argv, "python -m bench serverpath", BASELINE_COMMIT, repeat=3, child_args=2,
                       quick_repeat=1)
    if args.child:
        return trees.child(measure, args)
    shapes = []
    for members, rounds in SHAPES:
        rounds = rounds // 4 if args.quick else rounds
        shapes.append(({"members": members, "senders": min(members, SENDERS), "rounds": rounds},
                       [members, rounds]))
    rows = trees.compare("bench.serverpath", shapes, args, lambda row: f"room of {row['members']}")
    return {"bench": "serverpath", "base": args.base, "repeat": args.runs, "shapes": rows}


if __name__ == "__main__":
    main(sys.argv[1:])
