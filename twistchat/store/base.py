"""
The one store interface the chat server uses, and the records it stores.

Every method returns a Deferred, so an implementation may do its work off
the reactor thread (the SQLite store does) without the server knowing.
Writes issued in order complete in order.  The store knows nothing of the
chat protocol: keys are already folded by the caller.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol, runtime_checkable

import attrs
from twisted.internet.defer import Deferred

@attrs.frozen
class Account:
    """A registered nickname."""

    key: str
    """Folded nick: the identity."""
    nick: str
    """Spelling used at registration (or last rename)."""
    credential: str
    """Encoded salted hash of the password or secret (see chat.server.identities)."""
    has_password: bool
    created: int
    last_seen: int
    """Milliseconds; password-less accounts expire relative to this."""


@attrs.frozen
class HistoryEntry:
    room: str
    """Folded room key."""
    msg_id: int
    nick: str
    text: str
    ts: int


IDEM_KEPT_PER_NICK = 1000
"""Idempotency keys remembered per nick (the newest ones); older ones go
when a new one is kept, so a nick's keys take bounded disk."""


class DmRefused(Exception):
    """``store_dm`` found a quota reached: nothing stored."""


class MailboxFull(DmRefused):
    """The recipient's mailbox holds ``capacity`` DMs already."""


class SenderQuotaFull(DmRefused):
    """The sender has ``per_sender`` DMs waiting in the recipient's mailbox already."""


class StoreFull(DmRefused):
    """All mailboxes together hold ``total`` DMs already."""


class TooManyCreated(Exception):
    """``create_room`` with a ``created_limit``: the room is not kept, and
    its creator has that many rooms kept already (created by it, not
    dropped since): nothing stored."""


class StoreUnavailable(Exception):
    """The store cannot be reached now (a Redis connection down or silent):
    the request is refused at once, never left waiting.  Nothing is half
    done: a write either ran whole or not at all (each is one Redis script),
    though with its reply lost the caller cannot tell which."""


@attrs.frozen
class StoredDm:
    """A direct message in its recipient's mailbox: kept from before its
    sender is answered until the recipient's transport acknowledged it."""

    dm_id: int
    to_key: str
    to_nick: str
    sender: str
    text: str
    ts: int
    sender_key: str = ""
    """Folded nick of the sender, who gets the receipt."""


@attrs.frozen
class Receipt:
    """A "delivered" notice owed to a DM's sender, kept until the sender's
    transport acknowledged it."""

    dm_id: int
    sender_key: str
    to_nick: str
    ts: int
    """The DM's original timestamp."""


@attrs.frozen
class IdemRecord:
    """The first answer to a request that carried an idempotency key, kept
    in the same transaction as the request's effect."""

    nick_key: str
    idem: str
    answer: Mapping[str, Any]
    """The ok reply's fields."""
    ts: int
    """When it was kept, milliseconds: old records are purged by age."""


@runtime_checkable
class ChatStore(Protocol):
    """What the chat server persists.  All methods return Deferreds."""

    # identities
    def get_account(self, key: str) -> Deferred[Account | None]: ...
    def put_account(self, account: Account) -> Deferred[None]:
        """Insert or replace."""
    def rename_account(self, old_key: str, account: Account) -> Deferred[None]:
        """Atomically replace ``old_key`` by ``account`` (whose key may differ);
        its mailbox, receipts and idempotency keys move along."""
    def touch_account(self, key: str, last_seen: int) -> Deferred[None]: ...
    def delete_expired_accounts(self, last_seen_before: int, keep: Collection[str] = (),
                                password_seen_before: int | None = None) -> Deferred[list[str]]:
        """Delete password-less accounts (with their mailboxes, receipts and
        idempotency keys) not seen since ``last_seen_before``, and accounts
        with a password not seen since ``password_seen_before`` (none if
        None), except keys in ``keep``; return the deleted keys."""

    # ids
    def last_id(self) -> Deferred[int]:
        """The high-water mark: no id above it was ever reserved or stored
        (0 if none); it never goes backwards."""
    def reserve_ids(self, count: int) -> Deferred[int]:
        """Raise the high-water mark by ``count``, committed before the
        Deferred fires with the new mark: the ids ``mark - count + 1 .. mark``
        are the caller's, never handed out again."""

    # idempotency keys
    def get_idem(self, nick_key: str, idem: str) -> Deferred[Mapping[str, Any] | None]:
        """The first answer kept for ``idem`` of ``nick_key``, if any."""
    def put_idem(self, record: IdemRecord) -> Deferred[Mapping[str, Any] | None]:
        """Keep ``record`` unless its key is known; returns the known answer, if any."""
    def delete_idem_before(self, ts: int) -> Deferred[None]:
        """Forget idempotency keys kept before ``ts``."""

    # room history
    def append_history(self, entry: HistoryEntry, keep: int,
                       idem: IdemRecord | None = None) -> Deferred[Mapping[str, Any] | None]:
        """Add one entry and trim the room to its ``keep`` newest entries,
        keeping ``idem`` in the same transaction.  If ``idem``'s key is known
        already nothing is done and its first answer is returned."""
    def get_history(self, room: str, since: int | None, limit: int) -> Deferred[list[HistoryEntry]]:
        """Up to ``limit`` newest entries with ``msg_id > since``, oldest first."""
    def delete_history(self, room: str) -> Deferred[None]: ...

    # the mailbox: every DM until its recipient has it, then its receipt
    def store_dm(self, dm: StoredDm, capacity: int | None = None,
                 idem: IdemRecord | None = None, per_sender: int | None = None,
                 total: int | None = None) -> Deferred[Mapping[str, Any] | None]:
        """Add ``dm`` (and ``idem``) in one transaction.  A known ``idem``
        key: nothing is done and its first answer is returned.  Checked in
        the same transaction as the insert, and failing with nothing stored:
        the recipient's mailbox already holding ``capacity`` DMs
        (MailboxFull), ``per_sender`` of them from this sender
        (SenderQuotaFull), or all mailboxes together ``total`` (StoreFull)."""
    def stored_dm_count(self) -> Deferred[int]:
        """DMs stored in all mailboxes together."""
    def mailbox_count(self, to_key: str) -> Deferred[int]: ...
    def get_mailbox(self, to_key: str) -> Deferred[list[StoredDm]]:
        """All waiting DMs, in the order they were stored."""
    def dm_acknowledged(self, dm_id: int) -> Deferred[Receipt | None]:
        """The recipient has the DM: delete it and keep a receipt for its
        sender, in one transaction; None if it was gone already."""
    def get_receipts(self, sender_key: str) -> Deferred[list[Receipt]]:
        """Receipts owed to ``sender_key``, oldest DM first."""
    def delete_receipt(self, dm_id: int) -> Deferred[None]: ...

    # rooms worth keeping across restarts
    def put_room(self, key: str, state: Mapping[str, Any]) -> Deferred[None]: ...
    def create_room(self, key: str, state: Mapping[str, Any]) -> Deferred[tuple[bool, dict[str, Any]]]:
        """Keep ``state`` for ``key`` unless a state is kept for it already,
        in one step (racing creators on several nodes: one wins); returns
        (True, ``state``) if this call created it, else (False, the state
        kept before)."""
    def delete_room(self, key: str) -> Deferred[None]: ...
    def load_rooms(self) -> Deferred[dict[str, dict[str, Any]]]: ...

    # lifecycle
    def flush(self) -> Deferred[None]:
        """Fires once every write issued before it has been committed."""
    def close(self) -> Deferred[None]:
        """Flush, then release resources; the store is unusable afterwards."""
