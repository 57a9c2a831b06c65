"""
Stateless address validation. Before a server keeps any state for a
client it hands out a cookie: an HMAC, under a server secret, of the
client's address, its connection id and the current time slot. Only a
client that received the cookie at that address can present it, so a
CONNECT carrying a valid cookie proves the address is not spoofed (the
idea of QUIC's Retry token, RFC 9000 §8.1.2).
"""

from __future__ import annotations

import hashlib
import hmac
import os

import attrs

COOKIE_SLOT_SECONDS = 10.0
"""Cookies are minted per time slot; the current and the previous slot are
accepted, so a cookie lives between 10 and 20 seconds."""

COOKIE_MAC_SIZE = 16
SLOT_SIZE = 4


@attrs.define
class CookieJar:
    secret: bytes = attrs.field(factory=lambda: os.urandom(32))
    slot_seconds: float = COOKIE_SLOT_SECONDS

    def _slot(self, now: float) -> int:
        return int(now // self.slot_seconds) & 0xFFFFFFFF

    def _mac(self, slot: int, address: tuple, client_cid: int) -> bytes:
        host, port = address[0], address[1]
        message = b"|".join((slot.to_bytes(SLOT_SIZE, "big"), host.encode(),
                             str(port).encode(), client_cid.to_bytes(8, "big")))
        return hmac.new(self.secret, message, hashlib.sha256).digest()[:COOKIE_MAC_SIZE]

    def mint(self, now: float, address: tuple, client_cid: int) -> bytes:
        slot = self._slot(now)
        return slot.to_bytes(SLOT_SIZE, "big") + self._mac(slot, address, client_cid)

    def check(self, now: float, address: tuple, client_cid: int, cookie: bytes) -> bool:
        if len(cookie) != SLOT_SIZE + COOKIE_MAC_SIZE:
            return False
        slot = int.from_bytes(cookie[:SLOT_SIZE], "big")
        current = self._slot(now)
        if slot not in (current, (current - 1) & 0xFFFFFFFF):
            return False
        return hmac.compare_digest(cookie[SLOT_SIZE:], self._mac(slot, address, client_cid))
