"""
Membership that outlives the connection (PROTOCOL.md C12), as a bouncer
keeps it: a ``join`` makes a lasting membership (committed before the join
is answered), ``part``, a kick or a ban ends it (committed before the part
is answered), and a ``quit``, a lost session or a replaced one leave it.
At each login the user is put back in every room it is a member of and
sent what it missed there since its *mark*, then live lines.

**The mark** is the newest line of the room the user's transport has
acknowledged with every older line it was sent (``DeliveryMark``): each
room line sent to a member is remembered with its transport sequence
number, and the mark moves only over lines below the session's
``acked_below`` (every message before it acknowledged), so a line the
transport never had is never behind the mark.  No callback per delivery:
marks are worked out when they are written, in one transaction per reaper
tick, when a session ends and at shutdown: after a crash a mark may lag the
truth by a tick, so some lines come again, never fewer (clients de-duplicate
by ``msg_id``, as they must anyway).

**Once and in order.**  The missed lines are read from the store, and in the
same reactor turn as that read returns the user joins the room and is sent
them: a line committed before the read is in it, one committed after goes to
the user live, after the replay (the store commits and answers in order).

A room with members is never reaped while any member is kept, online or
not, so its history stays for those who come back (bounded by each nick's
``max_rooms_per_client`` and by account expiry, which deletes its
memberships).  A room the server no longer holds (after a restart, one with
no operator-set state) is opened again by the first member back, who
becomes its operator, as a first ``join`` does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from twistchat.chat.protocol import JOIN_MEMBERS, MessageEvent, PartEvent, RejoinedEvent, encode
from twistchat.chat.server.marks import HAD, DeliveryMark, deliver_copies
from twistchat.chat.server.member import NotAcknowledged
from twistchat.chat.server.rooms import Room, RoomRegistry
from twistchat.chat.server.user import User
from twistchat.store.social import MarkUpdate, Membership

MAX_REPLAY_ROUNDS = 8
"""Budgets of missed lines one room's replay waits on before sending the
rest at once (a room that talks faster than the user's link takes them)."""

BANNED = "banned"
"""The reason given to a member put out of a room it was banned from meanwhile."""


def nothing_live(room_key: str) -> int:
    """A single node: no channel brings lines a replay could miss."""
    return 0


class Memberships:
    log = Logger()

    def __init__(self, store: Any, rooms: RoomRegistry[User], history_size: int,
                 on_failure: Callable[[Deferred[Any], str], None], replay_budget: int,
                 on_enter: Callable[[Room[User], User], None], shared: bool = False,
                 live_since: Callable[[str], int] = nothing_live,
                 members_of: Callable[[Room[User]], Awaitable[Mapping[str, Any]]] | None = None) -> None:
        self._store = store
        self._on_enter = on_enter
        """Tells the room a restored member is back (``ServerCore.entered``)."""
        self._members_of = members_of
        """On a network: a room's members on every node (for ``rejoined``)."""
        self._live_since = live_since
        """On a network: the newest line of a room this node's channel
        delivered (a replay must hold every line up to it before the user
        enters the room, or it would miss those delivered meanwhile)."""
        self._shared = shared
        """Other nodes keep memberships in the same store: ``kept`` is this
        node's view only, so a membership ends in the store whatever it says."""
        self._replay_budget = replay_budget
        """Bytes of missed lines sent before waiting for their acknowledgement."""
        self._rooms = rooms
        self._history_size = history_size
        self._background = on_failure
        self.kept: dict[str, set[str]] = {}
        """Room key to the folded nicks that are members of it, online or not."""
        self._marks: dict[User, dict[str, DeliveryMark]] = {}
        """Per session in a room, its mark."""
        self._dirty: dict[tuple[str, str], int] = {}
        """(nick key, room key) to a mark not written yet."""
        self._waiting: set[User] = set()
        """Sessions with lines sent that may not be under their marks yet:
        a flush looks only at these, not at every session."""

    async def load(self) -> None:
        self.kept = await self._store.membership_rooms()

    def holds(self, room_key: str) -> bool:
        """A member is kept: the room must not be reaped."""
        return bool(self.kept.get(room_key))

    # ---- joining and leaving

    async def joined(self, user: User, room: Room[User]) -> None:
        """A ``join``: committed before the caller answers it."""
        self.kept.setdefault(room.key, set()).add(user.key)
        self._marks.setdefault(user, {})[room.key] = DeliveryMark()
        await self._store.keep_membership(user.key, room.key, room.name)

    def left(self, key: str, room_key: str, user: User | None = None) -> Deferred[None]:
        """``part``, kick or ban of the folded nick ``key`` (``user``, if
        present): the membership ends."""
        members = self.kept.get(room_key)
        if members is None or key not in members:
            return self._store.drop_membership(key, room_key) if self._shared else succeed(None)
        members.discard(key)
        if not members:
            del self.kept[room_key]
        self._dirty.pop((key, room_key), None)
        if user is not None:
            self._marks.get(user, {}).pop(room_key, None)
        return self._store.drop_membership(key, room_key)

    def forget(self, keys: list[str]) -> None:
        """Expired registrations: the store deleted their memberships."""
        gone = set(keys)
        for room_key in list(self.kept):
            self.kept[room_key] -= gone
            if not self.kept[room_key]:
                del self.kept[room_key]

    def renamed(self, old_key: str, user: User) -> None:
        for members in self.kept.values():
            if old_key in members:
                members.discard(old_key)
                members.add(user.key)
        self._dirty = {(user.key if k == old_key else k, r): m for (k, r), m in self._dirty.items()}

    # ---- delivering, and the marks

    def deliver(self, room: Room[User], event: MessageEvent, sender: User | None) -> None:
        """A room line to every member but its sender, each copy remembered
        with its transport sequence number so the member's mark can move
        over it once acknowledged; the sender's own line counts as had (its
        ``say`` was answered with it)."""
        key = room.key
        for member, mark in deliver_copies(list(room.members.values()), sender, encode(event),
                                           event.msg_id, key, self._marks, self._waiting):
            self._advance(member, key, mark)

    def _advance(self, user: User, room_key: str, mark: DeliveryMark) -> None:
        """Move ``mark`` as far as ``user``'s transport says; a move of a kept
        membership is written at the next flush."""
        if mark.advance(user.acked_below) and user.key in self.kept.get(room_key, ()):
            self._dirty[(user.key, room_key)] = mark.mark

    def _advance_all(self, users: list[User]) -> None:
        marks, waiting = self._marks, self._waiting
        for user in users:
            still = False
            for room_key, mark in marks.get(user, {}).items():
                if mark.waiting:
                    self._advance(user, room_key, mark)
                    still = still or mark.waiting
            if not still:
                waiting.discard(user)

    def flush(self) -> Deferred[None]:
        """Work out every mark that can move and write those that moved, in
        one transaction."""
        self._advance_all(list(self._waiting))
        if not self._dirty:
            return succeed(None)
        updates = [MarkUpdate(k, r, m) for (k, r), m in self._dirty.items()]
        self._dirty = {}
        return self._store.advance_marks(updates)

    def departed(self, user: User) -> None:
        """The session ended: its marks are written now (as far as its
        transport had acknowledged); its membership stays."""
        self._advance_all([user])
        self._marks.pop(user, None)
        self._waiting.discard(user)
        self._background(self.flush(), "write room marks")

    # ---- login

    async def memberships(self, user: User) -> list[Membership]:
        found = await self._store.get_memberships(user.key)
        for kept in found:  # kept on another node, maybe
            self.kept.setdefault(kept.room_key, set()).add(user.key)
        return found

    async def restore(self, user: User, memberships: list[Membership]) -> int:
        """Put ``user`` back in its rooms, each followed by what it missed;
        returns how many rooms."""
        restored = 0
        for kept in memberships:
            if user.departed:
                break
            restored += await self._restore_room(user, kept)
        if restored:
            self.log.info("{nick} back in {count} rooms", nick=user.nick, count=restored)
        return restored

    async def _restore_room(self, user: User, kept: Membership) -> bool:
        """One room: ``rejoined``, then the missed lines.  Those beyond the
        replay budget go a budget at a time, each waiting for the transport
        to acknowledge the one before (the SendQ is never the limit, however
        long the lines), and are read again from the store after each, so
        lines said meanwhile come too; the last part is sent in the reactor
        turn its read returns in, with the user joining the room (see above)."""
        missed = await self._store.get_missed(kept.room_key, kept.last_seen, kept.seen_line,
                                              self._history_size)
        lines, mark, told = missed.lines, DeliveryMark(kept.last_seen), False
        covered = lines[-1].msg_id if lines else kept.last_seen
        """The newest line this replay holds or has sent."""
        for round in range(MAX_REPLAY_ROUNDS + 1):
            room = self._room_for(user, kept)
            if room is None:
                return False
            if not told:
                members = None
                if self._members_of is not None:  # a network's: every node's members
                    members = dict(await self._members_of(room))
                    room = self._room_for(user, kept)
                    if room is None:
                        return False
                user.send(self._rejoined(user, room, len(lines), missed.not_kept, members))
                self._marks.setdefault(user, {})[room.key] = mark
                told = True
            encoded = [encode(MessageEvent(room=room.name, nick=line.nick, text=line.text,
                                           msg_id=line.msg_id, ts=line.ts, replay=True))
                       for line in lines]
            fits, used = 0, 0
            while fits < len(encoded) and (fits == 0 or used + len(encoded[fits]) <= self._replay_budget):
                used += len(encoded[fits])
                fits += 1
            if fits == len(encoded) or round == MAX_REPLAY_ROUNDS:
                if round < MAX_REPLAY_ROUNDS and self._live_since(room.key) > covered:
                    # On a network the room's channel brought this node lines
                    # committed after the read: read them too before entering.
                    more = (await self._store.get_missed(room.key, covered, 0, self._history_size)).lines
                    lines, covered = lines + more, more[-1].msg_id if more else covered
                    continue
                self._enter(user, room)
                for line, data in zip(lines, encoded):
                    self._send_line(user, mark, line.msg_id, data)
                return True
            for line, data in zip(lines[:fits - 1], encoded):
                self._send_line(user, mark, line.msg_id, data)
            last = lines[fits - 1]
            try:
                await user.send_tracked(encoded[fits - 1])
            except NotAcknowledged:
                return False
            mark.sent(HAD, last.msg_id)  # acknowledged: had once every line before it is
            self._advance(user, room.key, mark)
            lines = (await self._store.get_missed(room.key, last.msg_id, 0, self._history_size)).lines
            covered = lines[-1].msg_id if lines else last.msg_id
        return False  # not reached: the last round enters the room

    def _room_for(self, user: User, kept: Membership) -> Room[User] | None:
        """The room to put ``user`` back in, opened again if the server no
        longer holds it; None if the user is gone, or the membership ended
        (a ban meanwhile ends it here)."""
        if user.departed or user.key not in self.kept.get(kept.room_key, ()):
            return None
        room = self._rooms.get(kept.room_key)
        if room is not None and user.key in room.bans:
            self._background(self.left(user.key, room.key), "end a banned membership")
            user.send(PartEvent(room=room.name, nick=user.nick, reason=BANNED))
            return None
        if room is None:
            room = self._rooms.create(kept.room_key, kept.room_name, user)
        return None if room.key in user.rooms else room

    @staticmethod
    def _rejoined(user: User, room: Room[User], missed: int, not_kept: int,
                  members: dict[str, Any] | None = None) -> RejoinedEvent:
        """The room as the user will be in it (counted among its members),
        though it enters only once the replay's last part goes out.
        ``members``: on a network, the room's on every node."""
        if members is not None:
            members[user.key] = user
            return RejoinedEvent(**room.describe(members),
                                 members=room.member_list(count=JOIN_MEMBERS, members=members),
                                 missed=missed, not_kept=not_kept)
        room.members[user.key] = user  # for the description only: no event, no line
        try:
            return RejoinedEvent(**room.describe(), members=room.member_list(count=JOIN_MEMBERS),
                                 missed=missed, not_kept=not_kept)
        finally:
            del room.members[user.key]

    def _enter(self, user: User, room: Room[User]) -> None:
        room.add(user)
        user.rooms[room.key] = room
        self._on_enter(room, user)

    def _send_line(self, user: User, mark: DeliveryMark, msg_id: int, data: bytes) -> None:
        mark.sent(user.send_encoded(data), msg_id)
        self._waiting.add(user)
