"""The server process's collector policy: set by ``twistd twistchat`` only,
never by importing the library (tests and embedding programs keep theirs)."""

from __future__ import annotations

import gc
import platform
import sys

import pytest
from twisted.application.internet import TimerService
from twisted.application.service import MultiService

from twistchat.chat.server import collector


def test_tune_collector_freezes_start_up_and_collects_less_often():
    before = gc.get_threshold()
    callbacks = list(gc.callbacks)
    try:
        collector.tune_collector()
        collector.tune_collector()
        assert gc.get_threshold() == (collector.YOUNG_THRESHOLD, *collector.OLDER_THRESHOLDS)
        assert gc.get_freeze_count() > 0  # what start-up built is not walked again
        watches = [c for c in gc.callbacks if isinstance(c, collector.FullCollectionWatch)]
        assert len(watches) == 1  # once, however often it is called
        gc.collect()
        assert watches[0].count >= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
        gc.callbacks[:] = callbacks


def test_a_long_full_collection_is_logged_as_a_warning_and_a_short_one_at_debug():
    from twisted.logger import LogLevel, globalLogPublisher

    now = [0.0]
    watch = collector.FullCollectionWatch(clock=lambda: now[0])
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    try:
        watch("start", {"generation": 2})
        now[0] += 0.01
        watch("stop", {"generation": 2, "collected": 7})
        watch("start", {"generation": 2})
        now[0] += 0.25
        watch("stop", {"generation": 2, "collected": 3})
    finally:
        globalLogPublisher.removeObserver(events.append)
    mine = [e for e in events if e.get("log_namespace", "").endswith("FullCollectionWatch")]
    assert [(e["log_level"], round(e["ms"])) for e in mine] == [(LogLevel.debug, 10), (LogLevel.warn, 250)]
    assert watch.count == 2 and watch.longest == pytest.approx(0.25)


@pytest.mark.parametrize("generation, which", [(1, "middle"), (0, "young")])
def test_a_long_younger_collection_is_logged_and_a_short_one_not(generation, which):
    from twisted.logger import LogLevel, formatEvent, globalLogPublisher

    now = [0.0]
    watch = collector.FullCollectionWatch(clock=lambda: now[0])
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    try:
        for seconds in (0.02, 0.4):
            watch("start", {"generation": generation})
            now[0] += seconds
            watch("stop", {"generation": generation, "collected": 0})
    finally:
        globalLogPublisher.removeObserver(events.append)
    mine = [e for e in events if e.get("log_namespace", "").endswith("FullCollectionWatch")]
    assert [(e["log_level"], round(e["ms"])) for e in mine] == [(LogLevel.warn, 400)]
    assert formatEvent(mine[0]).startswith(f"{which} garbage collection (generation {generation}) took 400 ms")
    longest = watch.middle_longest if generation == 1 else watch.young_longest
    assert watch.count == 0 and longest == pytest.approx(0.4)  # not a full one


def test_the_twistd_plugin_sets_it_and_importing_the_server_does_not(monkeypatch):
    from twistchat.chat.server import service
    from twisted.plugins.twistchat_plugin import serviceMaker

    assert gc.get_threshold()[0] != collector.YOUNG_THRESHOLD
    calls = []
    built = MultiService()
    monkeypatch.setattr(collector, "tune_collector", lambda: calls.append("tuned"))
    monkeypatch.setattr(collector, "heap_trimmer", lambda: lambda: calls.append("trimmed"))
    monkeypatch.setattr(service, "make_service", lambda options: built)
    assert serviceMaker.makeService(object()) is built
    assert calls == ["tuned"]
    timers = [child for child in built if isinstance(child, TimerService)]
    assert [timer.step for timer in timers] == [collector.TRIM_INTERVAL]
    timers[0].call[0]()  # what it runs every TRIM_INTERVAL while the server runs
    assert calls == ["tuned", "trimmed"]


def test_the_plugin_trims_nothing_where_the_c_library_cannot(monkeypatch):
    from twistchat.chat.server import service
    from twisted.plugins.twistchat_plugin import serviceMaker

    built = MultiService()
    monkeypatch.setattr(collector, "tune_collector", lambda: None)
    monkeypatch.setattr(collector, "heap_trimmer", lambda: None)
    monkeypatch.setattr(service, "make_service", lambda options: built)
    serviceMaker.makeService(object())
    assert [type(child).__name__ for child in built] == ["StallWatch"]  # no trimming


class _NoTrim:
    """A C library without ``malloc_trim`` (musl, macOS)."""


def test_heap_trimmer_is_none_without_malloc_trim(monkeypatch):
    monkeypatch.setattr(collector.ctypes, "CDLL", lambda name: _NoTrim())
    assert collector.heap_trimmer() is None


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="malloc_trim is glibc's")
def test_heap_trimmer_calls_glibc():
    trim = collector.heap_trimmer()
    assert trim is not None
    trim()  # returns, changes nothing Python can see
