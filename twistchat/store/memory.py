"""In-memory store for tests: every Deferred has already fired when returned,
so tests on ``task.Clock`` run synchronously and deterministically.  It keeps
the same contract as SQLite for as long as it lives (ids never reused, the
capacity checked with the insert, idempotency keys kept with the effect)."""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from typing import Any

import attrs

from twisted.internet.defer import Deferred, fail, succeed

from twistchat.store.memory_social import MemorySocial
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


_SCALARS = frozenset((str, int, float, bool, type(None)))


def _copied(answer: Mapping[str, Any]) -> dict[str, Any]:
    """A copy nobody else holds, as the SQLite store's JSON round trip gives:
    a plain copy where every value is a scalar (a say's answer), else deep.
    The types are checked in C (``issuperset``), not by a generator."""
    if _SCALARS.issuperset(map(type, answer.values())):
        return dict(answer)
    return copy.deepcopy(dict(answer))


class MemoryStore(MemorySocial):
    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.history: dict[str, list[HistoryEntry]] = {}
        self.mailboxes: dict[str, list[StoredDm]] = {}
        self.receipts: dict[int, Receipt] = {}
        self.idem: dict[str, dict[str, IdemRecord]] = {}
        """Per folded nick, its kept keys, oldest first."""
        self.rooms: dict[str, dict[str, Any]] = {}
        self._last_id = 0
        self.closed = False
        self._init_social()

    def get_account(self, key: str) -> Deferred[Account | None]:
        return succeed(self.accounts.get(key))

    def put_account(self, account: Account) -> Deferred[None]:
        self.accounts[account.key] = account
        return succeed(None)

    def rename_account(self, old_key: str, account: Account) -> Deferred[None]:
        self.accounts.pop(old_key, None)
        self.accounts[account.key] = account
        new_key = account.key
        if old_key != new_key:
            if old_key in self.mailboxes:
                self.mailboxes.setdefault(new_key, []).extend(
                    attrs.evolve(dm, to_key=new_key) for dm in self.mailboxes.pop(old_key))
            for dms in self.mailboxes.values():
                dms[:] = [attrs.evolve(dm, sender_key=new_key) if dm.sender_key == old_key else dm
                          for dm in dms]
            for dm_id, receipt in list(self.receipts.items()):
                if receipt.sender_key == old_key:
                    self.receipts[dm_id] = attrs.evolve(receipt, sender_key=new_key)
            if old_key in self.idem:
                moved = {k: attrs.evolve(r, nick_key=new_key) for k, r in self.idem.pop(old_key).items()}
                self.idem.setdefault(new_key, {}).update(moved)
            self._rename_social(old_key, new_key)
        return succeed(None)

    def touch_account(self, key: str, last_seen: int) -> Deferred[None]:
        account = self.accounts.get(key)
        if account is not None:
            self.accounts[key] = attrs.evolve(account, last_seen=last_seen)
        return succeed(None)

    def delete_expired_accounts(self, last_seen_before: int, keep: Collection[str] = (),
                                password_seen_before: int | None = None) -> Deferred[list[str]]:
        def expired(account: Account) -> bool:
            if not account.has_password:
                return account.last_seen < last_seen_before
            return password_seen_before is not None and account.last_seen < password_seen_before
        gone = [key for key, account in self.accounts.items()
                if expired(account) and key not in keep]
        for key in gone:
            del self.accounts[key]
            self.mailboxes.pop(key, None)
            self.idem.pop(key, None)
            self._forget_social(key)
            for dm_id in [d for d, r in self.receipts.items() if r.sender_key == key]:
                del self.receipts[dm_id]
        return succeed(gone)

    # ---- ids

    def last_id(self) -> Deferred[int]:
        return succeed(self._last_id)

    def reserve_ids(self, count: int) -> Deferred[int]:
        self._last_id += count
        return succeed(self._last_id)

    def _bump(self, new_id: int) -> None:
        self._last_id = max(self._last_id, new_id)

    # ---- idempotency keys

    def get_idem(self, nick_key: str, idem: str) -> Deferred[Mapping[str, Any] | None]:
        return succeed(self._known(nick_key, idem))

    def _known(self, nick_key: str, idem: str) -> Mapping[str, Any] | None:
        record = self.idem.get(nick_key, {}).get(idem)
        return None if record is None else _copied(record.answer)

    def _keep(self, record: IdemRecord | None) -> Mapping[str, Any] | None:
        """The known answer for ``record``'s key, or None after keeping it."""
        if record is None:
            return None
        known = self._known(record.nick_key, record.idem)
        if known is not None:
            return known
        kept = self.idem.setdefault(record.nick_key, {})
        # built, not ``attrs.evolve``d: that walks the class's fields every time
        kept[record.idem] = IdemRecord(nick_key=record.nick_key, idem=record.idem,
                                       answer=_copied(record.answer), ts=record.ts)
        while len(kept) > IDEM_KEPT_PER_NICK:  # the oldest first (dicts keep insertion order)
            del kept[next(iter(kept))]
        return None

    def put_idem(self, record: IdemRecord) -> Deferred[Mapping[str, Any] | None]:
        return succeed(self._keep(record))

    def delete_idem_before(self, ts: int) -> Deferred[None]:
        for nick_key, kept in list(self.idem.items()):
            for idem in [i for i, r in kept.items() if r.ts < ts]:
                del kept[idem]
            if not kept:
                del self.idem[nick_key]
        return succeed(None)

    # ---- history

    def append_history(self, entry: HistoryEntry, keep: int,
                       idem: IdemRecord | None = None) -> Deferred[Mapping[str, Any] | None]:
        known = self._keep(idem)
        if known is not None:
            return succeed(known)
        entries = self.history.setdefault(entry.room, [])
        entries.append(entry)
        self._number_line(entry)
        del entries[:-keep]
        self._bump(entry.msg_id)
        return succeed(None)

    def get_history(self, room: str, since: int | None, limit: int) -> Deferred[list[HistoryEntry]]:
        entries = [e for e in self.history.get(room, []) if since is None or e.msg_id > since]
        return succeed(entries[-limit:] if limit > 0 else [])

    def delete_history(self, room: str) -> Deferred[None]:
        self.history.pop(room, None)
        return succeed(None)

    # ---- mailbox and receipts

    def store_dm(self, dm: StoredDm, capacity: int | None = None,
                 idem: IdemRecord | None = None, per_sender: int | None = None,
                 total: int | None = None) -> Deferred[Mapping[str, Any] | None]:
        known = self._known(idem.nick_key, idem.idem) if idem is not None else None
        if known is not None:
            return succeed(known)
        box = self.mailboxes.get(dm.to_key, [])
        if capacity is not None and len(box) >= capacity:
            return fail(MailboxFull(dm.to_key))
        if per_sender is not None and sum(d.sender_key == dm.sender_key for d in box) >= per_sender:
            return fail(SenderQuotaFull(dm.to_key))
        if total is not None and self._stored_dms() >= total:
            return fail(StoreFull(dm.to_key))
        self._keep(idem)
        self.mailboxes.setdefault(dm.to_key, []).append(dm)
        self._bump(dm.dm_id)
        return succeed(None)

    def mailbox_count(self, to_key: str) -> Deferred[int]:
        return succeed(len(self.mailboxes.get(to_key, [])))

    def stored_dm_count(self) -> Deferred[int]:
        return succeed(self._stored_dms())

    def _stored_dms(self) -> int:
        return sum(len(box) for box in self.mailboxes.values())

    def get_mailbox(self, to_key: str) -> Deferred[list[StoredDm]]:
        return succeed(list(self.mailboxes.get(to_key, [])))

    def dm_acknowledged(self, dm_id: int) -> Deferred[Receipt | None]:
        for to_key, box in self.mailboxes.items():
            for dm in box:
                if dm.dm_id == dm_id:
                    box.remove(dm)
                    if not box:
                        del self.mailboxes[to_key]
                    receipt = Receipt(dm_id=dm.dm_id, sender_key=dm.sender_key,
                                      to_nick=dm.to_nick, ts=dm.ts)
                    self.receipts[dm_id] = receipt
                    return succeed(receipt)
        return succeed(None)

    def get_receipts(self, sender_key: str) -> Deferred[list[Receipt]]:
        return succeed(sorted((r for r in self.receipts.values() if r.sender_key == sender_key),
                              key=lambda r: r.dm_id))

    def delete_receipt(self, dm_id: int) -> Deferred[None]:
        self.receipts.pop(dm_id, None)
        return succeed(None)

    # ---- rooms and lifecycle

    def put_room(self, key: str, state: Mapping[str, Any]) -> Deferred[None]:
        self.rooms[key] = copy.deepcopy(dict(state))
        return succeed(None)

    def create_room(self, key: str, state: Mapping[str, Any]) -> Deferred[tuple[bool, dict[str, Any]]]:
        created = key not in self.rooms
        if created:
            self.rooms[key] = copy.deepcopy(dict(state))
        return succeed((created, copy.deepcopy(self.rooms[key])))

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
