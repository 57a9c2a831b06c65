"""
Rooms: public ``#name`` rooms created by the first join, and private groups
with random 8-character ids created by ``create``.  This module holds room
state and the rules that need no I/O (who may join, who is operator, when an
empty room goes); the server applies them, tells the members and talks
to the store.
"""

from __future__ import annotations

import heapq
import random as _random
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

import attrs

from twistchat.chat.protocol import GROUP_ID_ALPHABET, GROUP_ID_LENGTH, ChatProtocolError, ErrorCode
from twistchat.chat.protocol import member as member_entry
from twistchat.chat.server.member import Member

M = TypeVar("M", bound=Member)
"""The member type: generic so the server gets its own users back out of a room."""


@attrs.define(eq=False)
class Room(Generic[M]):
    key: str
    """Folded name: the identity."""
    name: str
    """Spelling reported to clients (the creator's)."""
    creator_key: str
    op_key: str | None = None
    op_nick: str | None = None
    topic: str | None = None
    topic_by: str | None = None
    topic_ts: int | None = None
    bans: dict[str, str] = attrs.Factory(dict)
    """Folded nick to nick as given when banned."""
    invites: set[str] = attrs.Factory(set)
    invite_only: bool = False
    join_key: str | None = None
    member_limit: int | None = None
    """The operator's cap on members (``/mode +l``), within the server's."""
    members: dict[str, M] = attrs.Factory(dict)
    """Folded nick to member, in join order."""
    empty_since: float | None = None

    @property
    def private(self) -> bool:
        return not self.name.startswith("#")

    def worth_keeping(self) -> bool:
        """Operator-set state survives an empty room for the long TTL."""
        return bool(self.topic or self.bans or self.invite_only or self.join_key
                    or self.member_limit)

    def is_op(self, key: str) -> bool:
        return self.op_key == key

    def check_join(self, key: str, given_key: str | None, max_members: int,
                   members: Mapping[str, Any] | None = None) -> None:
        """Raise the error a join by ``key`` must get, if any.  Order matters:
        a banned nick learns it is banned even if it holds an invitation.
        ``members``: the room's on every node, when not only this node's."""
        members = self.members if members is None else members
        if key in members:
            raise ChatProtocolError(ErrorCode.ALREADY_IN_ROOM)
        if key in self.bans:
            raise ChatProtocolError(ErrorCode.BANNED)
        privileged = self.is_op(key) or key in self.invites
        if self.invite_only and not privileged:
            raise ChatProtocolError(ErrorCode.INVITE_ONLY)
        if self.join_key and not privileged and given_key != self.join_key:
            raise ChatProtocolError(ErrorCode.BAD_KEY)
        if len(members) >= max_members:
            raise ChatProtocolError(ErrorCode.ROOM_FULL)
        if self.member_limit is not None and len(members) >= self.member_limit:
            raise ChatProtocolError(ErrorCode.ROOM_FULL,
                                    f"room is full: its operator allows {self.member_limit} members")

    def add(self, member: M) -> None:
        self.members[member.key] = member
        self.invites.discard(member.key)
        self.empty_since = None

    def remove(self, key: str, now: float) -> None:
        self.members.pop(key, None)
        if not self.members:
            self.empty_since = now

    def member_list(self, after: str | None = None, count: int | None = None,
                    members: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Members in folded-nick order (the order ``who`` pages in): those
        whose key is after ``after``, at most ``count`` of them (of
        ``members``, when not only this node's)."""
        members = self.members if members is None else members
        keys = (k for k in members if after is None or k > after)
        chosen = sorted(keys) if count is None else heapq.nsmallest(count, keys)
        return [member_entry(members[k].nick, members[k].away, self.is_op(k)) for k in chosen]

    def describe(self, members: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The room part of a ``join``/``create`` reply (its members are paged)."""
        return {"room": self.name, "topic": self.topic, "topic_by": self.topic_by,
                "topic_ts": self.topic_ts, "op": self.op_nick, "invite_only": self.invite_only,
                "has_key": bool(self.join_key), "limit": self.member_limit,
                "member_count": len(self.members if members is None else members)}

    # persistence: only the operator-set state, never members
    def to_state(self) -> dict[str, Any]:
        return {"name": self.name, "creator_key": self.creator_key, "op_key": self.op_key,
                "op_nick": self.op_nick, "topic": self.topic, "topic_by": self.topic_by,
                "topic_ts": self.topic_ts, "bans": dict(self.bans), "invites": sorted(self.invites),
                "invite_only": self.invite_only, "join_key": self.join_key,
                "member_limit": self.member_limit}

    @classmethod
    def from_state(cls, key: str, state: dict[str, Any], now: float) -> Room[M]:
        room: Room[M] = cls(key=key, name=state["name"], creator_key=state["creator_key"],
                            empty_since=now)
        room.apply_state(state)
        return room

    def apply_state(self, state: Mapping[str, Any]) -> None:
        """Take the operator-set state of ``to_state`` (from the store, or
        another node of the network); members are not state."""
        self.creator_key = state.get("creator_key", self.creator_key)
        self.op_key, self.op_nick = state.get("op_key"), state.get("op_nick")
        self.topic, self.topic_by = state.get("topic"), state.get("topic_by")
        self.topic_ts = state.get("topic_ts")
        self.bans = dict(state.get("bans", {}))
        self.invites = set(state.get("invites", []))
        self.invite_only = bool(state.get("invite_only"))
        self.join_key, self.member_limit = state.get("join_key"), state.get("member_limit")


def founded(key: str, name: str, creator: M) -> Room[M]:
    """A new room: ``creator`` is its operator."""
    return Room(key=key, name=name, creator_key=creator.key, op_key=creator.key,
                op_nick=creator.nick)


class RoomRegistry(Generic[M]):
    """Every live room by folded key, plus the id generator and the reaping rule."""

    def __init__(self, rng: _random.Random) -> None:
        self.rooms: dict[str, Room[M]] = {}
        self._rng = rng

    def __iter__(self) -> Iterator[Room[M]]:
        return iter(list(self.rooms.values()))

    def get(self, key: str) -> Room[M] | None:
        return self.rooms.get(key)

    def create(self, key: str, name: str, creator: M) -> Room[M]:
        room: Room[M] = founded(key, name, creator)
        self.rooms[key] = room
        return room

    def new_group_id(self) -> str:
        while True:
            candidate = "".join(self._rng.choice(GROUP_ID_ALPHABET) for _ in range(GROUP_ID_LENGTH))
            if candidate not in self.rooms:
                return candidate

    def created_by(self, key: str) -> int:
        return sum(1 for room in self.rooms.values() if room.creator_key == key)

    def expired(self, now: float, ttl: float, kept_ttl: float,
                held: Callable[[str], bool] | None = None) -> list[Room[M]]:
        """Remove and return empty rooms whose time is up, but none ``held``
        (one with absent members who come back to it: issue 14)."""
        gone = []
        for room in list(self.rooms.values()):
            if room.members or room.empty_since is None or (held is not None and held(room.key)):
                continue
            limit = kept_ttl if room.worth_keeping() else ttl
            if now - room.empty_since >= limit:
                del self.rooms[room.key]
                gone.append(room)
        return gone

    def rename_member(self, old_key: str, member: M) -> None:
        """Re-key a renamed member everywhere, keeping operator status with it."""
        for room in self.rooms.values():
            if old_key in room.members:
                room.members = {(member.key if k == old_key else k): m for k, m in room.members.items()}
            if room.op_key == old_key:
                room.op_key, room.op_nick = member.key, member.nick
            if room.creator_key == old_key:
                room.creator_key = member.key
