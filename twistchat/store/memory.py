"""In-memory store for tests: every Deferred has already fired when returned,
so tests on ``task.Clock`` run synchronously and deterministically."""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from typing import Any

import attrs

from twisted.internet.defer import Deferred, succeed

from twistchat.store.base import Account, HistoryEntry, StoredDm


class MemoryStore:
    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.history: dict[str, list[HistoryEntry]] = {}
        self.mailboxes: dict[str, list[StoredDm]] = {}
        self.rooms: dict[str, dict[str, Any]] = {}
        self._last_id = 0
        self.closed = False

    def get_account(self, key: str) -> Deferred[Account | None]:
        return succeed(self.accounts.get(key))

    def put_account(self, account: Account) -> Deferred[None]:
        self.accounts[account.key] = account
        return succeed(None)

    def rename_account(self, old_key: str, account: Account) -> Deferred[None]:
        self.accounts.pop(old_key, None)
        self.accounts[account.key] = account
        if old_key != account.key and old_key in self.mailboxes:
            self.mailboxes.setdefault(account.key, []).extend(self.mailboxes.pop(old_key))
        return succeed(None)

    def touch_account(self, key: str, last_seen: int) -> Deferred[None]:
        account = self.accounts.get(key)
        if account is not None:
            self.accounts[key] = attrs.evolve(account, last_seen=last_seen)
        return succeed(None)

    def delete_expired_accounts(self, last_seen_before: int,
                                keep: Collection[str] = ()) -> Deferred[list[str]]:
        gone = [key for key, account in self.accounts.items()
                if not account.has_password and account.last_seen < last_seen_before
                and key not in keep]
        for key in gone:
            del self.accounts[key]
            self.mailboxes.pop(key, None)
        return succeed(gone)

    def last_id(self) -> Deferred[int]:
        return succeed(self._last_id)

    def append_history(self, entry: HistoryEntry, keep: int) -> Deferred[None]:
        entries = self.history.setdefault(entry.room, [])
        entries.append(entry)
        del entries[:-keep]
        self._last_id = max(self._last_id, entry.msg_id)
        return succeed(None)

    def get_history(self, room: str, since: int | None, limit: int) -> Deferred[list[HistoryEntry]]:
        entries = [e for e in self.history.get(room, []) if since is None or e.msg_id > since]
        return succeed(entries[-limit:] if limit > 0 else [])

    def delete_history(self, room: str) -> Deferred[None]:
        self.history.pop(room, None)
        return succeed(None)

    def store_dm(self, dm: StoredDm) -> Deferred[None]:
        self.mailboxes.setdefault(dm.to_key, []).append(dm)
        self._last_id = max(self._last_id, dm.dm_id)
        return succeed(None)

    def mailbox_count(self, to_key: str) -> Deferred[int]:
        return succeed(len(self.mailboxes.get(to_key, [])))

    def get_mailbox(self, to_key: str) -> Deferred[list[StoredDm]]:
        return succeed(list(self.mailboxes.get(to_key, [])))

    def delete_mailbox(self, to_key: str, up_to_id: int) -> Deferred[None]:
        remaining = [dm for dm in self.mailboxes.get(to_key, []) if dm.dm_id > up_to_id]
        if remaining:
            self.mailboxes[to_key] = remaining
        else:
            self.mailboxes.pop(to_key, None)
        return succeed(None)

    def put_room(self, key: str, state: Mapping[str, Any]) -> Deferred[None]:
        self.rooms[key] = copy.deepcopy(dict(state))
        return succeed(None)

    def delete_room(self, key: str) -> Deferred[None]:
        self.rooms.pop(key, None)
        return succeed(None)

    def load_rooms(self) -> Deferred[dict[str, dict[str, Any]]]:
        return succeed(copy.deepcopy(self.rooms))

    def flush(self) -> Deferred[None]:
        return succeed(None)

    def close(self) -> Deferred[None]:
        self.closed = True
        return succeed(None)

