"""One timer mechanism for the whole endpoint, however many sessions."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock

from twistchat.endpoint.api import MessageProtocol
from twistchat.endpoint.endpoint import ClientEndpoint, ServerEndpoint
from twistchat.endpoint.server import Admission
from twistchat.endpoint.timers import DUE_LIMIT, WALK_LIMIT, TimerQueue
from twistchat.netsim.network import SimulatedNetwork

from .harness import SERVER


def test_timer_queue_fires_in_deadline_order_with_one_delayed_call():
    clock = Clock()
    fired = []
    queue = TimerQueue(clock, lambda due: fired.extend(key for key, _ in due))
    for key, deadline in [("c", 3.0), ("a", 1.0), ("b", 2.0)]:
        queue.set(key, deadline)
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(1.5)
    assert fired == ["a"]
    clock.advance(2)
    assert fired == ["a", "b", "c"]
    assert clock.getDelayedCalls() == []


def test_timer_queue_rescheduling_and_discard():
    clock = Clock()
    fired = []
    queue = TimerQueue(clock, lambda due: fired.extend(due))
    queue.set("a", 1.0)
    queue.set("a", 5.0)   # moved later: must not fire at 1.0
    queue.set("b", 2.0)
    queue.discard("b")
    clock.advance(3)
    assert fired == []
    clock.advance(2)
    assert fired == [("a", 5.0)]


def _server_and_client():
    """A server endpoint that admits as fast as asked and a client endpoint, on the simulator."""
    clock = Clock()
    network = SimulatedNetwork(clock, seed=1, rtt=0.02)
    server = ServerEndpoint(clock, lambda address: MessageProtocol(), rng=random.Random(1),
                            admission=Admission.for_load_generators())
    client = ClientEndpoint(clock, rng=random.Random(2))
    network.attach(server, SERVER)
    network.attach(client, ("127.0.0.20", 40000))
    return clock, network, server, client


def test_a_thousand_sessions_share_one_timer():
    clock, network, server, client = _server_and_client()
    connected = []
    for _ in range(1000):
        client.connect(SERVER, MessageProtocol()).addCallback(connected.append)
    network.run(until=5, stop=lambda: len(connected) == 1000)
    assert len(server.sessions) == 1000
    network.run(until=60)  # a minute of keepalives
    assert len(server.sessions) == 1000
    # Delayed calls: the two endpoints' timers plus datagrams in flight.
    timers = [c for c in clock.getDelayedCalls() if "TimerQueue" in repr(c.func)]
    assert len(timers) == 2


def test_a_keepalive_is_answered_in_the_call_that_reads_it():
    """No later reactor turn for a keepalive's ACK: the server's write is
    made from ``datagramReceived`` itself, and nothing is left scheduled."""
    _, network, server, client = _server_and_client()
    connected = []
    client.connect(SERVER, MessageProtocol()).addCallback(connected.append)
    network.run(until=5, stop=lambda: bool(connected))
    network.run(until=10)
    keepalives = []
    real = server.datagramReceived

    def received(datagram, address):
        sent = server.counters.datagrams_sent
        real(datagram, address)
        keepalives.append((server.counters.datagrams_sent - sent, server._flush_call))

    server.datagramReceived = received
    network.run(until=60)  # two or three keepalives
    assert len(keepalives) >= 2
    assert all(item == (1, None) for item in keepalives)
    assert len(server.sessions) == 1 and connected[0].connection is not None


def test_a_server_on_the_simulator_writes_through_its_transport():
    """``raw_sendto`` is only for a Twisted UDP port: anything else keeps its ``write``."""
    clock = Clock()
    network = SimulatedNetwork(clock, seed=1, rtt=0.02)
    server = ServerEndpoint(clock, lambda address: MessageProtocol(), rng=random.Random(1))
    network.attach(server, SERVER)
    assert server._sendto is None


KEYS = st.sampled_from("abcde")
STEPS = st.lists(st.one_of(
    st.tuples(st.just("set"), KEYS, st.integers(0, 40).map(lambda n: n / 4)),
    st.tuples(st.just("forget"), KEYS, st.just(0.0)),
    st.tuples(st.just("advance"), st.just(""), st.integers(0, 12).map(lambda n: n / 4)),
), max_size=60)


LIMITS = st.sampled_from([(WALK_LIMIT, DUE_LIMIT), (1, 1), (2, 3)])
"""The queue's upkeep limits: as built, and tiny (the upkeep spread over many turns)."""


@settings(max_examples=600, deadline=None)
@given(STEPS, LIMITS)
def test_timer_queue_fires_every_key_once_at_its_last_deadline_never_early_nor_late(steps, limits):
    """Against a model (a dict of deadlines): whatever the order in which
    deadlines move earlier, later or away, a key fires exactly when the
    clock reaches its last deadline (or at once if that has passed), once,
    however few entries and keys one turn may walk and fire."""
    walk_limit, due_limit = limits
    clock = Clock()
    fired: list[tuple[str, float, float]] = []
    queue = TimerQueue(clock, lambda due: fired.extend((key, d, clock.seconds()) for key, d in due),
                       walk_limit=walk_limit, due_limit=due_limit)
    model: dict[str, float] = {}
    expected: list[tuple[str, float, float]] = []

    def advance(seconds: float) -> None:
        target = clock.seconds() + seconds
        while True:  # the model's firings, at each deadline reached, in order
            due = sorted((d, k) for k, d in model.items() if d <= target)
            if not due:
                break
            d, _ = due[0]
            at = max(d, clock.seconds())
            for dd, k in due:
                if dd <= at:
                    expected.append((k, dd, at))
                    del model[k]
            clock.advance(at - clock.seconds())
        clock.advance(target - clock.seconds())

    for op, key, value in steps:
        if op == "set":
            deadline = clock.seconds() + value
            queue.set(key, deadline)
            model[key] = deadline
            if value == 0.0:
                advance(0.0)  # due now: fires on the next timer turn
        elif op == "forget":
            queue.discard(key)
            model.pop(key, None)
        else:
            advance(value)
    advance(100.0)
    assert sorted(fired) == sorted(expected)
    assert len(queue) == 0


def _run_due_turns(clock: Clock, queue: TimerQueue) -> list[int]:
    """Run the clock's due calls one at a time (``Clock.advance`` runs them
    all at once); the entries the queue walked in each."""
    walked = []
    while clock.calls and clock.calls[0].getTime() <= clock.seconds():
        call = clock.calls.pop(0)
        before = queue.entries_walked
        call.func(*call.args, **call.kw)
        walked.append(queue.entries_walked - before)
    return walked


def test_deadlines_that_all_moved_later_are_walked_a_bounded_chunk_at_a_time():
    """100,000 idle sessions' deadlines all move later between two turns (a
    keepalive each): finding the earliest live one walked every entry before
    it at once, a 150-480 ms stall. Now each turn walks at most two chunks
    (the expiry's and the re-arming's), none fires early, and one call is
    pending throughout."""
    clock = Clock()
    fired = []
    queue = TimerQueue(clock, fired.extend)
    keys = 20 * WALK_LIMIT
    for key in range(keys):
        queue.set(key, 10.0 + key / keys)
    for key in range(keys):
        queue.set(key, 100.0 + key / keys)  # a keepalive each: later
    walked = []
    for _ in range(keys):
        clock.rightNow = max(clock.seconds(), clock.calls[0].getTime())  # time only: no call run
        walked += _run_due_turns(clock, queue)
        assert len(clock.calls) == 1
        if clock.calls[0].getTime() >= 100.0:
            break
    assert fired == []
    assert max(walked) <= 2 * WALK_LIMIT
    assert sum(walked) == keys  # each live entry moved once, none twice
    clock.advance(101.0 - clock.seconds())
    assert sorted(key for key, _ in fired) == list(range(keys))


def test_many_keys_due_at_once_fire_in_turns_at_the_same_time():
    """The reactor reads what came in between two batches of due keys."""
    clock = Clock()
    batches = []
    queue = TimerQueue(clock, lambda due: batches.append((clock.seconds(), len(due))))
    for key in range(3 * DUE_LIMIT + 1):
        queue.set(key, 5.0)
    clock.advance(5.0)
    assert batches == [(5.0, DUE_LIMIT)] * 3 + [(5.0, 1)]


def test_timers_that_take_long_to_fire_are_logged_with_how_many_were_due(monkeypatch):
    from twisted.logger import globalLogPublisher

    from twistchat.endpoint import base

    clock, network, server, client = _server_and_client()
    connected = []
    for _ in range(3):
        client.connect(SERVER, MessageProtocol()).addCallback(connected.append)
    network.run(until=5, stop=lambda: len(connected) == 3)
    now = [0.0]
    monkeypatch.setattr(base, "perf_counter", lambda: now[0])
    real_flush = server._flush
    cost = [0.0]

    def flush():
        now[0] += cost[0]  # as if servicing what the timers made dirty took that long
        real_flush()
    monkeypatch.setattr(server, "_flush", flush)
    due = [(handle, clock.seconds()) for handle in server.sessions.values()]
    logged = []
    globalLogPublisher.addObserver(logged.append)
    try:
        cost[0] = base.SLOW_TIMERS_WARN_SECONDS / 2
        server._timers_fired(due)  # quick enough: nothing said
        cost[0] = base.SLOW_TIMERS_WARN_SECONDS * 3
        server._timers_fired(due)
    finally:
        globalLogPublisher.removeObserver(logged.append)
    (warning,) = [e for e in logged if "endpoint's timers" in e.get("log_format", "")]
    assert round(warning["ms"]) == 300 and warning["due"] == 3
