"""
Transfers through the server (PROTOCOL.md C14): what is open, what each
holds, and how pieces move on.  The server never holds a whole file: a
piece is relayed as it comes, and answered once every recipient's
transport has it; a sender may have at most ``transfer_window`` bytes of a
transfer unanswered, so that, and not the file, is what a transfer holds.

Bounds, each checked before the work is done: transfers a user sends at
once and receives at once (``max_transfers_per_user``), the memory of all
transfers together (each reserves its window once per recipient:
``transfer_memory``), the bytes a user's transfers make the server send
(``transfer_rate``: pieces wait, and so does the sender), and each
recipient's SendQ (the transport's own).  Pieces go into a recipient's
transport only while it has next to nothing unsent (``chat.pacing``).

Lanes: everything a recipient hears of a transfer (the offer, the pieces,
the end, ``transfer_failed``) goes on the transport's bulk lane, so it
arrives in the order it was sent and chat on the interactive lane never
waits behind it; the sender's replies and events stay on the interactive
lane (PROTOCOL.md C14).
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import Any

import attrs
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from twistchat.chat import protocol as p
from twistchat.chat.pacing import LOW_WATER_CHUNKS, POLL_INTERVAL, Pacer, transport_backlog
from twistchat.chat.protocol import ErrorCode
from twistchat.chat.server.config import ServerConfig
from twistchat.chat.server.member import NotAcknowledged
from twistchat.chat.server.user import User
from twistchat.endpoint.api import BULK_LANE


MIN_PIECE_BYTES = 1024
"""Every piece but the last carries at least this (or the whole window, if
smaller): a piece costs the server a request, an event per recipient and
an answer whatever its size."""
PIECE_OVERHEAD_BYTES = 128
"""What a piece costs on the wire besides its bytes (header, flow charge),
counted against the rate, so tiny pieces are not free."""


@attrs.define(eq=False)
class Parcel:
    """One piece (or the end) on its way to every recipient."""

    request: p.Request
    length: int
    event: bytes
    """Encoded once for all recipients."""
    pending: set[str] = attrs.Factory(set)
    """Keys of the recipients whose transport has not acknowledged it yet."""
    release_at: float = 0.0
    """When the sender's rate lets it go on."""


@attrs.define(eq=False)
class Outbound:
    """What waits for one recipient's transport to take it, in order."""

    user: User
    queue: deque[Parcel] = attrs.Factory(deque)


@attrs.define(eq=False)
class Relay:
    id: int
    sender: User
    name: str
    size: int
    room: str | None
    to_nick: str | None
    recipients: dict[str, Outbound]
    reserved: int
    last_moved: float
    next_offset: int = 0
    unconfirmed: int = 0
    """Bytes of pieces relayed (or waiting for the rate) and not yet answered."""
    waiting: deque[Parcel] = attrs.Factory(deque)
    """Parcels not yet in every recipient's transport, oldest first."""
    paced: deque[Parcel] = attrs.Factory(deque)
    """Parcels held back by the sender's rate, oldest first."""
    pace_call: IDelayedCall | None = None
    ended: bool = False
    missed: list[str] = attrs.Factory(list)
    """Recipients who dropped out of a room transfer."""


class Transfers:
    log = Logger()

    def __init__(self, clock: IReactorTime, config: ServerConfig) -> None:
        self.clock = clock
        self.config = config
        self.relays: dict[int, Relay] = {}
        self.sending: dict[User, set[Relay]] = {}
        self.receiving: dict[User, set[Relay]] = {}
        self.reserved = 0
        """Bytes reserved by all open transfers (window x recipients), and
        by those from other nodes of a network to users here (``remote_transfers``)."""
        self.elsewhere: dict[User, int] = {}
        """Transfers from other nodes each user here receives (``remote_transfers``)."""
        self.pacers: dict[User, Pacer] = {}
        self._ids = itertools.count(1)
        self._blocked: set[tuple[Relay, Outbound]] = set()
        self._poll = LoopingCall(self._feed_blocked)
        self._poll.clock = clock

    # ---- opening

    def open(self, sender: User, request: p.TransferOpen, recipients: list[User],
             room: str | None, to_nick: str | None) -> Relay:
        """Register a transfer to ``recipients`` (limits checked by the caller's
        ``check_open``) and offer it to each of them."""
        reserved = self.config.transfer_window * len(recipients)
        relay = Relay(self.new_id(), sender, request.name, request.size, room, to_nick,
                      {user.key: Outbound(user) for user in recipients}, reserved,
                      self.clock.seconds())
        self.relays[relay.id] = relay
        self.reserved += reserved
        self.sending.setdefault(sender, set()).add(relay)
        for user in recipients:
            self.receiving.setdefault(user, set()).add(relay)
        offer = p.encode(p.TransferEvent(transfer=relay.id, nick=sender.nick, name=request.name,
                                         size=request.size, room=room))
        for user in recipients:
            user.send_encoded(offer, BULK_LANE)
        return relay

    def new_id(self) -> int:
        """A transfer id of this node (``remote_transfers`` numbers those
        from other nodes with these too, so a user never sees one twice)."""
        return next(self._ids)

    def busy_sending(self, user: User) -> bool:
        return len(self.sending.get(user, ())) >= self.config.max_transfers_per_user

    def busy_receiving(self, user: User) -> bool:
        receiving = len(self.receiving.get(user, ())) + self.elsewhere.get(user, 0)
        return receiving >= self.config.max_transfers_per_user

    def room_for(self, recipients: int) -> bool:
        """Whether the server may hold one more transfer's window per recipient."""
        return self.reserved + self.config.transfer_window * recipients <= self.config.transfer_memory

    def find(self, sender: User, transfer: int) -> Relay:
        relay = self.relays.get(transfer)
        if relay is None or relay.sender is not sender or relay.ended:
            raise p.ChatProtocolError(ErrorCode.NO_SUCH_TRANSFER)
        return relay

    # ---- pieces and the end

    def piece(self, relay: Relay, request: p.Piece) -> None:
        """Take the next piece in order and relay it (or fail the transfer)."""
        size = len(request.payload)
        wrong = None
        if request.offset != relay.next_offset:
            wrong = f"piece at {request.offset}, expected {relay.next_offset}"
        elif size == 0 or request.offset + size > relay.size:
            wrong = f"piece of {size} bytes at {request.offset} does not fit a {relay.size}-byte transfer"
        elif size < min(MIN_PIECE_BYTES, self.config.transfer_window) \
                and request.offset + size != relay.size:
            wrong = f"a piece before the last must carry at least {MIN_PIECE_BYTES} bytes"
        elif relay.unconfirmed + size > self.config.transfer_window:
            wrong = f"over the window of {self.config.transfer_window} bytes unanswered"
        if wrong is not None:
            self.fail(relay, ErrorCode.BAD_PIECE, wrong)
            raise p.ChatProtocolError(ErrorCode.BAD_PIECE, wrong)
        relay.next_offset += size
        relay.unconfirmed += size
        relay.last_moved = self.clock.seconds()
        event = p.encode(p.PieceEvent(transfer=relay.id, offset=request.offset,
                                      payload=request.payload))
        self._pace(relay, Parcel(request, size, event),
                   cost=(size + PIECE_OVERHEAD_BYTES) * len(relay.recipients))

    def end(self, relay: Relay, request: p.TransferEnd) -> None:
        wrong = None
        if request.size != relay.size or relay.next_offset != relay.size:
            wrong = (f"end says {request.size} bytes; the transfer is {relay.size}, "
                     f"{relay.next_offset} sent")
        elif not p.SHA256_HEX.match(request.sha256):
            wrong = "sha256 must be 64 lower-case hex digits"
        if wrong is not None:
            self.fail(relay, ErrorCode.BAD_PIECE, wrong)
            raise p.ChatProtocolError(ErrorCode.BAD_PIECE, wrong)
        relay.ended = True  # no more pieces; it leaves the table once every recipient has the end
        event = p.encode(p.TransferEndEvent(transfer=relay.id, size=relay.size,
                                            sha256=request.sha256))
        self._pace(relay, Parcel(request, 0, event), cost=0)

    def _pace(self, relay: Relay, parcel: Parcel, cost: float) -> None:
        pacer = self.pacers.get(relay.sender)
        if pacer is None:
            rate = self.config.transfer_rate
            pacer = self.pacers[relay.sender] = Pacer(rate, rate)
        now = self.clock.seconds()
        parcel.release_at = now + pacer.delay(now, cost)
        relay.paced.append(parcel)
        self._release(relay)

    def _release(self, relay: Relay) -> None:
        relay.pace_call = None
        now = self.clock.seconds()
        while relay.paced and relay.paced[0].release_at <= now:
            self._dispatch(relay, relay.paced.popleft())
        if relay.paced and not self._closed(relay):
            relay.pace_call = self.clock.callLater(relay.paced[0].release_at - now,
                                                   self._release, relay)

    def _dispatch(self, relay: Relay, parcel: Parcel) -> None:
        parcel.pending = set(relay.recipients)
        relay.waiting.append(parcel)
        for outbound in list(relay.recipients.values()):
            outbound.queue.append(parcel)
            self._feed(relay, outbound)
        self._settle(relay)

    def _feed(self, relay: Relay, outbound: Outbound) -> None:
        """Hand ``outbound``'s parcels to its transport while that has next
        to nothing unsent; look again later if it has."""
        connection = outbound.user.session.connection
        while outbound.queue and transport_backlog(connection) <= LOW_WATER_CHUNKS:
            parcel = outbound.queue.popleft()
            key = outbound.user.key
            sent = outbound.user.send_tracked(parcel.event, BULK_LANE)
            sent.addCallbacks(self._acked, self._not_acked, callbackArgs=(relay, parcel, key),
                              errbackArgs=(relay, outbound.user))
        token = (relay, outbound)
        if outbound.queue:
            self._blocked.add(token)
            if not self._poll.running:
                self._poll.start(POLL_INTERVAL, now=False)
        else:
            self._blocked.discard(token)

    def _feed_blocked(self) -> None:
        for relay, outbound in list(self._blocked):
            if outbound.user.key in relay.recipients and not self._closed(relay):
                self._feed(relay, outbound)
            else:
                self._blocked.discard((relay, outbound))
        if not self._blocked and self._poll.running:
            self._poll.stop()

    def _acked(self, _: Any, relay: Relay, parcel: Parcel, key: str) -> None:
        parcel.pending.discard(key)
        self._settle(relay)

    def _not_acked(self, failure: Any, relay: Relay, user: User) -> None:
        failure.trap(NotAcknowledged)
        self.recipient_lost(relay, user, failure.getErrorMessage())

    def _settle(self, relay: Relay) -> None:
        """Answer, in order, every parcel every remaining recipient has."""
        while relay.waiting and not relay.waiting[0].pending:
            parcel = relay.waiting.popleft()
            relay.unconfirmed -= parcel.length
            relay.last_moved = self.clock.seconds()
            request = parcel.request
            if isinstance(request, p.Piece):
                relay.sender.session.reply(request, transfer=relay.id, offset=request.offset)
            else:
                self._forget(relay)
                relay.sender.session.reply(request, transfer=relay.id, size=relay.size,
                                           delivered=len(relay.recipients), missed=relay.missed)

    # ---- endings

    def recipient_lost(self, relay: Relay, user: User, why: str,
                       tell: ErrorCode | None = None) -> None:
        """``user`` will not get the rest (``tell``: and is told so, with that code)."""
        outbound = relay.recipients.get(user.key)
        if outbound is None or outbound.user is not user or self._closed(relay):
            return
        if tell is not None:
            user.send(p.TransferFailedEvent(transfer=relay.id, code=tell, message=why), BULK_LANE)
        del relay.recipients[user.key]
        outbound.queue.clear()
        self._blocked.discard((relay, outbound))
        self._unlink(self.receiving, user, relay)
        if not relay.recipients:
            self.fail(relay, ErrorCode.NOT_DELIVERED,
                      f"{user.nick} left before the transfer ended ({why})")
            return
        relay.missed.append(user.nick)
        relay.sender.send(p.TransferFailedEvent(transfer=relay.id, code=ErrorCode.NOT_DELIVERED,
                                                message=f"{user.nick} left ({why})",
                                                nick=user.nick))
        for parcel in relay.waiting:
            parcel.pending.discard(user.key)
        self._settle(relay)

    def fail(self, relay: Relay, code: ErrorCode, message: str) -> None:
        """End the transfer unfinished: every request of it still waiting is
        answered with ``code``, and both sides hear ``transfer_failed``."""
        if self._closed(relay):
            return
        self._forget(relay)
        event = p.TransferFailedEvent(transfer=relay.id, code=code, message=message)
        for parcel in list(relay.waiting) + list(relay.paced):
            relay.sender.session.fail(parcel.request, code, message)
        relay.waiting.clear()
        relay.paced.clear()
        for outbound in relay.recipients.values():
            outbound.queue.clear()
            outbound.user.send(event, BULK_LANE)
        relay.sender.send(event)
        self.log.info("transfer {id} from {nick} failed: {code} {message}", id=relay.id,
                      nick=relay.sender.nick, code=code.value, message=message)

    def departed(self, user: User) -> None:
        """``user`` left the server: its transfers fail, and it drops out of
        those it was receiving."""
        for relay in list(self.sending.get(user, ())):
            self.fail(relay, ErrorCode.SENDER_LEFT, f"{user.nick} left")
        for relay in list(self.receiving.get(user, ())):
            self.recipient_lost(relay, user, "left the server")
        self.pacers.pop(user, None)

    def reap(self, now: float) -> None:
        """Fail transfers in which nothing moved for ``transfer_idle``; in a
        room transfer held up by some recipients only, drop those instead,
        so one stalled member does not stop it for the rest."""
        idle = self.config.transfer_idle
        for relay in list(self.relays.values()):
            if now - relay.last_moved <= idle:
                continue
            stalled = set(relay.waiting[0].pending) if relay.waiting else set()
            if stalled and len(stalled) < len(relay.recipients):
                for key in stalled:
                    self.recipient_lost(relay, relay.recipients[key].user,
                                        f"took nothing for {idle:g} s", tell=ErrorCode.TIMED_OUT)
                relay.last_moved = now
            else:
                self.fail(relay, ErrorCode.TIMED_OUT, f"nothing moved for {idle:g} s")

    def _closed(self, relay: Relay) -> bool:
        return self.relays.get(relay.id) is not relay

    def _forget(self, relay: Relay) -> None:
        if self.relays.pop(relay.id, None) is None:
            return
        self.reserved -= relay.reserved
        if relay.pace_call is not None and relay.pace_call.active():
            relay.pace_call.cancel()
        relay.pace_call = None
        self._unlink(self.sending, relay.sender, relay)
        pacer = self.pacers.get(relay.sender)
        if relay.sender not in self.sending and pacer is not None \
                and pacer.spent_by(self.clock.seconds()):
            del self.pacers[relay.sender]  # nothing owed: a new one would pace the same
        for outbound in relay.recipients.values():
            self._unlink(self.receiving, outbound.user, relay)
            self._blocked.discard((relay, outbound))

    @staticmethod
    def _unlink(table: dict[User, set[Relay]], user: User, relay: Relay) -> None:
        relays = table.get(user)
        if relays is not None:
            relays.discard(relay)
            if not relays:
                del table[user]
