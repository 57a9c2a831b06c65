"""Loss detection and recovery (RFC 9002 §6): packet threshold 3, time
threshold 9/8 RTT, probe timeout with backoff. The peer is written by hand,
so each test chooses exactly which packets are acknowledged and when."""

from __future__ import annotations

import pytest

from twistchat.wire.packets import decode_packet

from .session_pair import Peer, send_one, seqs, server_session, with_rtt

RTT = 0.1


def test_a_packet_is_lost_once_three_later_packets_are_acked():
    """At once, long before the time threshold (9/8 RTT) or a PTO could fire:
    this is the packet threshold alone."""
    server = server_session()
    peer = Peer(server)
    now = with_rtt(server, peer, RTT)  # message 0 in packet 0, acked
    pns = [send_one(server, b"message %d" % i, now) for i in (1, 2, 3, 4)]
    peer.ack(pns[1], pns[2], now=now + 0.010)  # two later ones: not yet
    assert server.datagrams_to_send(now + 0.010) == []
    peer.ack(pns[1], pns[2], pns[3], now=now + 0.011)  # the third
    resent = server.datagrams_to_send(now + 0.011)
    assert seqs(resent) == [1]
    assert decode_packet(resent[0][0]).packet_number > pns[3]  # a new packet number
    assert server.stats.packets_lost == 1
    assert server.get_timer() > now + RTT  # nothing was waiting on a timer


def test_with_fewer_than_three_later_acks_loss_waits_for_9_8_rtt():
    server = server_session()
    peer = Peer(server)
    with_rtt(server, peer, RTT)
    first = send_one(server, b"first", 1.0)
    second = send_one(server, b"second", 1.0)
    peer.ack(second, now=1.0 + RTT)
    assert first == second - 1  # one later packet acked: below the packet threshold
    deadline = 1.0 + 9 / 8 * max(server.rtt.latest_rtt, server.rtt.smoothed_rtt)
    assert deadline == pytest.approx(1.0 + 9 / 8 * RTT)
    assert server.get_timer() == pytest.approx(deadline)
    server.handle_timer(deadline - 0.001)
    assert server.datagrams_to_send(deadline - 0.001) == []
    server.handle_timer(deadline)
    assert seqs(server.datagrams_to_send(deadline)) == [1]
    assert server.stats.packets_lost == 1


def test_with_every_ack_lost_probes_go_out_at_pto_doubling_up_to_one_second():
    server = server_session()
    peer = Peer(server)
    with_rtt(server, peer, 0.010)
    pto = server.rtt.probe_timeout(0.025)  # 10 ms + 4 x 5 ms + the peer's 25 ms ack delay
    assert pto == pytest.approx(0.055)
    send_one(server, b"never acked", 1.0)
    sent_at, intervals = 1.0, []
    for _ in range(8):
        now = server.get_timer()
        intervals.append(now - sent_at)
        server.handle_timer(now)
        assert seqs(server.datagrams_to_send(now)) == [1, 1]  # two probes, the oldest data
        sent_at = now
    assert intervals == pytest.approx([pto, 2 * pto, 4 * pto, 8 * pto, 16 * pto, 1.0, 1.0, 1.0])
    assert server.stats.probes_sent == 16


def test_nothing_is_probed_before_the_pto():
    server = server_session()
    peer = Peer(server)
    with_rtt(server, peer, RTT)
    send_one(server, b"waiting", 1.0)
    pto = server.rtt.probe_timeout(0.025)
    assert server.get_timer() == pytest.approx(1.0 + pto)
    server.handle_timer(1.0 + pto - 0.001)
    assert server.datagrams_to_send(1.0 + pto - 0.001) == []


def test_an_ack_resets_the_probe_backoff():
    server = server_session()
    peer = Peer(server)
    with_rtt(server, peer, 0.010)
    pto = server.rtt.probe_timeout(0.025)
    send_one(server, b"a", 1.0)
    for _ in range(3):  # three timeouts: the next one would wait 8 x PTO
        now = server.get_timer()
        server.handle_timer(now)
        server.datagrams_to_send(now)
    peer.ack(1, 2, 3, 4, 5, 6, 7, now=now + 0.010)  # the first packet and every probe
    pn = send_one(server, b"b", now + 0.020)
    assert pn == 8
    assert server.get_timer() == pytest.approx(now + 0.020 + server.rtt.probe_timeout(0.025))
    assert server.rtt.probe_timeout(0.025) < 2 * pto
