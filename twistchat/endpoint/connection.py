"""
What a protocol holds of its session: a ``SessionConnection`` (the
``MessageConnection`` of ``api.py``) over the endpoint's record of the
session (``broadcast.send_to_each`` sends one message to many of them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from twisted.logger import Logger

from twistchat.endpoint.api import INTERACTIVE_LANE, CloseCode
from twistchat.endpoint.servicing import _Handle
from twistchat.endpoint.stats import TransportStats, transport_stats
from twistchat.reliable.session import Session


class Owner(Protocol):
    """What a connection asks of the endpoint that holds its session
    (``base.Endpoint``)."""

    def now(self) -> float: ...

    def mark_dirty(self, handle: _Handle) -> None: ...

    def mark_all_dirty(self, handles: list[_Handle]) -> None: ...

    def trust(self, handle: _Handle) -> None: ...


class SessionConnection:
    """The ``MessageConnection`` a protocol sees: calls go to the session,
    and the endpoint flushes once per reactor turn (so a burst of sends is
    packed into few datagrams)."""

    __slots__ = ("_endpoint", "_handle")
    log = Logger()

    def __init__(self, endpoint: Owner, handle: _Handle) -> None:
        self._endpoint = endpoint
        self._handle = handle

    @property
    def session(self) -> Session:
        return self._handle.session

    @property
    def peer_address(self) -> tuple:
        return self._handle.session.peer_address

    @property
    def connection_id(self) -> int:
        return self._handle.session.local_cid

    @property
    def last_receive_time(self) -> float:
        """When anything (keepalives included) last arrived on this session."""
        return self._handle.session.last_receive_time

    @property
    def idle_timeout(self) -> float:
        """The transport ends this session itself once nothing has arrived for this long."""
        return self._handle.session.idle_timeout

    @property
    def server_key(self) -> bytes | None:
        """(client side) The server's static public key the handshake proved."""
        return self._handle.session.server_key

    @property
    def peer_max_message_size(self) -> int:
        """The largest reliable message the peer said it accepts (its handshake)."""
        return self._handle.session.peer_parameters.max_message_size

    def send_message(self, data: bytes, on_acked: Callable[[], None] | None = None,
                     lane: int = INTERACTIVE_LANE) -> int:
        handle = self._handle
        endpoint = self._endpoint
        seq = handle.session.send_message(data if type(data) is bytes else bytes(data),
                                          endpoint.now(), track=on_acked is not None, lane=lane)
        if on_acked is not None:
            handle.on_acked[lane, seq] = on_acked
        endpoint.mark_dirty(handle)
        return seq

    @property
    def acked_below(self) -> int:
        """Every interactive-lane message whose ``send_message`` returned less
        than this is acknowledged by the peer's transport, with every earlier one."""
        return self._handle.session.acked_below

    def send_unreliable(self, data: bytes) -> None:
        self._handle.session.send_unreliable(bytes(data), self._endpoint.now())
        self._endpoint.mark_dirty(self._handle)

    def pending_bytes(self) -> int:
        return self._handle.session.pending_bytes()

    def transport_stats(self) -> TransportStats:
        """RTT, loss and what is unacknowledged, as the transport sees them now."""
        return transport_stats(self._handle.session)

    def mark_trusted(self) -> None:
        """The application vouches for this session (its user logged in): when
        the server's table is full, sessions not so marked are closed first,
        and its receive window grows from the small one strangers get to the
        full one (``SessionConfig.initial_receive_window``)."""
        self._endpoint.trust(self._handle)
        self._handle.session.open_receive_window(self._endpoint.now())
        self._endpoint.mark_dirty(self._handle)

    def close(self, message: str = "", code: CloseCode = CloseCode.NORMAL,
              graceful: bool = True) -> None:
        self._handle.session.close(self._endpoint.now(), code, message, graceful)
        self._endpoint.mark_dirty(self._handle)
