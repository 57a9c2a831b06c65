"""How full a DATA packet gets: the builder sizes each message frame with
its sequence number, and takes back what sending it as NEXT_MESSAGE
(PROTOCOL.md §4) saved, so a packet of small messages holds one more where
the explicit numbers would have crowded the last one out."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from twistchat.reliable.events import MessageReceived
from twistchat.reliable.packet_builder import encode_packet_frames
from twistchat.reliable.sending import Chunk
from twistchat.wire.packets import (
    BULK_LANE, MAX_DATAGRAM_SIZE, Ack, MessageFrame, Ping, encode_frames, frame_size,
)

from .session_pair import Pair, events, frames


def test_the_room_next_message_saves_takes_one_more_message():
    # 103 bytes on lane 1: 108 bytes explicit (type, lane, number, length),
    # so 10 fit in a first packet's 1,174 bytes of frames; 106 as NEXT_MESSAGE.
    data = [bytes([i]) * 103 for i in range(30)]
    assert frame_size(MessageFrame(0, data[0], lane=BULK_LANE)) == 108
    pair = Pair.connected()
    for message in data:
        pair.server.send_message(message, 1.0, lane=BULK_LANE)
    sent = pair.s2c(1.0)
    first = frames(sent[:1])
    assert [type(f) for f in first] == [MessageFrame] * 11
    assert all(len(datagram) <= MAX_DATAGRAM_SIZE for datagram, _ in sent)
    got = [e.data for e in events(pair.client) if isinstance(e, MessageReceived)]
    assert got == data[:len(got)] and len(got) >= 22


def test_an_ack_and_a_run_share_a_packet_and_arrive_in_order():
    """The client owes an ACK (it heard the server's run): its reply packet
    puts the ACK first and its own run after, numbers derived from the run."""
    pair = Pair.connected()
    for i in range(12):
        pair.server.send_message(b"s%d" % i, 1.0)
    pair.s2c(1.0)
    events(pair.client)
    for i in range(12):
        pair.client.send_message(b"c%d" % i, 1.001)
    sent = pair.c2s(1.001)
    sent_frames = frames(sent[:1])
    assert isinstance(sent_frames[0], Ack)
    assert [f.seq for f in sent_frames[1:]] == list(range(12))
    assert [e.data for e in events(pair.server) if isinstance(e, MessageReceived)] \
        == [b"c%d" % i for i in range(12)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**20), st.sampled_from([0, BULK_LANE]),
                          st.booleans(), st.binary(max_size=70)), max_size=12),
       st.booleans(), st.booleans())
def test_a_builder_encodes_its_chunks_as_the_wire_encodes_message_frames(chunks, ack, ping):
    """The builder reads its chunks' fields natively (issue 16); the bytes
    must be the wire encoder's for the same frames, NEXT_MESSAGE included
    (runs of numbers, a change of lane, a frame between two messages)."""
    records, frames = [], []
    if ack:
        records.append(Ack(((3, 9), (0, 1)), 80))
        frames.append(records[-1])
    seq = 0
    for step, lane, fragment, data in chunks:
        seq = seq + 1 if step % 3 else step  # mostly runs, sometimes a jump
        total, offset = (len(data) + 5, 5) if fragment else (None, 0)
        records.append(Chunk(seq, data, offset, total, lane))
        frames.append(MessageFrame(seq, data, offset, total, lane))
        if ping and step % 5 == 0:
            records.append(Ping())
            frames.append(records[-1])
    assert encode_packet_frames(records) == encode_frames(frames)
