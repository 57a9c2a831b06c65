"""
What the store keeps for a user beyond one session (issue 14): the contact
list (the nicks whose presence a user watches) and the rooms the user is a
member of, each with the user's *mark*: the newest line of the room the
user's transport is known to have had.  The records and the methods both
stores implement (``memory_social``, ``sqlite_social``); as everywhere in the
store, keys are folded by the caller.

To say how many missed lines history no longer holds, every history line
gets a number per room (1, 2, 3 ... in the order lines were kept), and a
mark holds the number of its line as well as its ``msg_id``: ``msg_id``s are
server-wide, so their gaps count nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import attrs
from twisted.internet.defer import Deferred

from twistchat.store.base import HistoryEntry


class ContactsFull(Exception):
    """``watch`` found the owner's list holding ``limit`` contacts: nothing stored."""


@attrs.frozen
class ContactEntry:
    """One watched nick, with what the accounts table says of it now."""

    key: str
    """Folded nick watched."""
    nick: str
    """Its registered spelling (the key itself if no longer registered)."""
    last_seen: int | None
    """When its last session ended or began (ms); None if not registered."""


@attrs.frozen
class Membership:
    """A user's lasting membership of a room, with the mark."""

    nick_key: str
    room_key: str
    room_name: str
    """Canonical spelling, to re-open a room the server no longer holds."""
    last_seen: int
    """``msg_id`` of the newest line the user's transport acknowledged (or
    the newest line when the user joined); 0: none."""
    seen_line: int
    """That line's number in the room (0: none)."""


@attrs.frozen
class Missed:
    """What a member missed after its mark: the kept lines, oldest first, and
    how many lines after the mark history had trimmed already."""

    lines: list[HistoryEntry]
    not_kept: int


@attrs.frozen
class MarkUpdate:
    nick_key: str
    room_key: str
    msg_id: int


class SocialStore(Protocol):
    """Contacts and lasting memberships.  All methods return Deferreds; writes
    commit in the order issued, as every store write does."""

    def watch(self, owner_key: str, contact_key: str, limit: int) -> Deferred[bool]:
        """Add ``contact_key`` to the owner's list; False if it was there
        already.  ContactsFull (nothing stored) if the list holds ``limit``."""
    def unwatch(self, owner_key: str, contact_key: str) -> Deferred[bool]:
        """False if it was not there."""
    def get_contacts(self, owner_key: str) -> Deferred[list[ContactEntry]]:
        """The owner's contacts in folded-nick order."""

    def keep_membership(self, nick_key: str, room_key: str, room_name: str) -> Deferred[None]:
        """The user joined: a membership marked at the room's newest kept line
        (those the join reply carried).  A membership already there keeps its mark."""
    def drop_membership(self, nick_key: str, room_key: str) -> Deferred[None]: ...
    def get_memberships(self, nick_key: str) -> Deferred[list[Membership]]:
        """The user's rooms in the order joined."""
    def membership_rooms(self) -> Deferred[dict[str, set[str]]]:
        """Every room key with members, to the nick keys that hold them."""
    def advance_marks(self, updates: Iterable[MarkUpdate]) -> Deferred[None]:
        """Move marks forward (never back), in one transaction."""
    def get_missed(self, room_key: str, since: int, since_line: int, limit: int) -> Deferred[Missed]:
        """The newest ``limit`` kept lines after ``since``, and how many
        lines after line number ``since_line`` are no longer kept."""
