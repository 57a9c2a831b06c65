"""
Binary ``data`` to a nick online on another node of the network
(docs/CLUSTER.md): the sender's node hands the encoded ``data`` event to
the recipient's node on its channel, which sends it tracked and answers,
on the sender's node's channel, once the recipient's transport has it (or
never will).  So the sender's ``ok`` means what it means on one node
(PROTOCOL.md C10); a recipient's node that never answers (it died) counts
as not delivered after ``idle_timeout``.

Records: ``{"k": "data", "from", "id", "to", "e": <base64 event>}`` and
``{"k": "data_done", "id", "ok": bool}``.
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from twistchat.chat.server.member import NotAcknowledged
from twistchat.cluster.broker import LoginHolder


class RemoteData:
    def __init__(self, link: Any) -> None:
        """``link``: the node's ``ClusterLink``."""
        self._link = link
        self._ids = itertools.count(1)
        self._waiting: dict[int, Deferred[None]] = {}
        """Relays on their way, by id, until the recipient's node answers."""

    def send(self, holder: LoginHolder, key: str, event: bytes) -> Deferred[None]:
        """Fires once the recipient's transport has ``event``; fails with
        NotAcknowledged if it never will (or its node does not say in time)."""
        relay_id = next(self._ids)
        done: Deferred[None] = Deferred()
        self._waiting[relay_id] = done
        timer = self._link.server.clock.callLater(self._link.server.config.idle_timeout,
                                                  self._answered, relay_id, False)
        done.addBoth(lambda result: (timer.cancel() if timer.active() else None, result)[1])
        self._link._tell_node(holder.node_id, {
            "k": "data", "from": self._link.node_id, "id": relay_id, "to": key,
            "e": base64.b64encode(event).decode()})
        return done

    def received(self, record: dict[str, Any]) -> None:
        """A relay for a user on this node: sent tracked, then answered."""
        origin, relay_id = record["from"], int(record["id"])
        recipient = self._link.server.online.get(record["to"])
        event = base64.b64decode(record["e"])
        if recipient is None or len(event) > recipient.peer_max_message_size:
            self._answer(origin, relay_id, False)
            return

        def acked(_: None) -> None:
            self._answer(origin, relay_id, True)

        def lost(failure: Failure) -> None:
            failure.trap(NotAcknowledged)
            self._answer(origin, relay_id, False)
        recipient.send_tracked(event).addCallbacks(acked, lost)

    def _answer(self, origin: str, relay_id: int, ok: bool) -> None:
        self._link._tell_node(origin, {"k": "data_done", "id": relay_id, "ok": ok})

    def done(self, record: dict[str, Any]) -> None:
        self._answered(int(record["id"]), bool(record["ok"]))

    def _answered(self, relay_id: int, ok: bool) -> None:
        done = self._waiting.pop(relay_id, None)
        if done is None:
            return  # answered already (or timed out)
        if ok:
            done.callback(None)
        else:
            done.errback(NotAcknowledged("the recipient's node says it did not arrive"))
