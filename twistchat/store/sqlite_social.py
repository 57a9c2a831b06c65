"""
The SQLite side of ``social``: contacts and lasting memberships, as a mixin
of ``SQLiteStore`` (which gives it ``_run``: the one worker thread), and the
schema migration that adds their tables.

History lines are numbered per room by triggers (``history_lines``,
``room_lines``), so the statements that keep history need not change and
the count of trimmed lines costs no scan.  A limit is checked in the
transaction that inserts (``BEGIN IMMEDIATE``), as the mailbox's are.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred

from twistchat.store.base import HistoryEntry
from twistchat.store.social import ContactEntry, ContactsFull, MarkUpdate, Membership, Missed

T = TypeVar("T")

MIGRATION = """
CREATE TABLE contacts (
    owner_key TEXT NOT NULL, contact_key TEXT NOT NULL,
    PRIMARY KEY (owner_key, contact_key)) WITHOUT ROWID;
CREATE TABLE memberships (
    seq INTEGER PRIMARY KEY, nick_key TEXT NOT NULL, room_key TEXT NOT NULL,
    room_name TEXT NOT NULL, last_seen INTEGER NOT NULL, seen_line INTEGER NOT NULL,
    UNIQUE (nick_key, room_key));
CREATE INDEX memberships_by_room ON memberships (room_key);
CREATE TABLE room_lines (room TEXT PRIMARY KEY, total INTEGER NOT NULL);
CREATE TABLE history_lines (msg_id INTEGER PRIMARY KEY, line_no INTEGER NOT NULL);
INSERT INTO room_lines (room, total) SELECT room, COUNT(*) FROM history GROUP BY room;
INSERT INTO history_lines (msg_id, line_no)
    SELECT msg_id, (SELECT COUNT(*) FROM history h WHERE h.room = history.room
                    AND h.msg_id <= history.msg_id) FROM history;
CREATE TRIGGER history_numbered AFTER INSERT ON history BEGIN
    INSERT OR IGNORE INTO room_lines (room, total) VALUES (NEW.room, 0);
    UPDATE room_lines SET total = total + 1 WHERE room = NEW.room;
    INSERT OR REPLACE INTO history_lines (msg_id, line_no)
        VALUES (NEW.msg_id, (SELECT total FROM room_lines WHERE room = NEW.room));
END;
CREATE TRIGGER history_unnumbered AFTER DELETE ON history BEGIN
    DELETE FROM history_lines WHERE msg_id = OLD.msg_id;
END;
"""
"""Schema version 4 (issue 14): appended to ``sqlite.MIGRATIONS``."""


def rename_statements(old_key: str, new_key: str) -> list[tuple[str, tuple[Any, ...]]]:
    """What moves with a renamed account: its contact list and its rooms
    (those watching the old nick go on watching that nick, as MONITOR does)."""
    return [("UPDATE OR REPLACE contacts SET owner_key = ? WHERE owner_key = ?", (new_key, old_key)),
            ("UPDATE OR REPLACE memberships SET nick_key = ? WHERE nick_key = ?", (new_key, old_key))]


def forget(conn: sqlite3.Connection, key: str) -> None:
    """An expired account's list and rooms go with it (a new owner of the
    nick must not inherit them)."""
    conn.execute("DELETE FROM contacts WHERE owner_key = ?", (key,))
    conn.execute("DELETE FROM memberships WHERE nick_key = ?", (key,))


def _atomically(conn: sqlite3.Connection, work: Callable[[], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work()
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


class SQLiteSocial:
    _run: Callable[..., Deferred[Any]]

    # ---- contacts

    def watch(self, owner_key: str, contact_key: str, limit: int) -> Deferred[bool]:
        def work(conn: sqlite3.Connection) -> bool:
            def insert() -> bool:
                if conn.execute("SELECT 1 FROM contacts WHERE owner_key = ? AND contact_key = ?",
                                (owner_key, contact_key)).fetchone():
                    return False
                (count,) = conn.execute("SELECT COUNT(*) FROM contacts WHERE owner_key = ?",
                                        (owner_key,)).fetchone()
                if count >= limit:
                    raise ContactsFull(owner_key)
                conn.execute("INSERT INTO contacts VALUES (?, ?)", (owner_key, contact_key))
                return True
            return _atomically(conn, insert)
        return self._run(work)

    def unwatch(self, owner_key: str, contact_key: str) -> Deferred[bool]:
        def work(conn: sqlite3.Connection) -> bool:
            return _atomically(conn, lambda: conn.execute(
                "DELETE FROM contacts WHERE owner_key = ? AND contact_key = ?",
                (owner_key, contact_key)).rowcount > 0)
        return self._run(work)

    def get_contacts(self, owner_key: str) -> Deferred[list[ContactEntry]]:
        def work(conn: sqlite3.Connection) -> list[ContactEntry]:
            rows = conn.execute(
                "SELECT c.contact_key, a.nick, a.last_seen FROM contacts c LEFT JOIN accounts a "
                "ON a.key = c.contact_key WHERE c.owner_key = ? ORDER BY c.contact_key",
                (owner_key,)).fetchall()
            return [ContactEntry(key, nick or key, seen) for key, nick, seen in rows]
        return self._run(work)

    # ---- memberships

    def keep_membership(self, nick_key: str, room_key: str, room_name: str) -> Deferred[None]:
        def work(conn: sqlite3.Connection) -> None:
            _atomically(conn, lambda: conn.execute(
                "INSERT OR IGNORE INTO memberships (nick_key, room_key, room_name, last_seen, seen_line) "
                "VALUES (?, ?, ?, (SELECT COALESCE(MAX(msg_id), 0) FROM history WHERE room = ?), "
                "COALESCE((SELECT total FROM room_lines WHERE room = ?), 0))",
                (nick_key, room_key, room_name, room_key, room_key)))
        return self._run(work)

    def drop_membership(self, nick_key: str, room_key: str) -> Deferred[None]:
        def work(conn: sqlite3.Connection) -> None:
            _atomically(conn, lambda: conn.execute(
                "DELETE FROM memberships WHERE nick_key = ? AND room_key = ?", (nick_key, room_key)))
        return self._run(work)

    def get_memberships(self, nick_key: str) -> Deferred[list[Membership]]:
        def work(conn: sqlite3.Connection) -> list[Membership]:
            rows = conn.execute("SELECT nick_key, room_key, room_name, last_seen, seen_line "
                                "FROM memberships WHERE nick_key = ? ORDER BY seq", (nick_key,))
            return [Membership(*row) for row in rows.fetchall()]
        return self._run(work)

    def membership_rooms(self) -> Deferred[dict[str, set[str]]]:
        def work(conn: sqlite3.Connection) -> dict[str, set[str]]:
            rooms: dict[str, set[str]] = {}
            for room_key, nick_key in conn.execute("SELECT room_key, nick_key FROM memberships"):
                rooms.setdefault(room_key, set()).add(nick_key)
            return rooms
        return self._run(work)

    def advance_marks(self, updates: Iterable[MarkUpdate]) -> Deferred[None]:
        rows = [(u.msg_id, u.msg_id, u.nick_key, u.room_key, u.msg_id) for u in updates]

        def work(conn: sqlite3.Connection) -> None:
            _atomically(conn, lambda: conn.executemany(
                "UPDATE memberships SET last_seen = ?, seen_line = COALESCE((SELECT line_no FROM "
                "history_lines WHERE msg_id = ?), seen_line) WHERE nick_key = ? AND room_key = ? "
                "AND last_seen < ?", rows))
        return self._run(work)

    def get_missed(self, room_key: str, since: int, since_line: int, limit: int) -> Deferred[Missed]:
        def work(conn: sqlite3.Connection) -> Missed:
            row = conn.execute("SELECT total FROM room_lines WHERE room = ?", (room_key,)).fetchone()
            rows = conn.execute("SELECT room, msg_id, nick, text, ts FROM history WHERE room = ? "
                                "AND msg_id > ? ORDER BY msg_id DESC LIMIT ?",
                                (room_key, since, limit)).fetchall()
            lines = [HistoryEntry(*r) for r in reversed(rows)]
            total = row[0] if row else 0
            return Missed(lines, max(0, total - since_line - len(lines)))
        return self._run(work)
