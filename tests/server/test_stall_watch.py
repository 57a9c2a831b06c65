"""The server's event-loop lag (``StallWatch``): a reactor that could not run
its timers for a while is logged, with how long; one that kept up is not."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher

from twistchat.chat.server.stall_watch import CHECK_INTERVAL, STALL_WARN_SECONDS, StallWatch


def _watched():
    clock = Clock()
    watch = StallWatch(clock, clock=clock.seconds)
    events = []
    globalLogPublisher.addObserver(events.append)
    watch.startService()
    return clock, watch, events


def _warnings(events):
    return [e for e in events if e.get("log_namespace", "").endswith("StallWatch")]


def test_a_reactor_that_keeps_up_logs_nothing():
    clock, watch, events = _watched()
    try:
        clock.pump([CHECK_INTERVAL] * 200)  # ten seconds of checks, each on time
        assert watch.count == 0 and watch.longest < 1e-9 and _warnings(events) == []
    finally:
        globalLogPublisher.removeObserver(events.append)
        watch.stopService()


def test_a_stall_is_logged_with_its_length_and_a_short_one_only_counted():
    clock, watch, events = _watched()
    try:
        clock.advance(CHECK_INTERVAL + STALL_WARN_SECONDS / 2)  # late, under the warning
        assert watch.count == 0 and _warnings(events) == []
        clock.advance(CHECK_INTERVAL + 0.3)  # the reactor stood still 300 ms past the check
        assert watch.count == 1 and abs(watch.longest - 0.3) < 1e-9
        (warning,) = _warnings(events)
        assert round(warning["ms"]) == 300
        clock.advance(CHECK_INTERVAL)  # on time again: checks go on
        assert watch.count == 1 and len(clock.getDelayedCalls()) == 1
    finally:
        globalLogPublisher.removeObserver(events.append)
        watch.stopService()
    assert clock.getDelayedCalls() == []  # stopped: no check left behind
