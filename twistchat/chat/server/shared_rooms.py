"""
A network's rooms as one node opens, creates and drops them
(docs/CLUSTER.md, "Opening a room", "Empty rooms"): a room's state is in
the shared store while the network has it, opened here in one store step
(created there if no node has it, counted for its creator), and dropped
from the network by the node that reaps it when nobody is in it anywhere.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.logger import Logger

from twistchat.chat.protocol import ChatProtocolError, ErrorCode
from twistchat.chat.server.rooms import Room, founded
from twistchat.chat.server.user import User
from twistchat.store.base import TooManyCreated
from twistchat.store.social import Membership

log = Logger()

GROUP_ID_ATTEMPTS = 16
"""Group ids tried against the shared store before a ``create`` fails."""


class SharedRooms:
    def __init__(self, link: Any) -> None:
        """``link``: the node's ``ClusterLink`` (not imported: it imports us)."""
        self._link = link

    @property
    def _server(self) -> Any:
        return self._link.server

    async def open_room(self, key: str) -> Room[User] | None:
        """The room as the network has it, opened on this node; None if no
        node has it (its state is in the shared store while it lives)."""
        room = self._server.rooms.get(key)
        if room is not None:
            return room
        state = (await self._server.store.load_rooms()).get(key)
        if state is None:
            return self._server.rooms.get(key)  # opened meanwhile by another request, or none
        return await self._opened(key, state)

    async def subscribe(self, room: Room[User]) -> None:
        """Hear ``room``'s channel; lines from the newest one kept on are live."""
        await self._link.broker.subscribe_room(room.key)
        newest = await self._server.store.get_history(room.key, None, 1)
        self._link.last_line.setdefault(room.key, newest[-1].msg_id if newest else 0)

    async def open_kept(self, memberships: list[Membership], user: User) -> None:
        """Before a login's rooms are restored: each opened here, or (no
        node has it) opened again by this first member back, as ``_room_for``
        does (not refused for ``max_rooms_created``: the user was in it)."""
        for kept in memberships:
            await self.open_or_create(kept.room_key, kept.room_name, user)

    async def open_or_create(self, key: str, name: str, user: User,
                             created_limit: int | None = None) -> Room[User]:
        """The room as the network has it, opened on this node; if no node
        has it, created with ``user`` its operator.  One store step
        (``create_room``) either creates it or answers the state kept
        before, so of several nodes opening one new room at once exactly
        one makes its joiner the operator: the others open the winner's.
        With ``created_limit``, a user who created that many rooms the
        network still has is refused ``TOO_MANY_CREATED`` in that step."""
        room = self._server.rooms.get(key)
        if room is not None:
            return room
        _, state = await self._create(key, founded(key, name, user), created_limit)
        return await self._opened(key, state)

    async def new_group(self, user: User, created_limit: int | None = None) -> Room[User]:
        """A private group new to the network: its id is free in the shared
        store (created there in the step that checks it), not only here;
        ``created_limit`` as for ``open_or_create``."""
        for _ in range(GROUP_ID_ATTEMPTS):
            key = self._server.rooms.new_group_id()
            created, state = await self._create(key, founded(key, key, user), created_limit)
            if created:
                return await self._opened(key, state)
        raise RuntimeError(f"no free group id in {GROUP_ID_ATTEMPTS} attempts")

    async def _create(self, key: str, room: Room[User],
                      created_limit: int | None) -> tuple[bool, dict[str, Any]]:
        try:
            return await self._server.store.create_room(key, room.to_state(),
                                                        created_limit=created_limit)
        except TooManyCreated:
            raise ChatProtocolError(ErrorCode.TOO_MANY_CREATED) from None

    async def _opened(self, key: str, state: dict[str, Any]) -> Room[User]:
        room = self._server.rooms.get(key)  # opened meanwhile by another request
        if room is not None:
            return room
        room = Room.from_state(key, state, self._server.clock.seconds())
        self._server.rooms.rooms[key] = room
        await self.subscribe(room)
        return room

    def closed(self, room: Room[User]) -> None:
        """An empty room reaped here: this node stops hearing it, and the
        network drops it if no node has a member in it and no kept
        membership names it (``drop_room``: one script checks the roster
        and the memberships, deletes its state and history and tells the
        other nodes, which drop their copies), as one node drops a reaped
        room's state: its next joiner is its operator."""
        self._stop_hearing(room)
        if self._link.joining.get(room.key):
            return  # a join here is on its way into the roster
        broker = self._link.broker
        d = self._server.store.drop_room(room.key, broker.roster_key(room.key), broker.room_channel(room.key),
                                         json.dumps({"k": "dropped", "from": self._link.node_id}).encode())
        d.addCallback(lambda dropped: dropped and log.info(
            "dropped empty room {room} from the network", room=room.name))
        self._link._quietly(d, "drop an empty room")

    def dropped(self, room: Room[User]) -> None:
        """Another node dropped ``room`` from the network: this node's copy
        goes too (it had no member, or the roster would have held it).  A
        member who joined here meanwhile (or is joining) keeps it alive:
        its state is kept again."""
        if room.members or self._link.joining.get(room.key):
            self._server.background(self._server.store.create_room(room.key, room.to_state()),
                                    "keep a room again")
            return
        if self._server.rooms.rooms.get(room.key) is room:
            del self._server.rooms.rooms[room.key]
        self._stop_hearing(room)

    def _stop_hearing(self, room: Room[User]) -> None:
        self._link.last_line.pop(room.key, None)
        self._link._quietly(self._link.broker.unsubscribe_room(room.key), "unsubscribe a room")
