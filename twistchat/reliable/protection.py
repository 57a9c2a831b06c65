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

from twistchat.reliable.noise import aead_nonce, hmac_sha256
from twistchat.wire.packets import CONNECTION_ID_SIZE, RESET_TOKEN_SIZE, SealedData, encode_data_header


class PacketProtection:
    __slots__ = ("_send", "_receive")

    def __init__(self, send_key: bytes, receive_key: bytes) -> None:
        self._send = ChaCha20Poly1305(send_key)
        self._receive = ChaCha20Poly1305(receive_key)

    def seal(self, dest_cid: int, packet_number: int, frames: bytes) -> bytes:
        header = encode_data_header(dest_cid, packet_number)
        return header + self._send.encrypt(aead_nonce(packet_number), frames, header)

    def open(self, packet: SealedData) -> bytes | None:
        """The plaintext frames, or None if the packet is not authentic."""
        try:
            return self._receive.decrypt(aead_nonce(packet.packet_number), packet.sealed,
                                         packet.header)
        except InvalidTag:
            return None


def reset_token(secret: bytes, connection_id: int) -> bytes:
    return hmac_sha256(secret, b"twistchat reset" + connection_id.to_bytes(CONNECTION_ID_SIZE, "big")
                       )[:RESET_TOKEN_SIZE]
