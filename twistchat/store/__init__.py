"""Persistence behind one small interface (``base.ChatStore``): an in-memory
store for tests and an SQLite store as the embedded default.  ``open_store``
picks one from a ``--db`` string (here, above both, so neither imports the
other's chooser)."""

from typing import Any

from twisted.internet.interfaces import IReactorThreads, IReactorTime

from twistchat.store.base import Account, ChatStore, HistoryEntry, StoredDm
from twistchat.store.memory import MemoryStore
from twistchat.store.sqlite import SQLiteStore

MEMORY = ":memory:"


def open_store(reactor: IReactorTime | IReactorThreads, db: str, **kwargs: Any) -> ChatStore:
    """Open the store a ``--db`` option names: ``":memory:"`` (or ``"memory"``)
    for the in-memory store, anything else is an SQLite file path; ``kwargs``
    go to SQLiteStore (``worker=``)."""
    if db in (MEMORY, "memory"):
        return MemoryStore()
    return SQLiteStore(reactor, db, **kwargs)


__all__ = ["Account", "ChatStore", "HistoryEntry", "StoredDm", "open_store"]
