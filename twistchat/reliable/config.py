"""Every knob of a session, and what a session counts: one source for each default."""

from __future__ import annotations

from typing import Final

import attr
import attrs

from twistchat.reliable.congestion import DEFAULT_MAX_WINDOW
from twistchat.reliable.reassembly import flow_charge
from twistchat.reliable.rtt import K_INITIAL_RTT
from twistchat.wire.packets import MAX_DATAGRAM_SIZE, TransportParameters

MAX_ACK_DELAY_LIMIT_MS: Final = 1 << 14
"""RFC 9000 §18.2: a max_ack_delay of 2^14 ms or more is invalid (it would
stretch every PTO, and so the closing period, without bound)."""

MIN_KEEPALIVE_INTERVAL: Final = 1.0
"""A server cannot make its clients beat faster than this."""

MAX_CLOSING_PERIOD: Final = 2.0
"""Closing and draining last 3 PTOs (RFC 9000 §10.2), but never longer than
this: a session that has ended must not hold a slot for long."""

DEFAULT_MAX_SEND_QUEUE: Final = 4 * 1024 * 1024
"""Bytes queued for a peer and not yet acknowledged, at most (the SendQ)."""

IDLE_TIMEOUT_KEEPALIVES: Final = 3
"""A peer is given up after missing three keepalives (seeds 000 and 001 do
the same): 75 s at the default interval."""

KEEPALIVE_INTERVAL: Final = 25.0
"""How often an idle client keeps its path open (times a jitter in [1, 1.2),
so 25-30 s apart). RFC 8085 §3.5 sets a floor (no more often than every
15 s); RFC 4787 REQ-5 has NATs keep a UDP mapping at least 2 minutes (5
recommended); RFC 9000 §10.1.2 finds that sending every 30 s keeps most
middleboxes' state; WireGuard suggests 25 s from a survey of routers. 15 s
(before issue 16) cost 100,000 idle sessions 40 % more keepalives than this;
PROTOCOL.md §7.1."""


@attr.s(auto_attribs=True, slots=True, eq=False)  # native to mypyc (twistchat/compiled.py)
class SessionConfig:
    """Defaults suit a chat client on the Internet. What the peer must know
    of them travels in the handshake (``transport_parameters``)."""

    max_datagram_size: int = MAX_DATAGRAM_SIZE
    max_message_size: int = 64 * 1024
    receive_window: int = 1024 * 1024
    keepalive_interval: float = KEEPALIVE_INTERVAL
    idle_timeout: float = IDLE_TIMEOUT_KEEPALIVES * KEEPALIVE_INTERVAL
    give_up_timeout: float = 15.0
    handshake_timeout: float = 10.0
    max_ack_delay: float = 0.025
    max_window: int = DEFAULT_MAX_WINDOW
    redundancy: int = 2
    congestion_control: str = attr.ib(default="bbr",
                                      validator=attr.validators.in_(("bbr", "newreno")))
    """``bbr`` (model-based: does not back off on random loss) or ``newreno``."""
    initial_rtt: float = K_INITIAL_RTT
    max_send_queue: int = DEFAULT_MAX_SEND_QUEUE
    initial_receive_window: int | None = None
    """The window announced in the handshake, if smaller than ``receive_window``:
    it grows to that (a WINDOW frame) when the application vouches for the
    peer (``Session.open_receive_window``), so a stranger makes a server hold
    little. It must exceed ``max_message_size`` plus its flow charge."""

    @property
    def announced_receive_window(self) -> int:
        return self.initial_receive_window or self.receive_window

    def transport_parameters(self) -> TransportParameters:
        return TransportParameters(
            max_message_size=self.max_message_size,
            receive_window=self.announced_receive_window,
            idle_timeout_ms=int(self.idle_timeout * 1000),
            keepalive_interval_ms=int(self.keepalive_interval * 1000),
            max_ack_delay_ms=int(self.max_ack_delay * 1000),
        )


def parameter_problem(parameters: TransportParameters) -> str | None:
    """What makes the peer's parameters invalid, or None (RFC 9000 §18.2
    refuses the same way: TRANSPORT_PARAMETER_ERROR)."""
    if parameters.max_ack_delay_ms >= MAX_ACK_DELAY_LIMIT_MS:
        return f"max_ack_delay_ms {parameters.max_ack_delay_ms} is not below {MAX_ACK_DELAY_LIMIT_MS}"
    return None


def effective_parameters(parameters: TransportParameters, config: SessionConfig) -> TransportParameters:
    """The peer's parameters as we honour them: what it may make us queue
    or keep in flight never exceeds what we allow ourselves."""
    keepalive_ms = parameters.keepalive_interval_ms
    if keepalive_ms:
        keepalive_ms = max(keepalive_ms, int(MIN_KEEPALIVE_INTERVAL * 1000))
    return attrs.evolve(parameters,
                        max_message_size=min(parameters.max_message_size, config.max_message_size),
                        receive_window=min(parameters.receive_window, config.receive_window),
                        keepalive_interval_ms=keepalive_ms)


def stranger_window(max_message_size: int, max_datagram_size: int = MAX_DATAGRAM_SIZE) -> int:
    """The smallest receive window that still takes one message of the
    largest size (with its flow charge): what a server offers a peer it does
    not know yet."""
    fragments = -(-max_message_size // (max_datagram_size // 2))
    return flow_charge(max_message_size, fragments) + flow_charge(0, 1)


@attr.s(auto_attribs=True, slots=True, eq=False)  # native to mypyc (twistchat/compiled.py)
class SessionStats:
    """Counted on every packet and message: native to mypyc, since as an
    attrs class each ``stats.x += 1`` was two Python attribute lookups
    (issue 16). Equal when every count is: tests compare snapshots whole."""

    packets_sent: int = 0
    packets_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    messages_sent: int = 0
    messages_delivered: int = 0
    packets_lost: int = 0
    spurious_losses: int = 0
    """Packets declared lost and acknowledged later: reordered, not lost."""
    persistent_congestion: int = 0
    """Times the losses showed persistent congestion (RFC 9002 §7.6)."""
    retransmitted_frames: int = 0
    redundant_frames: int = 0
    duplicate_packets: int = 0
    duplicate_messages: int = 0
    probes_sent: int = 0
    unreliable_dropped: int = 0
    """Unreliable messages dropped unsent, the oldest first, because
    ``MAX_UNRELIABLE_QUEUED`` were waiting for room in the windows."""
    dropped_from_unvalidated_path: int = 0
    unauthenticated: int = 0
    """Packets dropped because they failed authentication (forged, damaged,
    or sealed with another session's key): they changed nothing."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SessionStats) and attr.astuple(self) == attr.astuple(other)

    def __repr__(self) -> str:  # attrs' is lost on a native class: the same text in both builds
        counts = ", ".join(f"{name}={value!r}" for name, value in attr.asdict(self).items())
        return f"SessionStats({counts})"
