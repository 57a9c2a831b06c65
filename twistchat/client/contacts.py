"""
What the client knows of its contacts (PROTOCOL.md C11): the server keeps
the list and tells each contact's state at login and every change; this
table follows those ``contact`` events and the ``watch``, ``unwatch`` and
``contacts`` replies, so an application can ask at any time who is online.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twistchat.chat import protocol as p
from twistchat.chat.protocol import fold_nick


class ContactList:
    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}
        """Folded nick to its latest entry: ``nick``, ``state`` (online,
        away, offline), ``away``, ``last_seen`` (ms, offline only)."""

    def update(self, entry: Mapping[str, Any]) -> None:
        self.entries[fold_nick(entry["nick"])] = {
            "nick": entry["nick"], "state": entry["state"], "away": entry.get("away"),
            "last_seen": entry.get("last_seen")}

    def event(self, event: p.ContactEvent) -> None:
        """The server sends these only for nicks we watch."""
        self.update({"nick": event.nick, "state": event.state, "away": event.away,
                     "last_seen": event.last_seen})

    def listed(self, entries: list[Mapping[str, Any]]) -> None:
        """A whole ``contacts`` listing: the list as the server has it."""
        self.entries.clear()
        for entry in entries:
            self.update(entry)

    def remove(self, nick: str) -> None:
        self.entries.pop(fold_nick(nick), None)

    def state(self, nick: str) -> str | None:
        entry = self.entries.get(fold_nick(nick))
        return None if entry is None else entry["state"]
