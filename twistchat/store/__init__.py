"""Persistence behind one small interface (``base.ChatStore``): an in-memory
store for tests, an SQLite store as the embedded default, and a Redis store
that several nodes share (issue 17).  ``open_store`` picks one from the
``--db`` and ``--redis`` strings (here, above them all, so none imports
another's chooser)."""

from typing import Any

from twisted.internet.interfaces import IReactorThreads, IReactorTime

from twistchat.store.base import Account, ChatStore, HistoryEntry, StoredDm
from twistchat.store.memory import MemoryStore
from twistchat.store.sqlite import SQLiteStore

MEMORY = ":memory:"


def open_store(reactor: IReactorTime | IReactorThreads, db: str, redis: str = "",
               **kwargs: Any) -> ChatStore:
    """Open the store the options name: with a ``--redis`` URL the Redis
    store (``--db`` unused); else ``":memory:"`` (or ``"memory"``) for the
    in-memory store, anything else is an SQLite file path; ``kwargs`` go to
    SQLiteStore (``worker=``) or RedisStore (its timeouts)."""
    if redis:
        # Imported here: txredisapi imports the global reactor, which a
        # process that never uses Redis should not have installed for it.
        from twistchat.store.redis import RedisStore

        return RedisStore(reactor, redis, **kwargs)
    if db in (MEMORY, "memory"):
        return MemoryStore()
    return SQLiteStore(reactor, db, **kwargs)


__all__ = ["Account", "ChatStore", "HistoryEntry", "StoredDm", "open_store"]
