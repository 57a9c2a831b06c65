"""Contacts and lasting memberships (issue 14), checked against every store:
the per-user bound checked with the insert, marks that only move forward,
the count of missed lines history no longer holds, and what moves with a
rename or goes with an expired account.  SQLite files also keep it all
across a reopen, and an old database is numbered when migrated."""

from __future__ import annotations

import sqlite3

import pytest
from twisted.internet.task import Clock

from twistchat.store.base import Account, HistoryEntry
from twistchat.store.social import ContactEntry, ContactsFull, MarkUpdate
from twistchat.store.sqlite import MIGRATIONS, SQLiteStore
from twistchat.store.workers import InlineWorker

from .synchronous import resolved, synchronously


def _account(key: str, last_seen: int = 1000) -> Account:
    return Account(key=key, nick=key.title(), credential="scrypt$x", has_password=False,
                   created=1, last_seen=last_seen)


async def _say(store, room: str, msg_id: int, keep: int = 100) -> None:
    await store.append_history(HistoryEntry(room, msg_id, "bob", f"line {msg_id}", msg_id), keep)


@synchronously
async def test_watch_is_bounded_per_owner_and_idempotent(store):
    await store.put_account(_account("bob", last_seen=77))
    assert await store.watch("alice", "bob", limit=2) is True
    assert await store.watch("alice", "bob", limit=2) is False  # already there: nothing changes
    assert await store.watch("alice", "carol", limit=2) is True
    with pytest.raises(ContactsFull):
        await store.watch("alice", "dave", limit=2)
    assert await store.watch("erin", "dave", limit=2) is True  # the bound is per owner
    assert await store.get_contacts("alice") == [ContactEntry("bob", "Bob", 77),
                                                  ContactEntry("carol", "carol", None)]
    assert await store.unwatch("alice", "bob") is True
    assert await store.unwatch("alice", "bob") is False
    assert [c.key for c in await store.get_contacts("alice")] == ["carol"]


@synchronously
async def test_a_membership_starts_at_the_newest_line_and_its_mark_only_moves_forward(store):
    for msg_id in (10, 11, 12):
        await _say(store, "#tea", msg_id)
    await store.keep_membership("alice", "#tea", "#Tea")
    [kept] = await store.get_memberships("alice")
    assert (kept.room_name, kept.last_seen, kept.seen_line) == ("#Tea", 12, 3)
    for msg_id in (20, 21, 22):
        await _say(store, "#tea", msg_id)
    await store.advance_marks([MarkUpdate("alice", "#tea", 21)])
    await store.advance_marks([MarkUpdate("alice", "#tea", 20)])  # never back
    await store.keep_membership("alice", "#tea", "#Tea")  # a second join keeps the mark
    [kept] = await store.get_memberships("alice")
    assert (kept.last_seen, kept.seen_line) == (21, 5)
    missed = await store.get_missed("#tea", kept.last_seen, kept.seen_line, 100)
    assert ([e.msg_id for e in missed.lines], missed.not_kept) == ([22], 0)
    await store.drop_membership("alice", "#tea")
    assert await store.get_memberships("alice") == []


@synchronously
async def test_missed_lines_past_the_history_kept_are_counted(store):
    await store.keep_membership("alice", "#tea", "#tea")
    for msg_id in range(100, 110):
        await _say(store, "#tea", msg_id, keep=4)
    missed = await store.get_missed("#tea", 0, 0, 4)
    assert ([e.msg_id for e in missed.lines], missed.not_kept) == ([106, 107, 108, 109], 6)
    await store.advance_marks([MarkUpdate("alice", "#tea", 107)])
    [kept] = await store.get_memberships("alice")
    assert kept.seen_line == 8
    missed = await store.get_missed("#tea", kept.last_seen, kept.seen_line, 4)
    assert ([e.msg_id for e in missed.lines], missed.not_kept) == ([108, 109], 0)


@synchronously
async def test_rooms_with_members_are_listed_in_join_order(store):
    await store.keep_membership("alice", "#b", "#b")
    await store.keep_membership("alice", "#a", "#a")
    await store.keep_membership("bob", "#a", "#a")
    assert [m.room_key for m in await store.get_memberships("alice")] == ["#b", "#a"]
    assert await store.membership_rooms() == {"#a": {"alice", "bob"}, "#b": {"alice"}}


@synchronously
async def test_a_rename_moves_contacts_and_rooms_and_expiry_deletes_them(store):
    await store.put_account(_account("alice", last_seen=10))
    await store.watch("alice", "bob", limit=5)
    await store.keep_membership("alice", "#tea", "#tea")
    await store.rename_account("alice", _account("alicia", last_seen=10))
    assert [c.key for c in await store.get_contacts("alicia")] == ["bob"]
    assert [m.room_key for m in await store.get_memberships("alicia")] == ["#tea"]
    assert await store.get_contacts("alice") == [] and await store.get_memberships("alice") == []
    assert await store.delete_expired_accounts(last_seen_before=100) == ["alicia"]
    assert await store.get_contacts("alicia") == [] and await store.get_memberships("alicia") == []


def test_sqlite_keeps_contacts_and_marks_across_a_reopen(tmp_path):
    path = str(tmp_path / "chat.sqlite3")
    store = SQLiteStore(Clock(), path, worker=InlineWorker())
    resolved(store.watch("alice", "bob", 5))
    resolved(store.keep_membership("alice", "#tea", "#tea"))
    resolved(store.append_history(HistoryEntry("#tea", 5, "bob", "hi", 1), 100))
    resolved(store.advance_marks([MarkUpdate("alice", "#tea", 5)]))
    resolved(store.close())
    again = SQLiteStore(Clock(), path, worker=InlineWorker())
    assert [c.key for c in resolved(again.get_contacts("alice"))] == ["bob"]
    [kept] = resolved(again.get_memberships("alice"))
    assert (kept.last_seen, kept.seen_line) == (5, 1)
    resolved(again.close())


def test_a_database_from_before_contacts_gets_its_history_numbered(tmp_path):
    path = str(tmp_path / "old.sqlite3")
    conn = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:3]):
        conn.executescript("BEGIN;" + script + f"PRAGMA user_version = {number + 1}; COMMIT;")
    conn.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?)",
                     [(7, "#tea", "bob", "a", 1), (9, "#tea", "bob", "b", 2), (8, "#x", "c", "c", 3)])
    conn.close()
    store = SQLiteStore(Clock(), path, worker=InlineWorker())
    resolved(store.append_history(HistoryEntry("#tea", 12, "bob", "c", 4), 100))
    resolved(store.keep_membership("alice", "#tea", "#tea"))
    [kept] = resolved(store.get_memberships("alice"))
    assert (kept.last_seen, kept.seen_line) == (12, 3)
    resolved(store.close())
