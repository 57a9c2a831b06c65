"""The impairment model alone: rates, delay bounds, reproducibility, reordering."""

from __future__ import annotations

import math

import pytest

from twistchat.netem import DROPPED, Impairment

SAMPLES = 10_000
SIGMAS = 4
"""Tolerance for rates: a correct model falls outside it about once in 16,000 runs."""


def rate_tolerance(probability: float) -> float:
    return SIGMAS * math.sqrt(probability * (1 - probability) / SAMPLES)


@pytest.mark.parametrize("loss", [0.01, 0.1, 0.3, 0.5])
def test_loss_fraction_is_near_the_loss_probability(loss: float) -> None:
    impairment = Impairment(loss=loss, seed=7)
    dropped = sum(impairment.decide().dropped for _ in range(SAMPLES))
    assert abs(dropped / SAMPLES - loss) <= rate_tolerance(loss)


@pytest.mark.parametrize("duplicate", [0.01, 0.1, 0.5])
def test_duplicate_fraction_is_near_the_duplicate_probability(duplicate: float) -> None:
    impairment = Impairment(duplicate=duplicate, seed=11)
    duplicated = sum(impairment.decide().extra_copies for _ in range(SAMPLES))
    assert abs(duplicated / SAMPLES - duplicate) <= rate_tolerance(duplicate)


def test_loss_and_duplication_are_independent() -> None:
    impairment = Impairment(loss=0.2, duplicate=0.5, seed=3)
    decisions = [impairment.decide() for _ in range(SAMPLES)]
    survivors = [decision for decision in decisions if not decision.dropped]
    duplicated_survivors = sum(decision.extra_copies for decision in survivors)
    assert abs(duplicated_survivors / len(survivors) - 0.5) <= 2 * rate_tolerance(0.5)


def test_no_impairment_passes_everything_once_without_delay() -> None:
    impairment = Impairment(seed=1)
    assert impairment.is_transparent
    assert all(impairment.decide().delays_ms == (0.0,) for _ in range(1000))


def test_certain_loss_drops_everything() -> None:
    impairment = Impairment(loss=1.0, duplicate=1.0, seed=1)
    assert all(impairment.decide() is DROPPED for _ in range(1000))


def test_certain_duplication_sends_two_copies_of_everything() -> None:
    impairment = Impairment(duplicate=1.0, seed=1)
    assert all(len(impairment.decide().delays_ms) == 2 for _ in range(1000))


def test_delays_stay_within_delay_and_delay_plus_jitter() -> None:
    impairment = Impairment(duplicate=0.3, delay_ms=40.0, jitter_ms=25.0, seed=5)
    delays = [delay for _ in range(SAMPLES) for delay in impairment.decide().delays_ms]
    assert all(40.0 <= delay <= 65.0 for delay in delays)
    # ... and they use the whole range, roughly uniformly.
    assert min(delays) < 40.5 and max(delays) > 64.5
    assert abs(sum(delays) / len(delays) - 52.5) < 0.5


def test_without_jitter_every_copy_waits_exactly_the_delay() -> None:
    impairment = Impairment(duplicate=0.5, delay_ms=30.0, seed=5)
    assert {delay for _ in range(1000) for delay in impairment.decide().delays_ms} == {30.0}


def test_same_seed_gives_same_decisions() -> None:
    settings = dict(loss=0.2, duplicate=0.1, delay_ms=10.0, jitter_ms=30.0)
    first = Impairment(seed=42, **settings)
    second = Impairment(seed=42, **settings)
    assert [first.decide() for _ in range(1000)] == [second.decide() for _ in range(1000)]


def test_different_seeds_give_different_decisions() -> None:
    settings = dict(loss=0.2, duplicate=0.1, delay_ms=10.0, jitter_ms=30.0)
    first = Impairment(seed=1, **settings)
    second = Impairment(seed=2, **settings)
    assert [first.decide() for _ in range(1000)] != [second.decide() for _ in range(1000)]


def test_survivors_keep_their_delays_whatever_the_loss_rate() -> None:
    """Each datagram consumes the same draws, so datagram n's delay depends on the seed and n only."""
    lossless = Impairment(delay_ms=5.0, jitter_ms=50.0, seed=9)
    lossy = Impairment(loss=0.5, delay_ms=5.0, jitter_ms=50.0, seed=9)
    for _ in range(1000):
        without_loss, with_loss = lossless.decide(), lossy.decide()
        if not with_loss.dropped:
            assert with_loss == without_loss


def test_jitter_reorders_datagrams_sent_closer_together_than_the_jitter() -> None:
    send_interval_ms = 1.0
    impairment = Impairment(delay_ms=20.0, jitter_ms=10.0, seed=13)
    arrivals = [
        (number * send_interval_ms + impairment.decide().delays_ms[0], number) for number in range(100)
    ]
    arrival_order = [number for _, number in sorted(arrivals)]
    assert sorted(arrival_order) == list(range(100))
    assert arrival_order != list(range(100))


@pytest.mark.parametrize(
    "settings",
    [
        dict(loss=-0.1),
        dict(loss=1.5),
        dict(loss=float("nan")),
        dict(duplicate=2.0),
        dict(delay_ms=-1.0),
        dict(jitter_ms=-0.5),
        dict(delay_ms=float("inf")),
        dict(loss="0.5"),
    ],
)
def test_invalid_settings_are_refused(settings: dict) -> None:
    with pytest.raises(ValueError):
        Impairment(**settings)
