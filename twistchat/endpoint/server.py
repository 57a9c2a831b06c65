"""
The server's endpoint: a stateless cookie answers each HELLO, and only a
CONNECT that returns a valid cookie from the same address gets a session,
so spoofed sources cost a reply no larger than what they sent and no state.
"""

from __future__ import annotations

import random
from typing import Callable

from twisted.internet.interfaces import IReactorTime

from twistchat.endpoint.api import CloseReason, MessageProtocol
from twistchat.endpoint.base import Endpoint, _Handle
from twistchat.endpoint.ratelimit import TokenBucket
from twistchat.reliable.cookies import CookieJar
from twistchat.reliable.session import Session, SessionConfig
from twistchat.wire.packets import (
    MIN_HELLO_SIZE, Connect, Cookie, Hello, PacketType, Reset, encode_packet,
)

DEFAULT_MAX_SESSIONS = 100_000
RESETS_PER_SECOND = 100
"""Answers to packets for unknown sessions are rate limited: they are
small (never larger than what provoked them) but free to provoke."""


class ServerEndpoint(Endpoint):
    """Accepts sessions: stateless cookie first, state only for proven addresses."""

    def __init__(self, reactor: IReactorTime, protocol_factory: Callable[[tuple], MessageProtocol],
                 config: SessionConfig | None = None, rng: random.Random | None = None,
                 cookie_jar: CookieJar | None = None,
                 max_sessions: int = DEFAULT_MAX_SESSIONS) -> None:
        super().__init__(reactor, config, rng)
        self.protocol_factory = protocol_factory
        self.cookies = cookie_jar or CookieJar(secret=self.rng.getrandbits(256).to_bytes(32, "big"))
        self.max_sessions = max_sessions
        self._by_client: dict[tuple, _Handle] = {}
        self._used_client_cids: dict[int, float] = {}
        self._resets = TokenBucket(rate=RESETS_PER_SECOND, burst=RESETS_PER_SECOND)

    def _route(self, packet_type: PacketType, cid: int, datagram: bytes, address: tuple) -> None:
        if packet_type is PacketType.DATA:
            handle = self.sessions.get(cid)
            if handle is None:
                if self._unknown_connection(datagram):
                    self._maybe_reset(cid, address)
                return
            self._deliver(handle, datagram, address)
        elif packet_type is PacketType.HELLO:
            packet = self._decode(datagram)
            if packet is not None:
                self._answer_hello(packet, datagram, address)
        elif packet_type is PacketType.CONNECT:
            existing = self._by_client.get((address, cid))
            if existing is not None:
                self._deliver(existing, datagram, address)
                return
            packet = self._decode(datagram)
            if packet is not None:
                self._accept_connect(packet, address)
        else:
            self.counters.unexpected_packet += 1

    def _answer_hello(self, packet: Hello, datagram: bytes, address: tuple) -> None:
        if len(datagram) < MIN_HELLO_SIZE:
            self.counters.short_hello += 1
            return
        cookie = self.cookies.mint(self.now(), address, packet.client_cid)
        reply = encode_packet(Cookie(packet.client_cid, cookie))
        assert len(reply) <= len(datagram)  # anti-amplification, by construction
        self.counters.cookies_sent += 1
        self._write(reply, address)

    def _accept_connect(self, packet: Connect, address: tuple) -> None:
        now = self.now()
        if not self.cookies.check(now, address, packet.client_cid, packet.cookie):
            self.counters.bad_cookie += 1
            return
        self._forget_old_client_cids(now)
        if packet.client_cid in self._used_client_cids:
            self.counters.replayed_connect += 1
            return
        if len(self.sessions) >= self.max_sessions:
            self.counters.sessions_refused += 1
            return
        local_cid = self.rng.getrandbits(64)
        while local_cid in self.sessions:
            local_cid = self.rng.getrandbits(64)
        session = Session.server(now=now, local_cid=local_cid, client_cid=packet.client_cid,
                                 client_address=address, client_parameters=packet.parameters,
                                 config=self.config, rng=self.rng)
        handle = _Handle(session, self.protocol_factory(address),
                         client_key=(address, packet.client_cid))
        self.sessions[local_cid] = handle
        self._by_client[handle.client_key] = handle
        self._used_client_cids[packet.client_cid] = now + 2 * self.cookies.slot_seconds
        self.log.info("session {cid:x} opened from {address}", cid=local_cid, address=address)
        self._make_connection(handle)
        self._dirty[handle] = None

    def _forget_old_client_cids(self, now: float) -> None:
        if len(self._used_client_cids) < 1024:
            return
        for cid, expiry in list(self._used_client_cids.items()):
            if expiry <= now:
                del self._used_client_cids[cid]

    def _maybe_reset(self, cid: int, address: tuple) -> None:
        if not self._resets.take(self.now()):
            return
        self.counters.resets_sent += 1
        self._write(encode_packet(Reset(cid)), address)

    def _on_closed(self, handle: _Handle, reason: CloseReason) -> None:
        if handle.client_key is not None:
            self._by_client.pop(handle.client_key, None)
        self.log.info("session {cid:x} closed: {code} {message}", cid=handle.session.local_cid,
                      code=reason.code.name, message=reason.message)
