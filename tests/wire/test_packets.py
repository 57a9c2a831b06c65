"""The datagram codec: round trips, the exact wire bytes, and a decoder that
turns every malformed datagram into ``DecodeError`` and nothing else."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from twistchat.reliable.config import SessionConfig
from twistchat.wire.packets import (
    CONNECTION_ID_SIZE, FRAGMENT_BIT, LEN_BIT, MAX_ACCEPTED_DATAGRAM_SIZE, MAX_ACK_RANGES, MAX_DATAGRAM_SIZE,
    MIN_HELLO_SIZE, PROTOCOL_VERSION, TAG_SIZE, Accept, Ack, Close, Connect, Cookie, Data,
    DecodeError, FrameType, Hello, MessageFrame, PacketType, PathChallenge, PathResponse, Ping, Reset,
    SealedData, Unreliable, Window, data_header_size, decode_frames, decode_plain_data, encode_frame,
    DATA_FIRST_BYTE, data_header, encode_data_header, encode_packet, frame_size, packet_version,
)
from twistchat.wire.packets import decode_packet as decode_wire
from twistchat.wire.varint import MAX_VARINT, encode_varint

FUZZ = settings(max_examples=700, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# -- strategies for valid packets ----------------------------------------------

cids = st.integers(0, 2**64 - 1)
varints = st.integers(0, MAX_VARINT)
# Mostly small numbers (the common case), sometimes anything a varint holds.
counts = st.one_of(st.integers(0, 70_000), varints)


@st.composite
def acks(draw, max_ranges: int = MAX_ACK_RANGES):
    n = draw(st.one_of(st.integers(1, 3), st.integers(1, max_ranges)))
    small = st.integers(0, 2**20)
    low = draw(st.integers(0, 2**40))
    ranges = []
    for _ in range(n):
        high = low + draw(small)
        ranges.append((low, high))
        low = high + 2 + draw(small)  # at least one number missing between ranges
    delay_us = draw(st.integers(0, 2**40)) * 8  # the wire carries units of 8 us
    return Ack(tuple(reversed(ranges)), delay_us)


def _reason_fits(reason: str) -> bool:
    return len(reason.encode("utf-8")) <= 256


@st.composite
def fragments(draw):
    data = draw(st.binary(min_size=1, max_size=200))
    offset = draw(counts)
    total = offset + len(data) + draw(counts)
    assume(total <= MAX_VARINT)
    return MessageFrame(draw(varints), data, offset, total, draw(lanes))


lanes = st.sampled_from([0, 1, 63, MAX_VARINT])
"""Lane numbers the codec carries (the session accepts 0 and 1 only)."""


frames = st.one_of(
    st.builds(Ping),
    acks(),
    st.builds(Close, varints, st.text(max_size=80).filter(_reason_fits)),
    st.builds(Unreliable, st.binary(max_size=200)),
    st.builds(MessageFrame, varints, st.binary(max_size=200), lane=lanes),
    fragments(),
    st.builds(PathChallenge, st.binary(min_size=8, max_size=8)),
    st.builds(PathResponse, st.binary(min_size=8, max_size=8)),
    st.builds(Window, varints),
)
handshakes = st.binary(max_size=512)
cookies = st.binary(max_size=64)
tokens = st.binary(min_size=16, max_size=16)


def decode_packet(datagram: bytes):
    """DATA as ``encode_packet`` lays it out before sealing (these tests are
    about the codec); every other packet as it travels."""
    if datagram[:1] == bytes(((PROTOCOL_VERSION << 4) | PacketType.DATA,)):
        return decode_plain_data(datagram)
    return decode_wire(datagram)


@st.composite
def data_packets(draw):
    packet = Data(draw(cids), draw(varints), tuple(draw(st.lists(frames, min_size=1, max_size=5))))
    assume(len(encode_packet(packet)) <= MAX_ACCEPTED_DATAGRAM_SIZE)
    return packet


packets = st.one_of(
    st.builds(Hello, cids),
    st.builds(Cookie, cids, cookies),
    st.builds(Connect, cids, cookies, handshakes),
    st.builds(Accept, cids, handshakes),
    st.builds(Reset, cids, tokens),
    data_packets(),
)
handshake_packets = st.one_of(
    st.builds(Hello, cids),
    st.builds(Cookie, cids, cookies),
    st.builds(Connect, cids, cookies, handshakes),
    st.builds(Accept, cids, handshakes),
    st.builds(Reset, cids, tokens),
)


def decodes_or_decode_error(datagram: bytes):
    """The decoder's contract: a packet, or DecodeError; any other exception fails."""
    try:
        return decode_packet(datagram)
    except DecodeError:
        return None


# -- round trips -----------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(packets)
def test_every_packet_round_trips(packet):
    datagram = encode_packet(packet)
    assert decode_packet(datagram) == packet
    assert packet_version(datagram) == PROTOCOL_VERSION


@settings(max_examples=300, deadline=None)
@given(frames, st.booleans())
def test_every_frame_round_trips_last_or_not(frame, other_first):
    # Each frame alone (last: its length may be implied), and followed by
    # another frame (not last: it must carry its length).
    for packet_frames in ((frame,), (frame, Ping()), (Ping(), frame) if other_first else (frame,)):
        packet = Data(1, 2, packet_frames)
        assert decode_packet(encode_packet(packet)) == packet


@settings(max_examples=200, deadline=None)
@given(frames, st.booleans())
def test_frame_size_is_exact(frame, last):
    assert frame_size(frame, last) == len(encode_frame(frame, last))
    # Without "last" a frame is never smaller: the session sizes packets with it.
    assert frame_size(frame) >= frame_size(frame, last=True)


@settings(max_examples=200, deadline=None)
@given(data_packets())
def test_sized_frames_bound_the_datagram(packet):
    """What the session relies on to stay under 1200 bytes: the header size
    plus ``frame_size`` of each frame bounds the encoded datagram."""
    budget = data_header_size(packet.dest_cid, packet.packet_number) + sum(
        frame_size(frame) for frame in packet.frames)
    assert len(encode_packet(packet)) <= budget


@settings(max_examples=200, deadline=None)
@given(handshake_packets, st.integers(0, MAX_ACCEPTED_DATAGRAM_SIZE))
def test_padding_is_ignored_by_the_decoder(packet, pad_to):
    datagram = encode_packet(packet, pad_to=pad_to)
    assert len(datagram) == max(pad_to, len(encode_packet(packet)))
    assert decode_packet(datagram) == packet


def test_padded_data_packet_round_trips():
    packet = Data(7, 9, (Close(1, "x"), Ping()))
    datagram = encode_packet(packet, pad_to=MAX_DATAGRAM_SIZE)
    assert len(datagram) == MAX_DATAGRAM_SIZE
    assert decode_packet(datagram) == packet


# -- the exact bytes ---------------------------------------------------------------

CID = bytes.fromhex("0102030405060708")
CID_INT = 0x0102030405060708


def test_hello_bytes_and_padding():
    assert encode_packet(Hello(CID_INT)) == b"\x11" + CID
    padded = encode_packet(Hello(CID_INT), pad_to=MIN_HELLO_SIZE)
    assert MIN_HELLO_SIZE == 1200
    assert padded == b"\x11" + CID + bytes(1200 - 9)
    assert decode_packet(padded) == Hello(CID_INT)


def test_handshake_packet_bytes():
    assert encode_packet(Reset(1, b"t" * 16)) == b"\x16" + bytes(7) + b"\x01" + b"t" * 16
    assert encode_packet(Cookie(CID_INT, b"abc")) == b"\x12" + CID + b"\x03abc"
    # Default parameters: 65536, 1048576, 75000 and 25000 take four bytes
    # (25000 = 0x61a8 is past two bytes' 0x3fff), 25 one.
    params = bytes.fromhex("80010000" "80100000" "800124f8" "800061a8" "19")
    assert SessionConfig().transport_parameters().encode() == params
    assert encode_packet(Connect(CID_INT, b"\xaa" * 2, b"\xee" * 3)) == \
        b"\x13" + CID + b"\x02\xaa\xaa" + b"\x03\xee\xee\xee"
    assert encode_packet(Accept(CID_INT, b"\xdd" * 2)) == b"\x14" + CID + b"\x02\xdd\xdd"


def test_data_travels_sealed_the_decoder_splits_header_and_body():
    datagram = b"\x15" + CID + b"\x41\x2c" + bytes(TAG_SIZE + 3)
    assert decode_wire(datagram) == SealedData(CID_INT, 300, datagram[:11], bytes(TAG_SIZE + 3))
    with pytest.raises(DecodeError):  # no room for even a tag and a frame
        decode_wire(b"\x15" + CID + b"\x00" + bytes(TAG_SIZE))


@settings(max_examples=150, deadline=None)
@given(st.integers(0, MAX_VARINT), st.binary(min_size=TAG_SIZE + 1, max_size=40))
def test_data_header_reads_what_decode_packet_reads(packet_number, sealed):
    """The session's per-datagram path (``data_header``) and ``decode_packet``
    agree on every DATA packet, and refuse the same truncated ones."""
    datagram = encode_data_header(CID_INT, packet_number) + sealed
    assert datagram[0] == DATA_FIRST_BYTE
    packet = decode_wire(datagram)
    number, size = data_header(datagram)
    assert (number, datagram[:size], datagram[size:]) == (packet.packet_number, packet.header,
                                                          packet.sealed)
    for cut in range(size + TAG_SIZE + 1):
        with pytest.raises(DecodeError):
            data_header(datagram[:cut])
        with pytest.raises(DecodeError):
            decode_wire(datagram[:cut])


def test_data_packet_bytes():
    packet = Data(CID_INT, 1, (Ack(((0, 1),)), MessageFrame(0, b"hi")))
    assert encode_packet(packet) == (
        b"\x15" + CID + b"\x01"              # header: version 1 / type 5, cid, pn 1
        + b"\x02\x01\x00\x00\x01"            # ACK largest 1, delay 0, 0 extra ranges, first 1
        + b"\x08\x00hi")                     # MESSAGE (last: no length) seq 0
    # A 2-byte packet number.
    assert encode_packet(Data(CID_INT, 300, (Ping(),))) == b"\x15" + CID + b"\x41\x2c\x01"


def test_ack_frame_bytes():
    # Ranges 7-9 and 2-4, delay 800 us = 100 units of 8 us.
    ack = Ack(((7, 9), (2, 4)), delay_us=800)
    assert encode_frame(ack) == bytes.fromhex(
        "02"     # type
        "09"     # largest acknowledged
        "4064"   # delay 100
        "01"     # one more range
        "02"     # first range: 9 - 7
        "01"     # gap: 7 - 4 - 2
        "02")    # range length: 4 - 2


def test_ack_delay_travels_in_units_of_8_us():
    decoded = decode_packet(encode_packet(Data(1, 1, (Ack(((0, 0),), delay_us=1007),))))
    assert decoded.frames[0].delay_us == 1000


def test_other_frame_bytes():
    fragment = MessageFrame(3, b"xyz", offset=1100, total=2000)
    assert encode_frame(fragment) == b"\x0b\x03\x47\xd0\x44\x4c\x03xyz"
    assert encode_frame(fragment, last=True) == b"\x0a\x03\x47\xd0\x44\x4cxyz"
    assert encode_frame(MessageFrame(64, b"ab")) == b"\x09\x40\x40\x02ab"
    assert encode_frame(Unreliable(b"ab")) == b"\x05\x02ab"
    assert encode_frame(Unreliable(b"ab"), last=True) == b"\x04ab"
    assert encode_frame(Ping()) == b"\x01"
    assert encode_frame(Close(2, "bye")) == b"\x03\x02\x03bye"
    assert encode_frame(PathChallenge(b"12345678")) == b"\x0612345678"
    assert encode_frame(PathResponse(b"12345678")) == b"\x0712345678"


def test_lane_message_bytes():
    """Lane 0 is plain MESSAGE, byte for byte as before lanes; another lane
    is LANE_MESSAGE, its number right after the type byte."""
    assert encode_frame(MessageFrame(64, b"ab", lane=0)) == b"\x09\x40\x40\x02ab"
    assert encode_frame(MessageFrame(5, b"ab", lane=1)) == b"\x11\x01\x05\x02ab"
    assert encode_frame(MessageFrame(5, b"ab", lane=1), last=True) == b"\x10\x01\x05ab"
    fragment = MessageFrame(3, b"xyz", offset=1100, total=2000, lane=1)
    assert encode_frame(fragment) == b"\x13\x01\x03\x47\xd0\x44\x4c\x03xyz"


def test_a_lane_message_on_lane_0_is_malformed():
    """Lane 0 has one spelling (MESSAGE), so LANE_MESSAGE never names it."""
    with pytest.raises(DecodeError, match="lane 0"):
        decode_frames(b"\x11\x00\x05\x02ab")


def test_overlong_close_reason_is_cut_to_256_bytes():
    decoded = decode_packet(encode_packet(Data(1, 1, (Close(5, "z" * 1000), Ping()))))
    assert decoded.frames == (Close(5, "z" * 256), Ping())


# -- the decoder against bad input -------------------------------------------------


@settings(FUZZ, max_examples=1500)
@given(st.binary(max_size=1600))
def test_random_bytes_raise_only_decode_error(datagram):
    decodes_or_decode_error(datagram)


@FUZZ
@given(st.integers(0, 15), st.integers(0, 15), st.binary(max_size=300))
def test_random_bodies_after_any_first_byte(version, packet_type, body):
    decodes_or_decode_error(bytes(((version << 4) | packet_type,)) + body)


@FUZZ
@given(st.sampled_from([0x02, 0x03, 0x05, 0x06, 0x07, 0x09, 0x0A, 0x0B]), st.binary(max_size=40))
def test_random_frame_bodies(kind, body):
    decodes_or_decode_error(b"\x15" + CID + b"\x00" + bytes((kind,)) + body)


@settings(max_examples=300, deadline=None)
@given(handshake_packets)
def test_every_truncated_handshake_packet_is_rejected(packet):
    datagram = encode_packet(packet)
    for cut in range(len(datagram)):
        with pytest.raises(DecodeError):
            decode_packet(datagram[:cut])


@settings(max_examples=150, deadline=None)
@given(data_packets())
def test_truncated_data_packets(packet):
    datagram = encode_packet(packet)
    header = 1 + CONNECTION_ID_SIZE + len(encode_varint(packet.packet_number))
    for cut in range(len(datagram)):
        if cut <= header:  # no frame at all left
            with pytest.raises(DecodeError):
                decode_packet(datagram[:cut])
        else:  # may happen to end on a frame boundary
            decodes_or_decode_error(datagram[:cut])


@FUZZ
@given(packets, st.data())
def test_mutated_datagrams_raise_only_decode_error(packet, data):
    datagram = bytearray(encode_packet(packet))
    for _ in range(data.draw(st.integers(1, 4))):
        how = data.draw(st.sampled_from(["flip", "set", "insert", "delete"]))
        position = data.draw(st.integers(0, len(datagram) - 1)) if datagram else 0
        if how == "flip" and datagram:
            datagram[position] ^= 1 << data.draw(st.integers(0, 7))
        elif how == "set" and datagram:
            datagram[position] = data.draw(st.integers(0, 255))
        elif how == "insert":
            datagram[position:position] = data.draw(st.binary(min_size=1, max_size=9))
        elif datagram:
            del datagram[position:position + data.draw(st.integers(1, 9))]
    decoded = decodes_or_decode_error(bytes(datagram))
    if decoded is not None:
        # Whatever the decoder accepts is a packet the encoder can write back.
        encode_packet(decoded)


@pytest.mark.parametrize("version", [v for v in range(16) if v != PROTOCOL_VERSION])
def test_unknown_version_is_rejected(version):
    for packet in (Hello(1), Data(1, 0, (Ping(),)), Reset(1, bytes(16))):
        datagram = bytearray(encode_packet(packet, pad_to=MIN_HELLO_SIZE))
        datagram[0] = (version << 4) | (datagram[0] & 0x0F)
        with pytest.raises(DecodeError, match="version"):
            decode_packet(bytes(datagram))


@pytest.mark.parametrize("packet_type", [0, 7, 8, 9, 10, 11, 12, 13, 14, 15])
def test_unknown_packet_type_is_rejected(packet_type):
    with pytest.raises(DecodeError, match="packet type"):
        decode_packet(bytes(((PROTOCOL_VERSION << 4) | packet_type,)) + bytes(40))


MESSAGE_KINDS = (FrameType.MESSAGE, FrameType.LANE_MESSAGE, FrameType.NEXT_MESSAGE)
"""Each with its LEN and FRAGMENT variants (type + 0x01, + 0x02, + 0x03)."""


@pytest.mark.parametrize("kind", [*(k for k in range(0x0D, 0x100, 7)
                                    if k & ~(LEN_BIT | FRAGMENT_BIT) not in MESSAGE_KINDS),
                                  0x18, 0xFF])
def test_unknown_frame_type_is_rejected(kind):
    datagram = encode_packet(Data(1, 0, (Ping(),))) + bytes((kind,)) + bytes(16)
    with pytest.raises(DecodeError, match="frame type"):
        decode_packet(datagram)


def test_empty_and_frameless_datagrams_are_rejected():
    for datagram in (b"", b"\x15" + CID + b"\x00", b"\x15" + CID + b"\x00" + bytes(50)):
        with pytest.raises(DecodeError):
            decode_packet(datagram)


def test_oversized_datagrams_are_rejected():
    packet = Data(1, 0, (Ping(),))
    assert decode_packet(encode_packet(packet, pad_to=MAX_ACCEPTED_DATAGRAM_SIZE)) == packet
    with pytest.raises(DecodeError, match="oversized"):
        decode_packet(encode_packet(packet, pad_to=MAX_ACCEPTED_DATAGRAM_SIZE + 1))
    with pytest.raises(DecodeError):
        decode_packet(encode_packet(Hello(1), pad_to=64 * 1024))


def test_too_many_ack_ranges_are_rejected():
    def ack_with(n):
        # n single-number ranges: 2n-2, ..., 4, 2, 0 (highest first)
        return Ack(tuple((2 * i, 2 * i) for i in reversed(range(n))))

    at_limit = Data(1, 0, (ack_with(MAX_ACK_RANGES),))
    assert decode_packet(encode_packet(at_limit)) == at_limit
    with pytest.raises(DecodeError, match="ranges"):
        decode_packet(encode_packet(Data(1, 0, (ack_with(MAX_ACK_RANGES + 1),))))
    # A range count claiming 2**62 - 1 ranges costs no work before the rejection.
    with pytest.raises(DecodeError):
        decode_packet(b"\x15" + CID + b"\x00" + b"\x02\x05\x00" + encode_varint(MAX_VARINT) + b"\x00")


def test_ack_ranges_below_zero_are_rejected():
    header = b"\x15" + CID + b"\x00"
    with pytest.raises(DecodeError):  # largest 3, first range 4 long
        decode_packet(header + b"\x02\x03\x00\x00\x04")
    with pytest.raises(DecodeError):  # 5-5, then a gap reaching below 0
        decode_packet(header + b"\x02\x05\x00\x01\x00\x04\x00")


LENGTH_PAST_THE_END = [
    # COOKIE announcing 10 bytes, carrying 3
    b"\x12" + CID + b"\x0aabc",
    # COOKIE and CONNECT with a cookie over the 64-byte cap
    b"\x12" + CID + b"\x41\x00" + bytes(300),
    b"\x13" + CID + b"\x41\x00" + bytes(300),
    # CONNECT whose handshake message is cut short, or over the 512-byte cap
    b"\x13" + CID + b"\x00" + b"\x05\x02",
    b"\x13" + CID + b"\x00" + b"\x42\x01" + bytes(513),
    # UNRELIABLE with length 10, 3 bytes present
    b"\x15" + CID + b"\x00" + b"\x05\x0aabc",
    # UNRELIABLE with length 2**62 - 1 (nothing may be allocated)
    b"\x15" + CID + b"\x00" + b"\x05" + encode_varint(MAX_VARINT) + b"abc",
    # MESSAGE with length 5, 2 bytes present
    b"\x15" + CID + b"\x00" + b"\x09\x00\x05ab",
    # fragment: total 10, offset 8, 3 bytes: past the end of the message
    b"\x15" + CID + b"\x00" + b"\x0a\x00\x0a\x08abc",
    # fragment without data
    b"\x15" + CID + b"\x00" + b"\x0a\x00\x0a\x00",
    # CLOSE with a reason of 20 bytes, 2 present; and one over the 256-byte cap
    b"\x15" + CID + b"\x00" + b"\x03\x00\x14ab",
    b"\x15" + CID + b"\x00" + b"\x03\x00\x41\x01" + bytes(257),
    # PATH_CHALLENGE with 7 of its 8 bytes
    b"\x15" + CID + b"\x00" + b"\x061234567",
    # DATA cut inside the packet number, and HELLO/RESET/ACCEPT cut short
    b"\x15" + CID + b"\x80\x00",
    b"\x11" + CID[:7],
    b"\x16" + CID[:3],
    b"\x14" + CID + b"\x05\x01",
    b"\x16" + CID + bytes(15),
]


@pytest.mark.parametrize("datagram", LENGTH_PAST_THE_END)
def test_lengths_past_the_end_are_rejected(datagram):
    with pytest.raises(DecodeError):
        decode_packet(datagram)


# -- datagram sizes ----------------------------------------------------------------


def test_hello_from_a_client_session_is_padded_to_1200_bytes():
    from twistchat.reliable.session import Session

    client = Session.client(now=0.0, server_address=("192.0.2.1", 9999), rng=random.Random(3))
    [(datagram, address)] = client.datagrams_to_send(0.0)
    assert address == ("192.0.2.1", 9999)
    assert len(datagram) == MIN_HELLO_SIZE == 1200
    assert decode_packet(datagram) == Hello(client.local_cid)


def test_data_packets_built_by_a_session_never_exceed_1200_bytes():
    """A server session sending messages of every awkward size, with a
    worst-case ACK frame to piggyback (high packet numbers, many gaps, the
    peer acking in scattered order), and unreliable messages of the maximum
    size: every datagram it emits opens and is at most 1200 bytes, tag included."""
    from tests.reliable.session_pair import Peer, ack_of, packets, server_session

    rng = random.Random(7)
    server = server_session()
    peer = Peer(server)
    sizes = [0, 1, 63, 64, 1000, 1100, 1101, 1102, 1103, 1150, 1183, 1200, 2205, 9000,
             64 * 1024]
    for size in sizes:
        server.send_message(rng.randbytes(size), 0.0)
    unreliable_max = _largest_unreliable_message()
    client_pn = 2**40  # 8-byte packet numbers in the ACK frame
    now = 0.0
    seen = 0
    for _ in range(400):
        now += 0.01
        server.send_unreliable(b"u" * unreliable_max, now)
        # Scattered packet numbers from the client make the server's ACK big.
        for _ in range(3):
            client_pn += rng.choice((1, 2, 3, 1000, 2**20))
            peer.send(Ping(), now=now, pn=client_pn)
        out = server.datagrams_to_send(now)
        assert all(len(datagram) <= MAX_DATAGRAM_SIZE == 1200 for datagram, _ in out)
        sent = [p.packet_number for p in packets(out) if isinstance(p, Data)]
        seen += len(sent)
        # Acknowledge a random subset, in scattered ranges.
        acked = [pn for pn in sent if rng.random() < 0.7]
        if acked:
            client_pn += 1
            ack = ack_of(*acked)
            peer.send(Ack(ack.ranges[:32]), now=now, pn=client_pn)
        server.handle_timer(now)
    assert seen > 100


def _largest_unreliable_message() -> int:
    """The biggest payload ``send_unreliable`` accepts (it must fit one datagram)."""
    from tests.reliable.session_pair import server_session
    from twistchat.reliable.session import MessageTooLarge

    probe = server_session()
    for size in range(MAX_DATAGRAM_SIZE, 0, -1):
        try:
            probe.send_unreliable(b"x" * size, 0.0)
        except MessageTooLarge:
            continue
        return size
    raise AssertionError("no unreliable message fits")


def test_long_close_reason_is_cut_at_a_character_boundary():
    from twistchat.wire.packets import Close, MAX_CLOSE_REASON_SIZE
    datagram = encode_packet(Data(1, 1, (Close(0, "é" * 200),)))
    (frame,) = decode_packet(datagram).frames
    assert frame.reason == "é" * (MAX_CLOSE_REASON_SIZE // 2)
