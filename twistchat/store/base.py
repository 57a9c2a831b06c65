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


@attrs.frozen
class StoredDm:
    """A direct message waiting in an offline nick's mailbox."""

    dm_id: int
    to_key: str
    to_nick: str
    sender: str
    text: str
    ts: int


@runtime_checkable
class ChatStore(Protocol):
    """What the chat server persists.  All methods return Deferreds."""

    # identities
    def get_account(self, key: str) -> Deferred[Account | None]: ...
    def put_account(self, account: Account) -> Deferred[None]:
        """Insert or replace."""
    def rename_account(self, old_key: str, account: Account) -> Deferred[None]:
        """Atomically replace ``old_key`` by ``account`` (whose key may differ)."""
    def touch_account(self, key: str, last_seen: int) -> Deferred[None]: ...
    def delete_expired_accounts(self, last_seen_before: int,
                                keep: Collection[str] = ()) -> Deferred[list[str]]:
        """Delete password-less accounts (and their mailboxes) not seen since
        ``last_seen_before``, except keys in ``keep``; return the deleted keys."""

    # ids
    def last_id(self) -> Deferred[int]:
        """Highest message/DM id ever stored (0 if none); ids never go backwards."""

    # room history
    def append_history(self, entry: HistoryEntry, keep: int) -> Deferred[None]:
        """Add one entry and trim the room to its ``keep`` newest entries."""
    def get_history(self, room: str, since: int | None, limit: int) -> Deferred[list[HistoryEntry]]:
        """Up to ``limit`` newest entries with ``msg_id > since``, oldest first."""
    def delete_history(self, room: str) -> Deferred[None]: ...

    # offline mailbox
    def store_dm(self, dm: StoredDm) -> Deferred[None]: ...
    def mailbox_count(self, to_key: str) -> Deferred[int]: ...
    def get_mailbox(self, to_key: str) -> Deferred[list[StoredDm]]:
        """All waiting DMs, in the order they were stored."""
    def delete_mailbox(self, to_key: str, up_to_id: int) -> Deferred[None]:
        """Remove delivered DMs (``dm_id <= up_to_id``)."""

    # rooms worth keeping across restarts
    def put_room(self, key: str, state: Mapping[str, Any]) -> Deferred[None]: ...
    def delete_room(self, key: str) -> Deferred[None]: ...
    def load_rooms(self) -> Deferred[dict[str, dict[str, Any]]]: ...

    # lifecycle
    def flush(self) -> Deferred[None]:
        """Fires once every write issued before it has been committed."""
    def close(self) -> Deferred[None]:
        """Flush, then release resources; the store is unusable afterwards."""
