"""Persistent congestion (RFC 9002 §7.6): losses spanning more than three
probe timeouts with nothing acknowledged between them mean the path carried
nothing for that long; the window starts again from its minimum. Losses
with an acknowledgement among them are ordinary loss."""

from __future__ import annotations

from twistchat.reliable.bbr import MIN_WINDOW_PACKETS
from twistchat.reliable.congestion import K_PERSISTENT_CONGESTION_THRESHOLD, minimum_window
from twistchat.reliable.session import SessionConfig

from .session_pair import Peer, send_one, server_session, with_rtt

RTT = 0.1
SPACING = 0.3
"""Between sends: five of them span 1.2 s, more than 3 PTOs of this path."""


def _silence(config: SessionConfig, ack_also_the_middle_one: bool = False):
    server = server_session(config=config)
    peer = Peer(server)
    start = with_rtt(server, peer, RTT)
    assert 4 * SPACING > K_PERSISTENT_CONGESTION_THRESHOLD * server.probe_timeout()
    pns = [send_one(server, b"line %d" % i, start + i * SPACING) for i in range(5)]
    last_sent = start + 4 * SPACING + 0.1
    newest = send_one(server, b"after the silence", last_sent)
    acked = [newest, pns[2]] if ack_also_the_middle_one else [newest]
    peer.ack(*acked, now=last_sent + RTT)
    assert server.stats.packets_lost == (4 if ack_also_the_middle_one else 5)
    return server


def test_losses_spanning_three_ptos_reset_newreno_to_its_minimum_window():
    server = _silence(SessionConfig(redundancy=0, congestion_control="newreno"))
    assert server.stats.persistent_congestion == 1
    assert server.congestion.window == minimum_window(server.congestion.max_datagram_size)


def test_an_acknowledged_packet_among_the_losses_is_no_persistent_congestion():
    server = _silence(SessionConfig(redundancy=0, congestion_control="newreno"),
                      ack_also_the_middle_one=True)
    assert server.stats.persistent_congestion == 0
    assert server.congestion.window > minimum_window(server.congestion.max_datagram_size)


def test_bbr_bounds_its_flight_to_the_minimum_after_persistent_congestion():
    server = _silence(SessionConfig(redundancy=0))
    assert server.stats.persistent_congestion == 1
    floor = MIN_WINDOW_PACKETS * server.congestion.max_datagram_size
    assert server.congestion.inflight_bound == floor
    assert server.congestion.window <= floor
