"""
Server configuration: every limit and timer, with the documented defaults.
The one source for each: a field declared with ``option(...)`` is also a
``twistd twistchat`` option (name, help, check), generated in ``service``.
"""

from __future__ import annotations

import attrs

from twistchat.chat.protocol import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    DEFAULT_MAX_TEXT_BYTES,
    Limits,
    max_request_bytes,
    max_server_message_bytes,
)
from twistchat.chat.server.options import option, positive, power_of_two
from twistchat.endpoint.endpoint import DEFAULT_MAX_SESSIONS
from twistchat.reliable.config import IDLE_TIMEOUT_KEEPALIVES, KEEPALIVE_INTERVAL

DAY = 24 * 3600.0


def _default_idle_timeout(config: ServerConfig) -> float:
    return IDLE_TIMEOUT_KEEPALIVES * config.keepalive_interval


@attrs.frozen
class ServerConfig:
    # liveness
    keepalive_interval: float = option(
        "keepalive", "Keepalive interval suggested to clients, seconds.", positive,
        default=KEEPALIVE_INTERVAL)
    idle_timeout: float = option(
        "idle-timeout",
        f"Drop a client silent for this long, seconds (default {IDLE_TIMEOUT_KEEPALIVES} x keepalive).",
        default=attrs.Factory(_default_idle_timeout, takes_self=True))
    reap_interval: float = 5.0
    """How often the reaper LoopingCall looks for idle sessions and empty rooms."""
    purge_interval: float = 3600.0
    """How often expired password-less registrations are purged from the store."""
    # sizes
    max_text_bytes: int = option(
        "max-text", "Largest text message, UTF-8 bytes.", positive, default=DEFAULT_MAX_TEXT_BYTES)
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    history_size: int = option(
        "history", "Messages of history kept per room.", positive, default=100)
    mailbox_size: int = option(
        "mailbox-size", "DMs kept per user until its transport acknowledged them.", default=1000)
    idem_ttl: float = DAY
    """Idempotency keys are remembered at least this long (PROTOCOL.md C2)."""
    # rooms
    max_members_per_room: int = option(
        "max-room-members", "Members per room.", positive, default=100)
    max_rooms_per_client: int = option(
        "max-rooms-per-client", "Rooms one client may be in.", positive, default=20)
    max_rooms_created: int = option(
        "max-rooms-created", "Rooms one client may create.", default=5)
    room_ttl: float = option(
        "room-ttl", "Remove an empty room after this many seconds.", positive, default=300.0)
    """An empty room is removed this long after its last member left..."""
    kept_room_ttl: float = option(
        "kept-room-ttl", "...or after this many, if it has a topic, bans, a key or invite-only.",
        default=30 * DAY)
    """...unless it has operator-set state (topic, bans, key, invite-only)."""
    # identities
    unclaimed_expiry: float = option(
        "unclaimed-expiry", "Forget password-less nicks after this many seconds of absence.",
        default=30 * DAY)
    """Password-less registrations expire after this much absence."""
    secret_bytes: int = 24
    scrypt_n: int = option(
        "scrypt-n", "scrypt cost for credentials (a power of two; memory = 128 x 8 x N bytes).",
        power_of_two, default=1 << 14)
    """scrypt cost: 16 MiB and tens of ms per hash; tests lower it."""
    scrypt_r: int = 8
    scrypt_p: int = 1
    # flood control
    rate: float = option(
        "rate", "Requests per second per client (token bucket).", positive, default=20.0)
    """Requests per second refilled into each session's token bucket."""
    burst: int = option("burst", "Token bucket size per client.", positive, default=40)
    max_pending_requests: int = option(
        "max-pending-requests",
        "Requests one client may have waiting behind the one being done (more: RATE_LIMITED).",
        positive, default=64)
    """Requests queued behind a slow (store-bound) one before RATE_LIMITED."""
    max_sessions: int = option(
        "max-sessions", "Concurrent sessions.", positive, default=DEFAULT_MAX_SESSIONS)
    """Enforced by the transport endpoint the service builds."""

    @property
    def limits(self) -> Limits:
        return Limits(max_text_bytes=self.max_text_bytes, max_payload_bytes=self.max_payload_bytes)

    @property
    def max_request_bytes(self) -> int:
        """The largest request these limits allow: the server's transport must take it."""
        return max_request_bytes(self.limits)

    @property
    def max_message_bytes(self) -> int:
        """The largest chat message the server may send (announced at login)."""
        return max_server_message_bytes(self.limits)
