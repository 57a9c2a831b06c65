"""
The server's endpoint: a stateless cookie answers each HELLO, and only a
CONNECT that returns a valid cookie from the same address gets a session,
so spoofed sources cost a reply no larger than what they sent and no state.

Admission (issue 12, modelled on IRC servers' connection throttles and
QUIC's transport-parameter rules): cookies and new sessions are rate limited
per source address and per /24 (IPv6 /64); an address may hold only so many
live sessions; a CONNECT whose parameters are invalid is refused; sessions
that have ended (closing, draining) no longer count; and when the table is
full, the oldest session the application has not vouched for
(``SessionConnection.mark_trusted``, e.g. once its user logged in) is closed
with SERVER_BUSY to make room, so real users still get in.
"""

from __future__ import annotations

import itertools
import random
import socket
from collections import Counter, deque
from typing import Callable

import attrs
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from twisted.internet import udp
from twisted.internet.interfaces import IReactorTime

from twistchat.endpoint.api import CloseReason, MessageProtocol
from twistchat.endpoint.base import Endpoint
from twistchat.endpoint.fair_queue import FairQueue
from twistchat.endpoint.ratelimit import Rate, SourceLimiter, TokenBucket
from twistchat.endpoint.servicing import _Handle
from twistchat.endpoint.shedding import ShedPolicy, Shedder
from twistchat.endpoint.socket_filter import KernelFilter
from twistchat.endpoint.keys import reset_secret
from twistchat.reliable.cookies import CookieJar
from twistchat.reliable.handshake import BadParameters
from twistchat.reliable.noise import HandshakeError
from twistchat.reliable.protection import reset_token
from twistchat.reliable.errors import CloseCode
from twistchat.reliable.reassembly import ReassemblyBudget
from twistchat.reliable.sending import SendQueueBudget
from twistchat.reliable.session import Session, SessionConfig
from twistchat.wire.packets import (
    MIN_HELLO_SIZE, Connect, Cookie, Hello, PacketType, Reset, encode_packet,
)

DEFAULT_MAX_SESSIONS = 100_000
READ_BYTES_PER_TURN = 16 * 1024
"""What the UDP port reads before the reactor turns (Twisted's default is
256 KiB: thousands of small datagrams, hundreds of requests, before any
reply is flushed or any timer runs). A flood then costs its own latency,
not a stall of everyone else's timers and replies."""
_DATA = PacketType.DATA
"""A module global: on Python 3.11 ``PacketType.DATA`` is a lookup through
``EnumType.__getattr__``'s slot, on every datagram (issue 16)."""
RESETS_PER_SECOND = 100
"""Answers to packets for unknown sessions are rate limited: they are
small (never larger than what provoked them) but free to provoke."""


@attrs.frozen
class Admission:
    """Who may get a cookie and a session, and how many. Defaults let a
    NAT'ed office in and keep one machine from filling the table."""

    max_sessions: int = DEFAULT_MAX_SESSIONS
    max_sessions_per_address: int = 1_000
    cookies_per_address: Rate = Rate(per_second=100, burst=200)
    cookies_per_prefix: Rate = Rate(per_second=500, burst=1_000)
    sessions_per_address: Rate = Rate(per_second=50, burst=200)
    sessions_per_prefix: Rate = Rate(per_second=250, burst=1_000)
    sessions_in_total: Rate = Rate(per_second=1_000, burst=5_000)
    """New sessions from everyone together: each costs a Noise handshake
    (two X25519 operations, ~0.3 ms), so this bounds the CPU floods from many
    prefixes can take, as a SYN backlog does."""
    reassembly_budget: int = 256 * 1024 * 1024
    """Bytes all sessions together may hold in reassembly (each also has its window)."""
    send_queue_budget: int = 256 * 1024 * 1024
    """Bytes all sessions together may have queued and unacknowledged (each
    also has its own SendQ, ``SessionConfig.max_send_queue``)."""
    shedding: ShedPolicy = ShedPolicy()
    """When a prefix that keeps being refused is ignored for a while (``shedding.py``)."""
    handshakes_per_turn: int = 2
    """Noise handshakes (two X25519 operations, ~0.3 ms each) done in one
    reactor turn; more wait for the next turns, so a burst of CONNECTs
    cannot stall every other session for the whole burst. Turns are many
    (thousands a second when busy), so two a turn still take more than a
    core can do; eight let the reassembly attack of ``bench abuse`` make
    the reactor 20-69 ms late, two 5-12 ms."""
    max_queued_handshakes: int = 1_024
    stranger_datagrams_per_turn: int = 4
    """Datagrams of sessions not yet vouched for (not logged in) handled in
    one reactor turn; more wait their turn, one source address at a time.
    Each can cost a request, a reply and its sealing (~0.2 ms): 300 wrong
    logins sent at once must not stall every logged-in user's lines (with
    the two handshakes above, measured together)."""
    max_queued_stranger_datagrams: int = 1_024
    max_queued_stranger_datagrams_per_source: int = 64
    """Past these, a stranger's datagram is dropped (and counted): its
    sender retransmits, at the pace of its own loss recovery."""

    @classmethod
    def for_load_generators(cls, **changes) -> "Admission":
        """No rate or per-address limits: for benchmarks and tests that open
        thousands of sessions from one address on purpose."""
        unlimited = Rate(per_second=float("inf"), burst=float("inf"))
        return cls(max_sessions_per_address=1 << 62, cookies_per_address=unlimited,
                   cookies_per_prefix=unlimited, sessions_per_address=unlimited,
                   sessions_per_prefix=unlimited, sessions_in_total=unlimited,
                   shedding=ShedPolicy.never(), handshakes_per_turn=1 << 62,
                   stranger_datagrams_per_turn=1 << 62, **changes)


def raw_sendto(transport) -> Callable[[bytes, tuple], object] | None:
    """The socket's own ``sendto`` behind a Twisted UDP port that is not
    connected, else None (the simulator, other transports: their ``write``).

    ``udp.Port.write`` checks every address it is given (``isIPAddress``
    twice and ``isIPv6Address``: ~15,000 instructions, six times the
    ``sendto`` itself, callgrind); a server only ever writes to addresses
    ``recvfrom`` gave it, so the check is skipped. Its errors are
    ``OSError``s, which ``Endpoint._write`` counts (Python retries EINTR)."""
    sock = getattr(transport, "socket", None)
    if isinstance(transport, udp.Port) and isinstance(sock, socket.socket) \
            and not transport._connectedAddr:
        return sock.sendto
    return None


class ServerEndpoint(Endpoint):
    """Accepts sessions: stateless cookie first, state only for proven addresses."""

    def __init__(self, reactor: IReactorTime, protocol_factory: Callable[[tuple], MessageProtocol],
                 config: SessionConfig | None = None, rng: random.Random | None = None,
                 cookie_jar: CookieJar | None = None,
                 max_sessions: int | None = None, admission: Admission | None = None,
                 static_key: X25519PrivateKey | None = None) -> None:
        """``static_key``: the server's long-term key (``keys.load_or_create``);
        a fresh one if none is given (tests, throwaway servers)."""
        super().__init__(reactor, config, rng)
        self.static_key = static_key or X25519PrivateKey.generate()
        self._reset_secret = reset_secret(self.static_key)
        self.protocol_factory = protocol_factory
        self.cookies = cookie_jar or CookieJar(secret=self.rng.getrandbits(256).to_bytes(32, "big"))
        admission = admission or Admission()
        if max_sessions is not None:
            admission = attrs.evolve(admission, max_sessions=max_sessions)
        self.admission = admission
        self._cookie_limiter = SourceLimiter(admission.cookies_per_address, admission.cookies_per_prefix)
        self._session_limiter = SourceLimiter(admission.sessions_per_address,
                                              admission.sessions_per_prefix)
        self.reassembly_budget = ReassemblyBudget(admission.reassembly_budget)
        self.send_budget = SendQueueBudget(admission.send_queue_budget)
        self._live: dict[_Handle, None] = {}
        """Sessions not yet ended, oldest first."""
        self._untrusted = self._servicer.untrusted
        """Live sessions the application has not vouched for, oldest first: evicted first
        (and their datagrams rationed, ``_deliver_for_stranger``)."""
        self._per_address: Counter[str] = Counter()
        self._by_client: dict[tuple, _Handle] = {}
        self._used_client_cids: set[int] = set()
        """Client connection ids that opened a session, until no cookie of
        their CONNECT's could still be valid (PROTOCOL.md §5: never again)."""
        self._client_cid_expiries: deque[tuple[float, int]] = deque()
        """When each of them may be forgotten, oldest first: forgetting costs
        what expired, not a walk of all (a burst of logins kept ~7,000, read
        at every CONNECT)."""
        self._resets = TokenBucket(rate=RESETS_PER_SECOND, burst=RESETS_PER_SECOND)
        self._sessions_total = TokenBucket(rate=admission.sessions_in_total.per_second,
                                           burst=admission.sessions_in_total.burst)
        self._shedder = Shedder(admission.shedding)
        self._handshakes_this_turn = 0
        self._queued_handshakes: FairQueue[tuple, Connect] = FairQueue(admission.max_queued_handshakes)
        """CONNECTs with a valid cookie waiting for a later turn, each source in turn."""
        self._strangers_this_turn = 0
        self._queued_strangers: FairQueue[int, tuple] = FairQueue(
            admission.max_queued_stranger_datagrams, admission.max_queued_stranger_datagrams_per_source)
        """(handle, datagram, address) of untrusted sessions waiting for a later turn."""
        self._stranger_keys = itertools.count()
        self._next_turn = None
        self._kernel_filter = KernelFilter(None)
        self._release_call = None

    def startProtocol(self) -> None:
        self._kernel_filter = KernelFilter.for_transport(self.transport)
        if hasattr(self.transport, "maxThroughput"):  # a Twisted UDP port
            self.transport.maxThroughput = READ_BYTES_PER_TURN
        self._sendto = raw_sendto(self.transport)

    def _route(self, packet_type: PacketType, cid: int, datagram: bytes, address: tuple) -> None:
        if packet_type is _DATA:
            # ``Servicer.receive`` delivered it if it was a vouched-for
            # session's: what is left is a stranger's, or nobody's.
            handle = self.sessions.get(cid)
            if handle is None:
                if self._unknown_connection(datagram):
                    self._maybe_reset(cid, address)
                return
            self._deliver_for_stranger(handle, datagram, address)
        elif self._shedder and self._shedder.is_shed(address[0]):
            self.counters.shed += 1  # what the kernel filter did not drop
        elif packet_type is PacketType.HELLO:
            packet = self._decode(datagram)
            if packet is not None:
                self._answer_hello(packet, datagram, address)
        elif packet_type is PacketType.CONNECT:
            existing = self._by_client.get((address, cid))
            if existing is not None:
                self._deliver(existing, datagram, address)
                return
            if (address, cid) in self._queued_handshakes:
                return  # a retransmission of one waiting its turn
            packet = self._decode(datagram)
            if packet is not None:
                self._accept_connect(packet, address)
        else:
            self.counters.unexpected_packet += 1
            self._refused(address)

    @property
    def max_sessions(self) -> int:
        return self.admission.max_sessions

    @property
    def live_sessions(self) -> int:
        """Sessions that count towards the limits: not closing, draining or closed."""
        return len(self._live)

    def _answer_hello(self, packet: Hello, datagram: bytes, address: tuple) -> None:
        if len(datagram) < MIN_HELLO_SIZE:
            self.counters.short_hello += 1
            self._refused(address)
            return
        if not self._cookie_limiter.allow(address[0], self.now()):
            self.counters.cookies_throttled += 1
            self._refused(address)
            return
        cookie = self.cookies.mint(self.now(), address, packet.client_cid)
        reply = encode_packet(Cookie(packet.client_cid, cookie))
        assert len(reply) <= len(datagram)  # anti-amplification, by construction
        self.counters.cookies_sent += 1
        self._write(reply, address)

    def _accept_connect(self, packet: Connect, address: tuple) -> None:
        now = self.now()
        if not self.cookies.check(now, address, packet.client_cid, packet.cookie):
            self.counters.bad_cookie += 1
            self._refused(address)
            return
        self._forget_old_client_cids(now)
        if packet.client_cid in self._used_client_cids:
            self.counters.replayed_connect += 1
            self._refused(address)
            return
        if self._handshakes_this_turn < self.admission.handshakes_per_turn \
                and not self._queued_handshakes:
            self._handshakes_this_turn += 1
            self._schedule_next_turn()
            self._open_session(packet, address)
        elif self._queued_handshakes.push(address[0], (address, packet.client_cid), packet):
            self._schedule_next_turn()
        else:
            self.counters.handshakes_dropped += 1

    def _deliver_for_stranger(self, handle: _Handle, datagram: bytes, address: tuple) -> None:
        """A session nobody vouched for gets a share of each turn, as handshakes do."""
        if self._strangers_this_turn < self.admission.stranger_datagrams_per_turn \
                and not self._queued_strangers:
            self._strangers_this_turn += 1
            self._schedule_next_turn()
            self._deliver(handle, datagram, address)
        elif self._queued_strangers.push(address[0], next(self._stranger_keys),
                                         (handle, datagram, address)):
            self.counters.stranger_datagrams_queued += 1
            self._schedule_next_turn()
        else:
            self.counters.stranger_datagrams_dropped += 1

    def _schedule_next_turn(self) -> None:
        if self._next_turn is None:
            self._next_turn = self.reactor.callLater(0, self._new_turn)

    def _new_turn(self) -> None:
        """The next reactor turn: fresh handshake and stranger budgets, spent
        first on those that waited, one source at a time in turn."""
        self._next_turn = None
        self._handshakes_this_turn = 0
        queued = self._queued_handshakes
        while queued and self._handshakes_this_turn < self.admission.handshakes_per_turn:
            (address, _), packet = queued.pop()
            self._handshakes_this_turn += 1
            self._open_session(packet, address)
        self._strangers_this_turn = 0
        waiting = self._queued_strangers
        while waiting and self._strangers_this_turn < self.admission.stranger_datagrams_per_turn:
            _, (handle, datagram, address) = waiting.pop()
            if self.sessions.get(handle.session.local_cid) is handle:  # not gone meanwhile
                self._strangers_this_turn += 1
                self._deliver(handle, datagram, address)
        if queued or waiting:
            self._schedule_next_turn()
        if self._dirty:
            self._schedule_flush()

    def _open_session(self, packet: Connect, address: tuple) -> None:
        now = self.now()
        host = address[0]
        if self._per_address[host] >= self.admission.max_sessions_per_address:
            self.counters.sessions_refused += 1
            return
        if not self._session_limiter.allow(host, now):
            self.counters.sessions_throttled += 1
            self._refused(address)
            return
        if not self._sessions_total.take(now):
            self.counters.sessions_throttled_in_total += 1
            return
        if len(self._live) >= self.admission.max_sessions and not self._evict_one(now):
            self.counters.sessions_refused += 1
            return
        local_cid = self.rng.getrandbits(64)
        while local_cid in self.sessions:
            local_cid = self.rng.getrandbits(64)
        try:
            session = Session.server(now=now, local_cid=local_cid, connect=packet,
                                     client_address=address, static_key=self.static_key,
                                     reset_token=reset_token(self._reset_secret, local_cid),
                                     config=self.config, rng=self.rng,
                                     reassembly_budget=self.reassembly_budget,
                                     send_budget=self.send_budget)
        except BadParameters:
            self.counters.bad_parameters += 1
            return
        except HandshakeError:
            self.counters.bad_handshake += 1
            return
        handle = _Handle(session, self.protocol_factory(address),
                         client_key=(address, packet.client_cid))
        self.sessions[local_cid] = handle
        self._live[handle] = None
        self._untrusted[handle] = None
        self._per_address[host] += 1
        self._by_client[handle.client_key] = handle
        self._used_client_cids.add(packet.client_cid)
        self._client_cid_expiries.append((now + 2 * self.cookies.slot_seconds, packet.client_cid))
        self.log.info("session {cid:x} opened from {address}", cid=local_cid, address=address)
        self._make_connection(handle)
        self._dirty[handle] = None

    # -- shedding ------------------------------------------------------------

    def _refused(self, address: tuple) -> None:
        """A handshake packet refused: enough of them and the prefix is shed."""
        now = self.now()
        prefix = self._shedder.refused(address[0], now)
        if prefix is None:
            return
        self.counters.prefixes_shed += 1
        in_kernel = self._kernel_filter.apply(self._shedder.prefixes)
        self.log.warn("shedding handshakes from {prefix} for {seconds:g} s ({where}): "
                      "it kept being refused", prefix=prefix, seconds=self._shedder.period(prefix),
                      where="in the kernel" if in_kernel else "in Python")
        self._schedule_release()

    def _schedule_release(self) -> None:
        release = self._shedder.next_release()
        if release is None or (self._release_call is not None and self._release_call.active()
                               and self._release_call.getTime() <= release):
            return
        if self._release_call is not None and self._release_call.active():
            self._release_call.cancel()
        self._release_call = self.reactor.callLater(max(0.0, release - self.now()), self._release)

    def _release(self) -> None:
        self._release_call = None
        if self._shedder.release_due(self.now()):
            self._kernel_filter.apply(self._shedder.prefixes)
        self._schedule_release()

    def stopProtocol(self) -> None:
        for call in (self._release_call, self._next_turn):
            if call is not None and call.active():
                call.cancel()
        self._release_call = self._next_turn = None
        self._queued_handshakes.clear()
        self._queued_strangers.clear()
        super().stopProtocol()

    def _evict_one(self, now: float) -> bool:
        """Close the oldest session nobody vouched for; False if there is none."""
        if not self._untrusted:
            return False
        victim = next(iter(self._untrusted))
        victim.session.close(now, CloseCode.SERVER_BUSY, "server full: sessions not logged in go first",
                             graceful=False)
        self._end_of_life(victim)
        self._dirty[victim] = None
        self.counters.sessions_evicted += 1
        return True

    def trust(self, handle: _Handle) -> None:
        self._untrusted.pop(handle, None)

    def _end_of_life(self, handle: _Handle) -> None:
        """The session stops counting towards the limits (it may still linger
        for its closing period)."""
        if handle not in self._live:
            return
        del self._live[handle]
        self._untrusted.pop(handle, None)
        host = handle.client_key[0][0]
        self._per_address[host] -= 1
        if not self._per_address[host]:
            del self._per_address[host]

    def _forget_old_client_cids(self, now: float) -> None:
        expiries = self._client_cid_expiries
        while expiries and expiries[0][0] <= now:
            # One entry for each id kept: a kept id is refused, never added again.
            self._used_client_cids.discard(expiries.popleft()[1])

    def _maybe_reset(self, cid: int, address: tuple) -> None:
        if not self._resets.take(self.now()):
            return
        self.counters.resets_sent += 1
        self._write(encode_packet(Reset(cid, reset_token(self._reset_secret, cid))), address)

    def _on_closed(self, handle: _Handle, reason: CloseReason) -> None:
        self._end_of_life(handle)
        if handle.client_key is not None:
            self._by_client.pop(handle.client_key, None)
        self.log.info("session {cid:x} closed: {code} {message}", cid=handle.session.local_cid,
                      code=reason.code.name, message=reason.message)
