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
from twistchat.store.base import (
    IDEM_KEPT_PER_NICK,
    Account,
    ChatStore,
    HistoryEntry,
    IdemRecord,
    MailboxFull,
    Receipt,
    StoredDm,
)
from twistchat.store.memory import MemoryStore
from twistchat.store.sqlite import MIGRATED_ID_MARGIN, MIGRATIONS, SCHEMA_VERSION, WORKER_NAME, SQLiteStore
from twistchat.store.workers import InlineWorker

from .synchronous import on_a_real_thread, synchronously


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
async def test_mailbox_order_and_delete_one_by_one_on_acknowledgement(store: ChatStore):
    for dm_id in (5, 9, 12):
        await store.store_dm(StoredDm(dm_id, "bob", "Bob", "Alice", f"t{dm_id}", dm_id * 10, "alice"))
    assert await store.mailbox_count("bob") == 3
    assert [dm.dm_id for dm in await store.get_mailbox("bob")] == [5, 9, 12]
    # acknowledged out of order: exactly that DM goes, and its sender is owed a receipt
    assert await store.dm_acknowledged(9) == Receipt(9, "alice", "Bob", 90)
    assert await store.dm_acknowledged(9) is None  # acknowledged twice: one receipt
    assert [dm.text for dm in await store.get_mailbox("bob")] == ["t5", "t12"]
    assert await store.dm_acknowledged(5) == Receipt(5, "alice", "Bob", 50)
    assert [r.dm_id for r in await store.get_receipts("alice")] == [5, 9]
    await store.delete_receipt(5)
    assert [r.dm_id for r in await store.get_receipts("alice")] == [9]
    assert await store.get_receipts("bob") == []
    assert await store.last_id() == 12


@synchronously
async def test_mailbox_capacity_is_checked_with_the_insert(store: ChatStore):
    await store.store_dm(StoredDm(1, "bob", "Bob", "a", "1", 1, "a"), capacity=2)
    await store.store_dm(StoredDm(2, "bob", "Bob", "a", "2", 1, "a"), capacity=2)
    with pytest.raises(MailboxFull):
        await store.store_dm(StoredDm(3, "bob", "Bob", "a", "3", 1, "a"), capacity=2)
    assert [dm.dm_id for dm in await store.get_mailbox("bob")] == [1, 2]
    await store.store_dm(StoredDm(4, "carol", "Carol", "a", "4", 1, "a"), capacity=2)  # per recipient


@synchronously
async def test_ids_are_reserved_in_blocks_above_everything_stored(store: ChatStore):
    assert await store.reserve_ids(1000) == 1000
    assert await store.reserve_ids(1000) == 2000
    await store.append_history(HistoryEntry("#tea", 1500, "a", "x", 1), keep=1)
    assert await store.last_id() == 2000
    await store.delete_history("#tea")
    assert await store.reserve_ids(10) == 2010


def _idem(key: str, answer: dict, nick: str = "alice", ts: int = 1000) -> IdemRecord:
    return IdemRecord(nick_key=nick, idem=key, answer=answer, ts=ts)


@synchronously
async def test_a_known_idempotency_key_gets_its_first_answer_and_nothing_is_done(store: ChatStore):
    first = {"room": "#tea", "msg_id": 7, "ts": 70}
    assert await store.append_history(HistoryEntry("#tea", 7, "a", "once", 70), 10, _idem("k1", first)) is None
    again = await store.append_history(HistoryEntry("#tea", 8, "a", "once", 80), 10,
                                       _idem("k1", {"room": "#tea", "msg_id": 8, "ts": 80}))
    assert again == first
    assert [e.msg_id for e in await store.get_history("#tea", None, 10)] == [7]
    # keys are per nick, and shared by say, dm and data
    assert await store.get_idem("alice", "k1") == first
    assert await store.get_idem("bob", "k1") is None
    dm = {"to": "Bob", "dm_id": 9, "ts": 90, "status": "stored", "online": False}
    assert await store.store_dm(StoredDm(9, "bob", "Bob", "a", "x", 90, "alice"), 10, _idem("k2", dm)) is None
    assert await store.store_dm(StoredDm(10, "bob", "Bob", "a", "x", 91, "alice"), 0, _idem("k2", {})) == dm
    assert [d.dm_id for d in await store.get_mailbox("bob")] == [9]
    assert await store.store_dm(StoredDm(11, "bob", "Bob", "a", "x", 91, "alice"), 10,
                                _idem("k1", {})) == first
    assert await store.put_idem(_idem("k3", {"to": "bob"})) is None
    assert await store.put_idem(_idem("k3", {"to": "other"})) == {"to": "bob"}


@synchronously
async def test_a_kept_answer_is_the_stores_own_copy(store: ChatStore):
    """What the caller does to an answer after it was kept changes nothing
    kept: a say's flat one, and one holding a list."""
    flat = {"room": "#tea", "msg_id": 7, "ts": 70}
    nested = {"to": "bob", "ids": [1, 2]}
    await store.append_history(HistoryEntry("#tea", 7, "a", "x", 70), 10, _idem("k1", flat))
    await store.put_idem(_idem("k2", nested))
    flat["msg_id"] = 8
    nested["ids"].append(3)
    assert await store.get_idem("alice", "k1") == {"room": "#tea", "msg_id": 7, "ts": 70}
    assert await store.get_idem("alice", "k2") == {"to": "bob", "ids": [1, 2]}
    (await store.get_idem("alice", "k2"))["ids"].append(4)  # nor what it is given back
    assert await store.get_idem("alice", "k2") == {"to": "bob", "ids": [1, 2]}


@synchronously
async def test_idempotency_keys_are_bounded_per_nick_and_purged_by_age(store: ChatStore):
    for n in range(IDEM_KEPT_PER_NICK + 5):
        await store.put_idem(_idem(f"k{n}", {"n": n}, ts=n))
    await store.put_idem(_idem("other", {"n": -1}, nick="bob", ts=0))
    assert await store.get_idem("alice", "k4") is None
    assert await store.get_idem("alice", "k5") == {"n": 5}
    assert await store.get_idem("alice", f"k{IDEM_KEPT_PER_NICK + 4}") is not None
    assert await store.get_idem("bob", "other") == {"n": -1}
    await store.delete_idem_before(500)
    assert await store.get_idem("alice", "k499") is None
    assert await store.get_idem("alice", "k500") == {"n": 500}
    assert await store.get_idem("bob", "other") is None


@synchronously
async def test_renames_and_expiry_carry_mailbox_receipts_and_keys(store: ChatStore):
    await store.put_account(_account("alice"))
    await store.store_dm(StoredDm(1, "bob", "Bob", "Alice", "to bob", 1, "alice"))
    await store.store_dm(StoredDm(2, "bob", "Bob", "Alice", "to bob", 2, "alice"))
    await store.dm_acknowledged(1)
    await store.put_idem(_idem("k", {"x": 1}))
    await store.rename_account("alice", _account("alicia"))
    assert [r.dm_id for r in await store.get_receipts("alicia")] == [1]
    assert await store.get_idem("alicia", "k") == {"x": 1}
    assert await store.dm_acknowledged(2) == Receipt(2, "alicia", "Bob", 2)
    assert await store.delete_expired_accounts(5000) == ["alicia"]
    assert await store.get_receipts("alicia") == [] and await store.get_idem("alicia", "k") is None


@synchronously
async def test_rooms(store: ChatStore):
    state = {"name": "#Tea", "creator_key": "a", "topic": "t", "bans": {"x": "X"}}
    await store.put_room("#tea", state)
    assert await store.load_rooms() == {"#tea": state}
    await store.delete_room("#tea")
    assert await store.load_rooms() == {}
    await store.flush()


@synchronously
async def test_a_room_is_created_once_and_a_later_creator_gets_the_first_state(store: ChatStore):
    first = {"name": "#Tea", "creator_key": "alice", "op_key": "alice", "topic_ts": 2 ** 53 + 1}
    second = {"name": "#TEA", "creator_key": "bob", "op_key": "bob", "topic_ts": None}
    assert await store.create_room("#tea", first) == (True, first)
    assert await store.create_room("#tea", second) == (False, first)
    assert await store.load_rooms() == {"#tea": first}
    await store.put_room("#tea", {**first, "topic": "changed"})
    assert await store.create_room("#tea", second) == (False, {**first, "topic": "changed"})


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


@synchronously
async def test_sqlite_reserved_ids_survive_a_restart_even_when_nothing_was_stored(tmp_path):
    path = str(tmp_path / "chat.sqlite3")
    first = open_store(Clock(), path, worker=InlineWorker())
    assert await first.reserve_ids(1000) == 1000
    await first.close()  # as after kill -9: the reservation was committed when it returned
    second = open_store(Clock(), path, worker=InlineWorker())
    try:
        assert await second.reserve_ids(1000) == 2000
    finally:
        await second.close()


@synchronously
async def test_sqlite_schema_1_is_migrated_with_the_mark_above_every_id(tmp_path):
    path = str(tmp_path / "old.sqlite3")
    with sqlite3.connect(path, isolation_level=None) as raw:
        raw.executescript("BEGIN;" + MIGRATIONS[0] + "PRAGMA user_version = 1; COMMIT;")
        raw.execute("INSERT INTO accounts VALUES ('bob', 'Bob', 'c', 0, 1, 1)")
        raw.execute("INSERT INTO history VALUES (1409, '#tea', 'a', 'x', 1)")
        raw.execute("INSERT INTO mailbox VALUES (1500, 'bob', 'Bob', 'Al[i]ce', 'x', 2)")
        raw.execute("UPDATE meta SET value = 1403 WHERE name = 'last_id'")  # behind, as issue 11 saw
    store = open_store(Clock(), path, worker=InlineWorker())
    try:
        assert await store.last_id() == 1500 + MIGRATED_ID_MARGIN
        [dm] = await store.get_mailbox("bob")
        assert dm.sender_key == "al{i}ce"
        assert await store.dm_acknowledged(1500) == Receipt(1500, "al{i}ce", "Bob", 2)
    finally:
        await store.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@synchronously
async def test_sqlite_a_fresh_database_starts_its_ids_at_one(tmp_path):
    store = open_store(Clock(), str(tmp_path / "new.sqlite3"), worker=InlineWorker())
    try:
        assert await store.reserve_ids(1000) == 1000
    finally:
        await store.close()


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


@synchronously
async def test_a_kept_answer_is_not_changed_by_what_its_reader_does_with_it(store: ChatStore):
    answer = {"room": "#tea", "msg_id": 7, "members": [{"nick": "a"}]}
    await store.put_idem(_idem("k1", answer))
    answer["msg_id"] = 8
    answer["members"][0]["nick"] = "changed by the writer"
    read = await store.get_idem("alice", "k1")
    assert read == {"room": "#tea", "msg_id": 7, "members": [{"nick": "a"}]}
    read["members"].append("changed by a reader")
    read["room"] = "#other"
    assert await store.get_idem("alice", "k1") == {"room": "#tea", "msg_id": 7,
                                                   "members": [{"nick": "a"}]}
