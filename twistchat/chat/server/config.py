"""Server configuration: every limit and timer, with the documented defaults."""

from __future__ import annotations

import attrs

from twistchat.chat.protocol import DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_MAX_TEXT_BYTES, Limits

DAY = 24 * 3600.0
KEEPALIVE_INTERVAL = 15.0
"""RFC 8085: keepalives no more often than every 15 s."""
IDLE_TIMEOUT_FACTOR = 3
"""A client is dropped after missing three keepalives (seed 000, 001)."""


def _default_idle_timeout(config: ServerConfig) -> float:
    return IDLE_TIMEOUT_FACTOR * config.keepalive_interval


@attrs.frozen
class ServerConfig:
    # liveness
    keepalive_interval: float = KEEPALIVE_INTERVAL
    idle_timeout: float = attrs.field(default=attrs.Factory(_default_idle_timeout, takes_self=True))
    reap_interval: float = 5.0
    """How often the reaper LoopingCall looks for idle sessions and empty rooms."""
    purge_interval: float = 3600.0
    """How often expired password-less registrations are purged from the store."""
    # sizes
    max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    history_size: int = 100
    mailbox_size: int = 1000
    # rooms
    max_members_per_room: int = 100
    max_rooms_per_client: int = 20
    max_rooms_created: int = 5
    room_ttl: float = 300.0
    """An empty room is removed this long after its last member left..."""
    kept_room_ttl: float = 30 * DAY
    """...unless it has operator-set state (topic, bans, key, invite-only)."""
    # identities
    unclaimed_expiry: float = 30 * DAY
    """Password-less registrations expire after this much absence."""
    secret_bytes: int = 24
    scrypt_n: int = 1 << 14
    """scrypt cost: 16 MiB and tens of ms per hash; tests lower it."""
    scrypt_r: int = 8
    scrypt_p: int = 1
    # flood control
    rate: float = 20.0
    """Requests per second refilled into each session's token bucket."""
    burst: int = 40
    max_pending_requests: int = 64
    """Requests queued behind a slow (store-bound) one before RATE_LIMITED."""

    @property
    def limits(self) -> Limits:
        return Limits(max_text_bytes=self.max_text_bytes, max_payload_bytes=self.max_payload_bytes)
