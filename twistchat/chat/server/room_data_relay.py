"""
``data`` to a room whose members are on several nodes (docs/CLUSTER.md,
PROTOCOL.md C6).  The sender's node publishes the encoded event on the
room's channel, the one that carries its lines, so every node, the
sender's too, sends it to its own members in the room's one order, once.
Each node that heard it answers the sender's node, on that node's channel,
once each of its members' transports has it (or its session ended): how
many have it and who missed it.  The sender's ``ok`` comes once every node
the ``PUBLISH`` reached has answered (Redis says how many it reached), or
every node the room's roster has members on, so ``delivered`` and
``missed`` mean what they mean on one node.

Members on a node that did not answer are missed: the roster is read
before the publish, and whoever it lists on a node that never answers (its
subscription was down, so it never heard it; or it died: then after
``idle_timeout``) is named in ``missed``.

Records: on the room's channel ``{"k": "room_data", "from", "id", "x":
<the sender's key>, "e": <base64 event>}``; on the sender's node's channel
``{"k": "room_data_done", "from", "id", "delivered": uint, "missed": [nick]}``.
"""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any

import attrs
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IDelayedCall
from twisted.python.failure import Failure

from twistchat.chat.server.rooms import Room
from twistchat.chat.server.user import User
from twistchat.cluster.broker import RosterEntry

Outcome = tuple[int, list[str]]
"""Members who have it, and the nicks of those who missed it."""


@attrs.define(eq=False)
class _Relay:
    sender_key: str
    done: Deferred[Outcome]
    timer: IDelayedCall | None = None
    reached: int | None = None
    """Nodes the publish reached, once Redis said."""
    roster: dict[str, RosterEntry] | None = None
    answers: dict[str, tuple[int, list[str]]] = attrs.Factory(dict)
    """Node id to its answer."""


class RoomDataRelay:
    def __init__(self, link: Any) -> None:
        """``link``: the node's ``ClusterLink``."""
        self._link = link
        self._ids = itertools.count(1)
        self._waiting: dict[int, _Relay] = {}

    def send(self, room: Room[User], sender: User, event: bytes) -> Deferred[Outcome]:
        """``event`` to every member of ``room`` on every node but ``sender``;
        fires with the outcome once every node that heard it has answered."""
        link, server = self._link, self._link.server
        relay_id = next(self._ids)
        relay = self._waiting[relay_id] = _Relay(sender.key, Deferred())
        relay.timer = server.clock.callLater(server.config.idle_timeout, self._finish, relay_id)
        # Read before the publish, on the same connection: who was in the room.
        roster = link.broker.roster(room.key)
        published = link.broker.publish_room(room.key, json.dumps({
            "k": "room_data", "from": link.node_id, "id": relay_id, "x": sender.key,
            "e": base64.b64encode(event).decode()}, separators=(",", ":")).encode())

        def got_roster(entries: dict[str, RosterEntry]) -> None:
            relay.roster = entries
            self._check(relay_id)

        def reached(count: int) -> None:
            relay.reached = count
            self._check(relay_id)
        roster.addCallbacks(got_roster, lambda _: got_roster({}))  # none known to miss it
        published.addCallbacks(reached, lambda f: self._failed(relay_id, f))
        return relay.done

    def received(self, room: Room[User] | None, record: dict[str, Any]) -> None:
        """A room's ``data`` on its channel: to this node's members of it,
        then the answer to the sender's node."""
        origin, relay_id, exclude = record["from"], int(record["id"]), record.get("x")
        event = base64.b64decode(record["e"])
        members = [] if room is None else [m for m in room.members.values() if m.key != exclude]
        missed = [m.nick for m in members if len(event) > m.peer_max_message_size]
        sent = [(m.nick, m.send_tracked(event)) for m in members if m.nick not in missed]

        def answer(results: list[tuple[bool, Any]]) -> None:
            lost = [nick for (nick, _), (ok, _) in zip(sent, results) if not ok]
            delivered = sum(1 for ok, _ in results if ok)
            done = {"k": "room_data_done", "from": self._link.node_id, "id": relay_id,
                    "delivered": delivered, "missed": missed + lost}
            if origin == self._link.node_id:
                self.done(done)
            else:
                self._link._tell_node(origin, done)
        DeferredList([d for _, d in sent], consumeErrors=True).addCallback(answer)

    def done(self, record: dict[str, Any]) -> None:
        """A node's answer to a ``data`` sent from here."""
        relay = self._waiting.get(int(record["id"]))
        if relay is None:
            return  # answered already (or timed out)
        relay.answers[str(record["from"])] = (int(record["delivered"]),
                                              [str(nick) for nick in record["missed"]])
        self._check(int(record["id"]))

    def _check(self, relay_id: int) -> None:
        """Done once every node reached has answered, or every node the
        roster has members of but the sender (a subscriber that is not a
        node, a monitor, is reached too and never answers)."""
        relay = self._waiting.get(relay_id)
        if relay is None or relay.reached is None or relay.roster is None:
            return
        needed = {entry.node_id for key, entry in relay.roster.items() if key != relay.sender_key}
        if len(relay.answers) >= relay.reached or needed <= relay.answers.keys():
            self._finish(relay_id)

    def _finish(self, relay_id: int) -> None:
        """Every node reached has answered, or ``idle_timeout`` passed."""
        relay = self._waiting.pop(relay_id, None)
        if relay is None:
            return
        if relay.timer is not None and relay.timer.active():
            relay.timer.cancel()
        delivered = sum(count for count, _ in relay.answers.values())
        missed = [nick for _, nicks in relay.answers.values() for nick in nicks]
        for key, entry in sorted((relay.roster or {}).items()):
            if entry.node_id not in relay.answers and key != relay.sender_key:
                missed.append(_nick(entry, key))
        relay.done.callback((delivered, missed))

    def _failed(self, relay_id: int, failure: Failure) -> None:
        relay = self._waiting.pop(relay_id, None)
        if relay is None:
            return
        if relay.timer is not None and relay.timer.active():
            relay.timer.cancel()
        relay.done.errback(failure)


def _nick(entry: RosterEntry, key: str) -> str:
    """The nick a roster record names (its key if the record is unreadable)."""
    try:
        return str(json.loads(entry.data)["nick"])
    except (ValueError, KeyError, TypeError):
        return key
