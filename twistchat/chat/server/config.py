"""
Server configuration: every limit and timer, with the documented defaults.
The one source for each: a field declared with ``option(...)`` is also a
``twistd twistchat`` option (name, help, check), generated in ``service``.
"""

from __future__ import annotations

import functools
import re
import secrets

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
from twistchat.endpoint.server import Admission
from twistchat.reliable.config import DEFAULT_MAX_SEND_QUEUE, IDLE_TIMEOUT_KEEPALIVES, KEEPALIVE_INTERVAL

DAY = 24 * 3600.0
NODE_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
"""A node name: it is part of Redis keys and channel names (docs/CLUSTER.md)."""
_ADMISSION = Admission()
"""The transport's admission defaults: one source for them."""


def random_node_name() -> str:
    return "node-" + secrets.token_hex(4)


def node_name_problem(value: str) -> str | None:
    return None if NODE_NAME.fullmatch(value) else "must be 1-64 of A-Z a-z 0-9 . _ -"


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
    reap_interval: float = option(
        "sweep", "How often the reaper looks for idle sessions and expired empty rooms, seconds.",
        positive, default=5.0)
    """How often the reaper LoopingCall looks for idle sessions and empty rooms: a
    session is reaped between ``idle_timeout`` and ``idle_timeout + reap_interval``."""
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
    credential_workers: int = option(
        "credential-workers", "Credential checks and hashes (scrypt) run at once; each holds "
        "128 x 8 x scrypt-n bytes (16 MiB by default) while it runs.", positive, default=4)
    credential_queue: int = option(
        "credential-queue", "Credential checks that may wait for a worker; past it a login is "
        "answered RATE_LIMITED at once.", positive, default=512)
    credential_per_source: int = option(
        "credential-per-source", "Credential checks one source (IPv4 address, IPv6 /64) may "
        "have running at once; its others wait their turn.", positive, default=2)
    credential_per_source_waiting: int = option(
        "credential-per-source-waiting", "Credential checks one source may have waiting; past "
        "it a login from there is answered RATE_LIMITED at once.", positive, default=64)
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
    # admission: enforced by the transport endpoint (PROTOCOL.md Part 1 §7.2, §9)
    max_sessions_per_address: int = option(
        "max-sessions-per-address", "Live sessions one source address may hold.", positive,
        default=_ADMISSION.max_sessions_per_address)
    cookie_rate: float = option(
        "cookie-rate", "Handshake cookies per second per source address.", positive,
        default=_ADMISSION.cookies_per_address.per_second)
    cookie_burst: float = option(
        "cookie-burst", "Cookie bucket size per source address.", positive,
        default=_ADMISSION.cookies_per_address.burst)
    cookie_prefix_rate: float = option(
        "cookie-prefix-rate", "Handshake cookies per second per /24 (IPv6 /64).", positive,
        default=_ADMISSION.cookies_per_prefix.per_second)
    cookie_prefix_burst: float = option(
        "cookie-prefix-burst", "Cookie bucket size per /24 (IPv6 /64).", positive,
        default=_ADMISSION.cookies_per_prefix.burst)
    connect_rate: float = option(
        "connect-rate", "New sessions per second per source address.", positive,
        default=_ADMISSION.sessions_per_address.per_second)
    connect_burst: float = option(
        "connect-burst", "New-session bucket size per source address.", positive,
        default=_ADMISSION.sessions_per_address.burst)
    connect_prefix_rate: float = option(
        "connect-prefix-rate", "New sessions per second per /24 (IPv6 /64).", positive,
        default=_ADMISSION.sessions_per_prefix.per_second)
    connect_prefix_burst: float = option(
        "connect-prefix-burst", "New-session bucket size per /24 (IPv6 /64).", positive,
        default=_ADMISSION.sessions_per_prefix.burst)
    connect_total_rate: float = option(
        "connect-total-rate", "New sessions per second from everyone together (each costs a "
        "handshake's CPU).", positive, default=_ADMISSION.sessions_in_total.per_second)
    connect_total_burst: float = option(
        "connect-total-burst", "New-session bucket size for everyone together.", positive,
        default=_ADMISSION.sessions_in_total.burst)
    reassembly_budget: int = option(
        "reassembly-budget", "Bytes all sessions together may hold in reassembly.", positive,
        default=_ADMISSION.reassembly_budget)
    shed_refusal_rate: float = option(
        "shed-refusal-rate", "Refused handshake packets per second a /24 (IPv6 /64) may earn "
        "before its handshakes are shed (dropped unread).", positive,
        default=_ADMISSION.shedding.refusals.per_second)
    shed_refusal_burst: float = option(
        "shed-refusal-burst", "Refused handshake packets a /24 (IPv6 /64) may earn at once "
        "before it is shed.", positive, default=_ADMISSION.shedding.refusals.burst)
    shed_seconds: float = option(
        "shed-seconds", "How long a prefix is shed the first time (doubled, up to 300 s, "
        "each time it floods again soon after).", positive,
        default=_ADMISSION.shedding.first_period)
    max_send_queue: int = option(
        "max-send-queue",
        "SendQ: bytes queued for one client and not yet acknowledged; past it the session "
        "is closed (SEND_QUEUE_EXCEEDED).", positive, default=DEFAULT_MAX_SEND_QUEUE)
    send_queue_budget: int = option(
        "send-queue-budget",
        "Bytes queued for all clients together and not yet acknowledged; past it a client "
        "holding more than an even share is closed (SEND_QUEUE_EXCEEDED).", positive,
        default=_ADMISSION.send_queue_budget)
    # hostile peers, the chat side (PROTOCOL.md C4, C8)
    login_timeout: float = option(
        "login-timeout", "Close a session that has not logged in after this many seconds.",
        positive, default=10.0)
    login_free_failures: int = option(
        "login-free-failures",
        "Failed logins per nick and per source address after which back-off starts.", positive,
        default=3)
    login_backoff: float = option(
        "login-backoff",
        "First back-off after failed logins, seconds; doubles with each further failure "
        "(logins meanwhile: RATE_LIMITED at once).", positive, default=1.0)
    login_backoff_max: float = option(
        "login-backoff-max", "Longest login back-off, seconds.", positive, default=300.0)
    login_failures_per_session: int = option(
        "login-failures-per-session", "Close a session after this many failed logins on it.",
        positive, default=5)
    login_queue: int = option(
        "login-queue",
        "Logins of one nick checked at once (more: RATE_LIMITED at once); sources the nick "
        "logged in from before have a queue of their own.", positive, default=4)
    registration_rate: float = option(
        "registration-rate", "New registrations per minute per source /24 (IPv6 /64).",
        positive, default=1.0)
    registration_burst: float = option(
        "registration-burst", "Registration bucket size per source /24 (IPv6 /64).", positive,
        default=5)
    account_expiry: float = option(
        "account-expiry", "Forget password registrations after this many seconds unused.",
        positive, default=365 * DAY)
    """Password registrations expire after this much absence (password-less
    ones after ``unclaimed_expiry``)."""
    mailbox_per_sender: int = option(
        "mailbox-per-sender", "DMs one sender may have waiting in one mailbox.", positive,
        default=50)
    dm_rate: float = option(
        "dm-rate", "DMs per second one nick may send (token bucket).", positive, default=1.0)
    dm_burst: float = option("dm-burst", "DM bucket size per nick.", positive, default=20)
    max_stored_dms: int = option(
        "max-stored-dms", "DMs stored for all users together (more: STORE_FULL).", positive,
        default=250_000)
    churn_rate: float = option(
        "churn-rate", "Presence, join, part and nick changes per second per client.", positive,
        default=0.5)
    churn_burst: float = option(
        "churn-burst",
        "Churn bucket size per client (default: --max-rooms-per-client + 10, so a client "
        "that reconnects re-joins every room at once).", positive,
        default=attrs.Factory(lambda c: c.max_rooms_per_client + 10, takes_self=True))
    # contacts (issue 14, PROTOCOL.md C11)
    max_contacts: int = option(
        "max-contacts", "Nicks one user may watch (more: TOO_MANY_CONTACTS).", positive,
        default=100)
    # transfers (PROTOCOL.md C14)
    max_transfer_bytes: int = option(
        "max-transfer", "Largest file one transfer may carry, bytes.", positive,
        default=8 * 1024 * 1024)
    transfer_window: int = option(
        "transfer-window",
        "Bytes of one transfer's pieces the server holds at once (sent on, not yet in every "
        "recipient's transport); the sender waits for the answers past it.", positive,
        default=64 * 1024)
    max_transfers_per_user: int = option(
        "max-transfers-per-user",
        "Transfers one user may be sending at once, and receiving at once.", positive, default=4)
    transfer_memory: int = option(
        "transfer-memory",
        "Bytes all transfers together may hold: each reserves its window once per recipient.",
        positive, default=64 * 1024 * 1024)
    transfer_rate: float = option(
        "transfer-rate",
        "Bytes per second one user's transfers may make the server send (pieces x recipients); "
        "pieces past it wait.", positive, default=8 * 1024 * 1024)
    transfer_idle: float = option(
        "transfer-idle", "Fail a transfer in which nothing moved for this many seconds.",
        positive, default=60.0)

    typing_rate: float = option(
        "typing-rate", "Typing notices per second one client may have relayed (more are "
        "dropped and counted).", positive, default=1.0)
    typing_burst: float = option(
        "typing-burst", "Typing notice bucket size per client.", positive, default=3)

    # a network of nodes sharing one Redis (docs/CLUSTER.md)
    node_name: str = option(
        "node-name", "This node's name among the nodes sharing its Redis (default: random).",
        node_name_problem, default=attrs.Factory(random_node_name))
    node_heartbeat: float = option(
        "node-heartbeat", "How often this node tells the others it is alive, seconds; after "
        "three missed, another node takes its users as gone.", positive, default=5.0)
    redis_timeout: float = option(
        "redis-timeout", "Seconds a request may wait for Redis before it is answered "
        "UNAVAILABLE.", positive, default=2.0)

    @functools.cached_property
    def limits(self) -> Limits:
        """Made once: every request is decoded with them (issue 16)."""
        return Limits(max_text_bytes=self.max_text_bytes, max_payload_bytes=self.max_payload_bytes)

    @property
    def max_request_bytes(self) -> int:
        """The largest request these limits allow: the server's transport must take it."""
        return max_request_bytes(self.limits)

    @property
    def max_message_bytes(self) -> int:
        """The largest chat message the server may send (announced at login)."""
        return max_server_message_bytes(self.limits)
