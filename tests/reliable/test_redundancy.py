"""Redundancy on a lossy path (PROTOCOL.md §6.5): a recent message is copied
once its acknowledgement is overdue (smoothed RTT + 1.5 x RTT variance
after it was sent), alone if no packet goes out then, and rides again in
the packets after that while unacknowledged; a message merely not yet
acknowledged when the next one leaves is not copied. The peer is written
by hand, so each test chooses which packets are acknowledged and when."""

from __future__ import annotations

import pytest

from twistchat.reliable.packet_builder import REPAIR_RTTVAR_MULTIPLIER
from twistchat.reliable.session import SessionConfig

from .session_pair import Peer, send_one, seqs, server_session, with_rtt

RTT = 0.1


def _lossy_session(config: SessionConfig | None = None):
    """A session with an RTT sample and one packet declared lost (its loss
    estimate above 1%), the retransmission acknowledged: nothing in flight."""
    server = server_session(config=config)
    peer = Peer(server)
    now = with_rtt(server, peer, RTT)  # message 0
    pns = [send_one(server, b"message %d" % i, now) for i in (1, 2, 3, 4)]
    now += RTT
    peer.ack(pns[1], pns[2], pns[3], now=now)  # packet of message 1 lost: packet threshold
    [(resent, _)] = server.datagrams_to_send(now)
    assert server.stats.packets_lost == 1 and server.loss_estimates[0] > 0.01
    now += RTT
    peer.ack(pns[1], pns[2], pns[3], server.stats.packets_sent - 1, now=now)
    assert not server.has_unacked_data()
    return server, peer, now


def _overdue_after(server) -> float:
    return server.rtt.smoothed_rtt + REPAIR_RTTVAR_MULTIPLIER * server.rtt.rttvar


def test_a_message_not_yet_acked_when_the_next_leaves_is_not_copied():
    server, peer, now = _lossy_session()
    send_one(server, b"A", now)  # message 5
    interval = 0.02
    assert interval < _overdue_after(server)
    server.send_message(b"B", now + interval)
    assert seqs(server.datagrams_to_send(now + interval)) == [6]  # B alone: A's ack is not overdue
    assert server.stats.redundant_frames == 0


def test_an_overdue_message_is_copied_alone_at_its_deadline():
    server, peer, now = _lossy_session()
    send_one(server, b"A", now)
    due = now + _overdue_after(server)
    assert server.get_timer() == pytest.approx(due)  # before the probe timeout
    assert due < now + server.probe_timeout()
    server.handle_timer(due)
    copy = server.datagrams_to_send(due)
    assert seqs(copy) == [5]
    assert server.stats.redundant_frames == 1
    assert server.get_timer() > due  # once: no busy loop on a chunk already copied


def test_an_ack_in_time_means_no_copy():
    server, peer, now = _lossy_session()
    pn = send_one(server, b"A", now)
    peer.ack(pn, now=now + RTT)
    due = now + _overdue_after(server)
    server.handle_timer(due)
    assert server.datagrams_to_send(due) == []
    assert server.stats.redundant_frames == 0


def test_a_copied_message_rides_again_in_the_next_packet_up_to_the_redundancy():
    server, peer, now = _lossy_session()
    send_one(server, b"A", now)  # 5
    due = now + _overdue_after(server)
    server.handle_timer(due)
    assert seqs(server.datagrams_to_send(due)) == [5]
    server.send_message(b"B", due + 0.001)  # 6, not overdue itself
    assert seqs(server.datagrams_to_send(due + 0.001)) == [6, 5]
    server.send_message(b"C", due + 0.002)  # 7: A has had its two copies (redundancy 2)
    assert seqs(server.datagrams_to_send(due + 0.002)) == [7]
    assert server.stats.redundant_frames == 2


def test_a_repair_due_within_a_timer_granularity_rides_in_the_packet_going_out():
    server, peer, now = _lossy_session()
    send_one(server, b"A", now)  # 5
    almost = now + _overdue_after(server) - 0.0005
    server.send_message(b"B", almost)
    assert seqs(server.datagrams_to_send(almost)) == [6, 5]


def test_no_copies_without_redundancy():
    server, peer, now = _lossy_session(SessionConfig(redundancy=0))
    send_one(server, b"A", now)
    due = now + _overdue_after(server)
    assert server.get_timer() > due
    server.handle_timer(due)
    assert server.datagrams_to_send(due) == []
    assert server.stats.redundant_frames == 0
