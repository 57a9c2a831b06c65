"""
A DM's life (PROTOCOL.md C10).  Every DM is committed to its recipient's
mailbox before the sender is answered, online recipient or not.  It is
sent as a tracked message and deleted only once the recipient's transport
acknowledged it; a session that ends first leaves it in the mailbox, and
the next login replays it.  The deletion keeps a receipt for the sender in
the same transaction, and the receipt is sent the same way ("delivered"):
at once if the sender is online, else after its next login, and deleted
once the sender's transport acknowledged it.  So nothing is deleted before
it arrived, and nothing is announced before it is true.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from twistchat.chat.protocol import ChatProtocolError, DeliveredEvent, DmEvent, ErrorCode, encode
from twistchat.chat.server.member import Member, NotAcknowledged
from twistchat.store.base import (
    ChatStore, DmRefused, IdemRecord, MailboxFull, Receipt, SenderQuotaFull, StoredDm, StoreFull,
)

DM = "dm"
RECEIPT = "delivered"
"""Kinds of tracked notice (``Member.notice_on_its_way``)."""

REFUSALS: Mapping[type[DmRefused], ErrorCode] = {
    MailboxFull: ErrorCode.MAILBOX_FULL, SenderQuotaFull: ErrorCode.MAILBOX_QUOTA,
    StoreFull: ErrorCode.STORE_FULL,
}
"""What each quota the store checks is called in the protocol (C9)."""


class Mailbox:
    log = Logger()

    def __init__(self, store: ChatStore, capacity: int,
                 find_online: Callable[[str], Member | None], per_sender: int | None = None,
                 total: int | None = None, replay_budget: int = 1 << 20,
                 elsewhere: Callable[[Receipt], None] | None = None) -> None:
        self._store = store
        self._capacity = capacity
        self._per_sender = per_sender
        """DMs one sender may have waiting in one mailbox (strangers cannot fill it)."""
        self._total = total
        """DMs all mailboxes together may hold."""
        self._find_online = find_online
        """Folded nick to the member logged in with it, if any."""
        self._replay_budget = replay_budget
        """Bytes of stored DMs a login replay sends before waiting for the
        transport to acknowledge them: a full mailbox (1,000 DMs of 4 KiB)
        is more than a session's SendQ, which would close the session at
        every login and leave the mailbox full for ever."""
        self._replaying: dict[Member, bool] = {}
        """Members whose replay is under way, and whether a DM came for them
        meanwhile (it is stored: the replay reads the mailbox again, so it
        comes in its order, not ahead of older ones)."""
        self._elsewhere = elsewhere
        """On a network of nodes: a receipt whose sender is not on this node
        goes to its node, if any (docs/CLUSTER.md)."""

    async def store(self, dm: StoredDm, idem: IdemRecord | None = None) -> Mapping[str, Any] | None:
        """Commit ``dm`` (and ``idem`` with it); returns once committed, with
        the first answer if ``idem`` was known (then nothing was stored).
        Raises MAILBOX_FULL, MAILBOX_QUOTA or STORE_FULL, checked in the
        store with the insert."""
        try:
            known = await self._store.store_dm(dm, self._capacity, idem,
                                               per_sender=self._per_sender, total=self._total)
        except DmRefused as refused:
            if isinstance(refused, StoreFull):
                self.log.warn("the store holds {total} DMs, its quota: DMs refused", total=self._total)
            raise ChatProtocolError(REFUSALS[type(refused)]) from None
        self.log.debug("stored a DM for {to}", to=dm.to_nick)
        return known

    async def pending(self, to_key: str) -> list[StoredDm]:
        return await self._store.get_mailbox(to_key)

    @staticmethod
    def event(dm: StoredDm, recipient: Member, stored: bool) -> bytes:
        return encode(DmEvent(nick=dm.sender, to=recipient.nick, text=dm.text, dm_id=dm.dm_id,
                              ts=dm.ts, stored=stored))

    def hand_over(self, recipient: Member, dm: StoredDm, stored: bool) -> None:
        """Send ``dm`` to ``recipient`` (once per session); delete it when
        acknowledged.  One its transport cannot take stays in the mailbox."""
        if recipient in self._replaying:
            self._replaying[recipient] = True
            return
        self._send_dm(recipient, dm, self.event(dm, recipient, stored))

    def _send_dm(self, recipient: Member, dm: StoredDm, data: bytes) -> Deferred[None] | None:
        """Send one DM unless it is on its way already; what fires once it
        is acknowledged or will never be (None: not sent)."""
        token = (DM, dm.dm_id)
        if recipient.notice_on_its_way(token):
            return None
        if len(data) > recipient.peer_max_message_size:
            self.log.warn("DM {dm_id} is too large for {nick}'s transport; kept",
                          dm_id=dm.dm_id, nick=recipient.nick)
            return None
        recipient.notice_sent(token)
        return recipient.send_tracked(data).addCallbacks(
            self._dm_acknowledged, self._not_acknowledged,
            callbackArgs=(recipient, dm), errbackArgs=(recipient, token))

    def _dm_acknowledged(self, _: None, recipient: Member, dm: StoredDm) -> None:
        recipient.notice_settled((DM, dm.dm_id))
        d = maybeDeferred(self._store.dm_acknowledged, dm.dm_id)
        d.addCallback(self._owe_receipt)
        d.addErrback(self._store_failed, "delete an acknowledged DM")

    def _owe_receipt(self, receipt: Receipt | None) -> None:
        if receipt is None:
            return  # acknowledged on two sessions: one receipt
        sender = self._find_online(receipt.sender_key)
        if sender is not None:
            self.send_receipt(sender, receipt)
        elif self._elsewhere is not None:
            self._elsewhere(receipt)

    def send_receipt(self, sender: Member, receipt: Receipt) -> None:
        """Tell ``sender`` its DM arrived (once per session); forget the
        receipt when acknowledged."""
        token = (RECEIPT, receipt.dm_id)
        if sender.notice_on_its_way(token):
            return
        sender.notice_sent(token)
        data = encode(DeliveredEvent(dm_id=receipt.dm_id, to=receipt.to_nick, ts=receipt.ts))
        sender.send_tracked(data).addCallbacks(
            self._receipt_acknowledged, self._not_acknowledged,
            callbackArgs=(sender, token), errbackArgs=(sender, token))

    def _receipt_acknowledged(self, _: None, sender: Member, token: tuple[str, int]) -> None:
        sender.notice_settled(token)
        d = maybeDeferred(self._store.delete_receipt, token[1])
        d.addErrback(self._store_failed, "delete an acknowledged receipt")

    @staticmethod
    def _not_acknowledged(failure: Failure, member: Member, token: tuple[str, int]) -> None:
        """The session ended first: the DM or receipt stays stored for the next login."""
        failure.trap(NotAcknowledged)
        member.notice_settled(token)

    def _store_failed(self, failure: Failure, what: str) -> None:
        """Kept, so sent again at the next login; clients de-duplicate by dm_id."""
        self.log.failure("could not {what}", failure, what=what)

    def replaying(self, member: Member) -> bool:
        """A replay of ``member``'s mailbox is on its way."""
        return member in self._replaying

    async def replay(self, member: Member, dms: list[StoredDm] | None = None) -> int:
        """After a login: the receipts owed to ``member``, and every DM
        waiting for it, in order, a replay budget at a time: the first now,
        each next once the transport acknowledged the one before (so the
        SendQ is never the limit), read again from the mailbox so DMs stored
        meanwhile come in their order too.  Returns how many DMs wait."""
        if dms is None:
            dms = await self._store.get_mailbox(member.key)
        for receipt in await self._store.get_receipts(member.key):
            self.send_receipt(member, receipt)
        if dms:
            self.log.info("replaying {count} stored DMs to {nick}", count=len(dms), nick=member.nick)
            self._replaying[member] = False
            sent: set[int] = set()
            waiting = self._send_budget(member, dms, sent)
            d = Deferred.fromCoroutine(self._replay_rest(member, waiting, sent))
            d.addErrback(self._store_failed, "replay the rest of a mailbox")
        return len(dms)

    def _send_budget(self, member: Member, dms: list[StoredDm], sent: set[int]) -> list[Deferred[None]]:
        """Send DMs from the front of ``dms`` up to the replay budget, each
        at most once a replay (``sent``: one the store could not delete
        waits for the next login, as any DM whose deletion failed)."""
        waiting: list[Deferred[None]] = []
        used = 0
        for dm in dms:
            if dm.dm_id in sent:
                continue
            data = self.event(dm, member, stored=True)
            if waiting and used + len(data) > self._replay_budget:
                break
            sent.add(dm.dm_id)
            d = self._send_dm(member, dm, data)
            if d is not None:
                waiting.append(d)
                used += len(data)
        return waiting

    async def _replay_rest(self, member: Member, waiting: list[Deferred[None]], sent: set[int]) -> None:
        try:
            while waiting or self._replaying[member]:
                await DeferredList(waiting)  # acknowledged, or the session ended
                if member.departed:
                    return
                self._replaying[member] = False
                waiting = self._send_budget(member, await self._store.get_mailbox(member.key), sent)
        finally:
            # All on their way and nothing new came meanwhile (checked in
            # the reactor turn the last read returned in): live from here.
            self._replaying.pop(member, None)  # (a second replay may have ended it)
