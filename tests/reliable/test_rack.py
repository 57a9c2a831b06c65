"""Reordering is not loss (RFC 8985, RFC 9002 §6.1.1-6.1.2): the adaptive
thresholds on their own, then on a sans-IO session whose peer (written by
hand) acknowledges a packet after it was declared lost."""

from __future__ import annotations

import pytest

from twistchat.reliable.rack import (
    EPISODES_BEFORE_NARROWING, K_PACKET_THRESHOLD, K_TIME_THRESHOLD, MAX_PACKET_THRESHOLD,
    MAX_TIME_THRESHOLD, ReorderingThresholds,
)

from twistchat.reliable.session import SessionConfig, State
from twistchat.wire.packets import decode_packet

from .session_pair import Peer, send_one, seqs, server_session, with_rtt

RTT = 0.1


def test_thresholds_start_at_rfc_9002():
    thresholds = ReorderingThresholds()
    assert (thresholds.packet_threshold, thresholds.time_threshold) == (3, 9 / 8)


def test_a_spurious_loss_widens_both_thresholds_to_the_distance_seen():
    thresholds = ReorderingThresholds()
    thresholds.on_spurious_loss(distance=7, lateness=0.010)
    assert thresholds.packet_threshold == 8
    assert thresholds.time_threshold == pytest.approx(9 / 8 + 1 / 4)
    thresholds.on_spurious_loss(distance=2, lateness=0.004)  # a shorter reordering never narrows it
    assert thresholds.packet_threshold == 8
    assert thresholds.time_threshold == pytest.approx(9 / 8 + 2 / 4)
    assert thresholds.allowance == 0.010  # the latest ack after a declaration so far


def test_thresholds_are_bounded():
    thresholds = ReorderingThresholds()
    for _ in range(20):
        thresholds.on_spurious_loss(distance=10 ** 6, lateness=1.0)
    assert thresholds.packet_threshold == MAX_PACKET_THRESHOLD
    assert thresholds.time_threshold == MAX_TIME_THRESHOLD == 2.0


def test_episodes_without_spurious_loss_narrow_back_to_the_start():
    thresholds = ReorderingThresholds()
    thresholds.on_spurious_loss(distance=40, lateness=0.008)
    thresholds.on_spurious_loss(distance=40, lateness=0.008)
    for _ in range(EPISODES_BEFORE_NARROWING - 1):
        thresholds.on_loss_episode()
    assert thresholds.packet_threshold == 41  # not yet
    thresholds.on_loss_episode()
    assert thresholds.packet_threshold == 20
    assert thresholds.time_threshold == pytest.approx(9 / 8 + 1 / 4)
    assert thresholds.allowance == 0.004
    for _ in range(10 * EPISODES_BEFORE_NARROWING):
        thresholds.on_loss_episode()
    assert (thresholds.packet_threshold, thresholds.time_threshold) == \
        (K_PACKET_THRESHOLD, K_TIME_THRESHOLD)


NO_COPIES = SessionConfig(redundancy=0, congestion_control="newreno")
"""Each message in its own packet only; NewReno, whose cut is undone."""


def _reordered_session():
    """Packet 1 (message 1) declared lost by three later acks, then acked."""
    server = server_session(config=NO_COPIES)
    peer = Peer(server)
    now = with_rtt(server, peer, RTT)
    pns = [send_one(server, b"message %d" % i, now) for i in (1, 2, 3, 4)]
    window_before = server.congestion.window
    peer.ack(pns[1], pns[2], pns[3], now=now + 0.010)
    assert server.stats.packets_lost == 1
    assert server.congestion.window < window_before  # the cut
    return server, peer, pns, window_before, now + 0.010


def test_a_late_ack_of_a_lost_packet_is_a_spurious_loss_and_undoes_the_cut():
    server, peer, pns, window_before, now = _reordered_session()
    peer.ack(pns[0], pns[1], pns[2], pns[3], now=now + 0.001)
    assert server.stats.spurious_losses == 1
    assert server.congestion.window == window_before
    assert server.congestion.undone_events == 1
    # message 1 arrived: its retransmission (if not gone yet) is not sent
    assert seqs(server.datagrams_to_send(now + 0.001)) == []
    assert server.pending_bytes() == 0
    # and the same reordering is no longer taken for loss
    assert server._recovery.thresholds.packet_threshold == 4


def test_after_a_spurious_loss_the_same_reordering_is_forgiven():
    server, peer, pns, _, now = _reordered_session()
    peer.ack(*pns, now=now)
    later = [send_one(server, b"later %d" % i, now) for i in range(5)]
    peer.ack(*later[1:4], now=now + 0.010)  # three past the first: not lost now
    assert server.stats.packets_lost == 1
    peer.ack(*later[1:5], now=now + 0.011)  # four past it: lost
    assert server.stats.packets_lost == 2
    assert seqs(server.datagrams_to_send(now + 0.011)) == [5]


def test_a_retransmitted_chunk_acked_twice_is_counted_once():
    server, peer, pns, _, now = _reordered_session()
    resent = server.datagrams_to_send(now)
    assert seqs(resent) == [1]  # the retransmission goes out
    peer.ack(*pns, now=now + 0.002)  # the original was only late
    retransmission = decode_packet(resent[0][0]).packet_number
    peer.ack(*pns, retransmission, now=now + 0.003)  # and the copy arrives too
    assert server.stats.spurious_losses == 1
    assert server.pending_bytes() == 0 and not server.has_unacked_data()
    assert server._recovery.sent == {}


def test_a_real_loss_in_the_episode_keeps_the_cut():
    server = server_session(config=NO_COPIES)
    peer = Peer(server)
    now = with_rtt(server, peer, RTT)
    pns = [send_one(server, b"m%d" % i, now) for i in range(6)]
    window_before = server.congestion.window
    peer.ack(*pns[2:5], now=now + 0.010)  # 0 and 1 lost in one episode
    assert server.stats.packets_lost == 2
    cut = server.congestion.window
    assert cut < window_before
    peer.ack(pns[0], *pns[2:6], now=now + 0.011)  # only 0 was reordered; 1 really lost
    assert server.stats.spurious_losses == 1
    assert server.congestion.window == cut


def test_a_late_ack_alone_can_finish_a_graceful_close():
    """An ACK that acknowledges nothing but a packet declared lost is still
    progress: the last message is acknowledged and the close goes ahead."""
    server, peer, pns, _, now = _reordered_session()
    server.close(now)  # graceful: waits for message 1
    assert server.state is State.ESTABLISHED
    peer.ack(pns[0], now=now + 0.001)
    assert server.state is State.CLOSING
