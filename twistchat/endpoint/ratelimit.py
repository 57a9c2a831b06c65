"""Token buckets: the one rate limiter, for RESETs and admission (per source
address and prefix) here and flood control in the chat layer."""

from __future__ import annotations

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


class SourceLimiter:
    """Token buckets per source address and per source prefix; a request
    passes only if both have a token. The tables are bounded: the least
    recently seen sources are forgotten first (a forgotten source starts
    again with a full bucket, which costs an attacker as much as it gains)."""

    def __init__(self, per_address: Rate, per_prefix: Rate, max_sources: int = 65_536) -> None:
        self._rates = (per_address, per_prefix)
        self._tables: tuple[OrderedDict[str, TokenBucket], ...] = (OrderedDict(), OrderedDict())
        self._max_sources = max_sources

    def allow(self, host: str, now: float) -> bool:
        address_table, prefix_table = self._tables
        address_rate, prefix_rate = self._rates
        if not self._bucket(address_table, host, address_rate, now).take(now):
            return False
        return self._bucket(prefix_table, source_prefix(host), prefix_rate, now).take(now)

    def _bucket(self, table: OrderedDict, key: str, rate: Rate, now: float) -> TokenBucket:
        bucket = table.get(key)
        if bucket is None:
            bucket = table[key] = TokenBucket(rate=rate.per_second, burst=rate.burst, updated=now)
            if len(table) > self._max_sources:
                table.popitem(last=False)
        else:
            table.move_to_end(key)
        return bucket
