"""
What the chat layer sees of a reliable session: a connection that carries
whole messages, reliably and in order within a lane (or unreliably, for
ephemeral data), and a protocol object that is told what arrives.

Lanes: ``INTERACTIVE_LANE`` (the default) for chat, ``BULK_LANE`` for
bulk data such as a transfer's pieces. Each is ordered on its own and the
interactive one goes first, so a line never waits behind bulk; nothing is
promised about order across lanes (PROTOCOL.md §6.7).

Everything above the endpoint layer is written against these two pieces
only, so it can be tested with a fake connection and a ``task.Clock``.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import attrs

from twistchat.reliable.errors import (  # re-exported: the chat layer's vocabulary too
    CloseCode, ConnectionClosed, MessageTooLarge, TransportError,
)
from twistchat.wire.packets import BULK_LANE, INTERACTIVE_LANE  # re-exported too

__all__ = ["BULK_LANE", "CloseCode", "CloseReason", "ConnectionClosed", "INTERACTIVE_LANE",
           "MessageConnection", "MessageProtocol", "MessageTooLarge", "TransportError"]


@attrs.frozen
class CloseReason:
    """Delivered once to ``MessageProtocol.connection_lost``."""

    code: CloseCode
    message: str = ""
    by_peer: bool = False
    unacked: tuple[bytes, ...] = ()
    """Reliable messages sent but never acknowledged by the peer, lane by
    lane, each in order.
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

    @property
    def peer_max_message_size(self) -> int:
        """The largest reliable message the peer accepts; ``send_message``
        raises ``MessageTooLarge`` above it."""

    def send_message(self, data: bytes, on_acked: Callable[[], None] | None = None,
                     lane: int = INTERACTIVE_LANE) -> int:
        """Queue one message on ``lane`` for reliable, exactly-once delivery,
        in order with the lane's other messages; returns its sequence number
        on that lane of this session (0, 1, 2, ...).

        ``on_acked`` is called once the peer's transport has acknowledged all
        of it; never, if the session ends first (the message is then among
        ``CloseReason.unacked``). Raises ``MessageTooLarge`` over the
        negotiated cap and ``ConnectionClosed`` once the session has ended.
        For many messages, ``acked_below`` is the cheaper way to know."""

    @property
    def acked_below(self) -> int:
        """Every interactive-lane message whose sequence number is below this
        has been acknowledged by the peer's transport, all of it, with every earlier
        one (a cumulative mark: O(1) to read, no callback per message; it
        stays where it was once the session ends)."""

    def send_unreliable(self, data: bytes) -> None:
        """Best effort: may be lost, never retransmitted (typing, pings)."""

    def transport_stats(self) -> Any:
        """A ``stats.TransportStats`` snapshot: RTT, loss, what is unacknowledged."""

    def mark_trusted(self) -> None:
        """Vouch for this session (its user logged in): a server whose session
        table is full closes sessions nobody vouched for first."""

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
        """One whole reliable message, exactly once, in order within its lane."""

    def unreliable_received(self, data: bytes) -> None:
        """One unreliable message: may be missing, duplicated never."""

    def connection_lost(self, reason: CloseReason) -> None:
        """Called exactly once when the session ends, for any reason."""
