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
    try:
        collector.tune_collector()
        assert gc.get_threshold() == (collector.YOUNG_THRESHOLD, *collector.OLDER_THRESHOLDS)
        assert gc.get_freeze_count() > 0  # what start-up built is not walked again
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


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
    assert list(built) == []


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
