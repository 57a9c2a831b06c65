"""What a session reports to the layer above, one event at a time (as h11 and aioquic do)."""

from __future__ import annotations

import attrs

from twistchat.reliable.errors import CloseCode
from twistchat.wire.packets import INTERACTIVE_LANE


@attrs.frozen
class HandshakeCompleted:
    pass


@attrs.frozen
class MessageReceived:
    data: bytes


@attrs.frozen
class MessageAcked:
    """The peer acknowledged every byte of reliable message ``seq`` of
    ``lane`` (only for messages sent with ``track=True``: a room line to
    1,000 members should not cost 1,000 events)."""

    seq: int
    lane: int = INTERACTIVE_LANE


@attrs.frozen
class UnreliableReceived:
    data: bytes


@attrs.frozen
class PathMigrated:
    """The peer now talks from ``new`` (NAT rebinding); ``new`` was validated first."""

    old: tuple
    new: tuple


@attrs.frozen
class SessionClosed:
    code: CloseCode
    reason: str
    by_peer: bool
    unacked: tuple[bytes, ...]


Event = HandshakeCompleted | MessageReceived | MessageAcked | UnreliableReceived | PathMigrated | SessionClosed
