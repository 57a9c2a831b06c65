"""
The handshake (PROTOCOL.md §5). HELLO, padded to 1200 bytes so the stateless
COOKIE never exceeds what an unvalidated address sent; then CONNECT, which
carries the cookie and Noise message 1 (the client's ephemeral key, its
transport parameters as payload), answered by ACCEPT with Noise message 2
(the server's ephemeral and, encrypted, static key; its payload, encrypted:
the server's connection id, reset token and transport parameters). The
prologue binds the cookie and the client's connection id into the
transcript. Lost packets are sent again on a backed-off timer, two copies
at a time; a retry repeats the same bytes, so a server that answered the
first copy can answer the second from its record.
"""

from __future__ import annotations

import attrs
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from twistchat.reliable.config import parameter_problem
from twistchat.reliable.noise import HandshakeError, NXInitiator, NXResponder
from twistchat.reliable.protection import PacketProtection
from twistchat.reliable.recovery import MAX_PROBE_INTERVAL, MAX_PTO_BACKOFF
from twistchat.reliable.rtt import RttEstimator
from twistchat.wire.packets import (
    CONNECTION_ID_SIZE, MIN_HELLO_SIZE, RESET_TOKEN_SIZE, Accept, Connect, DecodeError, Hello,
    TransportParameters, encode_packet,
)
from twistchat.wire.varint import BufferUnderflow, Reader

RETRY_COPIES = 2
"""A handshake packet sent again goes out twice: the first was lost."""

PROLOGUE_LABEL = b"twistchat/1"


class BadParameters(HandshakeError):
    """The handshake was sound but the peer's transport parameters are not."""


def prologue(client_cid: int, cookie: bytes) -> bytes:
    return PROLOGUE_LABEL + client_cid.to_bytes(CONNECTION_ID_SIZE, "big") + cookie


def decode_parameters(data: bytes) -> TransportParameters:
    reader = Reader(data)
    try:
        parameters = TransportParameters.decode(reader)
    except (BufferUnderflow, DecodeError):
        raise HandshakeError("malformed transport parameters") from None
    if not reader.at_end():
        raise HandshakeError("trailing bytes after the transport parameters")
    return parameters


@attrs.frozen
class Established:
    """What the handshake gives the session."""

    protection: PacketProtection
    peer_parameters: TransportParameters
    server_cid: int
    reset_token: bytes
    server_key: bytes
    """The server's static public key (32 bytes): what a client pins."""


class ClientHandshake:
    def __init__(self, local_cid: int, rtt: RttEstimator,
                 ephemeral: X25519PrivateKey | None = None) -> None:
        """``ephemeral``: a fixed key only to reproduce docs/PROTOCOL.md's example."""
        self._ephemeral = ephemeral
        self._local_cid = local_cid
        self._rtt = rtt
        self.send_pending = True
        self.sent_at: float | None = None
        self.tries = 0
        """Sends of the current packet (HELLO, then CONNECT)."""
        self.cookie: bytes | None = None
        self._noise: NXInitiator | None = None
        self._connect: bytes | None = None

    def on_cookie(self, cookie: bytes, now: float, parameters: TransportParameters) -> None:
        self.cookie = cookie
        self._noise = NXInitiator(prologue(self._local_cid, cookie), self._ephemeral)
        self._connect = encode_packet(Connect(self._local_cid, cookie,
                                              self._noise.write_message_1(parameters.encode())))
        self._rtt_sample(now)
        self.tries = 0
        self.send_pending = True

    def on_accept(self, packet: Accept, now: float) -> Established:
        """Raises ``HandshakeError`` (nothing changed) if ACCEPT is not authentic."""
        payload, (client_to_server, server_to_client) = self._noise.read_message_2(packet.handshake)
        if len(payload) < CONNECTION_ID_SIZE + RESET_TOKEN_SIZE:
            raise HandshakeError("ACCEPT payload too short")
        server_cid = int.from_bytes(payload[:CONNECTION_ID_SIZE], "big")
        token = payload[CONNECTION_ID_SIZE:CONNECTION_ID_SIZE + RESET_TOKEN_SIZE]
        parameters = decode_parameters(payload[CONNECTION_ID_SIZE + RESET_TOKEN_SIZE:])
        self._rtt_sample(now)
        self.send_pending = False
        return Established(PacketProtection(client_to_server, server_to_client), parameters,
                           server_cid, token, self._noise.remote_static)

    def _rtt_sample(self, now: float) -> None:
        if self.tries == 1 and self.sent_at is not None:
            # Karn: only an unambiguous exchange gives an RTT sample.
            self._rtt.update(now - self.sent_at, 0.0, 0.0)

    def retry_time(self) -> float | None:
        """When to send the current packet again, or None if nothing is in flight."""
        if self.sent_at is None or self.send_pending:
            return None
        # Before any RTT sample, retry after the initial RTT (333 ms) rather
        # than a full initial PTO (1 s): a lost HELLO then costs a third of a
        # second, and a spurious retry only a duplicate handshake packet.
        rtt = self._rtt
        base = rtt.probe_timeout(0.0) if rtt.has_sample else rtt.initial_rtt
        backoff = 2 ** min(self.tries - 1, MAX_PTO_BACKOFF)
        return self.sent_at + min(base * backoff, max(MAX_PROBE_INTERVAL, base))

    def datagrams(self, now: float) -> list[bytes]:
        if not self.send_pending:
            return []
        self.send_pending = False
        self.sent_at = now
        self.tries += 1
        if self._connect is None:
            datagram = encode_packet(Hello(self._local_cid), pad_to=MIN_HELLO_SIZE)
        else:
            datagram = self._connect
        # A retry means something was lost: on such a path two copies make a
        # 10 s handshake all but certain (30% loss: 0.3^2 per copy pair).
        return [datagram] * (1 if self.tries == 1 else RETRY_COPIES)


def server_handshake(connect: Connect, static_key: X25519PrivateKey, server_cid: int,
                     token: bytes, parameters: TransportParameters,
                     ephemeral: X25519PrivateKey | None = None,
                     ) -> tuple[bytes, TransportParameters, PacketProtection]:
    """Answer a CONNECT whose cookie the endpoint has checked: the ACCEPT
    datagram, the client's parameters and the packet protection. Raises
    ``HandshakeError`` (``BadParameters`` for invalid parameters)."""
    noise = NXResponder(prologue(connect.client_cid, connect.cookie), static_key, ephemeral)
    client_parameters = decode_parameters(noise.read_message_1(connect.handshake))
    problem = parameter_problem(client_parameters)
    if problem is not None:
        raise BadParameters(problem)
    payload = server_cid.to_bytes(CONNECTION_ID_SIZE, "big") + token + parameters.encode()
    message_2, (client_to_server, server_to_client) = noise.write_message_2(payload)
    accept = encode_packet(Accept(connect.client_cid, message_2))
    return accept, client_parameters, PacketProtection(server_to_client, client_to_server)
