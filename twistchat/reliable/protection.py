"""
Packet protection after the handshake: every DATA packet is sealed with
ChaCha20-Poly1305 under its direction's key (from the Noise handshake's
split), the packet number as nonce and the header as associated data, so
nobody on the path can read or change a packet, or move it to another
session. A packet that fails to open is dropped and changes nothing.

Packet numbers are never reused in a direction (``packet_builder``), so a
nonce is never used twice under one key; a replayed packet opens, but the
receiver's packet-number record (``acks``) drops it as a duplicate.

Stateless reset tokens (RFC 9000 §10.3): a server that lost a session
answers with a RESET carrying a token derived from its long-term secret and
the connection id; the client learnt that token, encrypted, in ACCEPT, so a
RESET forged by someone on the path cannot end a session.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from twistchat.reliable.noise import hmac_sha256
from twistchat.reliable.nonce import aead_nonce
from twistchat.wire.packets import CONNECTION_ID_SIZE, RESET_TOKEN_SIZE, SealedData, encode_data_header


class PacketProtection:
    """Each direction's key, and its AEAD context only while the session is
    in use: ``rest`` drops the contexts (an idle session answers a
    keepalive every 25-30 s, and a ``ChaCha20Poly1305`` holds ~2.3 KB of
    OpenSSL state with cryptography 50, two a session, ~450 MB for 100,000
    sessions doing nothing); the next packet builds them again, ~1.2 us
    each."""

    __slots__ = ("_send_key", "_receive_key", "_send", "_receive")

    def __init__(self, send_key: bytes, receive_key: bytes) -> None:
        self._send_key = send_key
        self._receive_key = receive_key
        self._send: ChaCha20Poly1305 | None = None
        self._receive: ChaCha20Poly1305 | None = None

    @property
    def at_rest(self) -> bool:
        return self._send is None and self._receive is None

    def rest(self) -> None:
        self._send = self._receive = None

    def seal(self, dest_cid: int, packet_number: int, frames: bytes) -> bytes:
        header = encode_data_header(dest_cid, packet_number)
        send = self._send
        if send is None:
            send = self._send = ChaCha20Poly1305(self._send_key)
        return header + send.encrypt(aead_nonce(packet_number), frames, header)

    def open(self, packet: SealedData) -> bytes | None:
        """The plaintext frames, or None if the packet is not authentic."""
        return self.open_parts(packet.packet_number, packet.header, packet.sealed)

    def open_parts(self, packet_number: int, header: bytes, sealed: bytes) -> bytes | None:
        """``open`` of a packet given by its parts (``packets.data_header``)."""
        receive = self._receive
        if receive is None:
            receive = self._receive = ChaCha20Poly1305(self._receive_key)
        try:
            return receive.decrypt(aead_nonce(packet_number), sealed, header)
        except InvalidTag:
            return None


def reset_token(secret: bytes, connection_id: int) -> bytes:
    return hmac_sha256(secret, b"twistchat reset" + connection_id.to_bytes(CONNECTION_ID_SIZE, "big")
                       )[:RESET_TOKEN_SIZE]
