"""What a session acknowledges, and when (RFC 9000 §13.2): ranges, delayed
acks (max_ack_delay), an immediate ack every second ack-eliciting packet
or on a gap."""

from __future__ import annotations

import pytest

from twistchat.reliable.session import SessionConfig
from twistchat.wire.packets import Ack, MessageFrame, Ping

from .session_pair import Peer, frames, server_session


def test_scattered_packet_numbers_are_acked_in_descending_ranges():
    server = server_session()
    peer = Peer(server)
    for pn in (0, 1, 3, 4, 5, 9, 11, 12):
        peer.send(Ping(), pn=pn, now=1.0)
    [ack] = frames(server.datagrams_to_send(1.0), Ack)
    assert ack.ranges == ((11, 12), (9, 9), (3, 5), (0, 1))


def test_reordered_packets_fill_the_ranges_in():
    server = server_session()
    peer = Peer(server)
    for pn in (4, 0, 2, 1):
        peer.send(Ping(), pn=pn, now=1.0)
    [ack] = frames(server.datagrams_to_send(1.0), Ack)
    assert ack.ranges == ((4, 4), (0, 2))


def test_one_packet_is_acked_after_max_ack_delay_not_at_once():
    server = server_session(config=SessionConfig(max_ack_delay=0.025))
    Peer(server).send(Ping(), now=1.0)
    assert server.datagrams_to_send(1.0) == []
    assert server.get_timer() == pytest.approx(1.025)
    server.handle_timer(1.024)
    assert server.datagrams_to_send(1.024) == []
    server.handle_timer(1.025)
    [ack] = frames(server.datagrams_to_send(1.025), Ack)
    assert ack.ranges == ((0, 0),)
    assert ack.delay_us == pytest.approx(25_000, abs=8)  # travels in units of 8 us


def test_every_second_ack_eliciting_packet_is_acked_at_once():
    server = server_session()
    peer = Peer(server)
    peer.send(Ping(), now=1.0)
    assert server.datagrams_to_send(1.0) == []
    peer.send(Ping(), now=1.01)
    [ack] = frames(server.datagrams_to_send(1.01), Ack)
    assert ack.ranges == ((0, 1),)
    peer.send(Ping(), now=1.02)  # the count starts again
    assert server.datagrams_to_send(1.02) == []


def test_a_gap_is_acked_at_once():
    server = server_session()
    peer = Peer(server)
    peer.send(Ping(), now=1.0)
    assert frames(server.datagrams_to_send(1.025), Ack)  # the delayed ack of packet 0
    peer.send(Ping(), pn=2, now=1.1)  # packet 1 missing
    [ack] = frames(server.datagrams_to_send(1.1), Ack)
    assert ack.ranges == ((2, 2), (0, 0))


def test_packets_with_only_acks_are_not_acknowledged():
    server = server_session()
    peer = Peer(server)
    server.send_message(b"hi", 1.0)
    server.datagrams_to_send(1.0)
    peer.ack(0, now=1.1)
    peer.ack(0, now=1.2)
    assert server.datagrams_to_send(2.0) == []


def test_an_ack_rides_on_outgoing_data():
    server = server_session()
    Peer(server).send(Ping(), now=1.0)
    server.send_message(b"reply", 1.0)
    [(datagram, _)] = server.datagrams_to_send(1.0)  # data goes now: the ack goes with it
    ack, message = frames([(datagram, None)])
    assert ack == Ack(((0, 0),), 0) and message == MessageFrame(0, b"reply")
    assert server.datagrams_to_send(1.025) == []  # nothing left to ack at the deadline


def test_duplicate_packets_are_counted_and_acked_once():
    server = server_session()
    peer = Peer(server)
    peer.send(MessageFrame(0, b"once"), pn=0, now=1.0)
    peer.send(MessageFrame(0, b"once"), pn=0, now=1.0)
    assert server.stats.duplicate_packets == 1
    assert server.stats.messages_delivered == 1
