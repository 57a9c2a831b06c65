"""
The impairment model, free of I/O and of clocks: for each datagram it decides
whether to drop it, whether to duplicate it, and how long each copy waits.

Every decision comes from one seeded ``random.Random``, so a run is
reproducible from its seed. Each datagram consumes the same number of draws
whatever its fate, which makes the fate of datagram *n* a function of the
seed and *n* only: changing the loss rate does not reshuffle the delays of the
datagrams that survive.
"""

from __future__ import annotations

import math
import random

import attrs

DRAWS_PER_DATAGRAM = 4
"""Loss, duplication, and a jitter draw for each of the (at most two) copies."""


def _check_probability(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
        raise ValueError(f"{attribute.name} must be a probability in [0, 1], not {value!r}")


def _check_milliseconds(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{attribute.name} must be a finite number of milliseconds >= 0, not {value!r}")


@attrs.frozen
class Decision:
    """The fate of one datagram: one delay (ms) per copy to deliver; none means dropped."""

    delays_ms: tuple[float, ...]

    @property
    def dropped(self) -> bool:
        return not self.delays_ms

    @property
    def extra_copies(self) -> int:
        return max(0, len(self.delays_ms) - 1)


DROPPED = Decision(delays_ms=())


@attrs.define
class Impairment:
    """
    A seeded, netem-like impairment of one direction of traffic.

    ``loss`` and ``duplicate`` are probabilities; each delivered copy waits
    ``delay_ms`` plus a uniform draw in ``[0, jitter_ms)``, so copies that
    draw different jitter overtake one another, which is how jitter reorders.
    A seed of ``None`` seeds from the operating system (not reproducible).
    """

    loss: float = attrs.field(default=0.0, validator=_check_probability)
    duplicate: float = attrs.field(default=0.0, validator=_check_probability)
    delay_ms: float = attrs.field(default=0.0, validator=_check_milliseconds)
    jitter_ms: float = attrs.field(default=0.0, validator=_check_milliseconds)
    seed: int | None = None
    _random: random.Random = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        self._random = random.Random(self.seed)

    @property
    def is_transparent(self) -> bool:
        """True when every datagram passes once, at once (a plain forwarder)."""
        return self.loss == 0 and self.duplicate == 0 and self.delay_ms == 0 and self.jitter_ms == 0

    def decide(self) -> Decision:
        """Decide the fate of the next datagram."""
        loss_draw, duplicate_draw, first_jitter_draw, second_jitter_draw = (
            self._random.random() for _ in range(DRAWS_PER_DATAGRAM)
        )
        if loss_draw < self.loss:
            return DROPPED
        first_delay = self._delay_for(first_jitter_draw)
        if duplicate_draw < self.duplicate:
            return Decision(delays_ms=(first_delay, self._delay_for(second_jitter_draw)))
        return Decision(delays_ms=(first_delay,))

    def _delay_for(self, jitter_draw: float) -> float:
        return self.delay_ms + self.jitter_ms * jitter_draw
