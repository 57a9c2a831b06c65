"""
Offline direct messages.  A DM to a registered nick that is offline is kept
in the store; the sender is told "stored" only once the write committed.
When the recipient logs in, the mailbox is replayed in order with original
timestamps and each sender still online gets a ``delivered`` notice.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.logger import Logger

from twistchat.chat.protocol import ChatProtocolError, DeliveredEvent, DmEvent, ErrorCode, fold_nick
from twistchat.chat.server.member import Member
from twistchat.store.base import ChatStore, StoredDm


class Mailbox:
    log = Logger()

    def __init__(self, store: ChatStore, capacity: int,
                 find_online: Callable[[str], Member | None]) -> None:
        self._store = store
        self._capacity = capacity
        self._find_online = find_online
        """Folded nick to the member logged in with it, if any."""

    async def store(self, dm: StoredDm) -> None:
        """Keep ``dm``; returns once committed.  Raises MAILBOX_FULL."""
        if await self._store.mailbox_count(dm.to_key) >= self._capacity:
            raise ChatProtocolError(ErrorCode.MAILBOX_FULL)
        await self._store.store_dm(dm)
        self.log.debug("stored a DM for {to}", to=dm.to_nick)
        # The recipient may have logged in while we were writing: hand it over now.
        recipient = self._find_online(dm.to_key)
        if recipient is not None:
            await self.replay(recipient)

    async def pending(self, to_key: str) -> list[StoredDm]:
        return await self._store.get_mailbox(to_key)

    async def replay(self, recipient: Member, dms: list[StoredDm] | None = None) -> int:
        """Send every waiting DM to ``recipient`` in order, notify senders, then
        remove what was handed to the (reliable, ordered) transport."""
        if dms is None:
            dms = await self._store.get_mailbox(recipient.key)
        for dm in dms:
            recipient.send(DmEvent(nick=dm.sender, to=recipient.nick, text=dm.text,
                                 dm_id=dm.dm_id, ts=dm.ts, stored=True))
            sender = self._find_online(fold_nick(dm.sender))
            if sender is not None:
                sender.send(DeliveredEvent(dm_id=dm.dm_id, to=recipient.nick, ts=dm.ts))
        if dms:
            await self._store.delete_mailbox(recipient.key, dms[-1].dm_id)
            self.log.info("replayed {count} stored DMs to {nick}", count=len(dms), nick=recipient.nick)
        return len(dms)
