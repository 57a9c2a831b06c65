"""The server process's collector policy: set by ``twistd twistchat`` only,
never by importing the library (tests and embedding programs keep theirs)."""

from __future__ import annotations

import gc

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
    built = object()
    monkeypatch.setattr(collector, "tune_collector", lambda: calls.append("tuned"))
    monkeypatch.setattr(service, "make_service", lambda options: built)
    assert serviceMaker.makeService(object()) is built
    assert calls == ["tuned"]
