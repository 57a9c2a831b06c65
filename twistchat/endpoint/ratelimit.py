"""Token buckets: the one rate limiter, for RESETs and admission (per source
address and prefix) here and flood control in the chat layer."""

from __future__ import annotations

import functools
import ipaddress
from collections import OrderedDict

import attrs


@attrs.define
class TokenBucket:
    """Classic token bucket: ``rate`` tokens per second up to ``burst``; each
    request takes one.  Time is passed in, so it runs on any clock."""

    rate: float
    burst: float
    tokens: float = attrs.field(default=None)
    updated: float = 0.0

    def __attrs_post_init__(self) -> None:
        if self.tokens is None:
            self.tokens = float(self.burst)

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if available; False means refuse the request."""
        elapsed = max(0.0, now - self.updated)
        self.updated = now
        self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate)
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


IPV4_PREFIX = 24
IPV6_PREFIX = 64


PREFIXES_REMEMBERED = 65_536
"""Addresses whose prefix is kept worked out: ``ipaddress`` takes ~19 us an
address, and a flood asks for the same few thousands of times a second (the
shed check, every refusal); an attacker with more addresses than this pays
as before, nothing more."""


@functools.lru_cache(maxsize=PREFIXES_REMEMBERED)
def source_prefix(host: str) -> str:
    """The block an address belongs to: IPv4 /24, IPv6 /64 (an IPv4-mapped
    IPv6 address counts as IPv4). One subscriber, or one attacker, usually
    holds a whole block, so limits per address alone are easy to dodge."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    length = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network((address, length), strict=False))


@attrs.frozen
class Rate:
    per_second: float
    burst: float


class KeyedBuckets:
    """One token bucket per key (a source address, a nick), all at one rate.
    The table is bounded: the least recently seen keys are forgotten first
    (a forgotten key starts again with a full bucket, which costs an
    attacker as much as it gains)."""

    def __init__(self, rate: Rate, max_keys: int = 65_536) -> None:
        self.rate = rate
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._max_keys = max_keys

    def take(self, key: str, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` of ``key``'s tokens; False means refuse."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(rate=self.rate.per_second,
                                                      burst=self.rate.burst, updated=now)
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now, cost)

    def __len__(self) -> int:
        return len(self._buckets)


class SourceLimiter:
    """Token buckets per source address and per source prefix; a request
    passes only if both have a token. Both tables are bounded
    (``KeyedBuckets``)."""

    def __init__(self, per_address: Rate, per_prefix: Rate, max_sources: int = 65_536) -> None:
        self._addresses = KeyedBuckets(per_address, max_sources)
        self._prefixes = KeyedBuckets(per_prefix, max_sources)

    def allow(self, host: str, now: float) -> bool:
        if not self._addresses.take(host, now):
            return False
        return self._prefixes.take(source_prefix(host), now)
