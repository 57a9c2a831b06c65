"""RTT estimation and the probe timeout, checked against RFC 9002 §5 and §6.2.

Expected values are computed by hand (the literal numbers below) or by the
RFC's pseudo-code (``rfc9002_reference``), never by calling the estimator.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twistchat.reliable.rtt import K_GRANULARITY, K_INITIAL_RTT, RttEstimator

approx = pytest.approx


def test_constants_are_the_rfc_ones():
    assert K_INITIAL_RTT == 0.333     # RFC 9002 §6.2.2
    assert K_GRANULARITY == 0.001     # RFC 9002 §6.1.2


def test_before_any_sample():
    # RFC 9002 §5.3: smoothed_rtt = kInitialRtt, rttvar = kInitialRtt / 2.
    rtt = RttEstimator()
    assert not rtt.has_sample
    assert rtt.smoothed_rtt == approx(0.333)
    assert rtt.rttvar == approx(0.1665)
    # §6.2.2: "a PTO of 1 second" for the first packets: 0.333 + 4 * 0.1665.
    assert rtt.probe_timeout(0.0) == approx(0.999)
    assert rtt.probe_timeout(0.025) == approx(1.024)


def test_configured_initial_rtt():
    rtt = RttEstimator(initial_rtt=0.1)
    assert rtt.smoothed_rtt == approx(0.1)
    assert rtt.rttvar == approx(0.05)
    assert rtt.probe_timeout(0.0) == approx(0.3)


def test_first_sample_ignores_ack_delay():
    rtt = RttEstimator()
    rtt.update(0.1, ack_delay=0.05, max_ack_delay=0.025)
    assert rtt.has_sample
    assert rtt.latest_rtt == approx(0.1)
    assert rtt.min_rtt == approx(0.1)
    assert rtt.smoothed_rtt == approx(0.1)
    assert rtt.rttvar == approx(0.05)
    # PTO = 0.1 + 4 * 0.05 + 0.025
    assert rtt.probe_timeout(0.025) == approx(0.325)


def test_second_sample_subtracts_the_ack_delay():
    rtt = RttEstimator()
    rtt.update(0.1, 0.0, 0.025)
    rtt.update(0.12, ack_delay=0.01, max_ack_delay=0.025)
    # 0.12 >= min_rtt + 0.01, so adjusted = 0.11
    # rttvar = 3/4 * 0.05 + 1/4 * |0.1 - 0.11| = 0.0375 + 0.0025
    # smoothed = 7/8 * 0.1 + 1/8 * 0.11 = 0.0875 + 0.01375
    assert rtt.rttvar == approx(0.04)
    assert rtt.smoothed_rtt == approx(0.10125)
    assert rtt.latest_rtt == approx(0.12)
    assert rtt.min_rtt == approx(0.1)
    assert rtt.probe_timeout(0.025) == approx(0.10125 + 0.16 + 0.025)


def test_ack_delay_is_not_subtracted_below_min_rtt():
    rtt = RttEstimator()
    rtt.update(0.1, 0.0, 0.025)
    rtt.update(0.105, ack_delay=0.01, max_ack_delay=0.025)
    # 0.105 < 0.1 + 0.01: the sample is used unadjusted.
    # rttvar = 0.0375 + 1/4 * 0.005; smoothed = 0.0875 + 0.105 / 8
    assert rtt.rttvar == approx(0.03875)
    assert rtt.smoothed_rtt == approx(0.100625)


def test_ack_delay_is_capped_at_max_ack_delay():
    rtt = RttEstimator()
    rtt.update(0.1, 0.0, 0.025)
    rtt.update(0.2, ack_delay=0.1, max_ack_delay=0.025)
    # only 0.025 of the claimed 0.1 is believed: adjusted = 0.175
    # rttvar = 0.0375 + 1/4 * 0.075; smoothed = 0.0875 + 0.175 / 8
    assert rtt.rttvar == approx(0.05625)
    assert rtt.smoothed_rtt == approx(0.109375)


def test_min_rtt_is_the_smallest_raw_sample():
    rtt = RttEstimator()
    for sample in (0.1, 0.08, 0.3, 0.09):
        rtt.update(sample, ack_delay=0.02, max_ack_delay=0.025)
    # min_rtt ignores ack delay (RFC 9002 §5.2): 0.08, not 0.08 - 0.02.
    assert rtt.min_rtt == approx(0.08)
    assert rtt.latest_rtt == approx(0.09)


def test_probe_timeout_formula():
    # PTO = smoothed_rtt + max(4 * rttvar, kGranularity) + max_ack_delay (§6.2.1)
    rtt = RttEstimator(smoothed_rtt=0.05, rttvar=0.01, has_sample=True)
    assert rtt.probe_timeout(0.025) == approx(0.05 + 0.04 + 0.025)
    assert rtt.probe_timeout(0.0) == approx(0.09)


def test_granularity_is_the_only_floor_under_the_variance_term():
    rtt = RttEstimator(smoothed_rtt=0.02, rttvar=0.0, has_sample=True)
    assert rtt.probe_timeout(0.025) == approx(0.02 + 0.001 + 0.025)
    rtt = RttEstimator(smoothed_rtt=0.02, rttvar=0.0002, has_sample=True)  # 4 * rttvar < 1 ms
    assert rtt.probe_timeout(0.0) == approx(0.021)
    rtt = RttEstimator(smoothed_rtt=0.02, rttvar=0.0003, has_sample=True)  # 4 * rttvar > 1 ms
    assert rtt.probe_timeout(0.0) == approx(0.0212)


def test_a_steady_fast_path_gets_a_fast_timeout():
    """No TCP 200 ms / 1 s minimum: on a steady 20 ms path the timeout
    converges to smoothed + granularity + max_ack_delay."""
    rtt = RttEstimator()
    for _ in range(200):
        rtt.update(0.02, 0.0, 0.025)
    assert rtt.smoothed_rtt == approx(0.02)
    assert rtt.rttvar < 1e-9
    assert rtt.probe_timeout(0.025) == approx(0.046)
    # Even after the first sample alone: 0.02 + 4 * 0.01 + 0.025.
    first = RttEstimator()
    first.update(0.02, 0.0, 0.025)
    assert first.probe_timeout(0.025) == approx(0.085)


def rfc9002_reference(samples, max_ack_delay, initial_rtt=0.333):
    """RFC 9002 §5.2-§5.3 and §6.2.1, transcribed from the RFC text."""
    smoothed_rtt, rttvar, min_rtt = initial_rtt, initial_rtt / 2, None
    for latest_rtt, ack_delay in samples:
        if min_rtt is None:
            min_rtt = latest_rtt
            smoothed_rtt = latest_rtt
            rttvar = latest_rtt / 2
            continue
        min_rtt = min(min_rtt, latest_rtt)
        ack_delay = min(ack_delay, max_ack_delay)
        adjusted_rtt = latest_rtt
        if latest_rtt >= min_rtt + ack_delay:
            adjusted_rtt = latest_rtt - ack_delay
        rttvar = 3 / 4 * rttvar + 1 / 4 * abs(smoothed_rtt - adjusted_rtt)
        smoothed_rtt = 7 / 8 * smoothed_rtt + 1 / 8 * adjusted_rtt
    pto = smoothed_rtt + max(4 * rttvar, 0.001) + max_ack_delay
    return smoothed_rtt, rttvar, min_rtt, pto


seconds = st.floats(0.0001, 5.0, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(seconds, st.floats(0.0, 0.5)), max_size=30),
       st.floats(0.0, 0.1))
def test_matches_rfc_9002_for_any_sample_sequence(samples, max_ack_delay):
    rtt = RttEstimator()
    for latest, ack_delay in samples:
        rtt.update(latest, ack_delay, max_ack_delay)
    smoothed, rttvar, min_rtt, pto = rfc9002_reference(samples, max_ack_delay)
    assert rtt.smoothed_rtt == approx(smoothed, rel=1e-9)
    assert rtt.rttvar == approx(rttvar, rel=1e-9, abs=1e-15)
    assert rtt.probe_timeout(max_ack_delay) == approx(pto, rel=1e-9)
    if samples:
        assert rtt.min_rtt == min(latest for latest, _ in samples)
        assert rtt.latest_rtt == samples[-1][0]
        # Bounds visible without the formulas: ack delay never takes a sample
        # below min_rtt, so the smoothed RTT lies between min_rtt and the
        # largest sample; the timeout exceeds it by the granularity and the
        # peer's ack delay at least.
        largest = max(latest for latest, _ in samples)
        assert rtt.min_rtt * (1 - 1e-9) <= rtt.smoothed_rtt <= largest * (1 + 1e-9)
        assert rtt.probe_timeout(max_ack_delay) >= rtt.smoothed_rtt + 0.001 + max_ack_delay - 1e-12
