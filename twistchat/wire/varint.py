"""
Variable-length integers exactly as in QUIC (RFC 9000 §16): the two high
bits of the first byte give the length (1, 2, 4 or 8 bytes), the rest is
the value, big-endian. Values up to 2**62 - 1.
"""

from __future__ import annotations

from typing import Final

MAX_VARINT: Final = (1 << 62) - 1

SINGLE_BYTES: Final[list[bytes]] = [bytes((value,)) for value in range(256)]
"""``bytes((value,))`` made once for every byte: made per call it is a tuple
and a call into ``bytes`` (~300 instructions under mypyc), and every frame
type and one-byte varint of every packet was one (issue 16)."""


class BufferUnderflow(Exception):
    """Raised by ``Reader`` when the input ends early; the decoder turns it
    into ``DecodeError``."""


def encode_varint(value: int) -> bytes:
    if value < 0x40:
        if value < 0:  # SINGLE_BYTES[-1] is a byte: never send it for a number
            raise ValueError(f"{value} does not fit in a varint")
        return SINGLE_BYTES[value]
    if value < 0x4000:
        return (value | 0x4000).to_bytes(2, "big")
    if value < 0x4000_0000:
        return (value | 0x8000_0000).to_bytes(4, "big")
    if value <= MAX_VARINT:
        return (value | 0xC000_0000_0000_0000).to_bytes(8, "big")
    raise ValueError(f"{value} does not fit in a varint")


def varint_size(value: int) -> int:
    if value < 0x40:
        return 1
    if value < 0x4000:
        return 2
    if value < 0x4000_0000:
        return 4
    return 8


def varint_at(data: bytes, pos: int) -> tuple[int, int]:
    """(value, end) of the varint that starts at ``pos``: for a caller
    that reads one number without a ``Reader``."""
    if pos >= len(data):
        raise BufferUnderflow("varint")
    first = data[pos]
    if first < 0x40:
        return first, pos + 1
    length = 1 << (first >> 6)
    end = pos + length
    if end > len(data):
        raise BufferUnderflow(f"{length}-byte varint")
    return int.from_bytes(data[pos:end], "big") & ((1 << (8 * length - 2)) - 1), end


class Reader:
    """A cursor over one datagram; every read checks the bounds."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def read_u8(self) -> int:
        if self.pos >= len(self.data):
            raise BufferUnderflow("u8")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def read_bytes(self, count: int) -> bytes:
        end = self.pos + count
        if count < 0 or end > len(self.data):
            raise BufferUnderflow(f"{count} bytes")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def read_rest(self) -> bytes:
        chunk = self.data[self.pos:]
        self.pos = len(self.data)
        return chunk

    def read_u64(self) -> int:
        return int.from_bytes(self.read_bytes(8), "big")

    def read_varint(self) -> int:
        data, pos = self.data, self.pos
        if pos >= len(data):
            raise BufferUnderflow("varint")
        first = data[pos]
        if first < 0x40:  # one byte: most numbers in a packet, read with no further call
            self.pos = pos + 1
            return first
        value, self.pos = varint_at(data, pos)
        return value
