"""
A node's liveness on its network (docs/CLUSTER.md, "Presence"): it
heartbeats every ``node_heartbeat`` seconds, and takes the members and
logins of nodes that stopped away (once, whoever notices first), telling
their rooms and watchers; a node taken as dead while alive closes its
sessions so their clients log in again.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from twistchat.chat.protocol import ContactEvent, QuitEvent
from twistchat.chat.server.contacts import OFFLINE
from twistchat.endpoint.api import CloseCode

NODE_LOST = "node lost"
"""The quit reason other members see for those of a node that stopped heartbeating."""
REJOIN = "this server lost touch with its network; log in again"
"""Why a node taken as dead closes its sessions."""


class Liveness:
    log = Logger()

    def __init__(self, link: Any) -> None:
        """``link``: the node's ``ClusterLink``."""
        self._link = link
        self.heartbeat = LoopingCall(self._beat)
        self.heartbeat.clock = link.server.clock
        self._reachable = True
        self._beaten = False
        """This node heartbeat once already."""

    def _beat(self) -> None:
        Deferred.fromCoroutine(self.beat_once()).addErrback(self._unreachable)

    def _unreachable(self, failure: Any) -> None:
        if self._reachable:
            self._reachable = False
            self.log.warn("cannot reach the broker: {why}", why=failure.value)

    def _taken_as_dead(self) -> None:
        """The others dropped this node (it missed its heartbeats: Redis was
        away, or the node stalled): its users' logins and memberships are
        gone from the network, so their sessions end here and their clients
        log in again, on this node or another."""
        users = self._link.server.live_users()
        self.log.warn("this node was taken as dead by the others: closing {count} sessions",
                      count=len(users))
        for user in users:
            self._link.server.depart(user, NODE_LOST)
            user.session.close(REJOIN, CloseCode.SHUTTING_DOWN, graceful=True)

    async def beat_once(self) -> None:
        """Stay alive; take the users of nodes that did not as gone."""
        listed = await self._link.broker.heartbeat(self._link.server.config.node_heartbeat)
        if not listed and self._beaten:
            self._taken_as_dead()
        self._beaten = True
        if not self._reachable:
            self._reachable = True
            self.log.info("the broker is reachable again")
        for node in sorted(await self._link.broker.dead_nodes()):
            if node == self._link.node_id:
                continue
            remains = await self._link.broker.drop_node(node)
            if remains is None:
                continue  # alive after all, or another node dropped it
            gone: dict[str, str] = {}
            for room_key, members in remains.items():
                for key, data in members.items():
                    try:
                        record = json.loads(data)
                        event = QuitEvent(room=record["room"], nick=record["nick"],
                                          reason=NODE_LOST, timeout=True)
                    except (ValueError, KeyError, TypeError):
                        self._link.dropped_records += 1
                        continue
                    gone[key] = record["nick"]
                    self._link.tell(room_key, event)
            now = self._link.server.now_ms()
            for key, nick in gone.items():
                event = ContactEvent(nick=nick, state=OFFLINE, last_seen=now)
                self._link.presence(key, event)
                self._link._heard(key, event)
            self.log.info("node {node} stopped heartbeating: {count} members gone",
                          node=node, count=len(gone))
            # What it committed and had not passed on yet (a DM for a user
            # on another node, a receipt for its sender) waits in the store:
            # every node hands its own users theirs.
            self._link._quietly(self._link.broker.publish_all(json.dumps(
                {"k": "node_lost", "node": node}).encode()), "tell the nodes one was lost")

    def node_lost(self) -> None:
        """Another node died (``node_lost`` on ``tc:b:all``): the DMs and
        receipts waiting for this node's users are read again and sent
        (once per session: those on their way already are not sent again)."""
        server = self._link.server
        for user in list(server.online.values()):
            if not user.departed and not server.mailbox.replaying(user):
                server.background(Deferred.fromCoroutine(server.mailbox.replay(user)),
                                  "hand over what a lost node left")
