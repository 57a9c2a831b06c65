"""The ``store`` fixture: every store implementation, for the contract tests."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from twistchat.store import open_store
from twistchat.store.memory import MemoryStore
from twistchat.store.sqlite import SQLiteStore
from twistchat.store.workers import InlineWorker

from .synchronous import resolved


@pytest.fixture(params=["memory", "sqlite-memory", "sqlite-file"])
def store(request, tmp_path):
    if request.param == "memory":
        s = MemoryStore()
    elif request.param == "sqlite-memory":
        s = SQLiteStore(Clock(), ":memory:", worker=InlineWorker())
    else:
        s = open_store(Clock(), str(tmp_path / "chat.sqlite3"), worker=InlineWorker())
    yield s
    resolved(s.close())
