"""
What the chat layer sees of a reliable session: a connection that carries
whole messages, reliably and in order (or unreliably, for ephemeral data),
and a protocol object that is told what arrives.

Everything above the endpoint layer is written against these two pieces
only, so it can be tested with a fake connection and a ``task.Clock``.
"""

from __future__ import annotations

import enum
from typing import Any, Protocol

import attrs


class CloseCode(enum.IntEnum):
    """Why a session ended; carried on the wire in CLOSE frames (PROTOCOL.md)."""

    NORMAL = 0
    """One side closed on purpose."""
    IDLE_TIMEOUT = 1
    """Nothing was heard from the peer for longer than the idle timeout."""
    PEER_UNRESPONSIVE = 2
    """Data stayed unacknowledged for longer than the give-up time."""
    PROTOCOL_VIOLATION = 3
    """The peer sent something the protocol forbids."""
    SHUTTING_DOWN = 4
    """The endpoint (server or client process) is going away."""
    HANDSHAKE_FAILED = 5
    """The handshake did not complete in time."""
    REPLACED = 6
    """The application replaced this session by a newer one."""
    RESET = 7
    """The peer has no such session any more (it restarted, or forgot it)."""


@attrs.frozen
class CloseReason:
    """Delivered once to ``MessageProtocol.connection_lost``."""

    code: CloseCode
    message: str = ""
    by_peer: bool = False
    unacked: tuple[bytes, ...] = ()
    """Reliable messages sent but never acknowledged by the peer, in order.
    Never silently dropped: the layer above decides what to do with them."""


class MessageConnection(Protocol):
    """The transport handed to a ``MessageProtocol``."""

    @property
    def peer_address(self) -> tuple[str, int]: ...

    @property
    def connection_id(self) -> int: ...

    @property
    def last_receive_time(self) -> float:
        """Reactor time anything last arrived from the peer (keepalives too)."""

    def send_message(self, data: bytes) -> None:
        """Queue one message for reliable, ordered, exactly-once delivery.

        Raises ``MessageTooLarge`` over the negotiated cap and
        ``ConnectionClosed`` once the session has ended."""

    def send_unreliable(self, data: bytes) -> None:
        """Best effort: may be lost, never retransmitted (typing, pings)."""

    def close(self, message: str = "", code: CloseCode = CloseCode.NORMAL,
              graceful: bool = True) -> None:
        """End the session. ``graceful`` waits (bounded by the give-up time)
        until everything queued has been acknowledged before closing."""


class MessageProtocol:
    """Base class for what runs on top of a session (Twisted's Protocol, for messages)."""

    connection: Any = None

    def connection_made(self, connection: MessageConnection) -> None:
        self.connection = connection

    def message_received(self, data: bytes) -> None:
        """One whole reliable message, exactly once, in order."""

    def unreliable_received(self, data: bytes) -> None:
        """One unreliable message: may be missing, duplicated never."""

    def connection_lost(self, reason: CloseReason) -> None:
        """Called exactly once when the session ends, for any reason."""


class TransportError(Exception):
    """Base of the errors the transport raises to its callers."""


class MessageTooLarge(TransportError):
    """The message exceeds the session's negotiated maximum message size."""


class ConnectionClosed(TransportError):
    """The session has ended; nothing more can be sent on it."""
