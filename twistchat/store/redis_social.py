"""
The Redis side of ``social``: contacts and lasting memberships, as a mixin
of ``RedisStore`` (which gives it ``link``), with the memory and SQLite
stores' contract.  History lines carry their number in the room (the
``line`` field ``redis_scripts.append_line`` gives each), so a mark finds
its line's number in the script that moves it, and the count of trimmed
lines is the room's line counter less what is kept: no scan.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from twisted.internet.defer import Deferred

from twistchat.store import redis_keys as keys
from twistchat.store import redis_scripts as scripts
from twistchat.store.base import HistoryEntry
from twistchat.store.redis_link import RedisLink
from twistchat.store.social import ContactEntry, ContactsFull, MarkUpdate, Membership, Missed

WATCH_FULL = -1
"""The watch script's answer when the list holds its limit."""


def history_entry(room: str, line: str) -> HistoryEntry:
    """A kept line (JSON: msg_id, line, nick, text, ts) as the store's record."""
    fields = json.loads(line)
    return HistoryEntry(room, fields["msg_id"], fields["nick"], fields["text"], fields["ts"])


class RedisSocial:
    link: RedisLink

    def _write(self, script: scripts.Script, *args: Any) -> Deferred[None]:
        return self.link.script(script, *args).addCallback(lambda _: None)

    # ---- contacts

    def watch(self, owner_key: str, contact_key: str, limit: int) -> Deferred[bool]:
        def added(answer: int) -> bool:
            if answer == WATCH_FULL:
                raise ContactsFull(owner_key)
            return bool(answer)
        return self.link.script(scripts.WATCH, owner_key, contact_key, int(limit)).addCallback(added)

    def unwatch(self, owner_key: str, contact_key: str) -> Deferred[bool]:
        return self.link.command("SREM", keys.CONTACTS + owner_key, contact_key).addCallback(bool)

    def get_contacts(self, owner_key: str) -> Deferred[list[ContactEntry]]:
        def entries(flat: list[Any]) -> list[ContactEntry]:
            return [ContactEntry(flat[i], flat[i + 1] or flat[i],
                                 None if flat[i + 2] is None else int(flat[i + 2]))
                    for i in range(0, len(flat), 3)]
        return self.link.script(scripts.GET_CONTACTS, owner_key).addCallback(entries)

    # ---- memberships

    def keep_membership(self, nick_key: str, room_key: str, room_name: str) -> Deferred[None]:
        return self._write(scripts.KEEP_MEMBERSHIP, nick_key, room_key, room_name)

    def drop_membership(self, nick_key: str, room_key: str) -> Deferred[None]:
        return self._write(scripts.DROP_MEMBERSHIP, nick_key, room_key)

    def get_memberships(self, nick_key: str) -> Deferred[list[Membership]]:
        def memberships(flat: list[Any]) -> list[Membership]:
            kept = []
            for room_key, value in zip(flat[::2], flat[1::2]):
                last_seen, seen_line, seq, room_name = value.split(" ", 3)
                kept.append((int(seq), Membership(nick_key, room_key, room_name, int(last_seen),
                                                  int(seen_line))))
            return [membership for _, membership in sorted(kept, key=lambda pair: pair[0])]
        return self.link.command("HGETALL", keys.MEMBERSHIPS + nick_key).addCallback(memberships)

    def membership_rooms(self) -> Deferred[dict[str, set[str]]]:
        def rooms(flat: list[Any]) -> dict[str, set[str]]:
            found: dict[str, set[str]] = {}
            for nick_key, room_key in zip(flat[::2], flat[1::2]):
                found.setdefault(room_key, set()).add(nick_key)
            return found
        return self.link.script(scripts.MEMBERSHIP_ROOMS).addCallback(rooms)

    def advance_marks(self, updates: Iterable[MarkUpdate]) -> Deferred[None]:
        args = [arg for u in updates for arg in (u.nick_key, u.room_key, int(u.msg_id))]
        return self._write(scripts.ADVANCE_MARKS, *args)

    def get_missed(self, room_key: str, since: int, since_line: int, limit: int) -> Deferred[Missed]:
        def missed(reply: list[Any]) -> Missed:
            total, newest_first = reply
            lines = [history_entry(room_key, line) for line in reversed(newest_first)]
            return Missed(lines, max(0, int(total) - since_line - len(lines)))
        return self.link.script(scripts.GET_MISSED, room_key, int(since), int(limit)).addCallback(missed)
