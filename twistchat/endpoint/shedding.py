"""
Shedding: a source prefix that keeps sending handshakes past its limits is
ignored for a while, so that a flood costs the server nothing to read.

The cookie and session buckets stop the *answers* to a flood, not the
*reading*: every datagram is still read and parsed in Python, and a flood
from one machine outruns a Python reader, so real users' packets queue
behind it or are dropped by the kernel (issue 12, "HELLO flood"). Once a
prefix has been refused more often than any honest network could be
(``ShedPolicy.refusals``), its handshake packets are shed: dropped in the
kernel by a socket filter (``socket_filter.py``), where it has one, and
before any parsing otherwise. Its sessions' DATA still passes: a NAT'ed
office that shares a prefix with an attacker keeps what it has. As
fail2ban does, the period doubles for a prefix that floods again soon after
release, up to ``max_period``.

Policy only, on any clock: which prefixes, until when.
"""

from __future__ import annotations

from collections import OrderedDict

import attrs

from twistchat.endpoint.ratelimit import KeyedBuckets, Rate, source_prefix

MAX_SHED_PREFIXES = 250
"""Prefixes shed at once: each costs one instruction of the kernel filter,
whose jumps reach at most 255 instructions ahead (classic BPF's 8-bit
offsets)."""


@attrs.frozen
class ShedPolicy:
    refusals: Rate = Rate(per_second=100, burst=1_000)
    """Refused handshake packets a prefix may earn before it is shed; far
    above what the cookie and session buckets refuse an honest network."""
    probation_refusals: Rate = Rate(per_second=10, burst=20)
    """What a prefix released less than ``max_period`` ago may earn before it
    is shed again. Had it the full burst, a flood that outlasts its period
    would be read and refused in full a thousand times at every release,
    and what the socket holds behind those (up to its 4 MiB buffer) would
    queue real users' packets for tens of ms (bench abuse hello_flood:
    probe p99 2.8 -> 49.5 ms with the server's reactor never late by more
    than 6 ms)."""
    first_period: float = 5.0
    max_period: float = 300.0
    max_prefixes: int = MAX_SHED_PREFIXES

    @classmethod
    def never(cls) -> "ShedPolicy":
        return cls(refusals=Rate(per_second=float("inf"), burst=float("inf")))


class Shedder:
    """The shed prefixes and their release times."""

    def __init__(self, policy: ShedPolicy, max_remembered: int = 4_096) -> None:
        self.policy = policy
        self._refusals = KeyedBuckets(policy.refusals)
        self._probation = KeyedBuckets(policy.probation_refusals, max_remembered)
        self._shed: dict[str, tuple[float, float]] = {}
        """Shed prefix -> (release time, period)."""
        self._released: OrderedDict[str, tuple[float, float]] = OrderedDict()
        """Recently released prefix -> (its last period, released at), for the doubling."""
        self._max_remembered = max_remembered
        self.times_shed = 0

    @property
    def prefixes(self) -> frozenset[str]:
        return frozenset(self._shed)

    def __bool__(self) -> bool:
        return bool(self._shed)

    def is_shed(self, host: str) -> bool:
        return bool(self._shed) and source_prefix(host) in self._shed

    def refused(self, host: str, now: float) -> str | None:
        """Count one refused handshake packet from ``host``; its prefix if
        that is shed from now on (the set changed), else None."""
        prefix = source_prefix(host)
        if prefix in self._shed:
            return None
        released = self._released.get(prefix)
        on_probation = released is not None and now - released[1] < self.policy.max_period
        if (self._probation if on_probation else self._refusals).take(prefix, now):
            return None
        if len(self._shed) >= self.policy.max_prefixes:
            return None
        period = self.policy.first_period
        last = self._released.pop(prefix, None)
        if last is not None and now - last[1] < self.policy.max_period:
            period = min(self.policy.max_period, 2 * last[0])
        self._shed[prefix] = (now + period, period)
        self.times_shed += 1
        return prefix

    def period(self, prefix: str) -> float:
        return self._shed[prefix][1]

    def next_release(self) -> float | None:
        return min((until for until, _ in self._shed.values()), default=None)

    def release_due(self, now: float) -> bool:
        """Let go of the prefixes whose period is over; True if any was."""
        due = [prefix for prefix, (until, _) in self._shed.items() if until <= now]
        for prefix in due:
            _, period = self._shed.pop(prefix)
            self._released[prefix] = (period, now)
            if len(self._released) > self._max_remembered:
                self._released.popitem(last=False)
        return bool(due)
