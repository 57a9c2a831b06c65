"""NewReno congestion control (RFC 9002 §7 and Appendix B), with a bounded window.

Every expected window below is worked out by hand from the RFC rules.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twistchat.reliable.congestion import (
    DEFAULT_MAX_WINDOW, NewReno, initial_window, minimum_window,
)

MDS = 1200


@pytest.mark.parametrize(("mds", "expected"), [
    (1200, 12_000),   # 10 * 1200 < 14720
    (1000, 10_000),
    (1472, 14_720),   # exactly where the two meet
    (1500, 14_720),   # min(15000, 14720)
    (4000, 14_720),
    (9000, 18_000),   # max(14720, 2 * 9000)
    (500, 5_000),
])
def test_initial_window_is_rfc_9002_7_2(mds, expected):
    assert initial_window(mds) == expected
    assert NewReno(mds).window == expected


def test_minimum_window_is_two_datagrams():
    assert minimum_window(1200) == 2400
    assert minimum_window(1500) == 3000


def test_fresh_controller():
    cc = NewReno(MDS)
    assert cc.window == 12_000
    assert cc.ssthresh == float("inf")
    assert cc.bytes_in_flight == 0
    assert cc.available() == 12_000
    assert cc.can_send(12_000)
    assert not cc.can_send(12_001)
    assert cc.max_window == DEFAULT_MAX_WINDOW == 1024 * 1024


def test_available_and_can_send_track_bytes_in_flight():
    cc = NewReno(MDS)
    for _ in range(9):
        cc.on_packet_sent(1200)
    assert cc.bytes_in_flight == 10_800
    assert cc.available() == 1_200
    assert cc.can_send(1200) and not cc.can_send(1201)
    cc.on_packet_sent(1200)
    assert cc.available() == 0 and not cc.can_send(1)
    cc.on_packet_discarded(1200)
    assert cc.bytes_in_flight == 10_800 and cc.available() == 1_200


def test_slow_start_grows_by_the_bytes_acknowledged():
    cc = NewReno(MDS)
    for i in range(10):
        cc.on_packet_sent(1200)
    for i in range(10):
        cc.on_packet_acked(1200, sent_time=float(i), app_limited=False)
        assert cc.window == 12_000 + 1200 * (i + 1)
    assert cc.window == 24_000  # doubled in one round trip
    assert cc.bytes_in_flight == 0
    assert cc.available() == 24_000


def test_loss_halves_the_window_and_sets_ssthresh():
    cc = NewReno(MDS)
    for _ in range(10):
        cc.on_packet_sent(1200)
    cc.on_packets_lost([(1200, 1.0)], now=2.0)
    assert cc.window == 6_000
    assert cc.ssthresh == 6_000
    assert cc.congestion_events == 1
    assert cc.bytes_in_flight == 10_800
    assert cc.available() == 0  # more in flight than the new window: nothing may go out


def test_one_reduction_per_recovery_period():
    cc = NewReno(MDS, window=48_000)
    for _ in range(40):
        cc.on_packet_sent(1200)
    cc.on_packets_lost([(1200, 1.0), (1200, 1.1)], now=2.0)  # one event for both
    assert cc.window == 24_000
    # More losses among packets sent before recovery began: no new reduction.
    cc.on_packets_lost([(1200, 1.5)], now=2.1)
    cc.on_packets_lost([(1200, 2.0)], now=2.5)  # sent exactly at recovery start
    assert cc.window == 24_000
    assert cc.congestion_events == 1
    # A packet sent after recovery began is a new congestion event.
    cc.on_packets_lost([(1200, 2.2)], now=3.0)
    assert cc.window == 12_000
    assert cc.congestion_events == 2
    assert cc.bytes_in_flight == 40 * 1200 - 5 * 1200


def test_no_growth_for_packets_sent_before_recovery():
    cc = NewReno(MDS, window=24_000)
    for _ in range(20):
        cc.on_packet_sent(1200)
    cc.on_packets_lost([(1200, 1.0)], now=2.0)
    assert cc.window == 12_000
    for _ in range(15):  # acks for packets sent before the loss was detected
        cc.on_packet_acked(1200, sent_time=1.5, app_limited=False)
    assert cc.window == 12_000
    assert cc.bytes_in_flight == 4 * 1200


def test_congestion_avoidance_adds_one_datagram_per_window_acknowledged():
    cc = NewReno(MDS, window=24_000)
    cc.on_packets_lost([(0, 1.0)], now=1.0)
    assert cc.window == cc.ssthresh == 12_000
    sent = 2.0  # after recovery began
    # 11 999 bytes acknowledged: not yet a window's worth.
    for size in (1200,) * 9 + (1199,):
        cc.on_packet_sent(size)
        cc.on_packet_acked(size, sent, app_limited=False)
    assert cc.window == 12_000
    cc.on_packet_sent(1)
    cc.on_packet_acked(1, sent, app_limited=False)  # 12 000 bytes: one datagram more
    assert cc.window == 13_200
    for _ in range(11):  # 13 200 more bytes for the next step
        cc.on_packet_sent(1200)
        cc.on_packet_acked(1200, sent, app_limited=False)
    assert cc.window == 14_400


def test_congestion_avoidance_is_much_slower_than_slow_start():
    cc = NewReno(MDS, window=24_000)
    cc.on_packets_lost([(0, 1.0)], now=1.0)
    for _ in range(100):  # 120 000 bytes acknowledged
        cc.on_packet_sent(1200)
        cc.on_packet_acked(1200, 2.0, app_limited=False)
    # Each step needs a whole window of acknowledged bytes: 12000 -> 13200
    # after 12 000, -> 14400 after 25 200, -> 15600 after 39 600, -> 16800
    # after 55 200, -> 18000 after 72 000, -> 19200 after 90 000, -> 20400
    # after 109 200; the next step would need 129 600.
    assert cc.window == 20_400


def test_window_never_below_the_minimum():
    cc = NewReno(MDS)
    expected = [6_000, 3_000, 2_400, 2_400, 2_400]
    for i, window in enumerate(expected):
        cc.on_packets_lost([(0, 10.0 * i + 1)], now=10.0 * i + 2)
        assert cc.window == window
    assert cc.congestion_events == 5


def test_persistent_congestion_collapses_to_the_minimum_window():
    cc = NewReno(MDS, window=100_000)
    cc.on_packets_lost([(1200, 1.0), (1200, 2.0)], now=3.0, persistent=True)
    assert cc.window == 2_400
    # Also when the losses fall in a recovery period already under way.
    cc = NewReno(MDS, window=100_000)
    cc.on_packets_lost([(1200, 1.0)], now=3.0)
    assert cc.window == 50_000
    cc.on_packets_lost([(1200, 2.0), (1200, 2.5)], now=3.5, persistent=True)
    assert cc.window == 2_400


def test_after_persistent_congestion_the_window_grows_again_at_once():
    cc = NewReno(MDS, window=100_000)
    for _ in range(10):
        cc.on_packet_sent(1200)
    cc.on_packets_lost([(1200, 1.0), (1200, 2.0)], now=3.0, persistent=True)
    assert cc.window == 2_400
    cc.on_packet_acked(1200, sent_time=2.5, app_limited=False)  # sent before the declaration
    assert cc.window == 3_600  # slow start: ssthresh is 50 000


def test_window_is_bounded():
    cc = NewReno(MDS, max_window=20_000)
    for _ in range(50):
        cc.on_packet_sent(1200)
        cc.on_packet_acked(1200, 0.0, app_limited=False)
        assert cc.window <= 20_000
    assert cc.window == 20_000
    # In congestion avoidance too.
    cc = NewReno(MDS, max_window=13_000, window=26_000)
    cc.on_packets_lost([(0, 0.0)], now=0.0)
    assert cc.window == 13_000
    for _ in range(100):
        cc.on_packet_sent(1200)
        cc.on_packet_acked(1200, 1.0, app_limited=False)
    assert cc.window == 13_000


def test_app_limited_acks_do_not_grow_the_window():
    # RFC 9002 §7.8: an underused window must not grow.
    cc = NewReno(MDS)
    for _ in range(5):
        cc.on_packet_sent(1200)
    for _ in range(5):
        cc.on_packet_acked(1200, 0.0, app_limited=True)
    assert cc.window == 12_000
    assert cc.bytes_in_flight == 0
    cc = NewReno(MDS, window=24_000)
    cc.on_packets_lost([(0, 0.0)], now=0.0)  # into congestion avoidance
    for _ in range(30):
        cc.on_packet_sent(1200)
        cc.on_packet_acked(1200, 1.0, app_limited=True)
    assert cc.window == 12_000
    # and app-limited acks do not count towards the next avoidance step either
    for _ in range(10):
        cc.on_packet_sent(1200)
        cc.on_packet_acked(1200, 1.0, app_limited=False)
    assert cc.window == 13_200


def test_empty_loss_report_changes_nothing():
    cc = NewReno(MDS)
    cc.on_packets_lost([], now=5.0)
    assert cc.window == 12_000 and cc.congestion_events == 0
    assert cc.recovery_start_time is None


operations = st.lists(st.one_of(
    st.tuples(st.just("send"), st.integers(1, 1200)),
    st.tuples(st.just("ack"), st.booleans()),
    st.tuples(st.just("lose"), st.booleans()),
), max_size=200)


@settings(max_examples=200, deadline=None)
@given(operations, st.integers(3_000, 200_000))
def test_window_stays_within_bounds_and_in_flight_is_exact(ops, max_window):
    cc = NewReno(MDS, max_window=max_window)
    in_flight: list[tuple[int, float]] = []
    now = 0.0
    for op, arg in ops:
        now += 0.01
        if op == "send":
            cc.on_packet_sent(arg)
            in_flight.append((arg, now))
        elif op == "ack" and in_flight:
            size, sent = in_flight.pop(0)
            cc.on_packet_acked(size, sent, app_limited=arg)
        elif op == "lose" and in_flight:
            size, sent = in_flight.pop(0)
            cc.on_packets_lost([(size, sent)], now, persistent=arg)
        assert cc.bytes_in_flight == sum(size for size, _ in in_flight)
        assert 2_400 <= cc.window <= max(max_window, 12_000)
        if cc.window > 12_000:
            assert cc.window <= max_window
        assert cc.available() == max(0, cc.window - cc.bytes_in_flight)
