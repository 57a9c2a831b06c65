"""NEXT_MESSAGE (PROTOCOL.md §4): a message frame sent without its lane and
sequence number, which are the packet's previous message frame's, plus one.
The encoder picks it alone, so what matters is that every packet decodes to
the frames it was built from, whatever mix of runs, gaps, lanes, fragments
and other frames it holds, that ``frame_size`` stays an upper bound the
packet builder can rely on, and that a NEXT_MESSAGE with nothing to follow
is a ``DecodeError``."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twistchat.wire.packets import (
    MAX_DATAGRAM_SIZE, TAG_SIZE, Ack, Data, DecodeError, FrameType, MessageFrame, Ping, Unreliable,
    data_header_size, decode_frames, decode_plain_data, derived_numbers_saving, encode_frame,
    encode_frames, encode_packet, frame_size,
)
from twistchat.wire.varint import MAX_VARINT

from .test_packets import acks, frames as any_frames

NEXT = FrameType.NEXT_MESSAGE


def _kinds(frames) -> list[int]:
    """The type byte of each frame as ``encode_frames`` lays them out."""
    kinds, reader_at = [], 0
    encoded = encode_frames(frames)
    previous = None
    for index, frame in enumerate(frames):
        size = frame_size(frame, index == len(frames) - 1, previous)
        kinds.append(encoded[reader_at])
        reader_at += size
        if type(frame) is MessageFrame:
            previous = frame
    assert reader_at == len(encoded)
    return kinds


@st.composite
def message_runs(draw):
    """Frames as a packet builder mixes them: runs of consecutive messages on
    a lane (new data), lone ones from anywhere (retransmissions, redundant
    and probe copies, fragments), and other frames in between."""
    out: list = []
    last_seq = {0: draw(st.integers(0, 2**20)), 1: draw(st.integers(0, 2**20))}
    for _ in range(draw(st.integers(1, 14))):
        choice = draw(st.sampled_from(["next", "next", "next", "jump", "fragment", "other", "edge"]))
        lane = draw(st.sampled_from([0, 1]))
        if choice == "other":
            out.append(draw(st.one_of(st.builds(Ping), acks(max_ranges=3),
                                      st.builds(Unreliable, st.binary(max_size=20)))))
            continue
        if choice == "edge":
            seq = draw(st.sampled_from([0, 63, 64, 16_383, 16_384, 2**30 - 1, 2**30, MAX_VARINT]))
        elif choice == "jump":
            seq = draw(st.integers(0, 2**40))
        else:
            seq = min(last_seq[lane] + 1, MAX_VARINT)  # a repeat at the very top: explicit
        data = draw(st.binary(min_size=1, max_size=120))
        if choice == "fragment":
            offset = draw(st.integers(0, 5000))
            frame = MessageFrame(seq, data, offset, offset + len(data) + draw(st.integers(0, 99)), lane)
        else:
            frame = MessageFrame(seq, data, lane=lane)
        last_seq[lane] = seq
        out.append(frame)
    return out


@settings(max_examples=400, deadline=None)
@given(message_runs())
def test_every_mix_of_runs_and_other_frames_round_trips(frames):
    packet = Data(7, 1000, tuple(frames))
    assert decode_plain_data(encode_packet(packet)) == packet


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(any_frames, message_runs().map(tuple)), min_size=1, max_size=4))
def test_runs_among_any_frames_round_trip(groups):
    frames = tuple(f for group in groups for f in (group if isinstance(group, tuple) else (group,)))
    assert decode_frames(encode_frames(frames)) == frames


@settings(max_examples=300, deadline=None)
@given(message_runs())
def test_sizes_are_exact_with_the_previous_frame_and_an_upper_bound_without(frames):
    """The builder sizes each frame alone (``frame_size(frame)``) and gets
    ``derived_numbers_saving`` back: never more than encoding really saves."""
    _kinds(frames)  # frame_size with ``previous`` walks the encoding exactly
    encoded = len(encode_frames(frames))
    sized_alone = sum(frame_size(frame) for frame in frames)
    assert encoded <= sized_alone - derived_numbers_saving(frames)
    budget = data_header_size(7, 1000) + sized_alone - derived_numbers_saving(frames) + TAG_SIZE
    assert len(encode_packet(Data(7, 1000, tuple(frames)))) + TAG_SIZE <= budget


def test_a_packet_mixing_next_and_explicit_frames():
    """A retransmission and a redundant copy interrupt a run; the run
    resumes with explicit numbers, and each frame follows only the message
    frame right before it (an ACK between them does not count)."""
    frames = (
        MessageFrame(20, b"a"), MessageFrame(21, b"b"),                 # new data
        MessageFrame(3, b"old"),                                        # a retransmission
        MessageFrame(4, b"x", 100, 900),                                # its next message's fragment
        Ack(((5, 9),)),
        MessageFrame(5, b"bulk", lane=1),                               # another lane: explicit
        MessageFrame(6, b"bulk", lane=1),
        MessageFrame(22, b"c"), MessageFrame(23, b"d"),                 # the run again, explicit first
        MessageFrame(23, b"d"),                                         # a copy: same number, explicit
    )
    assert _kinds(frames) == [  # + 0x01: LEN, + 0x02: FRAGMENT
        0x09, NEXT + 1, 0x09, NEXT + 3, FrameType.ACK, 0x11, NEXT + 1, 0x09, NEXT + 1, 0x08]
    assert decode_frames(encode_frames(frames)) == frames
    assert derived_numbers_saving(frames) == 1 + 1 + (1 + 1) + 1


@pytest.mark.parametrize("plaintext", [
    b"\x14hello",                                      # first in the packet
    b"\x15\x05hello" + b"\x01",                        # with LEN, first
    b"\x16\x10\x00hello",                              # a fragment, first
    encode_frame(Ping()) + encode_frame(Ack(((0, 3),))) + b"\x14hi",  # only other frames before it
], ids=["first", "first-len", "first-fragment", "after-other-frames"])
def test_next_message_with_no_message_frame_before_it_is_malformed(plaintext):
    with pytest.raises(DecodeError, match="no message frame before it"):
        decode_frames(plaintext)


def test_next_message_after_the_largest_number_is_malformed():
    plaintext = encode_frame(MessageFrame(MAX_VARINT, b"a")) + b"\x14b"
    with pytest.raises(DecodeError, match="largest sequence number"):
        decode_frames(plaintext)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from([0x14, 0x15, 0x16, 0x17]), st.binary(max_size=40), st.booleans())
def test_random_next_message_bodies_raise_only_decode_error(kind, body, after_message):
    plaintext = (encode_frame(MessageFrame(9, b"m")) if after_message else b"") + bytes((kind,)) + body
    try:
        frames = decode_frames(plaintext)
    except DecodeError:
        return
    assert after_message and frames[1].seq == 10


def test_a_full_bulk_packet_of_100_byte_messages_is_smaller_and_holds_eleven_at_large_numbers():
    """Where the saving shows: 11 messages of 100 bytes in 1,200, even with
    4-byte numbers (from 16,384), where the explicit form fits only 10."""
    room = MAX_DATAGRAM_SIZE - data_header_size(1, 2**20) - TAG_SIZE
    for first in (100, 20_000):
        run = [MessageFrame(first + i, bytes(100)) for i in range(11)]
        explicit = sum(frame_size(frame) for frame in run)
        assert len(encode_frames(run)) <= explicit - derived_numbers_saving(run) <= room
        assert len(encode_frames(run)) <= 1133 + 2
    assert sum(frame_size(MessageFrame(20_000 + i, bytes(100))) for i in range(11)) > room
