"""Persistence behind one small interface (``base.ChatStore``): an in-memory
store for tests and an SQLite store as the embedded default.  ``open_store``
picks one from a ``--db`` string."""

from twistchat.store.base import Account, ChatStore, HistoryEntry, StoredDm, open_store

__all__ = ["Account", "ChatStore", "HistoryEntry", "StoredDm", "open_store"]
