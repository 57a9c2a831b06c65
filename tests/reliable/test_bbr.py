"""The model-based congestion controller (bbr), its delivery-rate samples
and the pacer, on made-up sends, acks and times."""

from __future__ import annotations

import pytest

from twistchat.reliable.bbr import MIN_WINDOW_PACKETS, STARTUP_GAIN, Bbr
from twistchat.reliable.delivery_rate import DeliveryRateEstimator, RateSample
from twistchat.reliable.pacing import BURST_DATAGRAMS, INITIAL_BURST_DATAGRAMS, Pacer
from twistchat.reliable.sent_packet import SentPacket

from .session_pair import Peer, packets, send_paced, server_session, with_rtt

MDS = 1200


def _packet(pn: int, sent: float) -> SentPacket:
    return SentPacket(pn, sent, MDS, [], app_limited=False)


def test_a_delivery_rate_sample_is_bytes_over_the_longer_interval():
    estimator = DeliveryRateEstimator(now=0.0)
    packets = [_packet(i, 0.001 * i) for i in range(10)]  # 10 packets over 9 ms
    for i, packet in enumerate(packets):
        estimator.on_packet_sent(packet, bytes_in_flight=i * MDS, now=packet.sent_time,
                                 app_limited=False)
    for packet in packets:  # acked 20 ms later, one per ms
        estimator.on_packet_acked(packet, packet.sent_time + 0.020)
    sample = estimator.take_sample()
    # 12,000 bytes delivered since packet 9 left (its stamp: nothing delivered),
    # over max(9 ms of sending, 29 ms from the first stamp to its ack).
    assert sample.delivered == 0
    assert sample.delivery_rate == pytest.approx(12_000 / 0.029)
    assert not sample.is_app_limited
    assert estimator.take_sample() is None  # one sample per ack


def test_samples_taken_while_the_sender_had_little_to_send_are_app_limited():
    estimator = DeliveryRateEstimator(now=0.0)
    packet = _packet(0, 0.0)
    estimator.on_packet_sent(packet, 0, 0.0, app_limited=True)
    estimator.on_packet_acked(packet, 0.02)
    assert estimator.take_sample().is_app_limited


def _ack_round(cc: Bbr, rate: float, rtt: float, now: float, delivered: int) -> None:
    cc.on_rate_sample(RateSample(rate, delivered, False, rtt), delivered + 1, rtt, 0.0, now)


def test_bandwidth_is_the_max_of_the_last_ten_rounds():
    cc = Bbr(MDS)
    delivered = 0
    for i, rate in enumerate([100_000, 500_000] + [200_000] * 10):
        _ack_round(cc, rate, 0.02, 0.02 * (i + 1), delivered)
        delivered += 10_000
        if i <= 9:
            assert cc.bandwidth == (100_000 if i == 0 else 500_000)
    assert cc.bandwidth == 200_000  # the 500 kB/s round is 10 rounds old


def test_random_loss_does_not_cut_the_window():
    cc = Bbr(MDS)
    delivered = 0
    for i in range(20):  # 1 MB/s at 20 ms: the pipe fills, ProbeBW
        _ack_round(cc, 1_000_000, 0.02, 0.02 * (i + 1), delivered)
        delivered += 20_000
    assert cc.filled_pipe
    window = cc.window
    assert window == pytest.approx(2 * 1_000_000 * 0.02 + 3 * MDS, rel=0.01)
    for _ in range(5):
        cc.on_packet_sent(MDS)
    cc.on_packets_lost([(MDS, 0.4)], now=0.41)  # 10% loss, no queue (RTT at its min)
    _ack_round(cc, 1_000_000, 0.02, 0.42, delivered)
    assert cc.window == window and cc.congestion_events == 0


def test_loss_with_a_grown_rtt_lowers_the_inflight_bound():
    cc = Bbr(MDS)
    delivered = 0
    for i in range(20):
        _ack_round(cc, 1_000_000, 0.02, 0.02 * (i + 1), delivered)
        delivered += 20_000
    window = cc.window
    for _ in range(10):
        cc.on_packet_sent(MDS)
    for _ in range(2):
        cc.on_packet_acked(MDS, 0.4, False)
    cc.on_packets_lost([(MDS, 0.4)] * 3, now=0.41)  # 3 of 5 lost and the RTT up by half: a queue
    cc.on_rate_sample(RateSample(1_000_000, delivered, False, 0.03), delivered + 1, 0.03, 0.0, 0.43)
    assert cc.congestion_events == 1
    assert cc.window < window


def test_startup_paces_at_the_startup_gain_and_the_window_has_a_floor():
    cc = Bbr(MDS)
    assert cc.pacing_rate(0.1) == pytest.approx(STARTUP_GAIN * 12_000 / 0.1)
    _ack_round(cc, 50_000, 0.02, 0.02, 0)
    assert cc.pacing_rate(0.02) == pytest.approx(STARTUP_GAIN * 12_000 / 0.02)  # not 2.9 x 50 kB/s
    assert cc.window >= MIN_WINDOW_PACKETS * MDS


def test_the_pacer_spreads_packets_at_the_rate_after_the_first_flight():
    pacer = Pacer(MDS)
    for _ in range(INITIAL_BURST_DATAGRAMS):  # the first flight goes at once
        assert pacer.may_send(0.0)
        pacer.on_packet_sent(MDS, 0.0, rate=120_000)
    sent_at = []
    now = 0.0
    while len(sent_at) < 5:
        if pacer.may_send(now):
            sent_at.append(now)
            pacer.on_packet_sent(MDS, now, rate=120_000)  # 1200 bytes = 10 ms
        else:
            now = pacer.next_send_time
    # a burst of BURST_DATAGRAMS after the pause (none here: no pause), then 10 ms apart
    gaps = [b - a for a, b in zip(sent_at, sent_at[1:])]
    assert all(gap == pytest.approx(0.010) or gap == 0 for gap in gaps)
    assert sum(1 for gap in gaps if gap == 0) <= BURST_DATAGRAMS


def test_after_a_pause_only_a_small_burst_goes_at_once():
    pacer = Pacer(MDS)
    for _ in range(INITIAL_BURST_DATAGRAMS):
        pacer.on_packet_sent(MDS, 0.0, rate=120_000)
    now, burst = 5.0, 0
    while pacer.may_send(now):
        pacer.on_packet_sent(MDS, now, rate=120_000)
        burst += 1
    assert burst == BURST_DATAGRAMS + 1


def test_a_session_spreads_a_flight_and_wakes_when_the_pacer_allows_the_next():
    server = server_session()
    peer = Peer(server)
    now = with_rtt(server, peer, 0.020)  # one packet of the unpaced first flight
    server.congestion.window = 100_000  # a window that does not bind: only the pacer holds back
    for i in range(40):
        server.send_message(bytes([i]) * 1000, now)  # a packet each
    first = server.datagrams_to_send(now)
    # the rest of the first flight, then what the pacer's credit after a
    # pause (2 x 1200 bytes) lets out: three packets of ~1040 bytes
    assert len(first) == INITIAL_BURST_DATAGRAMS - 1 + BURST_DATAGRAMS + 1
    assert server.datagrams_to_send(now) == []  # the pacer holds the rest back ...
    wake = server.get_timer()
    assert now < wake < now + 0.005  # ... and the session asks to be woken for it
    server.handle_timer(wake)
    assert len(server.datagrams_to_send(wake)) == 1
    sent = len(packets(send_paced(server, wake, within=0.010)))
    rate = server.congestion.pacing_rate(server.rtt.smoothed_rtt)
    assert sent <= BURST_DATAGRAMS + 0.010 * rate / 1000 + 1  # no more than the rate allows
    assert sent >= 2
