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
* **Check and effect in one transaction**: a mailbox's capacity and quotas
  are counted, and an idempotency key looked up, in the ``BEGIN IMMEDIATE``
  transaction that inserts, so racing writers can neither overfill a
  mailbox nor do one keyed request twice.  (All stored DMs together are
  counted by triggers into ``meta.stored_dms``, so that check is no scan.)
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, succeed

from twistchat.store.base import (
    IDEM_KEPT_PER_NICK,
    Account,
    HistoryEntry,
    IdemRecord,
    MailboxFull,
    Receipt,
    SenderQuotaFull,
    StoredDm,
    StoreFull,
)
from twistchat.store import sqlite_social
from twistchat.store.sqlite_social import SQLiteSocial
from twistchat.store.workers import ThreadWorker, Worker

T = TypeVar("T")

MIGRATED_ID_MARGIN = 1_000_000
"""Schema 1 servers handed out ids they never stored (DMs to online users),
so a database they used gets its high-water mark this far above every id
it holds: ids are 53 bits, gaps are allowed, a clash is not."""

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
    # version 2: ids reserved ahead (meta.last_id is the high-water mark), every
    # DM kept until acknowledged and then its receipt, idempotency keys.
    f"""
    UPDATE meta SET value = MAX(value, (SELECT COALESCE(MAX(msg_id), 0) FROM history),
                                       (SELECT COALESCE(MAX(dm_id), 0) FROM mailbox))
                            + {MIGRATED_ID_MARGIN}
        WHERE name = 'last_id' AND (value > 0 OR EXISTS (SELECT 1 FROM accounts));
    ALTER TABLE mailbox ADD COLUMN sender_key TEXT NOT NULL DEFAULT '';
    -- the chat layer's nick folding (ASCII lower case, [] to {{}}), once, for old rows
    UPDATE mailbox SET sender_key = replace(replace(lower(sender), '[', '{{'), ']', '}}');
    CREATE TABLE receipts (
        dm_id INTEGER PRIMARY KEY, sender_key TEXT NOT NULL, to_nick TEXT NOT NULL,
        ts INTEGER NOT NULL);
    CREATE INDEX receipts_by_sender ON receipts (sender_key, dm_id);
    CREATE TABLE idem (
        seq INTEGER PRIMARY KEY, nick_key TEXT NOT NULL, idem TEXT NOT NULL,
        answer TEXT NOT NULL, ts INTEGER NOT NULL, UNIQUE (nick_key, idem));
    CREATE INDEX idem_by_nick ON idem (nick_key, seq);
    CREATE INDEX idem_by_age ON idem (ts);
    """,
    # version 3: quotas (issue 12): DMs per sender in a mailbox, and all stored
    # DMs together, counted by triggers so the insert's check costs no scan.
    """
    CREATE INDEX mailbox_by_sender ON mailbox (to_key, sender_key);
    INSERT INTO meta (name, value) SELECT 'stored_dms', COUNT(*) FROM mailbox;
    CREATE TRIGGER mailbox_counted_in AFTER INSERT ON mailbox BEGIN
        UPDATE meta SET value = value + 1 WHERE name = 'stored_dms'; END;
    CREATE TRIGGER mailbox_counted_out AFTER DELETE ON mailbox BEGIN
        UPDATE meta SET value = value - 1 WHERE name = 'stored_dms'; END;
    """,
    # version 4: contacts and lasting room memberships (issue 14), history
    # lines numbered per room
    sqlite_social.MIGRATION,
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


class SQLiteStore(SQLiteSocial):
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
        new_key = account.key
        return self._write(
            ("DELETE FROM accounts WHERE key = ?", (old_key,)),
            ("INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?, ?, ?)", _account_row(account)),
            ("UPDATE mailbox SET to_key = ?, to_nick = ? WHERE to_key = ?", (new_key, account.nick, old_key)),
            ("UPDATE mailbox SET sender_key = ? WHERE sender_key = ?", (new_key, old_key)),
            ("UPDATE receipts SET sender_key = ? WHERE sender_key = ?", (new_key, old_key)),
            ("UPDATE OR REPLACE idem SET nick_key = ? WHERE nick_key = ?", (new_key, old_key)),
            *sqlite_social.rename_statements(old_key, new_key),
        )

    def touch_account(self, key: str, last_seen: int) -> Deferred[None]:
        return self._write(("UPDATE accounts SET last_seen = ? WHERE key = ?", (last_seen, key)))

    def delete_expired_accounts(self, last_seen_before: int, keep: Collection[str] = (),
                                password_seen_before: int | None = None) -> Deferred[list[str]]:
        keep = set(keep)
        password_cutoff = password_seen_before if password_seen_before is not None else -(1 << 62)

        def work(conn: sqlite3.Connection) -> list[str]:
            with _transaction(conn):
                rows = conn.execute("SELECT key FROM accounts WHERE (has_password = 0 AND last_seen < ?) "
                                    "OR (has_password = 1 AND last_seen < ?)",
                                    (last_seen_before, password_cutoff)).fetchall()
                gone = [key for (key,) in rows if key not in keep]
                for key in gone:
                    conn.execute("DELETE FROM accounts WHERE key = ?", (key,))
                    conn.execute("DELETE FROM mailbox WHERE to_key = ?", (key,))
                    conn.execute("DELETE FROM receipts WHERE sender_key = ?", (key,))
                    conn.execute("DELETE FROM idem WHERE nick_key = ?", (key,))
                    sqlite_social.forget(conn, key)
            return gone
        return self._run(work)

    # ---- ids and history

    def last_id(self) -> Deferred[int]:
        return self._run(_last_id)

    def reserve_ids(self, count: int) -> Deferred[int]:
        def work(conn: sqlite3.Connection) -> int:
            with _transaction(conn):
                conn.execute("UPDATE meta SET value = value + ? WHERE name = 'last_id'", (count,))
                return _last_id(conn)
        return self._run(work)

    # ---- idempotency keys

    def get_idem(self, nick_key: str, idem: str) -> Deferred[Mapping[str, Any] | None]:
        return self._run(lambda conn: _known_answer(conn, nick_key, idem))

    def put_idem(self, record: IdemRecord) -> Deferred[Mapping[str, Any] | None]:
        return self._keyed(record, lambda conn: None)

    def delete_idem_before(self, ts: int) -> Deferred[None]:
        return self._write(("DELETE FROM idem WHERE ts < ?", (ts,)))

    def _keyed(self, record: IdemRecord | None,
               effect: Callable[[sqlite3.Connection], None]) -> Deferred[Mapping[str, Any] | None]:
        """In one transaction: a known key's first answer, or else the effect
        and the key kept with it (the newest IDEM_KEPT_PER_NICK per nick)."""
        def work(conn: sqlite3.Connection) -> Mapping[str, Any] | None:
            with _transaction(conn):
                if record is not None:
                    known = _known_answer(conn, record.nick_key, record.idem)
                    if known is not None:
                        return known
                effect(conn)
                if record is not None:
                    conn.execute("INSERT INTO idem (nick_key, idem, answer, ts) VALUES (?, ?, ?, ?)",
                                 (record.nick_key, record.idem, json.dumps(dict(record.answer)), record.ts))
                    conn.execute("DELETE FROM idem WHERE nick_key = ? AND seq <= (SELECT seq FROM idem "
                                 "WHERE nick_key = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                                 (record.nick_key, record.nick_key, IDEM_KEPT_PER_NICK))
            return None
        return self._run(work)

    # ---- history

    def append_history(self, entry: HistoryEntry, keep: int,
                       idem: IdemRecord | None = None) -> Deferred[Mapping[str, Any] | None]:
        def effect(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO history VALUES (?, ?, ?, ?, ?)",
                         (entry.msg_id, entry.room, entry.nick, entry.text, entry.ts))
            conn.execute("DELETE FROM history WHERE room = ? AND msg_id NOT IN "
                         "(SELECT msg_id FROM history WHERE room = ? ORDER BY msg_id DESC LIMIT ?)",
                         (entry.room, entry.room, keep))
            conn.execute(*_bump_last_id(entry.msg_id))
        return self._keyed(idem, effect)

    def get_history(self, room: str, since: int | None, limit: int) -> Deferred[list[HistoryEntry]]:
        def work(conn: sqlite3.Connection) -> list[HistoryEntry]:
            rows = conn.execute("SELECT room, msg_id, nick, text, ts FROM history WHERE room = ? AND msg_id > ? "
                                "ORDER BY msg_id DESC LIMIT ?", (room, -1 if since is None else since, limit))
            return [HistoryEntry(*row) for row in reversed(rows.fetchall())]
        return self._run(work)

    def delete_history(self, room: str) -> Deferred[None]:
        return self._write(("DELETE FROM history WHERE room = ?", (room,)))

    # ---- mailbox

    def store_dm(self, dm: StoredDm, capacity: int | None = None,
                 idem: IdemRecord | None = None, per_sender: int | None = None,
                 total: int | None = None) -> Deferred[Mapping[str, Any] | None]:
        def effect(conn: sqlite3.Connection) -> None:
            if capacity is not None:
                (count,) = conn.execute("SELECT COUNT(*) FROM mailbox WHERE to_key = ?",
                                        (dm.to_key,)).fetchone()
                if count >= capacity:
                    raise MailboxFull(dm.to_key)
            if per_sender is not None:
                (count,) = conn.execute("SELECT COUNT(*) FROM mailbox WHERE to_key = ? AND sender_key = ?",
                                        (dm.to_key, dm.sender_key)).fetchone()
                if count >= per_sender:
                    raise SenderQuotaFull(dm.to_key)
            if total is not None and _stored_dms(conn) >= total:
                raise StoreFull(dm.to_key)
            conn.execute("INSERT INTO mailbox (dm_id, to_key, to_nick, sender, text, ts, sender_key) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (dm.dm_id, dm.to_key, dm.to_nick, dm.sender, dm.text, dm.ts, dm.sender_key))
            conn.execute(*_bump_last_id(dm.dm_id))
        return self._keyed(idem, effect)

    def mailbox_count(self, to_key: str) -> Deferred[int]:
        return self._run(lambda conn: conn.execute("SELECT COUNT(*) FROM mailbox WHERE to_key = ?",
                                                   (to_key,)).fetchone()[0])

    def stored_dm_count(self) -> Deferred[int]:
        return self._run(_stored_dms)

    def get_mailbox(self, to_key: str) -> Deferred[list[StoredDm]]:
        def work(conn: sqlite3.Connection) -> list[StoredDm]:
            rows = conn.execute("SELECT dm_id, to_key, to_nick, sender, text, ts, sender_key FROM mailbox "
                                "WHERE to_key = ? ORDER BY dm_id", (to_key,))
            return [StoredDm(*row) for row in rows.fetchall()]
        return self._run(work)

    def dm_acknowledged(self, dm_id: int) -> Deferred[Receipt | None]:
        def work(conn: sqlite3.Connection) -> Receipt | None:
            with _transaction(conn):
                row = conn.execute("SELECT dm_id, sender_key, to_nick, ts FROM mailbox WHERE dm_id = ?",
                                   (dm_id,)).fetchone()
                if row is None:
                    return None
                conn.execute("DELETE FROM mailbox WHERE dm_id = ?", (dm_id,))
                conn.execute("INSERT OR REPLACE INTO receipts VALUES (?, ?, ?, ?)", row)
            return Receipt(*row)
        return self._run(work)

    def get_receipts(self, sender_key: str) -> Deferred[list[Receipt]]:
        return self._run(lambda conn: [Receipt(*row) for row in conn.execute(
            "SELECT dm_id, sender_key, to_nick, ts FROM receipts WHERE sender_key = ? ORDER BY dm_id",
            (sender_key,)).fetchall()])

    def delete_receipt(self, dm_id: int) -> Deferred[None]:
        return self._write(("DELETE FROM receipts WHERE dm_id = ?", (dm_id,)))

    # ---- rooms

    def put_room(self, key: str, state: Mapping[str, Any]) -> Deferred[None]:
        return self._write(("INSERT OR REPLACE INTO rooms VALUES (?, ?)", (key, json.dumps(dict(state)))))

    def create_room(self, key: str, state: Mapping[str, Any]) -> Deferred[tuple[bool, dict[str, Any]]]:
        def work(conn: sqlite3.Connection) -> tuple[bool, dict[str, Any]]:
            with _transaction(conn):
                created = conn.execute("INSERT OR IGNORE INTO rooms VALUES (?, ?)",
                                       (key, json.dumps(dict(state)))).rowcount == 1
                kept = conn.execute("SELECT state FROM rooms WHERE key = ?", (key,)).fetchone()[0]
            return created, json.loads(kept)
        return self._run(work)

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


def _last_id(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT value FROM meta WHERE name = 'last_id'").fetchone()[0]


def _stored_dms(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT value FROM meta WHERE name = 'stored_dms'").fetchone()[0]


def _known_answer(conn: sqlite3.Connection, nick_key: str, idem: str) -> Mapping[str, Any] | None:
    row = conn.execute("SELECT answer FROM idem WHERE nick_key = ? AND idem = ?", (nick_key, idem)).fetchone()
    return None if row is None else json.loads(row[0])


def _bump_last_id(new_id: int) -> tuple[str, tuple[Any, ...]]:
    return ("UPDATE meta SET value = MAX(value, ?) WHERE name = 'last_id'", (new_id,))
