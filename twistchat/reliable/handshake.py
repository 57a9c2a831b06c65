"""
The client's side of the handshake (PROTOCOL.md §Handshake): HELLO, padded
to 1200 bytes so the stateless COOKIE never exceeds what an unvalidated
address sent; then CONNECT with the cookie and our transport parameters,
answered by ACCEPT. Lost packets are sent again on a backed-off timer, two
copies at a time. The server's side is the endpoint's (it checks cookies
before any session exists) plus an ACCEPT sent again when CONNECT repeats.
"""

from __future__ import annotations

from twistchat.reliable.recovery import MAX_PROBE_INTERVAL, MAX_PTO_BACKOFF
from twistchat.reliable.rtt import RttEstimator
from twistchat.wire.packets import MIN_HELLO_SIZE, Connect, Hello, TransportParameters, encode_packet

RETRY_COPIES = 2
"""A handshake packet sent again goes out twice: the first was lost."""


class ClientHandshake:
    def __init__(self, local_cid: int, rtt: RttEstimator) -> None:
        self._local_cid = local_cid
        self._rtt = rtt
        self.send_pending = True
        self.sent_at: float | None = None
        self.tries = 0
        """Sends of the current packet (HELLO, then CONNECT)."""
        self.cookie: bytes | None = None

    def on_cookie(self, cookie: bytes, now: float) -> None:
        self.cookie = cookie
        self._rtt_sample(now)
        self.tries = 0
        self.send_pending = True

    def on_accept(self, now: float) -> None:
        self._rtt_sample(now)
        self.send_pending = False

    def _rtt_sample(self, now: float) -> None:
        if self.tries == 1 and self.sent_at is not None:
            # Karn: only an unambiguous exchange gives an RTT sample.
            self._rtt.update(now - self.sent_at, 0.0, 0.0)

    def retry_time(self) -> float | None:
        """When to send the current packet again, or None if nothing is in flight."""
        if self.sent_at is None or self.send_pending:
            return None
        # Before any RTT sample, retry after the initial RTT (333 ms) rather
        # than a full initial PTO (1 s): a lost HELLO then costs a third of a
        # second, and a spurious retry only a duplicate handshake packet.
        rtt = self._rtt
        base = rtt.probe_timeout(0.0) if rtt.has_sample else rtt.initial_rtt
        backoff = 2 ** min(self.tries - 1, MAX_PTO_BACKOFF)
        return self.sent_at + min(base * backoff, max(MAX_PROBE_INTERVAL, base))

    def datagrams(self, now: float, parameters: TransportParameters) -> list[bytes]:
        if not self.send_pending:
            return []
        self.send_pending = False
        self.sent_at = now
        self.tries += 1
        if self.cookie is None:
            datagram = encode_packet(Hello(self._local_cid), pad_to=MIN_HELLO_SIZE)
        else:
            datagram = encode_packet(Connect(self._local_cid, self.cookie, parameters))
        # A retry means something was lost: on such a path two copies make a
        # 10 s handshake all but certain (30% loss: 0.3^2 per copy pair).
        return [datagram] * (1 if self.tries == 1 else RETRY_COPIES)
