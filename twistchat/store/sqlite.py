"""
SQLite store: the embedded default.

* **The reactor never waits on disk.**  Every query runs on one dedicated
  worker thread (``workers.ThreadWorker``, a ``ThreadPool`` of size 1); the
  sqlite3 connection is created on, and only used by, that thread.  One
  thread also means writes commit in the order they were issued, so
  ``flush()`` is simply "run nothing after everything queued".  Tests pass
  ``worker=InlineWorker()`` to run the same queries synchronously.
* **Nothing acknowledged is lost on kill -9 or power loss.**  WAL journal with
  ``synchronous=FULL``: each transaction is fsynced before its Deferred
  fires, and the server acknowledges only after that.  (NORMAL would be
  faster but may lose the last transactions on power loss, which would break
  "stored" acknowledgements.)
* **Schema versioned** with ``PRAGMA user_version`` and an ordered list of
  migrations; a later release appends to ``MIGRATIONS`` and old files are
  brought up to date on open.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, succeed

from twistchat.store.base import Account, HistoryEntry, StoredDm
from twistchat.store.workers import ThreadWorker, Worker

T = TypeVar("T")

MIGRATIONS: list[str] = [
    # version 1
    """
    CREATE TABLE accounts (
        key TEXT PRIMARY KEY, nick TEXT NOT NULL, credential TEXT NOT NULL,
        has_password INTEGER NOT NULL, created INTEGER NOT NULL, last_seen INTEGER NOT NULL);
    CREATE TABLE history (
        msg_id INTEGER PRIMARY KEY, room TEXT NOT NULL, nick TEXT NOT NULL,
        text TEXT NOT NULL, ts INTEGER NOT NULL);
    CREATE INDEX history_by_room ON history (room, msg_id);
    CREATE TABLE mailbox (
        dm_id INTEGER PRIMARY KEY, to_key TEXT NOT NULL, to_nick TEXT NOT NULL,
        sender TEXT NOT NULL, text TEXT NOT NULL, ts INTEGER NOT NULL);
    CREATE INDEX mailbox_by_recipient ON mailbox (to_key, dm_id);
    CREATE TABLE rooms (key TEXT PRIMARY KEY, state TEXT NOT NULL);
    CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO meta (name, value) VALUES ('last_id', 0);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
WORKER_NAME = "twistchat-sqlite"


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations a database is missing; return the resulting version."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise RuntimeError(f"database schema {version} is newer than this release ({SCHEMA_VERSION})")
    for number in range(version, SCHEMA_VERSION):
        conn.executescript("BEGIN;" + MIGRATIONS[number] + f"PRAGMA user_version = {number + 1}; COMMIT;")
    return SCHEMA_VERSION


class SQLiteStore:
    def __init__(self, reactor: Any, path: str, worker: Worker | None = None) -> None:
        self._reactor = reactor
        self._path = path
        self._conn: sqlite3.Connection | None = None
        # Started by the first query, not here: twistd forks into the background
        # after makeService(), and a thread started before the fork does not
        # exist in the daemon (every query would wait forever).
        self.worker: Worker = worker if worker is not None else ThreadWorker(reactor, WORKER_NAME)
        self._worker_stopped = False
        self._closed = False
        trigger = getattr(reactor, "addSystemEventTrigger", None)
        if trigger is not None:  # never leave a thread behind at reactor shutdown
            self._trigger = trigger("during", "shutdown", self._stop_worker)

    # ---- the one way in: run a function on the worker

    def _run(self, work: Callable[[sqlite3.Connection], T]) -> Deferred[T]:
        if self._closed or self._worker_stopped:
            raise RuntimeError("store is closed")
        if not self.worker.started:
            self.worker.start()
        return self.worker.submit(self._in_worker, work)

    def _in_worker(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            self._conn = self._connect()
        return work(self._conn)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None)  # explicit transactions
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn)
        return conn

    def _write(self, *statements: tuple[str, tuple[Any, ...]]) -> Deferred[None]:
        """Run statements in one transaction, committed (fsynced) before the Deferred fires."""
        def work(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                for sql, params in statements:
                    conn.execute(sql, params)
        return self._run(work)

    # ---- identities

    def get_account(self, key: str) -> Deferred[Account | None]:
        def work(conn: sqlite3.Connection) -> Account | None:
            row = conn.execute("SELECT key, nick, credential, has_password, created, last_seen "
                               "FROM accounts WHERE key = ?", (key,)).fetchone()
            return None if row is None else Account(row[0], row[1], row[2], bool(row[3]), row[4], row[5])
        return self._run(work)

    def put_account(self, account: Account) -> Deferred[None]:
        return self._write(("INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?, ?, ?)", _account_row(account)))

    def rename_account(self, old_key: str, account: Account) -> Deferred[None]:
        return self._write(
            ("DELETE FROM accounts WHERE key = ?", (old_key,)),
            ("INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?, ?, ?)", _account_row(account)),
            ("UPDATE mailbox SET to_key = ?, to_nick = ? WHERE to_key = ?", (account.key, account.nick, old_key)),
        )

    def touch_account(self, key: str, last_seen: int) -> Deferred[None]:
        return self._write(("UPDATE accounts SET last_seen = ? WHERE key = ?", (last_seen, key)))

    def delete_expired_accounts(self, last_seen_before: int,
                                keep: Collection[str] = ()) -> Deferred[list[str]]:
        keep = set(keep)

        def work(conn: sqlite3.Connection) -> list[str]:
            with _transaction(conn):
                rows = conn.execute("SELECT key FROM accounts WHERE has_password = 0 AND last_seen < ?",
                                    (last_seen_before,)).fetchall()
                gone = [key for (key,) in rows if key not in keep]
                for key in gone:
                    conn.execute("DELETE FROM accounts WHERE key = ?", (key,))
                    conn.execute("DELETE FROM mailbox WHERE to_key = ?", (key,))
            return gone
        return self._run(work)

    # ---- ids and history

    def last_id(self) -> Deferred[int]:
        return self._run(lambda conn: conn.execute("SELECT value FROM meta WHERE name = 'last_id'").fetchone()[0])

    def append_history(self, entry: HistoryEntry, keep: int) -> Deferred[None]:
        return self._write(
            ("INSERT INTO history VALUES (?, ?, ?, ?, ?)", (entry.msg_id, entry.room, entry.nick, entry.text, entry.ts)),
            ("DELETE FROM history WHERE room = ? AND msg_id NOT IN "
             "(SELECT msg_id FROM history WHERE room = ? ORDER BY msg_id DESC LIMIT ?)", (entry.room, entry.room, keep)),
            _bump_last_id(entry.msg_id),
        )

    def get_history(self, room: str, since: int | None, limit: int) -> Deferred[list[HistoryEntry]]:
        def work(conn: sqlite3.Connection) -> list[HistoryEntry]:
            rows = conn.execute("SELECT room, msg_id, nick, text, ts FROM history WHERE room = ? AND msg_id > ? "
                                "ORDER BY msg_id DESC LIMIT ?", (room, -1 if since is None else since, limit))
            return [HistoryEntry(*row) for row in reversed(rows.fetchall())]
        return self._run(work)

    def delete_history(self, room: str) -> Deferred[None]:
        return self._write(("DELETE FROM history WHERE room = ?", (room,)))

    # ---- mailbox

    def store_dm(self, dm: StoredDm) -> Deferred[None]:
        return self._write(
            ("INSERT INTO mailbox VALUES (?, ?, ?, ?, ?, ?)", (dm.dm_id, dm.to_key, dm.to_nick, dm.sender, dm.text, dm.ts)),
            _bump_last_id(dm.dm_id),
        )

    def mailbox_count(self, to_key: str) -> Deferred[int]:
        return self._run(lambda conn: conn.execute("SELECT COUNT(*) FROM mailbox WHERE to_key = ?",
                                                   (to_key,)).fetchone()[0])

    def get_mailbox(self, to_key: str) -> Deferred[list[StoredDm]]:
        def work(conn: sqlite3.Connection) -> list[StoredDm]:
            rows = conn.execute("SELECT dm_id, to_key, to_nick, sender, text, ts FROM mailbox "
                                "WHERE to_key = ? ORDER BY dm_id", (to_key,))
            return [StoredDm(*row) for row in rows.fetchall()]
        return self._run(work)

    def delete_mailbox(self, to_key: str, up_to_id: int) -> Deferred[None]:
        return self._write(("DELETE FROM mailbox WHERE to_key = ? AND dm_id <= ?", (to_key, up_to_id)))

    # ---- rooms

    def put_room(self, key: str, state: Mapping[str, Any]) -> Deferred[None]:
        return self._write(("INSERT OR REPLACE INTO rooms VALUES (?, ?)", (key, json.dumps(dict(state)))))

    def delete_room(self, key: str) -> Deferred[None]:
        return self._write(("DELETE FROM rooms WHERE key = ?", (key,)))

    def load_rooms(self) -> Deferred[dict[str, dict[str, Any]]]:
        return self._run(lambda conn: {key: json.loads(state) for key, state in
                                       conn.execute("SELECT key, state FROM rooms").fetchall()})

    # ---- lifecycle

    def flush(self) -> Deferred[None]:
        return self._run(lambda conn: None)

    def close(self) -> Deferred[None]:
        """Wait for queued writes, close the connection on its thread, stop the thread."""
        if self._closed:
            return succeed(None)
        if not self.worker.started:  # never used: no thread, no file to close
            self._closed = True
            return succeed(self._after_close(None))

        def work(conn: sqlite3.Connection) -> None:
            conn.close()
            self._conn = None

        d = self._run(work)
        self._closed = True
        d.addBoth(self._after_close)
        return d

    def _after_close(self, result: Any) -> Any:
        self._stop_worker()
        trigger = getattr(self, "_trigger", None)
        if trigger is not None:
            try:
                self._reactor.removeSystemEventTrigger(trigger)
            except (ValueError, KeyError):
                pass
            self._trigger = None
        return result

    def _stop_worker(self) -> None:
        self._worker_stopped = True
        self.worker.stop()


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT (or ROLLBACK on error) on an autocommit connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: Any, value: Any, tb: Any) -> None:
        self._conn.execute("COMMIT" if kind is None else "ROLLBACK")


def _account_row(account: Account) -> tuple[Any, ...]:
    return (account.key, account.nick, account.credential, int(account.has_password),
            account.created, account.last_seen)


def _bump_last_id(new_id: int) -> tuple[str, tuple[Any, ...]]:
    return ("UPDATE meta SET value = MAX(value, ?) WHERE name = 'last_id'", (new_id,))
