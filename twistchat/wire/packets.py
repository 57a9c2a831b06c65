"""
Datagram codec: the packet header and the packets (the frames DATA packets
carry are in ``frames.py``, re-exported here). Byte-by-byte layout:
``docs/PROTOCOL.md`` Part 1.

``decode_packet`` turns any input into a packet object or raises
``DecodeError``; it never raises anything else, whatever the bytes.
"""

from __future__ import annotations

import enum
from typing import Final, Union

import attrs

from twistchat.wire.errors import DecodeError
from twistchat.wire.frames import (  # re-exported: the codec is one import for its users
    ACK_DELAY_EXPONENT, BULK_LANE, FRAGMENT_BIT, INTERACTIVE_LANE, LANE_COUNT, LEN_BIT,
    MAX_ACK_RANGES, MAX_CLOSE_REASON_SIZE,
    PATH_DATA_SIZE, Ack, Close, Frame, FrameType, MessageFields, MessageFrame, PathChallenge,
    PathResponse, Ping, Unreliable, Window, decode_frames, derived_numbers_saving, encode_frame,
    encode_frames, frame_size, message_frame_size, message_head,
)
from twistchat.wire.varint import BufferUnderflow, Reader, encode_varint, varint_at, varint_size

__all__ = [
    "PROTOCOL_VERSION", "MAX_DATAGRAM_SIZE", "MAX_ACCEPTED_DATAGRAM_SIZE",
    "MIN_HELLO_SIZE", "CONNECTION_ID_SIZE", "MAX_ACK_RANGES", "PATH_DATA_SIZE",
    "PacketType", "FrameType", "DecodeError", "TransportParameters",
    "Hello", "Cookie", "Connect", "Accept", "Reset", "Data", "SealedData",
    "Ping", "Ack", "Close", "Unreliable", "MessageFields", "MessageFrame", "PathChallenge",
    "PathResponse", "Window", "Frame", "Packet",
    "decode_packet", "encode_packet", "encode_frame", "frame_size", "message_frame_size",
    "message_head",
    "derived_numbers_saving",
    "decode_frames",
    "encode_data_header", "encode_frames", "decode_plain_data", "TAG_SIZE", "RESET_TOKEN_SIZE",
    "data_header_size", "data_header", "DATA_FIRST_BYTE", "packet_version", "peek_route",
    "ACK_DELAY_EXPONENT", "BULK_LANE", "FRAGMENT_BIT", "INTERACTIVE_LANE", "LANE_COUNT", "LEN_BIT",
    "MAX_CLOSE_REASON_SIZE",
]

PROTOCOL_VERSION: Final = 1
"""High nibble of every packet's first byte."""

MAX_DATAGRAM_SIZE: Final = 1200
"""Largest datagram we send by default: fits any IPv6 path (RFC 9000 §14)."""

MAX_ACCEPTED_DATAGRAM_SIZE: Final = 1500
"""Larger datagrams are dropped unread (one Ethernet MTU; we never send one)."""

MIN_HELLO_SIZE: Final = 1200
"""A HELLO is padded to this, so the stateless reply never exceeds what the
unvalidated address sent (anti-amplification, stricter than RFC 9000 §8.1)."""

CONNECTION_ID_SIZE: Final = 8
TAG_SIZE: Final = 16
"""The AEAD tag (ChaCha20-Poly1305) that ends every DATA packet."""
RESET_TOKEN_SIZE: Final = 16
"""RFC 9000 §10.3: a stateless reset token is 16 bytes."""
MAX_HANDSHAKE_SIZE: Final = 512
"""A Noise handshake message in CONNECT or ACCEPT is at most this long."""
MAX_COOKIE_SIZE: Final = 64


class PacketType(enum.IntEnum):
    HELLO = 1
    COOKIE = 2
    CONNECT = 3
    ACCEPT = 4
    DATA = 5
    RESET = 6


@attrs.frozen
class TransportParameters:
    """Limits each side announces in the handshake (PROTOCOL.md §Handshake).
    No defaults here: every one is always sent, and what we announce comes
    from ``reliable.config.SessionConfig``."""

    max_message_size: int
    receive_window: int
    idle_timeout_ms: int
    keepalive_interval_ms: int
    max_ack_delay_ms: int

    def encode(self) -> bytes:
        return b"".join(encode_varint(v) for v in attrs.astuple(self))

    @classmethod
    def decode(cls, reader: Reader) -> "TransportParameters":
        return cls(*(reader.read_varint() for _ in attrs.fields(cls)))


# -- packets -----------------------------------------------------------------


@attrs.frozen
class Hello:
    client_cid: int


@attrs.frozen
class Cookie:
    client_cid: int
    cookie: bytes


@attrs.frozen
class Connect:
    client_cid: int
    cookie: bytes
    handshake: bytes
    """Noise message 1 (``-> e``), its payload the client's transport parameters."""


@attrs.frozen
class Accept:
    client_cid: int
    handshake: bytes
    """Noise message 2 (``<- e, ee, s, es``), its encrypted payload the
    server's connection id, reset token and transport parameters."""


@attrs.frozen
class Reset:
    """Sent by a server that has no session for a DATA packet's connection id;
    only the token derived from that id and the server's secret makes a
    client believe it (RFC 9000 §10.3)."""

    cid: int
    token: bytes


@attrs.frozen
class Data:
    """A DATA packet before protection (``encode_packet``) or after it was
    opened (``decode_frames`` of the plaintext)."""

    dest_cid: int
    packet_number: int
    frames: tuple["Frame", ...]


@attrs.frozen
class SealedData:
    """A DATA packet as it arrives: the header in clear (the AEAD's associated
    data) and the sealed frames (ciphertext and tag)."""

    dest_cid: int
    packet_number: int
    header: bytes
    sealed: bytes


Packet = Union[Hello, Cookie, Connect, Accept, Reset, Data, SealedData]

# -- encoding ----------------------------------------------------------------


def _first_byte(packet_type: PacketType) -> bytes:
    return bytes(((PROTOCOL_VERSION << 4) | packet_type,))


_PACKET_TYPES: Final = {int(t): t for t in PacketType}
_HELLO: Final = int(PacketType.HELLO)
_DATA: Final = int(PacketType.DATA)
_COOKIE: Final = int(PacketType.COOKIE)
_CONNECT: Final = int(PacketType.CONNECT)
_ACCEPT: Final = int(PacketType.ACCEPT)
_RESET: Final = int(PacketType.RESET)
_DATA_FIRST_BYTE: Final = _first_byte(PacketType.DATA)
"""Plain ints and bytes for the per-datagram code: on Python 3.11 each
``PacketType.DATA`` is a lookup through ``EnumType.__getattr__``'s slot
(~250 instructions) and ``PacketType(code)`` a Python call (issue 16)."""
DATA_FIRST_BYTE: Final = _DATA_FIRST_BYTE[0]
"""The first byte of every DATA packet of this version."""


def _cid(value: int) -> bytes:
    return value.to_bytes(CONNECTION_ID_SIZE, "big")


def _with_length(data: bytes) -> bytes:
    return encode_varint(len(data)) + data


def data_header_size(dest_cid: int, packet_number: int) -> int:
    return 1 + CONNECTION_ID_SIZE + varint_size(packet_number)


def encode_data_header(dest_cid: int, packet_number: int) -> bytes:
    return _DATA_FIRST_BYTE + _cid(dest_cid) + encode_varint(packet_number)


def encode_packet(packet: Packet, pad_to: int = 0) -> bytes:
    """Encode one packet; ``pad_to`` appends zero bytes (PADDING) up to that size."""
    if isinstance(packet, Data):
        out = encode_data_header(packet.dest_cid, packet.packet_number) + encode_frames(packet.frames)
    elif isinstance(packet, Hello):
        out = _first_byte(PacketType.HELLO) + _cid(packet.client_cid)
    elif isinstance(packet, Cookie):
        out = _first_byte(PacketType.COOKIE) + _cid(packet.client_cid) + _with_length(packet.cookie)
    elif isinstance(packet, Connect):
        out = (_first_byte(PacketType.CONNECT) + _cid(packet.client_cid)
               + _with_length(packet.cookie) + _with_length(packet.handshake))
    elif isinstance(packet, Accept):
        out = _first_byte(PacketType.ACCEPT) + _cid(packet.client_cid) + _with_length(packet.handshake)
    elif isinstance(packet, Reset):
        if len(packet.token) != RESET_TOKEN_SIZE:
            raise ValueError("a reset token is 16 bytes")
        out = _first_byte(PacketType.RESET) + _cid(packet.cid) + packet.token
    else:
        raise TypeError(f"not a packet: {packet!r}")
    if len(out) < pad_to:
        out += bytes(pad_to - len(out))
    return out


# -- decoding ----------------------------------------------------------------


def packet_version(datagram: bytes) -> int | None:
    """The version nibble, or None for an empty datagram."""
    return datagram[0] >> 4 if datagram else None


def peek_route(datagram: bytes) -> tuple[PacketType, int]:
    """The packet type and the connection id that every packet carries right
    after its first byte (DATA: the destination; HELLO, COOKIE, CONNECT,
    ACCEPT: the client's; RESET: the one it refers to), read without decoding
    the rest: the endpoint routes on these, the session decodes the packet."""
    if len(datagram) < 1 + CONNECTION_ID_SIZE:
        raise DecodeError(f"truncated: {len(datagram)} bytes")
    version, type_code = datagram[0] >> 4, datagram[0] & 0x0F
    if version != PROTOCOL_VERSION:
        raise DecodeError(f"unknown version {version}")
    packet_type = _PACKET_TYPES.get(type_code)
    if packet_type is None:
        raise DecodeError(f"unknown packet type {type_code}")
    return packet_type, int.from_bytes(datagram[1:1 + CONNECTION_ID_SIZE], "big")


def decode_packet(datagram: bytes) -> Packet:
    try:
        return _decode_packet(datagram)
    except DecodeError:
        raise
    except BufferUnderflow as short:  # a name per clause: mypyc types each one (issue 16)
        raise DecodeError(f"truncated: needed {short}") from None
    except Exception as e:  # a bug in a branch above must not escape as anything else
        raise DecodeError(f"malformed: {e!r}") from None


def _decode_packet(datagram: bytes) -> Packet:
    if len(datagram) > MAX_ACCEPTED_DATAGRAM_SIZE:
        raise DecodeError(f"oversized datagram: {len(datagram)} bytes")
    reader = Reader(datagram)
    first = reader.read_u8()
    version, type_code = first >> 4, first & 0x0F
    if version != PROTOCOL_VERSION:
        raise DecodeError(f"unknown version {version}")
    if type_code == _HELLO:
        return Hello(client_cid=reader.read_u64())
    if type_code == _DATA:
        packet_number, header_size = data_header(datagram)
        return SealedData(int.from_bytes(datagram[1:1 + CONNECTION_ID_SIZE], "big"), packet_number,
                          datagram[:header_size], datagram[header_size:])
    if type_code == _COOKIE:
        client_cid = reader.read_u64()
        return Cookie(client_cid, _read_cookie(reader))
    if type_code == _CONNECT:
        client_cid = reader.read_u64()
        cookie = _read_cookie(reader)
        return Connect(client_cid, cookie, _read_handshake(reader))
    if type_code == _ACCEPT:
        client_cid = reader.read_u64()
        return Accept(client_cid, _read_handshake(reader))
    if type_code == _RESET:
        return Reset(reader.read_u64(), reader.read_bytes(RESET_TOKEN_SIZE))
    raise DecodeError(f"unknown packet type {type_code}")


def data_header(datagram: bytes) -> tuple[int, int]:
    """(packet number, header size) of a DATA datagram whose first byte is
    ``DATA_FIRST_BYTE``: what a session needs to open it, without a Reader
    or a ``SealedData`` (the per-datagram path, issue 16). Raises
    ``DecodeError`` as ``decode_packet`` does."""
    size = len(datagram)
    if size > MAX_ACCEPTED_DATAGRAM_SIZE:
        raise DecodeError(f"oversized datagram: {size} bytes")
    try:
        packet_number, end = varint_at(datagram, 1 + CONNECTION_ID_SIZE)
    except BufferUnderflow as e:
        raise DecodeError(f"truncated: needed {e}") from None
    if size - end <= TAG_SIZE:
        raise DecodeError("DATA packet without sealed frames")
    return packet_number, end


def _read_handshake(reader: Reader) -> bytes:
    length = reader.read_varint()
    if length > MAX_HANDSHAKE_SIZE:
        raise DecodeError(f"handshake message of {length} bytes")
    return reader.read_bytes(length)


def decode_plain_data(datagram: bytes) -> Data:
    """A DATA packet laid out as ``encode_packet`` writes it before sealing
    (header, then frames in clear): for tests and tools that build frames by
    hand. On the wire every DATA packet is sealed (``SealedData``)."""
    if len(datagram) > MAX_ACCEPTED_DATAGRAM_SIZE:
        raise DecodeError(f"oversized datagram: {len(datagram)} bytes")
    try:
        reader = Reader(datagram)
        first = reader.read_u8()
        if first != (PROTOCOL_VERSION << 4) | PacketType.DATA:
            raise DecodeError("not a DATA packet")
        dest_cid = reader.read_u64()
        packet_number = reader.read_varint()
    except BufferUnderflow as e:
        raise DecodeError(f"truncated: needed {e}") from None
    return Data(dest_cid, packet_number, decode_frames(reader.read_rest()))


def _read_cookie(reader: Reader) -> bytes:
    length = reader.read_varint()
    if length > MAX_COOKIE_SIZE:
        raise DecodeError(f"cookie of {length} bytes")
    return reader.read_bytes(length)


