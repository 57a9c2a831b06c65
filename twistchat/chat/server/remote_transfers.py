"""
Transfers (PROTOCOL.md C14) to recipients on other nodes of the network
(docs/CLUSTER.md).  The sender's node keeps the transfer as on one node
(``transfers``: the window, the rate, the reaping, its memory); a
recipient on another node is a ``RemoteRecipient`` there, which hands what
``Transfers`` sends it to the recipient's node on that node's channel.
The recipient's node keeps its own bounds for its users: at
``transfer_open`` it is asked, before the sender's ``ok``, whether each may
receive one more (``max_transfers_per_user``) and whether it may hold one
more window for each (``transfer_memory``, reserved there until the
transfer ends); and it gives each transfer an id of its own (ids are per
node), so the offer, pieces, end and ``transfer_failed`` are encoded again
there with that id, and go on the recipient's bulk lane in the order sent.
Each piece (and the end) is answered to the sender's node once the
recipient's transport has it, or lost; those answers are what the
sender's window and its ``ok`` wait for, as on one node.  A recipient's
``transfer_cancel`` goes to the sender's node; a transfer whose sender's
node went silent is failed ``TIMED_OUT`` after ``transfer_idle``.

Records, on node channels: ``xfer_ask`` {from, t, to: [key]} and its
answer ``xfer_asked`` {t, ok: {key: nick}, busy: [nick], full: [nick]};
``xfer`` {from, t, to, seq (0: not tracked), e: base64 event}, answered
``xfer_ack`` {t, to, seq, ok}; ``xfer_forget`` {t, to} (asked, not used);
``xfer_cancel`` {t, to, why} from the recipient's node (a decline, or the
recipient left).
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterable
from typing import Any

import attrs
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from twistchat.chat import protocol as p
from twistchat.chat.protocol import ErrorCode
from twistchat.chat.server.member import NotAcknowledged
from twistchat.chat.server.user import User
from twistchat.endpoint.api import BULK_LANE

KINDS = frozenset({"xfer_ask", "xfer_asked", "xfer", "xfer_ack", "xfer_cancel", "xfer_forget"})
"""The records of this module on node channels."""
Asked = tuple[list["RemoteRecipient"], list[str], list[str]]
"""Recipients accepted, nicks busy receiving, nicks whose node holds all it may."""


class RemoteRecipient:
    """A recipient on another node, as ``Transfers`` sees one: what it is
    sent goes to that node; ``session.connection`` reports, as the unsent
    backlog ``chat.pacing`` looks at, the pieces that node has not answered."""

    peer_max_message_size = 1 << 62  # its node checks what its transport takes

    def __init__(self, relays: RemoteTransfers, node_id: str, token: int, key: str, nick: str) -> None:
        self._relays, self.node_id, self.token, self.key, self.nick = relays, node_id, token, key, nick
        self.session = self.connection = self
        self.pending: dict[int, Deferred[None]] = {}
        self._seq = itertools.count(1)
        self.relay: Any = None
        """The sender's node's ``Relay`` this recipient is in, once opened."""

    @property
    def unsent_chunks(self) -> int:
        return len(self.pending)

    def send_encoded(self, data: bytes, lane: int = BULK_LANE) -> None:
        self._relays.relay(self, data, 0)

    def send(self, message: p.Message, lane: int = BULK_LANE) -> None:
        self.send_encoded(p.encode(message))
        if isinstance(message, p.TransferFailedEvent):  # over for this recipient
            self._relays.done_with(self)

    def send_tracked(self, data: bytes, lane: int = BULK_LANE) -> Deferred[None]:
        seq = next(self._seq)
        d = self.pending[seq] = Deferred()
        self._relays.relay(self, data, seq)
        return d

    def answered(self, seq: int, ok: bool) -> None:
        d = self.pending.pop(seq, None)
        if d is None:
            return
        if ok:
            d.callback(None)
        else:
            d.errback(NotAcknowledged("the recipient's node says it did not arrive"))


@attrs.define(eq=False)
class Inbound:
    """On the recipient's node: one transfer from another node to one of its users."""

    origin: str
    token: int
    user: User
    local_id: int
    last_moved: float
    offered: bool = False


class RemoteTransfers:
    def __init__(self, link: Any) -> None:
        """``link``: the node's ``ClusterLink``."""
        self._link = link
        self._tokens = itertools.count(1)
        self._asking: dict[int, tuple[Deferred[dict[str, Any]], list[RemoteRecipient]]] = {}
        self._recipients: dict[tuple[int, str], RemoteRecipient] = {}
        """On the sender's node: (token, key) to the recipient it stands for."""
        self.inbound: dict[tuple[str, int, str], Inbound] = {}
        """On the recipient's node: (origin node, token, key) to the transfer."""

    @property
    def _server(self) -> Any:
        return self._link.server

    # ---- the sender's node

    async def ask(self, elsewhere: dict[str, list[str]]) -> Asked:
        """Node id to folded nicks there: which may take one more transfer."""
        waits = []
        for node_id, keys in sorted(elsewhere.items()):
            token = next(self._tokens)
            d: Deferred[dict[str, Any]] = Deferred()
            self._asking[token] = (d, [])
            timer = self._server.clock.callLater(self._server.config.redis_timeout, self._asked,
                                                 {"t": token, "ok": {}, "busy": [], "full": []})
            d.addBoth(lambda result, timer=timer: (timer.cancel() if timer.active() else None, result)[1])
            self._link._tell_node(node_id, {"k": "xfer_ask", "from": self._link.node_id, "t": token,
                                            "to": keys})
            waits.append((node_id, token, d))
        accepted, busy, full = [], [], []
        for node_id, token, d in waits:
            answer = await d
            for key, nick in sorted(answer["ok"].items()):
                recipient = RemoteRecipient(self, node_id, token, key, nick)
                self._recipients[(token, key)] = recipient
                accepted.append(recipient)
            busy += answer["busy"]
            full += answer["full"]
        return accepted, busy, full

    def opened(self, relay: Any, recipients: Iterable[RemoteRecipient]) -> None:
        for recipient in recipients:
            recipient.relay = relay

    def forget(self, recipients: Iterable[RemoteRecipient]) -> None:
        """Accepted but not used (the transfer was refused here after all)."""
        for r in recipients:
            self._recipients.pop((r.token, r.key), None)
            self._link._tell_node(r.node_id, {"k": "xfer_forget", "from": self._link.node_id,
                                              "t": r.token, "to": r.key})

    def relay(self, recipient: RemoteRecipient, data: bytes, seq: int) -> None:
        self._link._tell_node(recipient.node_id, {
            "k": "xfer", "from": self._link.node_id, "t": recipient.token, "to": recipient.key,
            "seq": seq, "e": base64.b64encode(data).decode()})

    def done_with(self, recipient: RemoteRecipient) -> None:
        self._recipients.pop((recipient.token, recipient.key), None)

    def _asked(self, record: dict[str, Any]) -> None:
        waiting = self._asking.pop(int(record["t"]), None)
        if waiting is not None:
            waiting[0].callback(record)

    def _acked(self, record: dict[str, Any]) -> None:
        recipient = self._recipients.get((int(record["t"]), record["to"]))
        if recipient is None:
            return
        recipient.answered(int(record["seq"]), bool(record["ok"]))
        if not record["ok"] or (recipient.relay is not None and recipient.relay.ended
                                and not recipient.pending):
            self._recipients.pop((recipient.token, recipient.key), None)  # over for it

    def _cancelled(self, record: dict[str, Any]) -> None:
        recipient = self._recipients.pop((int(record["t"]), record["to"]), None)
        if recipient is not None and recipient.relay is not None:
            self._server.transfers.recipient_lost(recipient.relay, recipient, str(record["why"]))

    # ---- the recipient's node

    def _ask(self, record: dict[str, Any]) -> None:
        transfers, server = self._server.transfers, self._server
        ok, busy, full = {}, [], []
        for key in record["to"]:
            user = server.online.get(key)
            if user is None:
                continue
            if transfers.busy_receiving(user):
                busy.append(user.nick)
            elif not transfers.room_for(1):
                full.append(user.nick)
            else:
                inbound = Inbound(record["from"], int(record["t"]), user, transfers.new_id(),
                                  server.clock.seconds())
                self.inbound[(inbound.origin, inbound.token, key)] = inbound
                transfers.reserved += server.config.transfer_window
                transfers.elsewhere[user] = transfers.elsewhere.get(user, 0) + 1
                ok[key] = user.nick
        self._link._tell_node(record["from"], {"k": "xfer_asked", "t": record["t"], "ok": ok,
                                               "busy": busy, "full": full})

    def _xfer(self, record: dict[str, Any]) -> None:
        origin, token, key, seq = record["from"], int(record["t"]), record["to"], int(record["seq"])
        inbound = self.inbound.get((origin, token, key))
        if inbound is None or inbound.user.departed:
            if seq:
                self._answer(origin, token, key, seq, False)
            return
        inbound.last_moved = self._server.clock.seconds()
        message = attrs.evolve(p.decode_server_message(base64.b64decode(record["e"])),
                               transfer=inbound.local_id)
        data = p.encode(message)
        if isinstance(message, p.TransferEvent):
            inbound.offered = True
        if isinstance(message, p.TransferFailedEvent):
            self._close(inbound)
        if not seq:
            inbound.user.send_encoded(data, BULK_LANE)
            return

        def acked(_: Any) -> None:
            if isinstance(message, p.TransferEndEvent):
                self._close(inbound)
            self._answer(origin, token, key, seq, True)

        def lost(failure: Failure) -> None:
            failure.trap(NotAcknowledged)
            self._close(inbound)
            self._answer(origin, token, key, seq, False)
        inbound.user.send_tracked(data, BULK_LANE).addCallbacks(acked, lost)

    def _answer(self, origin: str, token: int, key: str, seq: int, ok: bool) -> None:
        self._link._tell_node(origin, {"k": "xfer_ack", "t": token, "to": key, "seq": seq, "ok": ok})

    def _close(self, inbound: Inbound) -> None:
        if self.inbound.pop((inbound.origin, inbound.token, inbound.user.key), None) is None:
            return
        transfers = self._server.transfers
        transfers.reserved -= self._server.config.transfer_window
        left = transfers.elsewhere.get(inbound.user, 0) - 1
        if left > 0:
            transfers.elsewhere[inbound.user] = left
        else:
            transfers.elsewhere.pop(inbound.user, None)

    def cancel(self, user: User, transfer: int, why: str) -> bool:
        """A recipient here declines a transfer from another node; False if it has none by that id."""
        for inbound in list(self.inbound.values()):
            if inbound.user is user and inbound.local_id == transfer:
                self._end(inbound, f"declined: {why}")
                return True
        return False

    def departed(self, user: User) -> None:
        """Its transfers from other nodes end, and their senders' nodes are told."""
        for inbound in [i for i in self.inbound.values() if i.user is user]:
            self._end(inbound, "left the server")

    def _end(self, inbound: Inbound, why: str) -> None:
        """The recipient here will not take the rest: the sender's node goes on without it."""
        self._close(inbound)
        self._link._tell_node(inbound.origin, {"k": "xfer_cancel", "t": inbound.token,
                                               "to": inbound.user.key, "why": why})

    def reap(self, now: float) -> None:
        """A transfer from a node silent for ``transfer_idle`` (it died) fails here."""
        idle = self._server.config.transfer_idle
        for inbound in list(self.inbound.values()):
            if now - inbound.last_moved > idle:
                self._close(inbound)
                if inbound.offered:
                    inbound.user.send(p.TransferFailedEvent(
                        transfer=inbound.local_id, code=ErrorCode.TIMED_OUT,
                        message=f"the sender's server said nothing for {idle:g} s"), BULK_LANE)

    def received(self, record: dict[str, Any]) -> None:
        """A record of this module (its ``k`` in ``KINDS``) on this node's channel."""
        {"xfer_ask": self._ask, "xfer_asked": self._asked, "xfer": self._xfer,
         "xfer_ack": self._acked, "xfer_cancel": self._cancelled,
         "xfer_forget": self._forgotten}[record["k"]](record)

    def _forgotten(self, record: dict[str, Any]) -> None:
        inbound = self.inbound.get((record["from"], int(record["t"]), record["to"]))
        if inbound is not None:
            self._close(inbound)

