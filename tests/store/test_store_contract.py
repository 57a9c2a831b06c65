"""The store interface, checked against every implementation; plus what only
SQLite must show: work happens off the reactor thread, data survives a restart,
and the schema version is recorded."""

from __future__ import annotations

import sqlite3
import threading

import pytest
import pytest_twisted
from twisted.internet import reactor

from twistchat.store import open_store
from twistchat.store.base import Account, ChatStore, HistoryEntry, StoredDm
from twistchat.store.memory import MemoryStore
from twistchat.store.sqlite import SCHEMA_VERSION, WORKER_NAME, SQLiteStore


@pytest.fixture(params=["memory", "sqlite-memory", "sqlite-file"])
def store(request, tmp_path):
    if request.param == "memory":
        s = MemoryStore()
    elif request.param == "sqlite-memory":
        s = SQLiteStore(reactor, ":memory:")
    else:
        s = open_store(reactor, str(tmp_path / "chat.sqlite3"))
    yield s
    pytest_twisted.blockon(s.close())


def _account(key: str, has_password: bool = False, last_seen: int = 1000) -> Account:
    return Account(key=key, nick=key.title(), credential="scrypt$x", has_password=has_password,
                   created=1, last_seen=last_seen)


@pytest_twisted.ensureDeferred
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


@pytest_twisted.ensureDeferred
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


@pytest_twisted.ensureDeferred
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


@pytest_twisted.ensureDeferred
async def test_mailbox_order_and_partial_delete(store: ChatStore):
    for dm_id in (5, 9, 12):
        await store.store_dm(StoredDm(dm_id, "bob", "Bob", "alice", f"t{dm_id}", dm_id))
    assert await store.mailbox_count("bob") == 3
    assert [dm.dm_id for dm in await store.get_mailbox("bob")] == [5, 9, 12]
    await store.delete_mailbox("bob", 9)
    assert [dm.text for dm in await store.get_mailbox("bob")] == ["t12"]
    assert await store.last_id() == 12


@pytest_twisted.ensureDeferred
async def test_rooms(store: ChatStore):
    state = {"name": "#Tea", "creator_key": "a", "topic": "t", "bans": {"x": "X"}}
    await store.put_room("#tea", state)
    assert await store.load_rooms() == {"#tea": state}
    await store.delete_room("#tea")
    assert await store.load_rooms() == {}
    await store.flush()


@pytest_twisted.ensureDeferred
async def test_sqlite_runs_every_query_on_one_worker_thread_not_the_callers():
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


@pytest_twisted.ensureDeferred
async def test_sqlite_data_survives_a_restart_and_records_the_schema_version(tmp_path):
    path = str(tmp_path / "chat.sqlite3")
    first = open_store(reactor, path)
    await first.put_account(_account("alice", has_password=True))
    await first.append_history(HistoryEntry("#tea", 41, "alice", "hello", 1), keep=100)
    await first.store_dm(StoredDm(42, "bob", "Bob", "alice", "offline hi", 2))
    await first.put_room("#tea", {"name": "#tea", "creator_key": "alice", "topic": "kept"})
    await first.close()

    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    second = open_store(reactor, path)
    try:
        assert (await second.get_account("alice")).has_password
        assert [e.text for e in await second.get_history("#tea", None, 10)] == ["hello"]
        assert [dm.text for dm in await second.get_mailbox("bob")] == ["offline hi"]
        assert (await second.load_rooms())["#tea"]["topic"] == "kept"
        assert await second.last_id() == 42
    finally:
        await second.close()


def test_open_store_picks_by_db_string():
    assert isinstance(open_store(reactor, ":memory:"), MemoryStore)


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if WORKER_NAME in t.name]


@pytest_twisted.ensureDeferred
async def test_sqlite_opening_starts_no_thread_until_the_first_query(tmp_path):
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


@pytest_twisted.ensureDeferred
async def test_sqlite_closing_an_unused_store_creates_nothing(tmp_path):
    path = tmp_path / "chat.sqlite3"
    store = open_store(reactor, str(path))
    await store.close()
    assert not path.exists() and not store._pool.started
    with pytest.raises(RuntimeError):
        store.flush()
