"""The store's side of issue 12, on every implementation: DM quotas checked
in the insert's transaction (per sender in a mailbox, all mailboxes
together), password accounts expiring, and SQLite's trigger-kept count
(right after acknowledgements, expiry and a migration from schema 2)."""

from __future__ import annotations

import sqlite3

from twisted.internet.task import Clock

from twistchat.store import open_store
from twistchat.store.base import (
    Account,
    ChatStore,
    DmRefused,
    MailboxFull,
    SenderQuotaFull,
    StoredDm,
    StoreFull,
)
from twistchat.store.sqlite import MIGRATIONS, SCHEMA_VERSION
from twistchat.store.workers import InlineWorker

from .synchronous import synchronously


def _dm(dm_id: int, to: str, sender: str) -> StoredDm:
    return StoredDm(dm_id=dm_id, to_key=to, to_nick=to.title(), sender=sender.title(), text="x",
                    ts=dm_id, sender_key=sender)


async def _refusal(store: ChatStore, dm: StoredDm, **quota) -> type | None:
    try:
        await store.store_dm(dm, **quota)
    except DmRefused as refused:
        return type(refused)
    return None


@synchronously
async def test_a_sender_may_have_only_so_many_dms_in_one_mailbox(store: ChatStore):
    quota = {"capacity": 5, "per_sender": 2}
    assert await _refusal(store, _dm(1, "bob", "eve"), **quota) is None
    assert await _refusal(store, _dm(2, "bob", "eve"), **quota) is None
    assert await _refusal(store, _dm(3, "bob", "eve"), **quota) is SenderQuotaFull
    assert await _refusal(store, _dm(4, "bob", "ann"), **quota) is None  # a friend gets in
    assert await _refusal(store, _dm(5, "cat", "eve"), **quota) is None  # another mailbox
    assert [dm.dm_id for dm in await store.get_mailbox("bob")] == [1, 2, 4]
    await store.dm_acknowledged(1)
    assert await _refusal(store, _dm(6, "bob", "eve"), **quota) is None  # room again
    for n in range(7, 9):
        await store.store_dm(_dm(n, "bob", f"s{n}"))
    assert await _refusal(store, _dm(9, "bob", "new"), **quota) is MailboxFull  # checked first


@synchronously
async def test_all_mailboxes_together_hold_at_most_the_total(store: ChatStore):
    for n, to in enumerate(("a", "b", "c"), 1):
        assert await _refusal(store, _dm(n, to, "eve"), total=3) is None
    assert await store.stored_dm_count() == 3
    assert await _refusal(store, _dm(4, "d", "ann"), total=3) is StoreFull
    await store.dm_acknowledged(2)
    assert await store.stored_dm_count() == 2
    assert await _refusal(store, _dm(5, "d", "ann"), total=3) is None


@synchronously
async def test_expiry_deletes_lapsed_password_accounts_when_asked(store: ChatStore):
    def account(key: str, has_password: bool, last_seen: int) -> Account:
        return Account(key=key, nick=key, credential="c", has_password=has_password, created=1,
                       last_seen=last_seen)
    await store.put_account(account("old-pw", True, 10))
    await store.put_account(account("fresh-pw", True, 500))
    await store.put_account(account("online-pw", True, 10))
    await store.put_account(account("old", False, 10))
    await store.store_dm(_dm(1, "old-pw", "x"))
    assert await store.delete_expired_accounts(100, keep={"online-pw"}) == ["old"]
    gone = await store.delete_expired_accounts(100, keep={"online-pw"}, password_seen_before=100)
    assert gone == ["old-pw"]
    assert await store.mailbox_count("old-pw") == 0 and await store.stored_dm_count() == 0
    for key in ("fresh-pw", "online-pw"):
        assert await store.get_account(key) is not None


@synchronously
async def test_sqlite_schema_2_is_migrated_with_the_stored_dms_counted(tmp_path):
    path = str(tmp_path / "v2.sqlite3")
    with sqlite3.connect(path, isolation_level=None) as raw:
        for number in range(2):
            raw.executescript("BEGIN;" + MIGRATIONS[number] + f"PRAGMA user_version = {number + 1}; COMMIT;")
        for dm_id in (1, 2, 3):
            raw.execute("INSERT INTO mailbox (dm_id, to_key, to_nick, sender, text, ts, sender_key) "
                        "VALUES (?, 'bob', 'Bob', 'Eve', 'x', 1, 'eve')", (dm_id,))
    store = open_store(Clock(), path, worker=InlineWorker())
    try:
        assert await store.stored_dm_count() == 3
        assert await _refusal(store, _dm(4, "bob", "eve"), per_sender=3) is SenderQuotaFull
        await store.dm_acknowledged(1)
        assert await store.stored_dm_count() == 2
    finally:
        await store.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
