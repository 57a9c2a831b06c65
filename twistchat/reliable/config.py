"""Every knob of a session, and what a session counts: one source for each default."""

from __future__ import annotations

import attrs

from twistchat.reliable.congestion import DEFAULT_MAX_WINDOW
from twistchat.reliable.rtt import K_INITIAL_RTT
from twistchat.wire.packets import MAX_DATAGRAM_SIZE, TransportParameters

IDLE_TIMEOUT_KEEPALIVES = 3
"""A peer is given up after missing three keepalives (seeds 000 and 001 do the same)."""

KEEPALIVE_INTERVAL = 15.0
"""RFC 8085 §3.5: keepalives no more often than every 15 s."""


@attrs.define
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
    initial_rtt: float = K_INITIAL_RTT

    def transport_parameters(self) -> TransportParameters:
        return TransportParameters(
            max_message_size=self.max_message_size,
            receive_window=self.receive_window,
            idle_timeout_ms=int(self.idle_timeout * 1000),
            keepalive_interval_ms=int(self.keepalive_interval * 1000),
            max_ack_delay_ms=int(self.max_ack_delay * 1000),
        )


@attrs.define
class SessionStats:
    packets_sent: int = 0
    packets_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    messages_sent: int = 0
    messages_delivered: int = 0
    packets_lost: int = 0
    retransmitted_frames: int = 0
    redundant_frames: int = 0
    duplicate_packets: int = 0
    duplicate_messages: int = 0
    probes_sent: int = 0
    dropped_from_unvalidated_path: int = 0
