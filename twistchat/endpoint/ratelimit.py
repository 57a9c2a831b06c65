"""Token buckets: the one rate limiter, for RESETs here and flood control in the chat layer."""

from __future__ import annotations

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
