"""
The chat server's side of a network of nodes (docs/CLUSTER.md): what this
node publishes through the ``Broker``, and what it does with what the
others publish.  Built only when the broker is shared; a single node never
comes here, so its fan-out stays what it was.

What goes where, every record a JSON object:

- a room's channel: the store's line records (``append_line``:
  ``room``, ``msg_id``, ``nick``, ``text``, ``ts``), and this module's
  ``{"k": "event", "e": <the encoded event>, "x": <member key not told>,
  "rm": <member key to take out of the room>}``, ``{"k": "state", "s":
  <the room's operator-set state>}`` and ``{"k": "dropped", "from":
  <node>}`` (the store's ``drop_room``: the network no longer has the
  room; ``shared_rooms``).  Every node, this one included, delivers
  them to its local members as they come: one order everywhere.
- a node's channel: ``{"k": "dm", "dm": ...}`` (a DM for a user logged in
  there), ``{"k": "receipt", "r": ...}`` (a "delivered" for a sender logged
  in there), ``{"k": "replaced", "nick", "token"}`` (a newer login elsewhere),
  ``{"k": "user", "to", "e", "reliable"}`` (an event for a user there: an
  invitation, a typing notice).
- a room's channel also carries ``{"k": "typing", "from", "e", "x"}``: a
  typing notice for the members on the other nodes, and ``{"k":
  "room_data", ...}``: a room's ``data``, answered ``{"k":
  "room_data_done", ...}`` on the sender's node's channel (``room_data_relay``).
- everyone: ``{"k": "contact", "from", "key", "e"}`` (a presence change, for
  the watchers each node has), ``{"k": "node_lost"}`` (``cluster_liveness``).
- node channels also carry ``data`` to a nick (``remote_data``) and
  transfers (``xfer*``, ``remote_transfers``).

A room's members on other nodes are the broker's roster (one record per
member: nick, away, room name), read when a listing needs them.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from twistchat.chat.protocol import ContactEvent, Event, MessageEvent, encode, fold_nick
from twistchat.chat.server.cluster_liveness import Liveness
from twistchat.chat.server.contacts import OFFLINE, ONLINE
from twistchat.chat.server.remote_data import RemoteData
from twistchat.chat.server.remote_transfers import KINDS as TRANSFER_KINDS
from twistchat.chat.server.remote_transfers import RemoteTransfers
from twistchat.chat.server.room_data_relay import RoomDataRelay
from twistchat.chat.server.rooms import Room
from twistchat.chat.server.shared_rooms import SharedRooms
from twistchat.chat.server.user import User, send_to_users
from twistchat.cluster.broker import Broker, LoginHolder
from twistchat.store.base import HistoryEntry, Receipt, StoredDm
from twistchat.store.social import ContactEntry



@attrs.frozen
class RemoteMember:
    """A room member as the roster has it (on this node or another)."""

    key: str
    nick: str
    away: str | None = None


def _dump(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


class ClusterLink:
    log = Logger()

    def __init__(self, server: Any, broker: Broker) -> None:
        """``server``: the ``ServerCore`` this node runs (not imported: it imports us)."""
        self.server = server
        self.broker = broker
        self.node_id = broker.node_id
        self.last_line: dict[str, int] = {}
        """Room key to the newest ``msg_id`` delivered here: a line at or
        below it is one already delivered (after a gap's refill)."""
        self.joining: dict[str, int] = {}
        """Room key to roster entries on their way (``joined``)."""
        self.shared_rooms = SharedRooms(self)
        """Rooms opened, created and dropped as the network has them."""
        self.dropped_records = 0
        """Records from the broker that were not ours to read (counted, dropped)."""
        self.heard: dict[str, ContactEvent] = {}
        """Folded nick to the last presence change heard from another node
        (not offline): what a contact list shows of a user online there."""
        self.data = RemoteData(self)
        """Binary ``data`` to nicks on other nodes."""
        self.room_data = RoomDataRelay(self)
        """Binary ``data`` to rooms, to their members on every node."""
        self.transfers = RemoteTransfers(self)
        """Transfers to and from users on other nodes."""
        self.liveness = Liveness(self)
        self._heartbeat = self.liveness.heartbeat

    # ---- lifecycle

    def start(self) -> Deferred[None]:
        d = self.broker.start(self._room_message, self._node_message, self._gap)
        if not self._heartbeat.running:
            self._heartbeat.start(self.server.config.node_heartbeat, now=True)
        return d

    def stop(self) -> Deferred[None]:
        if self._heartbeat.running:
            self._heartbeat.stop()
        return self.broker.stop()

    def _quietly(self, d: Deferred[Any], what: str) -> None:
        """A publish nobody waits for: a failure is logged (Redis away is logged once, by the heartbeat)."""
        d.addErrback(lambda f: self.log.debug("could not {what}: {why}", what=what, why=f.value))

    # ---- rooms

    def tell(self, room_key: str, event: Event, exclude: str | None = None,
             remove: str | None = None) -> None:
        """``event`` to every member of the room on every node but ``exclude``;
        ``remove`` is taken out of the room by the node it is on, once told."""
        self._quietly(self.broker.publish_room(room_key, _dump(
            {"k": "event", "e": encode(event).decode(), "x": exclude, "rm": remove})), "publish an event")

    def state_changed(self, room: Room[User]) -> None:
        self._quietly(self.broker.publish_room(room.key, _dump({"k": "state", "s": room.to_state()})),
                      "publish a room's state")

    def _record(self, room: Room[User], user: User) -> bytes:
        return _dump({"nick": user.nick, "away": user.away, "room": room.name})

    def joined(self, room: Room[User], user: User) -> Deferred[None]:
        """``user`` is in ``room`` (or changed its away message there); until
        the roster has it, the room is not dropped by this node nor given up
        for another's drop."""
        self.joining[room.key] = self.joining.get(room.key, 0) + 1

        def done(result: Any) -> Any:
            self.joining[room.key] -= 1
            if not self.joining[room.key]:
                del self.joining[room.key]
            return result
        return self.broker.roster_add(room.key, user.key, self._record(room, user)).addBoth(done)

    def left(self, room: Room[User], key: str) -> None:
        self._quietly(self.broker.roster_remove(room.key, key), "leave a roster")

    async def members(self, room: Room[User]) -> dict[str, Any]:
        """Every member of ``room`` on every node, folded nick to member
        (this node's own as they are now)."""
        found: dict[str, Any] = {}
        for key, entry in (await self.broker.roster(room.key)).items():
            try:
                record = json.loads(entry.data)
                found[key] = RemoteMember(key, record["nick"], record.get("away"))
            except (ValueError, KeyError, TypeError):
                self.dropped_records += 1
        found.update(room.members)
        return found

    def typing_to_room(self, room_key: str, data: bytes, sender_key: str) -> None:
        """A typing notice (PROTOCOL.md C13) for the room's members on the other nodes."""
        self._quietly(self.broker.publish_room(room_key, _dump(
            {"k": "typing", "from": self.node_id, "e": data.decode(), "x": sender_key})),
            "relay a typing notice")

    def typing_to_nick(self, key: str, data: bytes) -> None:
        """A typing notice for a nick not on this node: to its node, if any."""
        self.to_user(key, data, reliable=False)

    def to_user(self, key: str, data: bytes, reliable: bool = True) -> None:
        """An encoded event for the nick ``key``, online on another node, if it is."""
        async def route() -> None:
            holder = await self.holder(key)
            if holder is not None:
                self._tell_node(holder.node_id, {"k": "user", "to": key, "e": data.decode(),
                                                 "reliable": reliable})
        self._quietly(Deferred.fromCoroutine(route()), "tell a user on another node")

    async def all_rooms(self) -> list[Room[User]]:
        """Every room of the network: this node's open ones, and those the
        shared store holds state for (not opened here: for listing)."""
        now = self.server.clock.seconds()
        found = {key: Room.from_state(key, state, now)
                 for key, state in (await self.server.store.load_rooms()).items()}
        found.update(self.server.rooms.rooms)
        return list(found.values())

    async def member_counts(self, rooms: list[Room[User]]) -> dict[str, int]:
        """Each room's members on every node: one broker call for them all."""
        return await self.broker.roster_sizes([room.key for room in rooms])

    def _room_message(self, room_key: str, data: bytes) -> None:
        room = self.server.rooms.get(room_key)
        try:
            record = json.loads(data)
            kind = record.get("k")
            if kind == "room_data":  # answered even with no member here
                self.room_data.received(room, record)
            elif room is None:
                return
            elif kind is None:
                self._line(room, HistoryEntry(room=room_key, msg_id=int(record["msg_id"]),
                                              nick=record["nick"], text=record["text"],
                                              ts=int(record["ts"])))
            elif kind == "event":
                self._event(room, record["e"].encode(), record.get("x"), record.get("rm"))
            elif kind == "state":
                room.apply_state(record["s"])
            elif kind == "dropped":
                if record["from"] != self.node_id:
                    self.shared_rooms.dropped(room)
            elif kind == "typing":
                if record["from"] != self.node_id:
                    data, sender = record["e"].encode(), record.get("x")
                    for member in list(room.members.values()):
                        if member.key != sender:
                            member.session.send_unreliable(data)
            else:
                self.dropped_records += 1
        except (ValueError, KeyError, TypeError, AttributeError):
            self.dropped_records += 1
            self.log.warn("dropped an unreadable record on {room}'s channel", room=room_key)

    def newest_line(self, room_key: str) -> int:
        return self.last_line.get(room_key, 0)

    def _line(self, room: Room[User], line: HistoryEntry) -> None:
        if line.msg_id <= self.last_line.get(room.key, 0):
            return  # delivered already (a gap's refill overlapping the live lines)
        self.last_line[room.key] = line.msg_id
        self.server.memberships.deliver(
            room, MessageEvent(room=room.name, nick=line.nick, text=line.text, msg_id=line.msg_id,
                               ts=line.ts), sender=room.members.get(fold_nick(line.nick)))

    def _event(self, room: Room[User], data: bytes, exclude: str | None, remove: str | None) -> None:
        send_to_users(room.members.values(), data, exclude)
        target = room.members.get(remove) if remove else None
        if target is not None:
            self.server.removed_from(room, target)

    def _gap(self, room_keys: list[str]) -> None:
        """The subscription was lost meanwhile: lines said then come from history."""
        for key in room_keys:
            room, since = self.server.rooms.get(key), self.last_line.get(key)
            if room is None or since is None:
                continue
            d = self.server.store.get_history(key, since, self.server.config.history_size)
            d.addCallback(lambda lines, room=room: [self._line(room, line) for line in lines])
            d.addErrback(lambda f, key=key: self.log.failure("refilling {room} failed", f, room=key))

    # ---- logins, DMs, receipts, presence

    async def claim(self, key: str, user: User) -> None:
        """``user`` is the login of the folded nick ``key`` now; a holder on
        another node is told it was replaced."""
        previous = await self.broker.claim_login(key, self.node_id, user.token)
        if previous is not None and previous.node_id != self.node_id:
            self._tell_node(previous.node_id, {"k": "replaced", "nick": key,
                                               "token": previous.session_token})

    def released(self, user: User) -> None:
        self._quietly(self.broker.release_login(user.key, self.node_id, user.token), "end a login")

    async def holder(self, key: str) -> LoginHolder | None:
        """The nick's login, if another node holds it."""
        holder = await self.broker.login_holder(key)
        return holder if holder is not None and holder.node_id != self.node_id else None

    def _tell_node(self, node_id: str, record: dict[str, Any]) -> None:
        self._quietly(self.broker.publish_node(node_id, _dump(record)), "tell a node")

    def dm_to_holder(self, key: str, dm: StoredDm) -> None:
        """A DM committed for the nick ``key``, not on this node: to the node
        holding its login now.  Looked up after the commit, not before: a
        login that claimed the nick since (its node read the mailbox after
        the claim, maybe before this DM was kept) is the holder found here,
        so the DM is not sent to the node the nick left (dead, maybe) and
        kept there until its next login."""
        async def route() -> None:
            holder = await self.holder(key)
            if holder is not None:
                self._tell_node(holder.node_id, {"k": "dm", "dm": attrs.asdict(dm)})
        self._quietly(Deferred.fromCoroutine(route()), "route a DM")

    def receipt_elsewhere(self, receipt: Receipt) -> None:
        """The DM's sender is not on this node: its node, if any, sends the receipt."""
        async def route() -> None:
            holder = await self.holder(receipt.sender_key)
            if holder is not None:
                self._tell_node(holder.node_id, {"k": "receipt", "r": attrs.asdict(receipt)})
        self._quietly(Deferred.fromCoroutine(route()), "route a receipt")

    def presence(self, key: str, event: ContactEvent) -> None:
        self._quietly(self.broker.publish_all(_dump(
            {"k": "contact", "from": self.node_id, "key": key, "e": attrs.asdict(event)})),
            "publish presence")

    def _node_message(self, data: bytes) -> None:
        server = self.server
        try:
            record = json.loads(data)
            kind = record.get("k")
            if kind == "dm":
                dm = StoredDm(**record["dm"])
                recipient = server.online.get(dm.to_key)
                if recipient is not None:
                    server.mailbox.hand_over(recipient, dm, stored=False)
            elif kind == "receipt":
                receipt = Receipt(**record["r"])
                sender = server.online.get(receipt.sender_key)
                if sender is not None:
                    server.mailbox.send_receipt(sender, receipt)
            elif kind == "replaced":
                user = server.online.get(record["nick"])
                if user is not None and user.token == record["token"]:
                    server.replace(user)
            elif kind == "contact":
                if record["from"] != self.node_id:
                    self._heard(record["key"], ContactEvent(**record["e"]))
            elif kind == "data":
                self.data.received(record)
            elif kind == "data_done":
                self.data.done(record)
            elif kind == "room_data_done":
                self.room_data.done(record)
            elif kind == "node_lost":
                self.liveness.node_lost()
            elif kind in TRANSFER_KINDS:
                self.transfers.received(record)
            elif kind == "user":
                recipient = server.online.get(record["to"])
                if recipient is not None and record["reliable"]:
                    recipient.send_encoded(record["e"].encode())
                elif recipient is not None:
                    recipient.session.send_unreliable(record["e"].encode())
            else:
                self.dropped_records += 1
        except (ValueError, KeyError, TypeError, AttributeError):
            self.dropped_records += 1
            self.log.warn("dropped an unreadable record on this node's channel")

    def _heard(self, key: str, event: ContactEvent) -> None:
        if event.state == OFFLINE:
            self.heard.pop(key, None)
        else:
            self.heard[key] = event
        self.server.contacts.changed(key, event)

    async def presence_of(self, contacts: list[ContactEntry]) -> dict[str, dict[str, Any]]:
        """Contacts online on another node, as ``contact`` fields: the last
        change heard of each, or online (its away message unknown here)."""
        found = {}
        for contact in contacts:
            if await self.holder(contact.key) is None:
                continue
            event = self.heard.get(contact.key)
            found[contact.key] = (attrs.asdict(event) if event is not None else
                                  {"nick": contact.nick, "state": ONLINE, "away": None, "last_seen": None})
        return found
