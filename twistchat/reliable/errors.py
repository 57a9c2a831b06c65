"""
The session layer's vocabulary: why a session ends (a wire value, carried
in CLOSE frames) and what its entry points raise. The layers above take
these from here, through ``endpoint.api``.
"""

from __future__ import annotations

import enum


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
    SERVER_BUSY = 8
    """The server ran out of a shared resource (its session table, its
    reassembly memory) and this session, not yet vouched for, went first."""
    SERVER_KEY_MISMATCH = 10
    """The server proved a static key other than the one the client pinned
    (local only: the client refuses to talk to it)."""
    SEND_QUEUE_EXCEEDED = 9
    """More was queued for the peer than it acknowledged, past the bound
    (IRC's "SendQ exceeded"): a peer that reads too slowly, or not at all."""


class TransportError(Exception):
    """Base of the errors the transport raises to its callers."""


class MessageTooLarge(TransportError):
    """The message exceeds the session's negotiated maximum message size."""


class ConnectionClosed(TransportError):
    """The session has ended; nothing more can be sent on it."""
