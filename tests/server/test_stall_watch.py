"""The server's event-loop lag (``StallWatch``): a reactor that could not run
its timers for a while is logged, with how long and where its thread was
seen meanwhile; one that kept up is not."""

from __future__ import annotations

import sys

from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher

from twistchat.chat.server.stall_watch import (
    CHECK_INTERVAL, STALL_WARN_SECONDS, StallWatch, where,
)


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


def _frame_in_a_long_call():
    """A frame standing for the reactor's thread stuck in a call."""
    return sys._getframe()


def test_a_stall_names_where_the_reactor_thread_was_seen_most():
    reactor, now = Clock(), [0.0]
    stuck = _frame_in_a_long_call()
    seen = [stuck]
    watch = StallWatch(reactor, clock=lambda: now[0], reactor_frame=lambda: seen[0])
    events = []
    globalLogPublisher.addObserver(events.append)
    watch.startService()
    try:
        now[0] = CHECK_INTERVAL + STALL_WARN_SECONDS / 2
        watch.sample()  # overdue, but by less than a stall: nothing noted
        now[0] = CHECK_INTERVAL + 0.2  # the reactor's thread stuck 200 ms past the check...
        for _ in range(3):
            watch.sample()  # ...seen three times in the long call,
        seen[0] = sys._getframe()
        watch.sample()  # ...once elsewhere,
        reactor.advance(CHECK_INTERVAL)  # and the check runs at last
        (warning,) = _warnings(events)
        text = formatEvent(warning)
        assert round(warning["ms"]) == 200
        assert "_frame_in_a_long_call" in text and "(3 of 4 looks)" in text
        now[0] += CHECK_INTERVAL + 0.15  # the next check 150 ms late, with no look at all
        reactor.advance(CHECK_INTERVAL)
        assert "not seen in Python" in formatEvent(_warnings(events)[1])
    finally:
        globalLogPublisher.removeObserver(events.append)
        watch.stopService()
    watch.sample()  # stopped: no check is due, nothing noted
    assert watch._samples == []


def test_where_names_a_frame_and_its_callers_innermost_first():
    def inner():
        return where(sys._getframe(), depth=2)
    places = inner().split(" < ")
    assert len(places) == 2
    assert places[0].startswith("server/test_stall_watch.py:") and places[0].endswith(" inner")
    assert places[1].endswith(" test_where_names_a_frame_and_its_callers_innermost_first")
