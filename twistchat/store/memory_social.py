"""
The in-memory side of ``social``: contacts and lasting memberships, as a
mixin of ``MemoryStore`` (whose ``accounts`` and ``history`` it reads), with
the same contract as SQLite for as long as it lives.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs
from twisted.internet.defer import Deferred, fail, succeed

from twistchat.store.base import Account, HistoryEntry
from twistchat.store.social import ContactEntry, ContactsFull, MarkUpdate, Membership, Missed


class MemorySocial:
    accounts: dict[str, Account]
    history: dict[str, list[HistoryEntry]]

    def _init_social(self) -> None:
        self.contacts: dict[str, set[str]] = {}
        """Owner key to the keys it watches."""
        self.memberships: dict[str, dict[str, Membership]] = {}
        """Nick key to its rooms, in the order joined."""
        self.room_lines: dict[str, int] = {}
        """Lines ever kept per room: the newest line's number (a kept line's
        number follows from its place in the room's history)."""

    def _number_line(self, entry: HistoryEntry) -> None:
        """Called as a line is kept (SQLite: a trigger)."""
        self.room_lines[entry.room] = self.room_lines.get(entry.room, 0) + 1

    def _line_number(self, room_key: str, msg_id: int) -> int | None:
        kept = self.history.get(room_key, [])
        for index, entry in enumerate(kept):
            if entry.msg_id == msg_id:
                return self.room_lines.get(room_key, 0) - (len(kept) - 1 - index)
        return None

    def _rename_social(self, old_key: str, new_key: str) -> None:
        if old_key == new_key:
            return
        if old_key in self.contacts:
            self.contacts.setdefault(new_key, set()).update(self.contacts.pop(old_key))
        if old_key in self.memberships:
            moved = {k: attrs.evolve(m, nick_key=new_key)
                     for k, m in self.memberships.pop(old_key).items()}
            self.memberships[new_key] = {**self.memberships.get(new_key, {}), **moved}

    def _forget_social(self, key: str) -> None:
        self.contacts.pop(key, None)
        self.memberships.pop(key, None)

    # ---- contacts

    def watch(self, owner_key: str, contact_key: str, limit: int) -> Deferred[bool]:
        watched = self.contacts.get(owner_key, set())
        if contact_key in watched:
            return succeed(False)
        if len(watched) >= limit:
            return fail(ContactsFull(owner_key))
        self.contacts.setdefault(owner_key, set()).add(contact_key)
        return succeed(True)

    def unwatch(self, owner_key: str, contact_key: str) -> Deferred[bool]:
        watched = self.contacts.get(owner_key, set())
        if contact_key not in watched:
            return succeed(False)
        watched.discard(contact_key)
        if not watched:
            del self.contacts[owner_key]
        return succeed(True)

    def get_contacts(self, owner_key: str) -> Deferred[list[ContactEntry]]:
        entries = []
        for key in sorted(self.contacts.get(owner_key, ())):
            account = self.accounts.get(key)
            entries.append(ContactEntry(key, account.nick if account else key,
                                        account.last_seen if account else None))
        return succeed(entries)

    # ---- memberships

    def keep_membership(self, nick_key: str, room_key: str, room_name: str) -> Deferred[None]:
        rooms = self.memberships.setdefault(nick_key, {})
        if room_key not in rooms:
            kept = self.history.get(room_key, [])
            rooms[room_key] = Membership(nick_key, room_key, room_name,
                                         kept[-1].msg_id if kept else 0,
                                         self.room_lines.get(room_key, 0))
        return succeed(None)

    def drop_membership(self, nick_key: str, room_key: str) -> Deferred[None]:
        rooms = self.memberships.get(nick_key, {})
        rooms.pop(room_key, None)
        if not rooms:
            self.memberships.pop(nick_key, None)
        return succeed(None)

    def get_memberships(self, nick_key: str) -> Deferred[list[Membership]]:
        return succeed(list(self.memberships.get(nick_key, {}).values()))

    def membership_rooms(self) -> Deferred[dict[str, set[str]]]:
        rooms: dict[str, set[str]] = {}
        for nick_key, kept in self.memberships.items():
            for room_key in kept:
                rooms.setdefault(room_key, set()).add(nick_key)
        return succeed(rooms)

    def advance_marks(self, updates: Iterable[MarkUpdate]) -> Deferred[None]:
        for update in updates:
            membership = self.memberships.get(update.nick_key, {}).get(update.room_key)
            if membership is None or membership.last_seen >= update.msg_id:
                continue
            line = self._line_number(update.room_key, update.msg_id)
            line = membership.seen_line if line is None else line
            self.memberships[update.nick_key][update.room_key] = attrs.evolve(
                membership, last_seen=update.msg_id, seen_line=line)
        return succeed(None)

    def get_missed(self, room_key: str, since: int, since_line: int, limit: int) -> Deferred[Missed]:
        after = [e for e in self.history.get(room_key, []) if e.msg_id > since]
        lines = after[-limit:] if limit > 0 else []
        total = self.room_lines.get(room_key, 0)
        return succeed(Missed(lines, max(0, total - since_line - len(lines))))
