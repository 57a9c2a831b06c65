"""The ``store`` fixture: every store implementation, for the contract tests.
The Redis one talks to the real server of the ``redis_url`` fixture, so its
tests wait on pytest-twisted's reactor (``synchronous.waiting_on_the_reactor``)."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from twistchat.store import open_store
from twistchat.store.memory import MemoryStore
from twistchat.store.sqlite import SQLiteStore
from twistchat.store.workers import InlineWorker

from .synchronous import on_the_reactor, resolved, waiting_on_the_reactor


@pytest.fixture(params=["memory", "sqlite-memory", "sqlite-file",
                        pytest.param("redis", marks=pytest.mark.redis)])
def store(request, tmp_path):
    if request.param == "redis":
        from twisted.internet import reactor

        s = open_store(reactor, "", redis=request.getfixturevalue("redis_url"))
        on_the_reactor(s.connect())
        with waiting_on_the_reactor():
            yield s
        on_the_reactor(s.close())
        return
    if request.param == "memory":
        s = MemoryStore()
    elif request.param == "sqlite-memory":
        s = SQLiteStore(Clock(), ":memory:", worker=InlineWorker())
    else:
        s = open_store(Clock(), str(tmp_path / "chat.sqlite3"), worker=InlineWorker())
    yield s
    resolved(s.close())
