"""MessageReassembler: fragments back into messages, released exactly once and
in order, with memory bounded by the receive window and the message cap."""

from __future__ import annotations

import random
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twistchat.reliable.reassembly import (
    FRAGMENT_ACCOUNTING_OVERHEAD, MESSAGE_ACCOUNTING_OVERHEAD, MessageReassembler,
    ReassemblyError,
)
from twistchat.wire.packets import Data, MessageFrame, decode_plain_data, encode_packet

KIB = 1024


def whole(seq: int, data: bytes) -> MessageFrame:
    return MessageFrame(seq, data)


def split(seq: int, data: bytes, piece: int) -> list[MessageFrame]:
    return [MessageFrame(seq, data[i:i + piece], i, len(data)) for i in range(0, len(data), piece)]


def reassembler(max_message_size: int = 64 * KIB, window: int = 1024 * KIB) -> MessageReassembler:
    return MessageReassembler(max_message_size=max_message_size, window=window)


def test_whole_messages_in_order_are_delivered_at_once():
    r = reassembler()
    assert r.receive(whole(0, b"hello")) == [b"hello"]
    assert r.receive(whole(1, b"")) == [b""]
    assert r.receive(whole(2, b"world")) == [b"world"]
    assert r.lanes[0].next_seq == 3
    assert r.buffered_bytes == 0


def test_out_of_order_messages_wait_for_the_gap():
    r = reassembler()
    assert r.receive(whole(2, b"c")) == []
    assert r.receive(whole(1, b"b")) == []
    assert r.receive(whole(4, b"e")) == []
    assert r.buffered_bytes == 3 * (1 + MESSAGE_ACCOUNTING_OVERHEAD)
    assert r.receive(whole(0, b"a")) == [b"a", b"b", b"c"]
    assert r.receive(whole(3, b"d")) == [b"d", b"e"]
    assert r.buffered_bytes == 0


def test_fragments_in_reverse_order():
    data = bytes(range(256)) * 10
    r = reassembler()
    frames = split(0, data, 300)
    for frame in reversed(frames[1:]):
        assert r.receive(frame) == []
    assert r.receive(frames[0]) == [data]
    assert r.buffered_bytes == 0


def test_duplicates_are_ignored():
    r = reassembler()
    frames = split(0, b"x" * 1000, 400)
    assert r.receive(frames[0]) == []
    assert r.receive(frames[0]) == []  # duplicate fragment
    assert r.duplicates == 1
    # charged once
    assert r.buffered_bytes == MESSAGE_ACCOUNTING_OVERHEAD + 400 + FRAGMENT_ACCOUNTING_OVERHEAD
    assert r.receive(frames[2]) == []
    assert r.receive(frames[1]) == [b"x" * 1000]
    for frame in frames:  # the whole message again, after delivery
        assert r.receive(frame) == []
    assert r.receive(whole(0, b"x" * 1000)) == []
    assert r.duplicates == 1 + 3 + 1
    # A complete message still waiting for an earlier one is a duplicate too.
    assert r.receive(whole(2, b"two")) == []
    assert r.receive(whole(2, b"two")) == []
    assert r.duplicates == 6
    assert r.receive(whole(1, b"one")) == [b"one", b"two"]
    assert r.buffered_bytes == 0


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=3000), min_size=1, max_size=8),
       st.integers(1, 700), st.randoms(use_true_random=False), st.integers(0, 3))
def test_any_arrival_order_and_duplication_delivers_each_message_once_in_order(
        messages, piece, rnd, copies):
    frames = []
    for seq, data in enumerate(messages):
        if len(data) <= piece and rnd.random() < 0.5:
            frames.append(whole(seq, data))
        elif data:
            frames.extend(split(seq, data, piece))
        else:
            frames.append(whole(seq, data))
    frames += [rnd.choice(frames) for _ in range(copies * len(frames) // 2)]
    rnd.shuffle(frames)
    r = reassembler()
    delivered = []
    for frame in frames:
        got = r.receive(frame)
        delivered += got
        # What has come out is always a prefix of what was sent.
        assert delivered == messages[:len(delivered)]
    assert delivered == messages
    assert r.lanes[0].next_seq == len(messages)
    assert r.buffered_bytes == 0


def test_a_4_gib_announcement_is_refused_without_allocating_it():
    r = reassembler(max_message_size=64 * KIB, window=2**40)
    tracemalloc.start()
    try:
        with pytest.raises(ReassemblyError):
            r.receive(MessageFrame(0, b"x" * 1000, 0, 4 * 2**30))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * KIB
    # Straight from the wire: the decoder accepts the announcement (it knows
    # no cap), the reassembler refuses it.
    datagram = encode_packet(Data(1, 0, (MessageFrame(0, b"y" * 100, 4 * 2**30 - 100, 4 * 2**30),)))
    [frame] = decode_plain_data(datagram).frames
    with pytest.raises(ReassemblyError):
        reassembler().receive(frame)


def test_max_message_size():
    cap = 10_000
    r = reassembler(max_message_size=cap)
    data = bytes(cap)
    assert r.receive(whole(0, data)) == [data]
    delivered = []
    for frame in split(1, data, 1000):
        delivered += r.receive(frame)
    assert delivered == [data]
    with pytest.raises(ReassemblyError):
        reassembler(max_message_size=cap).receive(whole(0, bytes(cap + 1)))
    with pytest.raises(ReassemblyError):
        reassembler(max_message_size=cap).receive(MessageFrame(0, b"z", 0, cap + 1))
    # An out-of-order message over the cap is refused too, before buffering.
    with pytest.raises(ReassemblyError):
        reassembler(max_message_size=cap).receive(MessageFrame(5, b"z", 0, cap + 1))


PER_MESSAGE = 100 + MESSAGE_ACCOUNTING_OVERHEAD
"""What a held-back 100-byte message costs of the window."""


def test_window_overrun_by_buffered_messages():
    window = 8 * PER_MESSAGE + PER_MESSAGE // 2  # 8 fit, the 9th overruns
    r = reassembler(window=window)
    for seq in range(1, 9):
        assert r.receive(whole(seq, bytes(100))) == []
    assert r.buffered_bytes == 8 * PER_MESSAGE
    with pytest.raises(ReassemblyError, match="window"):
        r.receive(whole(9, bytes(100)))


def test_the_window_is_freed_by_delivery():
    window = 8 * PER_MESSAGE
    r = reassembler(window=window)
    for seq in range(1, 8):
        assert r.receive(whole(seq, bytes(100))) == []
    assert len(r.receive(whole(0, bytes(100)))) == 8
    assert r.buffered_bytes == 0
    for seq in range(9, 17):  # another 8 held back: fits again
        assert r.receive(whole(seq, bytes(100))) == []
    assert r.buffered_bytes == 8 * PER_MESSAGE
    # In-order traffic never accumulates, however much of it there is.
    r = reassembler(window=window)
    for seq in range(500):
        assert r.receive(whole(seq, bytes(500))) == [bytes(500)]


def test_window_overrun_by_partial_fragments():
    r = reassembler(window=1100)
    assert r.receive(MessageFrame(0, bytes(900), 0, 5000)) == []
    assert r.buffered_bytes == 900 + MESSAGE_ACCOUNTING_OVERHEAD + FRAGMENT_ACCOUNTING_OVERHEAD
    with pytest.raises(ReassemblyError, match="window"):
        r.receive(MessageFrame(0, bytes(100), 900, 5000))


def test_an_assembled_message_costs_what_a_whole_one_does():
    r = reassembler()
    frames = split(1, b"y" * 1000, 100)
    for frame in frames:
        assert r.receive(frame) == []
    assert r.buffered_bytes == 1000 + MESSAGE_ACCOUNTING_OVERHEAD


def test_many_empty_messages_are_bounded_too():
    r = reassembler(window=MESSAGE_ACCOUNTING_OVERHEAD * 10)
    for seq in range(1, 11):
        r.receive(whole(seq, b""))
    with pytest.raises(ReassemblyError):
        r.receive(whole(11, b""))


def test_inconsistent_totals_are_a_violation():
    r = reassembler()
    r.receive(MessageFrame(0, b"abc", 0, 10))
    with pytest.raises(ReassemblyError):
        r.receive(MessageFrame(0, b"def", 3, 11))


def test_overlapping_fragments_are_a_violation():
    r = reassembler()
    r.receive(MessageFrame(0, b"abcdef", 0, 10))
    with pytest.raises(ReassemblyError):
        r.receive(MessageFrame(0, b"ghij", 4, 10))  # bytes 4-5 twice
        r.receive(MessageFrame(0, b"ij", 8, 10))


def test_interleaved_large_messages():
    rnd = random.Random(5)
    messages = [rnd.randbytes(rnd.randrange(2000, 64 * KIB)) for _ in range(5)]
    frames = [f for seq, data in enumerate(messages) for f in split(seq, data, 1102)]
    rnd.shuffle(frames)
    r = reassembler()
    delivered = []
    for frame in frames:
        delivered += r.receive(frame)
    assert delivered == messages


def test_tiny_fragments_cannot_multiply_the_memory_held():
    window = 64 * KIB
    r = reassembler(max_message_size=64 * KIB, window=window)
    tracemalloc.start()
    try:
        with pytest.raises(ReassemblyError):
            for seq in range(1, 10):
                for offset in range(0, 64 * KIB, 2):  # every other byte: never complete
                    r.receive(MessageFrame(seq, b"x", offset, 64 * KIB))
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held <= 4 * window, f"{held} bytes held for a {window}-byte window"


def test_each_lane_is_released_in_its_own_order():
    r = reassembler()
    assert r.receive(MessageFrame(1, b"bulk 1", lane=1)) == []  # waits for bulk 0
    assert r.receive(MessageFrame(0, b"line 0")) == [b"line 0"]  # lane 0 does not
    assert r.receive(MessageFrame(0, b"bulk 0", lane=1)) == [b"bulk 0", b"bulk 1"]
    assert r.receive(MessageFrame(0, b"bulk 0", lane=1)) == []
    assert r.duplicates == 1 and r.buffered_bytes == 0


def test_the_lanes_share_one_window():
    r = reassembler(window=2 * (100 + MESSAGE_ACCOUNTING_OVERHEAD))
    r.receive(MessageFrame(1, bytes(100)))
    r.receive(MessageFrame(1, bytes(100), lane=1))
    with pytest.raises(ReassemblyError, match="window"):
        r.receive(MessageFrame(2, bytes(1), lane=1))


def test_a_lane_past_the_last_is_a_violation():
    with pytest.raises(ReassemblyError, match="lane 2"):
        reassembler().receive(MessageFrame(0, b"x", lane=2))
