"""Lanes (PROTOCOL.md §6.7): each lane is delivered exactly once and in
order on its own, so a chat line on lane 0 is never held behind a transfer
on lane 1: not at the receiver, waiting for a lost fragment of it, and not
at the sender, queued behind it."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from twistchat.reliable.events import MessageAcked, MessageReceived, SessionClosed
from twistchat.reliable.errors import CloseCode
from twistchat.wire.packets import BULK_LANE, INTERACTIVE_LANE, MessageFrame

from .session_pair import Pair, Peer, events, frames, packets, send_one, server_session

BULK = bytes(range(256)) * 20
"""5,120 bytes: five fragments."""


def received(session) -> list[bytes]:
    return [e.data for e in events(session) if isinstance(e, MessageReceived)]


def run_until_quiet(pair: Pair, now: float, steps: int = 200, drop=None) -> tuple[float, list[bytes]]:
    """Let both sessions talk (and recover losses) for ``steps`` rounds of
    10 ms; ``drop(datagram_index)`` decides what is lost. What the client got."""
    got: list[bytes] = []
    for _ in range(steps):
        now += 0.01
        for session in (pair.server, pair.client):
            timer = session.get_timer()
            if timer is not None and timer <= now:
                session.handle_timer(now)
        out = pair.server.datagrams_to_send(now)
        for index, (datagram, _) in enumerate(out):
            if drop is None or not drop(index):
                pair.client.receive_datagram(datagram, ("192.0.2.1", 9999), now)
        got += received(pair.client)
        pair.c2s(now, drop={i for i in range(8) if drop is not None and drop(i)})
    return now, got


def test_a_line_on_lane_0_is_delivered_while_an_earlier_bulk_message_misses_a_fragment():
    pair = Pair.connected()
    pair.server.send_message(BULK, 1.0, lane=BULK_LANE)
    sent = pair.s2c(1.0, drop={1})  # one fragment of the bulk message is lost
    assert len(sent) >= 5
    pair.server.send_message(b"line", 1.01)
    pair.s2c(1.01)
    assert received(pair.client) == [b"line"]  # one ordered stream would hold it back
    _, got = run_until_quiet(pair, 1.01)
    assert got == [BULK]  # then the bulk message, once its fragment is resent


def test_on_one_lane_the_same_loss_holds_the_line_back():
    """The control: what lanes remove."""
    pair = Pair.connected()
    pair.server.send_message(BULK, 1.0)
    pair.s2c(1.0, drop={1})
    pair.server.send_message(b"line", 1.01)
    pair.s2c(1.01)
    assert received(pair.client) == []
    _, got = run_until_quiet(pair, 1.01)
    assert got == [BULK, b"line"]


def test_the_sender_puts_lane_0_before_bulk_queued_earlier():
    server = server_session()
    server.send_message(BULK * 4, 1.0, lane=BULK_LANE)
    server.send_message(b"line", 1.0)
    sent = frames(server.datagrams_to_send(1.0), MessageFrame)
    assert (sent[0].lane, sent[0].data) == (INTERACTIVE_LANE, b"line")
    assert {f.lane for f in sent[1:]} == {BULK_LANE}


def test_lost_lane_0_chunks_go_before_lost_bulk_chunks_lost_earlier():
    server = server_session()
    peer = Peer(server)
    server.send_message(BULK, 1.0, lane=BULK_LANE)
    server.datagrams_to_send(1.0)
    server.send_message(b"line", 1.001)
    server.datagrams_to_send(1.001)
    # Both are lost: three later packets acknowledged (RFC 9002's packet threshold).
    later = [send_one(server, b"later", 1.002 + i / 1000) for i in range(3)]
    peer.ack(*later, now=1.05)
    resent = frames(server.datagrams_to_send(1.05), MessageFrame)
    assert len(resent) > 1, "nothing was declared lost and resent"
    assert (resent[0].lane, resent[0].data) == (INTERACTIVE_LANE, b"line")
    assert {f.lane for f in resent[1:]} == {BULK_LANE}


def test_each_lane_numbers_its_messages_from_0():
    server = server_session()
    assert [server.send_message(b"a", 1.0), server.send_message(b"b", 1.0, lane=BULK_LANE),
            server.send_message(b"c", 1.0), server.send_message(b"d", 1.0, lane=BULK_LANE)] \
        == [0, 0, 1, 1]
    sent = frames(server.datagrams_to_send(1.0), MessageFrame)
    assert [(f.lane, f.seq, f.data) for f in sent] == [
        (0, 0, b"a"), (0, 1, b"c"), (1, 0, b"b"), (1, 1, b"d")]


def test_acked_below_is_kept_per_lane_and_tracked_acks_name_their_lane():
    server = server_session()
    peer = Peer(server)
    bulk = server.send_message(b"bulk", 1.0, track=True, lane=BULK_LANE)
    [(bulk_datagram, _)] = server.datagrams_to_send(1.0)
    line = server.send_message(b"line", 1.01, track=True)
    [(line_datagram, _)] = server.datagrams_to_send(1.01)
    (line_pn,) = [p.packet_number for p in packets([(line_datagram, None)])]
    peer.ack(line_pn, now=1.05)  # the bulk packet is still unacknowledged
    assert (bulk, line) == (0, 0)
    assert events(server) == [MessageAcked(line, INTERACTIVE_LANE)]
    assert server.acked_below == server.acked_below_on(INTERACTIVE_LANE) == 1
    assert server.acked_below_on(BULK_LANE) == 0
    (bulk_pn,) = [p.packet_number for p in packets([(bulk_datagram, None)])]
    peer.ack(bulk_pn, line_pn, now=1.06)
    assert events(server) == [MessageAcked(bulk, BULK_LANE)]
    assert server.acked_below_on(BULK_LANE) == 1


def test_a_message_on_a_lane_that_does_not_exist_is_a_protocol_violation():
    server = server_session()
    Peer(server).send(MessageFrame(0, b"x", lane=2), now=1.0)
    closed = [e for e in events(server) if isinstance(e, SessionClosed)]
    assert closed and closed[0].code == CloseCode.PROTOCOL_VIOLATION


def test_unacked_messages_of_every_lane_are_reported_when_the_session_ends():
    server = server_session()
    server.send_message(b"bulk", 1.0, lane=BULK_LANE)
    server.send_message(b"line", 1.0)
    server.close(1.1, CloseCode.NORMAL, graceful=False)
    [closed] = events(server)
    assert closed.unacked == (b"line", b"bulk")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), loss=st.floats(0, 0.3),
       messages=st.lists(st.tuples(st.sampled_from([INTERACTIVE_LANE, BULK_LANE]),
                                   st.sampled_from([0, 30, 1500, 5000])),
                         min_size=1, max_size=25))
@example(seed=24349, loss=0.25, messages=[(INTERACTIVE_LANE, 0)] * 13 + [(INTERACTIVE_LANE, 1500)])
def test_each_lane_is_delivered_exactly_once_and_in_order_under_loss(seed, loss, messages):
    rng = random.Random(seed)
    pair = Pair.connected()
    now = 1.0
    sent: dict[int, list[bytes]] = {INTERACTIVE_LANE: [], BULK_LANE: []}
    got: list[bytes] = []
    for index, (lane, size) in enumerate(messages):
        data = bytes([lane]) + index.to_bytes(2, "big") + bytes(size)
        pair.server.send_message(data, now, lane=lane)
        sent[lane].append(data)
        if rng.random() < 0.3:  # sometimes a flight goes out between sends
            now, arrived = run_until_quiet(pair, now, steps=1, drop=lambda _: rng.random() < loss)
            got += arrived
    # Up to 20 s of virtual time: at 25 % loss both ways an unlucky run of
    # losses backs the probe timeout off for seconds (seed 24349 needed more
    # than 4 s), then 4 s more in which a duplicate would show.
    for _ in range(5):
        now, arrived = run_until_quiet(pair, now, steps=400, drop=lambda _: rng.random() < loss)
        got += arrived
        if len(got) >= len(messages):
            break
    _, arrived = run_until_quiet(pair, now, steps=400, drop=lambda _: rng.random() < loss)
    got += arrived
    for lane, datas in sent.items():
        assert [data for data in got if data[0] == lane] == datas
    assert len(got) == len(messages)
