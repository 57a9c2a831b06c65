"""The store interface, checked against every implementation; plus what only
SQLite must show: work happens off the reactor thread, data survives a restart,
and the schema version is recorded.

The SQLite store runs its queries on an ``InlineWorker`` here, so every
Deferred has fired on return: no thread, no reactor, no waiting.  Only the
tests about the worker thread itself use a real one (marked e2e)."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from twisted.internet.task import Clock

from twistchat.store import open_store
from twistchat.store.base import Account, ChatStore, HistoryEntry, StoredDm
from twistchat.store.memory import MemoryStore
from twistchat.store.sqlite import SCHEMA_VERSION, WORKER_NAME, SQLiteStore
from twistchat.store.workers import InlineWorker

from .synchronous import on_a_real_thread, resolved, synchronously


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


def _account(key: str, has_password: bool = False, last_seen: int = 1000) -> Account:
    return Account(key=key, nick=key.title(), credential="scrypt$x", has_password=has_password,
                   created=1, last_seen=last_seen)


@synchronously
async def test_accounts(store: ChatStore):
    assert isinstance(store, ChatStore)
    assert await store.get_account("alice") is None
    await store.put_account(_account("alice"))
    assert await store.get_account("alice") == _account("alice")
    await store.touch_account("alice", 5000)
    assert (await store.get_account("alice")).last_seen == 5000
    await store.store_dm(StoredDm(1, "alice", "Alice", "bob", "hi", 7))
    await store.rename_account("alice", _account("alicia", last_seen=5000))
    assert await store.get_account("alice") is None
    assert (await store.get_account("alicia")).last_seen == 5000
    assert [dm.text for dm in await store.get_mailbox("alicia")] == ["hi"]


@synchronously
async def test_expiry_deletes_only_lapsed_password_less_accounts(store: ChatStore):
    await store.put_account(_account("old", last_seen=10))
    await store.put_account(_account("online", last_seen=10))
    await store.put_account(_account("fresh", last_seen=5000))
    await store.put_account(_account("pw", has_password=True, last_seen=10))
    await store.store_dm(StoredDm(3, "old", "Old", "bob", "x", 1))
    assert await store.delete_expired_accounts(100, keep={"online"}) == ["old"]
    assert await store.mailbox_count("old") == 0
    for key in ("online", "fresh", "pw"):
        assert await store.get_account(key) is not None


@synchronously
async def test_history_is_trimmed_and_queried_since(store: ChatStore):
    for msg_id in range(1, 8):
        await store.append_history(HistoryEntry("#tea", msg_id, "a", f"m{msg_id}", msg_id * 10), keep=5)
    await store.append_history(HistoryEntry("#other", 8, "b", "elsewhere", 80), keep=5)
    assert [e.msg_id for e in await store.get_history("#tea", None, 100)] == [3, 4, 5, 6, 7]
    assert [e.msg_id for e in await store.get_history("#tea", 4, 100)] == [5, 6, 7]
    assert [e.msg_id for e in await store.get_history("#tea", 4, 2)] == [6, 7]
    assert await store.last_id() == 8
    await store.delete_history("#tea")
    assert await store.get_history("#tea", None, 100) == []
    assert await store.last_id() == 8  # ids never go backwards


@synchronously
async def test_mailbox_order_and_partial_delete(store: ChatStore):
    for dm_id in (5, 9, 12):
        await store.store_dm(StoredDm(dm_id, "bob", "Bob", "alice", f"t{dm_id}", dm_id))
    assert await store.mailbox_count("bob") == 3
    assert [dm.dm_id for dm in await store.get_mailbox("bob")] == [5, 9, 12]
    await store.delete_mailbox("bob", 9)
    assert [dm.text for dm in await store.get_mailbox("bob")] == ["t12"]
    assert await store.last_id() == 12


@synchronously
async def test_rooms(store: ChatStore):
    state = {"name": "#Tea", "creator_key": "a", "topic": "t", "bans": {"x": "X"}}
    await store.put_room("#tea", state)
    assert await store.load_rooms() == {"#tea": state}
    await store.delete_room("#tea")
    assert await store.load_rooms() == {}
    await store.flush()


@pytest.mark.e2e
@on_a_real_thread
async def test_sqlite_runs_every_query_on_one_worker_thread_not_the_callers(reactor):
    store = SQLiteStore(reactor, ":memory:")
    try:
        caller = threading.get_ident()
        seen = set()
        for _ in range(5):
            seen.add(await store._run(lambda conn: (threading.get_ident(), threading.current_thread().name)))
        assert len(seen) == 1
        [(ident, name)] = seen
        assert ident != caller and WORKER_NAME in name
        # and a public method returns before the work is done: it is a pending Deferred
        d = store.put_account(_account("alice"))
        assert not d.called
        await d
    finally:
        await store.close()


@synchronously
async def test_sqlite_data_survives_a_restart_and_records_the_schema_version(tmp_path):
    path = str(tmp_path / "chat.sqlite3")
    first = open_store(Clock(), path, worker=InlineWorker())
    await first.put_account(_account("alice", has_password=True))
    await first.append_history(HistoryEntry("#tea", 41, "alice", "hello", 1), keep=100)
    await first.store_dm(StoredDm(42, "bob", "Bob", "alice", "offline hi", 2))
    await first.put_room("#tea", {"name": "#tea", "creator_key": "alice", "topic": "kept"})
    await first.close()

    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    second = open_store(Clock(), path, worker=InlineWorker())
    try:
        assert (await second.get_account("alice")).has_password
        assert [e.text for e in await second.get_history("#tea", None, 10)] == ["hello"]
        assert [dm.text for dm in await second.get_mailbox("bob")] == ["offline hi"]
        assert (await second.load_rooms())["#tea"]["topic"] == "kept"
        assert await second.last_id() == 42
    finally:
        await second.close()


def test_open_store_picks_by_db_string():
    assert isinstance(open_store(Clock(), ":memory:"), MemoryStore)


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if WORKER_NAME in t.name]


@pytest.mark.e2e
@on_a_real_thread
async def test_sqlite_opening_starts_no_thread_until_the_first_query(reactor, tmp_path):
    """twistd builds the service, then forks into the background: a worker
    started at open would not exist in the daemon, and every query would hang."""
    before = len(_workers())
    path = tmp_path / "chat.sqlite3"
    store = open_store(reactor, str(path))
    try:
        assert len(_workers()) == before and not path.exists()
        await store.put_account(_account("alice"))
        assert len(_workers()) == before + 1 and path.exists()
    finally:
        await store.close()
    assert len(_workers()) == before


@synchronously
async def test_sqlite_closing_an_unused_store_creates_nothing(tmp_path):
    path = tmp_path / "chat.sqlite3"
    store = open_store(Clock(), str(path))  # the real thread worker: never started
    await store.close()
    assert not path.exists() and not store.worker.started
    with pytest.raises(RuntimeError):
        store.flush()


@synchronously
async def test_sqlite_starts_its_worker_on_the_first_query_and_stops_it_at_close(tmp_path):
    """The same promise as above, without a thread: the store, not the worker, decides when."""
    path = tmp_path / "chat.sqlite3"
    store = open_store(Clock(), str(path), worker=InlineWorker())
    assert not store.worker.started and not path.exists()
    await store.put_account(_account("alice"))
    assert store.worker.started and path.exists()
    await store.close()
    assert not store.worker.started
