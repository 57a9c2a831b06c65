"""The client's endpoint: opens sessions to servers; one socket can carry several."""

from __future__ import annotations

from twisted.internet import defer

from twistchat.endpoint.api import MessageProtocol
from twistchat.endpoint.base import Endpoint
from twistchat.endpoint.servicing import _Handle
from twistchat.reliable.session import Session
from twistchat.wire.packets import PacketType


_RESET = PacketType.RESET
_TO_A_SESSION = frozenset({PacketType.DATA, PacketType.COOKIE, PacketType.ACCEPT})
"""Module globals: on Python 3.11 ``PacketType.DATA`` is a lookup through
``EnumType.__getattr__``'s slot, on every datagram (issue 16)."""


class ClientEndpoint(Endpoint):
    """Opens sessions to servers; one socket can carry several."""

    def connect(self, address: tuple, protocol: MessageProtocol,
                server_key: bytes | None = None) -> defer.Deferred:
        """Handshake with ``address``; fires with ``protocol`` once connected,
        or fails with ``ConnectError`` (``SERVER_KEY_MISMATCH`` if the server
        proves a static key other than a pinned ``server_key``)."""
        session = Session.client(now=self.now(), server_address=address,
                                 config=self.config, rng=self.rng, expected_server_key=server_key)
        handle = _Handle(session, protocol, connected=defer.Deferred())
        self.sessions[session.local_cid] = handle
        self._dirty[handle] = None
        connected = handle.connected
        self._flush()
        return connected

    def _route(self, packet_type: PacketType, cid: int, datagram: bytes, address: tuple) -> None:
        if packet_type is _RESET:
            # A RESET names the server's connection id: find who talks to it.
            handle = next((h for h in self.sessions.values() if h.session.peer_cid == cid), None)
        elif packet_type in _TO_A_SESSION:
            handle = self.sessions.get(cid)
        else:
            self.counters.unexpected_packet += 1
            return
        if handle is None:
            self._unknown_connection(datagram)
            return
        self._deliver(handle, datagram, address)
