"""
The frames that DATA packets carry, once opened: their classes, their
encoding (``encode_frame``, ``frame_size`` for packing) and their decoding
(``decode_frames``, which raises only ``DecodeError``). Byte-by-byte layout:
``docs/PROTOCOL.md`` §4.
"""

from __future__ import annotations

import enum
from typing import Any, Final, Union

import attrs
from mypy_extensions import mypyc_attr

from twistchat.wire.errors import DecodeError
from twistchat.wire.varint import (
    MAX_VARINT, SINGLE_BYTES, BufferUnderflow, Reader, encode_varint, varint_size,
)

MAX_ACK_RANGES: Final = 64
"""An ACK frame with more ranges is malformed (bounds the work per frame)."""
PATH_DATA_SIZE: Final = 8
MAX_CLOSE_REASON_SIZE: Final = 256

INTERACTIVE_LANE: Final = 0
"""Where a message goes unless its sender says otherwise: chat lines, replies, events."""
BULK_LANE: Final = 1
"""For bulk data (a transfer's pieces): its own sequence and delivery order,
so nothing on the interactive lane waits behind it (PROTOCOL.md §6.7)."""
LANE_COUNT: Final = 2
"""Lanes a session has; a message on any other is a protocol violation."""


class FrameType(enum.IntEnum):
    PADDING = 0x00
    PING = 0x01
    ACK = 0x02
    CLOSE = 0x03
    UNRELIABLE = 0x04  # | LEN_BIT
    PATH_CHALLENGE = 0x06
    PATH_RESPONSE = 0x07
    MESSAGE = 0x08  # | LEN_BIT | FRAGMENT_BIT
    WINDOW = 0x0C
    LANE_MESSAGE = 0x10  # | LEN_BIT | FRAGMENT_BIT: MESSAGE with a lane number
    NEXT_MESSAGE = 0x14  # | LEN_BIT | FRAGMENT_BIT: MESSAGE numbered after the one before it


LEN_BIT: Final = 0x01
FRAGMENT_BIT: Final = 0x02
_MESSAGE: Final = int(FrameType.MESSAGE)
_LANE_MESSAGE: Final = int(FrameType.LANE_MESSAGE)
_NEXT_MESSAGE: Final = int(FrameType.NEXT_MESSAGE)
_PADDING: Final = int(FrameType.PADDING)
_PING: Final = int(FrameType.PING)
_ACK: Final = int(FrameType.ACK)
_CLOSE: Final = int(FrameType.CLOSE)
_UNRELIABLE: Final = int(FrameType.UNRELIABLE)
_PATH_CHALLENGE: Final = int(FrameType.PATH_CHALLENGE)
_PATH_RESPONSE: Final = int(FrameType.PATH_RESPONSE)
_WINDOW: Final = int(FrameType.WINDOW)
_ACK_BYTE: Final = SINGLE_BYTES[_ACK]
_PING_BYTE: Final = SINGLE_BYTES[_PING]
"""Plain ints for the per-frame code: on Python 3.11 each ``FrameType.ACK``
is a lookup through ``EnumType.__getattr__``'s slot (~250 instructions);
decoding a PING took seven (issue 16). ``Final``, as every constant of a
compiled module: mypyc reads it as a C value, not from the module's dict
(~80 instructions a read)."""


@attrs.frozen
class Ping:
    pass


_A_PING: Final = Ping()
"""Every decoded PING: it has no fields, and a frozen attrs instance costs ~1 us to make."""


@attrs.frozen
class Ack:
    """``ranges`` are inclusive (first, last) pairs, highest first, disjoint."""

    ranges: tuple[tuple[int, int], ...]
    delay_us: int = 0

    @property
    def largest(self) -> int:
        return self.ranges[0][1]


@attrs.frozen
class Close:
    code: int
    reason: str = ""


@attrs.frozen
class Unreliable:
    data: bytes


@mypyc_attr(native_class=False)  # so frozen attrs classes may derive from it
class MessageFields:
    """What encoding reads of a message frame (``seq``, ``data``, ``offset``,
    ``total``, ``lane``). ``MessageFrame`` is one; so is the sender's record
    of each chunk it sends (``reliable.sending.Chunk``), which goes into a
    packet as it is: no frame object is built per chunk per send (a
    fan-out sends one per member per line: issue 16)."""

    __slots__ = ()


MessageLike = Any
"""A ``MessageFields`` as the encoder's signatures say it: its fields are
read by name, so a ``Chunk`` keeps them as native attributes under mypyc
(declared here, they would live in a per-chunk dict; issue 16)."""


@attrs.frozen
class MessageFrame(MessageFields):
    """A whole message (``total is None``) or one fragment of message ``seq``
    of ``lane`` (each lane numbers its messages from 0: PROTOCOL.md §6.7)."""

    seq: int
    data: bytes
    offset: int = 0
    total: int | None = None
    lane: int = 0


@attrs.frozen
class PathChallenge:
    data: bytes


@attrs.frozen
class PathResponse:
    data: bytes


@attrs.frozen
class Window:
    """The sender's receive window grows to ``size`` bytes (it never shrinks)."""

    size: int


Frame = Union[Ping, Ack, Close, Unreliable, MessageFrame, PathChallenge, PathResponse, Window]

ACK_DELAY_EXPONENT: Final = 3
"""Ack delay travels in units of 2**3 microseconds, as QUIC's default."""



def _with_length(data: bytes) -> bytes:
    return encode_varint(len(data)) + data


def encode_frames(frames: tuple["Frame", ...] | list) -> bytes:
    parts: list[bytes] = []
    append = parts.append
    previous: MessageLike | None = None
    last_index = len(frames) - 1
    for index, frame in enumerate(frames):
        if isinstance(frame, MessageFields):
            message: MessageLike = frame
            append(_message_head(message, index == last_index, previous))
            append(message.data)
            previous = message
        else:
            append(encode_frame(frame, index == last_index))
    return b"".join(parts)


def follows(frame: MessageLike, previous: MessageLike | None) -> bool:
    """``frame`` may travel as NEXT_MESSAGE after ``previous``, the message
    frame before it in its packet: same lane, the next sequence number, so
    the receiver derives both from the frame it has just read."""
    return previous is not None and frame.seq == previous.seq + 1 and frame.lane == previous.lane


def encode_frame(frame: Frame, last: bool = False, previous: MessageFrame | None = None) -> bytes:
    """``last``: the frame ends the packet, so data frames may omit their length.
    ``previous``: the packet's message frame before this one, if any."""
    if isinstance(frame, MessageFields):
        return _message_head(frame, last, previous) + frame.data
    if isinstance(frame, Ack):
        (first_low, largest), *rest = frame.ranges
        parts = [
            _ACK_BYTE,
            encode_varint(largest),
            encode_varint(frame.delay_us >> ACK_DELAY_EXPONENT),
            encode_varint(len(rest)),
            encode_varint(largest - first_low),
        ]
        previous_low = first_low
        for low, high in rest:
            parts.append(encode_varint(previous_low - high - 2))
            parts.append(encode_varint(high - low))
            previous_low = low
        return b"".join(parts)
    if isinstance(frame, Unreliable):
        if last:
            return SINGLE_BYTES[_UNRELIABLE] + frame.data
        return SINGLE_BYTES[_UNRELIABLE | LEN_BIT] + _with_length(frame.data)
    if isinstance(frame, Ping):
        return _PING_BYTE
    if isinstance(frame, Close):
        # Cut at a character boundary, so the peer always gets valid UTF-8.
        reason = frame.reason.encode("utf-8")[:MAX_CLOSE_REASON_SIZE] \
            .decode("utf-8", "ignore").encode("utf-8")
        return SINGLE_BYTES[_CLOSE] + encode_varint(frame.code) + _with_length(reason)
    if isinstance(frame, PathChallenge):
        return SINGLE_BYTES[_PATH_CHALLENGE] + frame.data
    if isinstance(frame, PathResponse):
        return SINGLE_BYTES[_PATH_RESPONSE] + frame.data
    if isinstance(frame, Window):
        return SINGLE_BYTES[_WINDOW] + encode_varint(frame.size)
    raise TypeError(f"not a frame: {frame!r}")


def _message_head(frame: MessageLike, last: bool, previous: MessageLike | None) -> bytes:
    return message_head(frame.seq, frame.lane, frame.total, frame.offset, len(frame.data), last,
                        follows(frame, previous))


def message_head(seq: int, lane: int, total: int | None, offset: int, length: int, last: bool,
                 next_message: bool) -> bytes:
    """A message frame's bytes before its data: type, sequence number (not
    for NEXT_MESSAGE, which ``next_message`` asks for: see ``follows``),
    fragment fields, and the length unless ``last``. From the fields, typed:
    a sender that reads them off its own records natively calls this, since
    reading them through ``MessageLike`` is a Python attribute lookup each
    (~1,800 instructions a message under mypyc, a tenth of a fan-out's
    server work: issue 16)."""
    if next_message:
        kind = _NEXT_MESSAGE
        head = b""
    elif lane:
        kind = _LANE_MESSAGE
        head = encode_varint(lane) + encode_varint(seq)
    else:
        kind = _MESSAGE
        head = encode_varint(seq)
    if total is not None:
        kind |= FRAGMENT_BIT
        head += encode_varint(total) + encode_varint(offset)
    if not last:
        kind |= LEN_BIT
        head += encode_varint(length)
    return SINGLE_BYTES[kind] + head


def message_frame_size(seq: int, length: int, lane: int = 0, total: int | None = None,
                       offset: int = 0) -> int:
    """``frame_size`` of a message frame sent alone and not last, from its
    fields: what a sender computes once for each chunk it queues."""
    size = 1 + length + varint_size(seq) + varint_size(length)
    if lane:
        size += varint_size(lane)
    if total is not None:
        size += varint_size(total) + varint_size(offset)
    return size


def frame_size(frame: Frame, last: bool = False, previous: MessageFrame | None = None) -> int:
    """Bytes ``encode_frame`` would produce, without building them, for packing.
    Without ``previous`` a message frame is sized with its sequence number:
    never less than it costs wherever it lands in a packet."""
    if isinstance(frame, MessageFields):
        size = message_frame_size(frame.seq, len(frame.data), frame.lane, frame.total, frame.offset)
        if previous is not None and follows(frame, previous):  # packing asks without one
            size -= _derived_numbers_size(frame)
        if last:
            size -= varint_size(len(frame.data))
        return size
    return len(encode_frame(frame, last))


def _derived_numbers_size(frame: MessageLike) -> int:
    """What NEXT_MESSAGE leaves out: the sequence number and lane number."""
    return varint_size(frame.seq) + (varint_size(frame.lane) if frame.lane else 0)


def derived_numbers_saving(frames: tuple["Frame", ...] | list) -> int:
    """Bytes ``encode_frames`` saves on ``frames`` below the sum of their
    ``frame_size`` by sending NEXT_MESSAGE where it can: room a packet
    filled frame by frame gets back."""
    saving = 0
    previous = None
    for frame in frames:
        if isinstance(frame, MessageFields):
            if follows(frame, previous):
                saving += _derived_numbers_size(frame)
            previous = frame
    return saving


def decode_frames(plaintext: bytes) -> tuple["Frame", ...]:
    """The frames of an opened DATA packet; raises only ``DecodeError``."""
    try:
        frames = _decode_frames(Reader(plaintext))
    except DecodeError:
        raise
    except BufferUnderflow as short:  # a name per clause: mypyc types each one (issue 16)
        raise DecodeError(f"truncated: needed {short}") from None
    except Exception as e:
        raise DecodeError(f"malformed: {e!r}") from None
    if not frames:
        raise DecodeError("DATA packet without frames")
    return frames


def _decode_frames(reader: Reader) -> tuple[Frame, ...]:
    frames: list[Frame] = []
    previous: MessageFrame | None = None
    """The last message frame read: what a NEXT_MESSAGE follows."""
    while not reader.at_end():
        kind = reader.read_u8()
        if kind == _PADDING:
            continue
        message_kind = kind & ~(LEN_BIT | FRAGMENT_BIT)
        if message_kind == _MESSAGE:
            previous = _decode_message(reader, kind, 0, reader.read_varint())
            frames.append(previous)
        elif message_kind == _LANE_MESSAGE:
            lane = reader.read_varint()
            if lane == 0:
                raise DecodeError("lane 0 travels as MESSAGE, not LANE_MESSAGE")
            previous = _decode_message(reader, kind, lane, reader.read_varint())
            frames.append(previous)
        elif message_kind == _NEXT_MESSAGE:
            if previous is None:
                raise DecodeError("NEXT_MESSAGE with no message frame before it in the packet")
            if previous.seq == MAX_VARINT:
                raise DecodeError("NEXT_MESSAGE after the largest sequence number")
            previous = _decode_message(reader, kind, previous.lane, previous.seq + 1)
            frames.append(previous)
        elif kind == _ACK:
            frames.append(_decode_ack(reader))
        elif kind & ~LEN_BIT == _UNRELIABLE:
            data = reader.read_bytes(reader.read_varint()) if kind & LEN_BIT else reader.read_rest()
            frames.append(Unreliable(data))
        elif kind == _PING:
            frames.append(_A_PING)
        elif kind == _CLOSE:
            code = reader.read_varint()
            length = reader.read_varint()
            if length > MAX_CLOSE_REASON_SIZE:
                raise DecodeError(f"close reason of {length} bytes")
            frames.append(Close(code, reader.read_bytes(length).decode("utf-8", "replace")))
        elif kind == _PATH_CHALLENGE:
            frames.append(PathChallenge(reader.read_bytes(PATH_DATA_SIZE)))
        elif kind == _PATH_RESPONSE:
            frames.append(PathResponse(reader.read_bytes(PATH_DATA_SIZE)))
        elif kind == _WINDOW:
            frames.append(Window(reader.read_varint()))
        else:
            raise DecodeError(f"unknown frame type 0x{kind:02x}")
    return tuple(frames)


def _decode_message(reader: Reader, kind: int, lane: int, seq: int) -> MessageFrame:
    if kind & FRAGMENT_BIT:
        total = reader.read_varint()
        offset = reader.read_varint()
    else:
        total = None
        offset = 0
    data = reader.read_bytes(reader.read_varint()) if kind & LEN_BIT else reader.read_rest()
    if total is not None:
        if not data or offset + len(data) > total:
            raise DecodeError(f"fragment [{offset}, +{len(data)}) outside message of {total}")
        return MessageFrame(seq, data, offset, total, lane)
    return MessageFrame(seq, data, lane=lane)


def _decode_ack(reader: Reader) -> Ack:
    largest = reader.read_varint()
    delay = reader.read_varint() << ACK_DELAY_EXPONENT
    range_count = reader.read_varint()
    if range_count >= MAX_ACK_RANGES:
        raise DecodeError(f"{range_count} ack ranges")
    low = largest - reader.read_varint()
    if low < 0:
        raise DecodeError("ack range below zero")
    ranges = [(low, largest)]
    for _ in range(range_count):
        high = low - reader.read_varint() - 2
        low = high - reader.read_varint()
        if low < 0:
            raise DecodeError("ack range below zero")
        ranges.append((low, high))
    return Ack(tuple(ranges), delay)
