"""What a session acknowledges, and when (RFC 9000 §13.2): ranges, delayed
acks (max_ack_delay), an immediate ack every second ack-eliciting packet
or on a gap."""

from __future__ import annotations

import pytest

from twistchat.reliable.acks import ACK_HORIZON, LATE_REPORTS
from twistchat.reliable.session import SessionConfig
from twistchat.wire.packets import Ack, MessageFrame, Ping, Unreliable

from .session_pair import Peer, frames, server_session

LINE = MessageFrame(0, b"a line")
"""An ack-eliciting frame that, unlike a lone PING, may wait for company."""


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
    Peer(server).send(LINE, now=1.0)
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
    peer.send(Unreliable(b"typing"), now=1.0)
    assert server.datagrams_to_send(1.0) == []
    peer.send(Unreliable(b"typing"), now=1.01)
    [ack] = frames(server.datagrams_to_send(1.01), Ack)
    assert ack.ranges == ((0, 1),)
    peer.send(Unreliable(b"typing"), now=1.02)  # the count starts again
    assert server.datagrams_to_send(1.02) == []


def test_a_keepalive_is_acked_at_once():
    """A packet of PING alone (a keepalive or a probe): its sender waits for
    nothing but this ACK, and the server spares a timer per keepalive."""
    server = server_session(config=SessionConfig(max_ack_delay=0.025))
    Peer(server).send(Ping(), now=1.0)
    [ack] = frames(server.datagrams_to_send(1.0), Ack)
    assert ack.ranges == ((0, 0),)
    assert server.get_timer() != pytest.approx(1.025)  # no ack timer left behind


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


def test_acks_report_only_ranges_near_the_largest():
    """RFC 9000 §13.2.3: old gaps the sender settled long ago are not
    repeated in every ACK (on a lossy path they made ACKs ~100 bytes)."""
    server = server_session()
    peer = Peer(server)
    for pn in range(0, 100, 3):  # a gap every third packet: 34 ranges
        peer.send(Ping(), pn=pn, now=1.0)
    [ack] = frames(server.datagrams_to_send(1.0), Ack)
    assert ack.ranges[0] == (99, 99)
    assert all(high >= 99 - ACK_HORIZON for _, high in ack.ranges)
    assert len(ack.ranges) == ACK_HORIZON // 3 + 1


def test_a_packet_arriving_below_the_horizon_is_still_reported():
    """Reordering must show as reordering: a late packet's range is in the
    next LATE_REPORTS ACKs even though it is old."""
    server = server_session()
    peer = Peer(server)
    for pn in [0, *range(10, 60)]:
        peer.send(Ping(), pn=pn, now=1.0)
    server.datagrams_to_send(1.0)
    peer.send(Ping(), pn=5, now=1.1)  # far below the horizon
    reported = []
    for i in range(LATE_REPORTS):
        [ack] = frames(server.datagrams_to_send(1.1 + i), Ack)
        reported.append(ack.ranges)
        peer.send(Ping(), pn=60 + i, now=1.2 + i)
        peer.send(Ping(), pn=80 + i, now=1.2 + i)  # a gap: acked at once
    assert all((5, 5) in ranges and (0, 0) not in ranges for ranges in reported)
    [ack] = frames(server.datagrams_to_send(1.2 + LATE_REPORTS), Ack)
    assert (5, 5) not in ack.ranges
