"""
One reliable conversation with one peer, as a pure state machine.

The endpoint feeds it the datagrams routed to it (``receive_datagram``),
application sends (``send_message``, ``send_unreliable``, ``close``) and
timer expiries (``handle_timer``), each with the current time; it asks for
datagrams to send (``datagrams_to_send``), the next time to be woken
(``get_timer``) and what happened (``next_event``). Nothing here reads a
clock or a socket, so loss, reordering and hours of idle time are tested in
milliseconds.

This module holds what each arriving packet and frame means, the
liveness clocks (keepalive, idle timeout, give-up) and closing; the rest is
one module a job, as aioquic splits its connection:

- ``state``: the lifecycle, every state and every legal move in one table;
- ``handshake``: HELLO, CONNECT and ACCEPT with the Noise handshake inside
  (``noise``), and the client's retries;
- ``protection``: sealing and opening every DATA packet, reset tokens;
- ``acks``: what we received and when an ACK is owed (RFC 9000 §13.2);
- ``recovery``: packets in flight, loss by packet or time threshold
  adapted to reordering (``rack``), spurious losses and their undo, the
  probe timeout (RFC 9002 §6), fed by ``rtt`` and the congestion
  controller: ``bbr`` (the default, on ``delivery_rate`` samples) or
  ``congestion`` (NewReno);
- ``sending``: messages cut into chunks, the flow window, redundancy;
- ``packet_builder``: what goes into each DATA datagram, and ``pacing``
  when it may leave;
- ``paths``: validation of a peer's new address (NAT rebinding);
- ``reassembly``: fragments back into messages, with a bounded buffer.

At about 650 lines it is over the project's ~450: what is left is the one
place that decides what a packet means in each state (opening it, the
handshake's two messages, every frame), and cutting that would put the
rules of one state in two files.
"""

from __future__ import annotations

import random
from typing import Final

import attrs
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from twistchat.reliable.acks import AckTracker
from twistchat.reliable.config import (
    MAX_CLOSING_PERIOD, SessionConfig, SessionStats, effective_parameters, parameter_problem,
)
from twistchat.reliable.bbr import Bbr
from twistchat.reliable.congestion import NewReno
from twistchat.reliable.errors import CloseCode, ConnectionClosed, MessageTooLarge
from twistchat.reliable.events import (
    Event, HandshakeCompleted, MessageAcked, MessageReceived, PathMigrated, SessionClosed,
    UnreliableReceived,
)
from twistchat.reliable.handshake import ClientHandshake, server_handshake
from twistchat.reliable.noise import HandshakeError
from twistchat.reliable.packet_builder import PacketBuilder
from twistchat.reliable.paths import PathValidator
from twistchat.reliable.protection import PacketProtection
from twistchat.reliable.reassembly import (
    BudgetExhausted, MessageReassembler, ReassemblyBudget, ReassemblyError,
)
from twistchat.reliable.recovery import Recovery
from twistchat.reliable.rtt import RttEstimator
from twistchat.reliable.sending import SendBuffer, SendQueueBudget
from twistchat.reliable.state import ENDED, SILENT, Lifecycle, Move, State
from twistchat.wire.packets import (
    DATA_FIRST_BYTE, INTERACTIVE_LANE, LANE_COUNT, Accept, Ack, Close, Connect, Cookie, DecodeError,
    MessageFrame, Packet, PathChallenge,
    PathResponse, Ping, Reset, SealedData, TransportParameters, Unreliable, Window, decode_frames,
    data_header, decode_packet,
)

__all__ = ["Session", "SessionConfig", "SessionStats", "State", "MessageTooLarge",
           "ConnectionClosed"]

_HANDSHAKE: Final = State.HANDSHAKE
_ESTABLISHED: Final = State.ESTABLISHED
_CLOSING: Final = State.CLOSING
_DRAINING: Final = State.DRAINING
_CLOSED: Final = State.CLOSED
"""The states as module globals: on Python 3.11 ``State.CLOSED`` is looked
up through the slot ``EnumType.__getattr__`` installs (~250 instructions),
a global in one dict probe; a datagram took a dozen such lookups (issue 16)."""

CONGESTION_CONTROLLERS: Final = {"bbr": Bbr, "newreno": NewReno}
"""What ``SessionConfig.congestion_control`` names."""

PROBES_PER_TIMEOUT: Final = 2
"""RFC 9002 §6.2.4 allows two probe packets per expiry; two halve the
chance that a lossy path turns one lost ack into a long stall."""

CLOSING_PERIOD_PTOS: Final = 3
"""RFC 9000 §10.2: stay in closing/draining for three probe timeouts
(capped at ``config.MAX_CLOSING_PERIOD``)."""

MAX_UNRELIABLE_QUEUED: Final = 16
"""Unreliable messages waiting for room in the windows; past it the oldest
is dropped (counted): best effort never grows a queue without bound."""

KEEPALIVE_JITTER: Final = 0.2
"""Keepalives go out at interval x [1, 1.2): never more often than the
interval (RFC 8085 §3.5 asks for no less than 15 s), and not in lockstep."""


class Session:
    """See the module docstring. Build with ``Session.client`` or ``Session.server``."""

    __slots__ = (
        "_accept_datagram",
        "_accept_pending",
        "_acks",
        "_buffer",
        "_builder",
        "_close_after_flush",
        "_close_frame",
        "_close_send_pending",
        "_closing_deadline",
        "_events",
        "_expected_server_key",
        "_handshake",
        "_keepalive_due",
        "_last_ack_progress",
        "_last_receive_time",
        "_lifecycle",
        "_paths",
        "_protection",
        "_protection_may_rest",
        "_reassembler",
        "_recovery",
        "_reset_token",
        "_rng",
        "answer_at_once",
        "config",
        "congestion",
        "created_at",
        "idle_timeout",
        "is_client",
        "keepalive_interval",
        "local_cid",
        "peer_address",
        "peer_cid",
        "peer_parameters",
        "rtt",
        "server_key",
        "stats",
    )
    """100,000 idle sessions a process (issue 16): no per-instance dict (1.6 KB)."""

    def __init__(self, *, is_client: bool, now: float, local_cid: int, peer_address: tuple,
                 config: SessionConfig, rng: random.Random,
                 state: State = _HANDSHAKE,
                 reassembly_budget: ReassemblyBudget | None = None,
                 send_budget: SendQueueBudget | None = None) -> None:
        self.is_client = is_client
        self.config = config
        self.local_cid = local_cid
        self.peer_cid: int | None = None
        self.peer_address = peer_address
        self._lifecycle = Lifecycle(state)
        self.stats = SessionStats()
        self._rng = rng
        self._events: list[Event] = []
        """Events not yet taken, oldest first: a few at a time (taken after
        every datagram), so a list (56 bytes empty; a deque is 760)."""
        self.created_at = now

        # parameters the peer announced; ours until the handshake says otherwise
        self.peer_parameters = config.transport_parameters()
        self.idle_timeout = config.idle_timeout
        self.keepalive_interval: float | None = config.keepalive_interval if is_client else None

        self._acks = AckTracker(config.max_ack_delay)
        self._reassembler = MessageReassembler(config.max_message_size, config.announced_receive_window,
                                               budget=reassembly_budget)
        self._buffer = SendBuffer(config.max_datagram_size, config.redundancy, self.stats,
                                  on_tracked_acked=self._tracked_acked,
                                  budget=send_budget)
        self.rtt = RttEstimator(initial_rtt=config.initial_rtt)
        self.congestion = CONGESTION_CONTROLLERS[config.congestion_control](
            config.max_datagram_size, max_window=config.max_window)
        self._recovery = Recovery(now, self.rtt, self.congestion, self._buffer, self.stats,
                                  peer_max_ack_delay=config.max_ack_delay)
        self._paths = PathValidator(is_client, rng)
        self._builder = PacketBuilder(config.max_datagram_size, self._acks, self._buffer,
                                      self._recovery, self._paths, self.stats,
                                      on_ack_eliciting=self._on_ack_eliciting_sent)

        # liveness
        self._last_receive_time = now
        self._last_ack_progress = now
        """The give-up clock: when acks last retired data (or data began waiting)."""
        self._keepalive_due = self._next_keepalive(now)

        self._handshake = ClientHandshake(local_cid, self.rtt) if is_client else None
        self._expected_server_key: bytes | None = None
        self.server_key: bytes | None = None
        """The server's static public key, once the handshake proved it."""
        self._reset_token: bytes | None = None
        self._protection: PacketProtection | None = None
        """Keys of this session's packets: set when the handshake completes."""
        self._protection_may_rest = False
        """A keepalive came while nothing of ours was in flight: once its ACK
        is out, the AEAD contexts can go (``PacketProtection.rest``)."""
        self._accept_datagram: bytes | None = None
        """Server: the ACCEPT sent, kept for a CONNECT that comes again until
        the client's first packet shows it has it."""
        self._accept_pending = False
        """Server: ACCEPT is owed (first, or again because CONNECT came again)."""
        self.answer_at_once = False
        """The last datagram was a keepalive (PING alone) from the peer's
        address that made no event: all it asks for is its ACK, now, so the
        endpoint may answer it there and then instead of at the end of the
        reactor turn (issue 16: an idle server's work is mostly these)."""

        # closing
        self._close_after_flush: tuple[CloseCode, str] | None = None
        self._close_frame: Close | None = None
        self._close_send_pending = False
        self._closing_deadline: float | None = None

    # -- construction -----------------------------------------------------

    @classmethod
    def client(cls, *, now: float, server_address: tuple, config: SessionConfig | None = None,
               rng: random.Random | None = None, expected_server_key: bytes | None = None,
               reassembly_budget: ReassemblyBudget | None = None) -> "Session":
        """``expected_server_key``: the server's pinned static key; an ACCEPT
        proving another key ends the handshake with SERVER_KEY_MISMATCH."""
        rng = rng or random.SystemRandom()
        session = cls(is_client=True, now=now, local_cid=rng.getrandbits(64),
                      peer_address=server_address, config=config or SessionConfig(), rng=rng,
                      reassembly_budget=reassembly_budget)
        session._expected_server_key = expected_server_key
        return session

    @classmethod
    def server(cls, *, now: float, local_cid: int, connect: Connect, client_address: tuple,
               static_key: X25519PrivateKey, reset_token: bytes,
               config: SessionConfig | None = None, rng: random.Random | None = None,
               reassembly_budget: ReassemblyBudget | None = None,
               send_budget: SendQueueBudget | None = None) -> "Session":
        """A session for a client whose address a cookie has just validated.
        Raises ``HandshakeError`` (``BadParameters``) if its CONNECT does not
        hold a sound Noise message with valid transport parameters."""
        config = config or SessionConfig()
        accept, client_parameters, protection = server_handshake(
            connect, static_key, local_cid, reset_token, config.transport_parameters())
        session = cls(is_client=False, now=now, local_cid=local_cid,
                      peer_address=client_address, config=config,
                      rng=rng or random.SystemRandom(), state=_ESTABLISHED,
                      reassembly_budget=reassembly_budget, send_budget=send_budget)
        session.peer_cid = connect.client_cid
        session._adopt_parameters(client_parameters)
        session._builder.protection = session._protection = protection
        session._accept_datagram = accept
        session._accept_pending = True
        return session

    def _adopt_parameters(self, parameters: TransportParameters) -> None:
        parameters = effective_parameters(parameters, self.config)
        self.peer_parameters = parameters
        if parameters.idle_timeout_ms:
            self.idle_timeout = min(self.config.idle_timeout, parameters.idle_timeout_ms / 1000)
        if self.is_client and parameters.keepalive_interval_ms:
            # The server knows its NAT-facing environment: take its suggestion.
            self.keepalive_interval = parameters.keepalive_interval_ms / 1000
        self._recovery.peer_max_ack_delay = parameters.max_ack_delay_ms / 1000

    # -- queries ---------------------------------------------------------

    @property
    def state(self) -> State:
        return self._lifecycle.state

    @property
    def is_established(self) -> bool:
        return self._lifecycle.state is _ESTABLISHED

    @property
    def is_closed(self) -> bool:
        return self._lifecycle.state is _CLOSED

    @property
    def has_ended(self) -> bool:
        """True once the application has been (or is being) told the session ended."""
        return self._lifecycle.state in ENDED

    @property
    def last_receive_time(self) -> float:
        return self._last_receive_time

    @property
    def protection(self) -> PacketProtection | None:
        """The keys in force once the handshake completed: tests and traffic
        tools (taps on the simulator) open this session's packets with it."""
        return self._protection

    def pending_bytes(self) -> int:
        """Bytes of reliable messages not yet acknowledged: for back-pressure."""
        return self._buffer.unacked_bytes

    def has_unacked_data(self) -> bool:
        """Messages queued or sent and not yet acknowledged."""
        return self._buffer.has_unacked_data()

    @property
    def acked_below(self) -> int:
        """Every reliable message of the interactive lane with a sequence
        number (``send_message``'s return) below this has been acknowledged
        by the peer, all of it, with every earlier one: a cumulative mark,
        O(1), no event per message."""
        return self._buffer.lanes[INTERACTIVE_LANE].acked_below

    def acked_below_on(self, lane: int) -> int:
        """``acked_below`` of ``lane``: each lane numbers its messages on its own."""
        lanes = self._buffer.lanes
        return lanes[lane].acked_below if lane < len(lanes) else 0

    @property
    def loss_estimates(self) -> tuple[float, float]:
        """The running loss estimates (PROTOCOL.md §6.2, §6.5): of our packets
        towards the peer (declared lost), and of the peer's towards us (gaps)."""
        return self._recovery.loss_estimate, self._acks.loss_estimate

    @property
    def unacked_message_count(self) -> int:
        """Reliable messages sent (or queued) and not yet acknowledged."""
        return len(self._buffer.unacked_messages())

    @property
    def unsent_chunks(self) -> int:
        """Chunks (whole messages or fragments) queued and never sent: how far
        ahead of the windows a sender is feeding."""
        return self._buffer.unsent_chunks()

    def open_receive_window(self, now: float) -> None:
        """Grow the receive window from what the handshake announced to the
        full ``config.receive_window`` and tell the peer (a WINDOW frame, sent
        until acknowledged)."""
        if self._reassembler.window < self.config.receive_window:
            self._reassembler.window = self.config.receive_window
            self._builder.window_update = self.config.receive_window

    def next_event(self) -> Event | None:
        return self._events.pop(0) if self._events else None

    def probe_timeout(self) -> float:
        return self._recovery.probe_timeout()

    # -- application entry points -------------------------------------------

    def send_message(self, data: bytes, now: float, track: bool = False,
                     lane: int = INTERACTIVE_LANE) -> int:
        """Queue one reliable message on ``lane``; returns its sequence number
        there. With ``track``, a ``MessageAcked`` event says when the peer has
        all of it."""
        if self._lifecycle.state in ENDED or self._close_after_flush:
            raise ConnectionClosed("the session has ended")
        if not 0 <= lane < LANE_COUNT:
            raise ValueError(f"no lane {lane}: a session has {LANE_COUNT}")
        size = len(data)
        limit = self.peer_parameters.max_message_size
        if size > limit:
            raise MessageTooLarge(f"{size} bytes over the peer's cap of {limit}")
        buffer = self._buffer
        queued = buffer.unacked_bytes
        budget = buffer.budget
        if queued + size > self.config.max_send_queue or (
                budget is not None and budget.refuses(queued, size)):
            why = (f"over {self.config.max_send_queue} bytes unacknowledged"
                   if queued + size > self.config.max_send_queue else
                   f"{queued + size} bytes unacknowledged, more than its share of the server's")
            self._start_closing(now, CloseCode.SEND_QUEUE_EXCEEDED, f"SendQ exceeded: {why}")
            raise ConnectionClosed("send queue exceeded: the session was closed")
        if not queued and not buffer.has_unacked_data() and not self._recovery.sent:
            self._last_ack_progress = now  # the give-up clock starts with the first unacked byte
        return buffer.queue_message(data, track, lane)

    def send_unreliable(self, data: bytes, now: float) -> None:
        if self.has_ended:
            raise ConnectionClosed("the session has ended")
        room = self._buffer.unreliable_room
        if len(data) > room:
            raise MessageTooLarge(f"unreliable messages must fit one datagram ({room} bytes)")
        queue = self._buffer.unreliable_queue
        if len(queue) >= MAX_UNRELIABLE_QUEUED:  # the windows are full: the oldest is stale
            del queue[0]
            self.stats.unreliable_dropped += 1
        queue.append(data)

    def close(self, now: float, code: CloseCode = CloseCode.NORMAL, reason: str = "",
              graceful: bool = True) -> None:
        """Close; ``graceful`` first waits until everything queued is acknowledged."""
        if self.has_ended:
            return
        if self.state is _HANDSHAKE:
            self._abandon(code, reason, by_peer=False)
            return
        if graceful and self._buffer.has_unacked_data():
            self._close_after_flush = (code, reason)
            return
        self._start_closing(now, code, reason)

    # -- network entry point ---------------------------------------------

    def receive_datagram(self, data: bytes, address: tuple, now: float) -> bool:
        """One datagram routed to this session; False if it was dropped as
        malformed or not authentic (``stats.unauthenticated`` tells which),
        for the endpoint to count: nothing in the session changed."""
        self.answer_at_once = False
        if data and data[0] == DATA_FIRST_BYTE:
            # Nearly every datagram: opened from its parts, no SealedData (issue 16).
            try:
                packet_number, header_size = data_header(data)
            except DecodeError:
                return False
            return self._receive_sealed(packet_number, data[:header_size], data[header_size:],
                                        address, len(data), now)
        try:
            packet = decode_packet(data)
        except DecodeError:
            return False
        if isinstance(packet, SealedData):
            return self._receive_sealed(packet.packet_number, packet.header, packet.sealed,
                                        address, len(data), now)
        return self._receive_packet(packet, address, len(data), now)

    def _receive_sealed(self, packet_number: int, header: bytes, sealed: bytes, address: tuple,
                        size: int, now: float) -> bool:
        if self._protection is None or self.state in SILENT:
            return True  # data before ACCEPT: the server will send it again
        plaintext = self._protection.open_parts(packet_number, header, sealed)
        if plaintext is None:
            self.stats.unauthenticated += 1
            return False
        try:
            frames = decode_frames(plaintext)
        except DecodeError:
            return False
        # A packet sealed with the keys only ACCEPT gave: the client has
        # ACCEPT, so its bytes (padded, ~1.2 KB a session) need not be kept
        # for a CONNECT sent again.
        self._accept_datagram = None
        self._accept_pending = False
        self._receive_data(packet_number, frames, address, size, now)
        return True

    def _receive_packet(self, packet: Packet, address: tuple, size: int, now: float) -> bool:
        if self.state in SILENT:
            return True
        if isinstance(packet, Accept) and self.is_client:
            return self._receive_accept(packet, address, now)
        if isinstance(packet, Reset) and self.is_client:
            if packet.token != self._reset_token:
                self.stats.unauthenticated += 1
                return False
            if address == self.peer_address and packet.cid == self.peer_cid:
                self._abandon(CloseCode.RESET, "the server has no such session", by_peer=True)
        elif isinstance(packet, Cookie) and self.is_client:
            self._receive_cookie(packet, address, now)
        elif isinstance(packet, Cookie) and self.is_client:
            self._receive_cookie(packet, address, now)
        elif isinstance(packet, Connect) and not self.is_client:
            # Our ACCEPT was lost: the client asks again (the same bytes, or
            # it would not be routed here: the endpoint keys on them).
            if address == self.peer_address and self.state is _ESTABLISHED \
                    and self._accept_datagram is not None:
                self._accept_pending = True
        return True

    def _receive_cookie(self, packet: Cookie, address: tuple, now: float) -> None:
        handshake = self._handshake  # a client's until the handshake ends
        if self.state is not _HANDSHAKE or packet.client_cid != self.local_cid \
                or address != self.peer_address or handshake is None or handshake.cookie is not None:
            return
        handshake.on_cookie(packet.cookie, now, self.config.transport_parameters())

    def _receive_accept(self, packet: Accept, address: tuple, now: float) -> bool:
        handshake = self._handshake
        if self.state is not _HANDSHAKE or packet.client_cid != self.local_cid \
                or address != self.peer_address or handshake is None or handshake.cookie is None:
            return True
        try:
            established = handshake.on_accept(packet, now)
        except HandshakeError:
            self.stats.unauthenticated += 1  # forged or damaged: the real one may follow
            return False
        if self._expected_server_key is not None and established.server_key != self._expected_server_key:
            self._abandon(CloseCode.SERVER_KEY_MISMATCH,
                          "the server proved a different key than the one pinned", by_peer=False)
            return True
        problem = parameter_problem(established.peer_parameters)
        if problem is not None:
            self._abandon(CloseCode.PROTOCOL_VIOLATION, problem, by_peer=False)
            return True
        self.peer_cid = established.server_cid
        self.server_key = established.server_key
        self._reset_token = established.reset_token
        self._builder.protection = self._protection = established.protection
        self._adopt_parameters(established.peer_parameters)
        self._lifecycle.move(Move.ACCEPTED)
        self._last_receive_time = now
        self._last_ack_progress = now
        self._keepalive_due = self._next_keepalive(now)
        self._events.append(HandshakeCompleted())
        return True

    def _receive_data(self, packet_number: int, frames: tuple, address: tuple, size: int,
                      now: float) -> None:
        if self.state is _HANDSHAKE:
            return  # data before ACCEPT: the server will send it again
        if address != self.peer_address and not self._paths.accept_from_new_address(address, size):
            self.stats.dropped_from_unvalidated_path += 1
            return
        self.stats.packets_received += 1
        self.stats.bytes_received += size
        self._last_receive_time = now
        if self.state is _CLOSING:
            self._close_send_pending = True
            return
        out_of_order = self._acks.on_packet_number(packet_number, now)
        if out_of_order is None:
            self.stats.duplicate_packets += 1
            return
        ack_eliciting = False
        only_ping = True
        for frame in frames:
            if self.state is not _ESTABLISHED:
                break
            if isinstance(frame, Ack):
                self._receive_ack(frame, now)
                continue
            only_ping = only_ping and isinstance(frame, Ping)
            if isinstance(frame, MessageFrame):
                ack_eliciting = True
                self._receive_message_frame(frame, now)
            elif isinstance(frame, Unreliable):
                ack_eliciting = True
                self._events.append(UnreliableReceived(frame.data))
            elif isinstance(frame, Ping):
                ack_eliciting = True
            elif isinstance(frame, Close):
                self._enter_draining(now, frame)
                return
            elif isinstance(frame, PathChallenge):
                ack_eliciting = True
                self._paths.on_challenge(frame.data)
            elif isinstance(frame, Window):
                ack_eliciting = True
                grown = min(frame.size, self.config.receive_window)
                if grown > self.peer_parameters.receive_window:
                    self.peer_parameters = attrs.evolve(self.peer_parameters, receive_window=grown)
            elif isinstance(frame, PathResponse):
                ack_eliciting = True
                if self._paths.on_response(frame.data, address):
                    old, self.peer_address = self.peer_address, address
                    self._events.append(PathMigrated(old, address))
        keepalive = ack_eliciting and only_ping
        self._acks.on_packet_processed(ack_eliciting, out_of_order, now, only_ping=keepalive)
        if keepalive:
            if not self._buffer.has_unacked_data():
                self._protection_may_rest = True
            self.answer_at_once = not self._events and address == self.peer_address

    def _receive_message_frame(self, frame: MessageFrame, now: float) -> None:
        try:
            messages = self._reassembler.receive(frame)
        except BudgetExhausted as busy:  # a name per clause: mypyc types each one (issue 16)
            self._start_closing(now, CloseCode.SERVER_BUSY, str(busy))
            return
        except ReassemblyError as bad:
            self._start_closing(now, CloseCode.PROTOCOL_VIOLATION, str(bad))
            return
        self.stats.duplicate_messages = self._reassembler.duplicates
        for data in messages:
            self.stats.messages_delivered += 1
            self._events.append(MessageReceived(data))

    def _receive_ack(self, frame: Ack, now: float) -> None:
        if frame.largest >= self._builder.next_packet_number:
            self._start_closing(now, CloseCode.PROTOCOL_VIOLATION,
                                f"ack of packet {frame.largest} that was never sent")
            return
        if self._recovery.on_ack_received(frame, now):
            self._last_ack_progress = now
            self._maybe_finish_graceful_close(now)

    # -- timers ------------------------------------------------------------

    def get_timer(self) -> float | None:
        """The next time ``handle_timer`` wants to run, or None."""
        state = self.state
        if state is _CLOSED:
            return None
        if state is _CLOSING or state is _DRAINING:
            return self._closing_deadline
        if state is _HANDSHAKE:
            deadline = self.created_at + self.config.handshake_timeout
            handshake = self._handshake
            assert handshake is not None  # only a client is ever in HANDSHAKE
            retry = handshake.retry_time()
            return deadline if retry is None else min(deadline, retry)
        # The earliest of the clocks below, with no list built for it: this
        # runs after every datagram of every session (issue 16).
        deadline = self._last_receive_time + self.idle_timeout
        ack_deadline = self._acks.timer()
        if ack_deadline is not None and ack_deadline < deadline:
            deadline = ack_deadline
        recovery_deadline = self._recovery.timer()
        if recovery_deadline is not None and recovery_deadline < deadline:
            deadline = recovery_deadline
        if self._awaiting_acks():
            give_up = self._last_ack_progress + self.config.give_up_timeout
            if give_up < deadline:
                deadline = give_up
        if self.keepalive_interval and self._keepalive_due < deadline:
            deadline = self._keepalive_due
        builder = self._builder
        if builder.paced:
            if builder.pacer.next_send_time < deadline:
                deadline = builder.pacer.next_send_time
        elif builder.buffer.recent:
            repair = builder.repair_deadline()
            if repair is not None and repair < deadline:
                deadline = repair
        return deadline

    def handle_timer(self, now: float) -> None:
        state = self.state
        if state is _CLOSED:
            return
        if state is _CLOSING or state is _DRAINING:
            if self._closing_deadline is not None and now >= self._closing_deadline:
                self._lifecycle.move(Move.PERIOD_OVER)
            return
        if state is _HANDSHAKE:
            if now >= self.created_at + self.config.handshake_timeout:
                self._abandon(CloseCode.HANDSHAKE_FAILED, "no answer from the server", by_peer=False)
            else:
                handshake = self._handshake
                assert handshake is not None
                retry = handshake.retry_time()
                if retry is not None and now >= retry:
                    handshake.send_pending = True
            return
        if now >= self._last_receive_time + self.idle_timeout:
            self._abandon(CloseCode.IDLE_TIMEOUT, f"nothing heard for {self.idle_timeout:g} s",
                          by_peer=False)
            return
        if self._awaiting_acks() and now >= self._last_ack_progress + self.config.give_up_timeout:
            self._abandon(CloseCode.PEER_UNRESPONSIVE,
                          f"no acknowledgement for {self.config.give_up_timeout:g} s",
                          by_peer=False)
            return
        if self._recovery.on_timer(now):
            self._builder.probes_pending = PROBES_PER_TIMEOUT
        if self.keepalive_interval and now >= self._keepalive_due:
            self._builder.ping_pending = True
            self._keepalive_due = self._next_keepalive(now)

    def _awaiting_acks(self) -> bool:
        return self._buffer.has_unacked_data() or bool(self._recovery.sent)

    def _next_keepalive(self, after: float) -> float:
        interval = self.keepalive_interval or self.config.keepalive_interval
        return after + interval * (1 + KEEPALIVE_JITTER * self._rng.random())

    def _on_ack_eliciting_sent(self, now: float) -> None:
        if not self._recovery.sent and not self._buffer.has_unacked_data():
            self._last_ack_progress = now  # a keepalive starts the give-up clock
        if self.keepalive_interval:
            self._keepalive_due = self._next_keepalive(now)

    # -- building datagrams ------------------------------------------------

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, tuple]]:
        """Everything the session wants on the wire now, with destinations."""
        state = self.state
        if state is _HANDSHAKE:
            return self._handshake_datagrams(now)
        if state in SILENT:
            return []
        out: list[tuple[bytes, tuple]] = []
        peer_cid = self.peer_cid
        assert peer_cid is not None  # known once past HANDSHAKE
        if state is _CLOSING:
            if self._close_send_pending and self._close_frame is not None:
                self._close_send_pending = False
                out.append((self._builder.seal([self._close_frame], peer_cid, now),
                            self.peer_address))
            return out
        if self._accept_pending:
            self._accept_pending = False
            accept = self._accept_datagram
            assert accept is not None  # pending only while it is kept
            out.append((accept, self.peer_address))
        challenge = self._builder.path_challenge(peer_cid, now)
        if challenge is not None:
            out.append(challenge)
        window = self.peer_parameters.receive_window
        while True:
            datagram = self._builder.build(peer_cid, now, window)
            if datagram is None:
                break
            out.append((datagram, self.peer_address))
        if self._protection_may_rest:
            self._protection_may_rest = False
            self._rest()
        return out

    def _rest(self) -> None:
        """A keepalive answered with nothing unacknowledged: until the next
        message, hold only what an idle session needs (issue 16)."""
        protection = self._protection
        assert protection is not None  # only set from an authenticated packet
        protection.rest()
        self._buffer.rest()
        self._recovery.rest()
        self._reassembler.rest()

    def _tracked_acked(self, lane: int, seq: int) -> None:
        """The send buffer's report (a bound method: a closure would cost
        each session ~200 bytes more)."""
        self._events.append(MessageAcked(seq, lane))

    def _handshake_datagrams(self, now: float) -> list[tuple[bytes, tuple]]:
        handshake = self._handshake
        assert handshake is not None
        datagrams = handshake.datagrams(now)
        for datagram in datagrams:
            self.stats.packets_sent += 1
            self.stats.bytes_sent += len(datagram)
        return [(datagram, self.peer_address) for datagram in datagrams]

    # -- closing -------------------------------------------------------------

    def _maybe_finish_graceful_close(self, now: float) -> None:
        if self._close_after_flush and not self._buffer.has_unacked_data():
            code, reason = self._close_after_flush
            self._close_after_flush = None
            self._start_closing(now, code, reason)

    def _start_closing(self, now: float, code: CloseCode, reason: str) -> None:
        if self.has_ended:
            return
        self._close_frame = Close(int(code), reason)
        self._close_send_pending = True
        self._report_closed(code, reason, by_peer=False)
        self._lifecycle.move(Move.CLOSE)
        self._closing_deadline = now + self._closing_period()

    def _enter_draining(self, now: float, frame: Close) -> None:
        try:
            code = CloseCode(frame.code)
        except ValueError:
            code = CloseCode.PROTOCOL_VIOLATION
        self._report_closed(code, frame.reason, by_peer=True)
        self._lifecycle.move(Move.PEER_CLOSE)
        self._closing_deadline = now + self._closing_period()

    def _closing_period(self) -> float:
        return min(CLOSING_PERIOD_PTOS * self.probe_timeout(), MAX_CLOSING_PERIOD)

    def _abandon(self, code: CloseCode, reason: str, by_peer: bool) -> None:
        """End without a closing period: the peer is gone or never answered."""
        if not self.has_ended:
            self._report_closed(code, reason, by_peer)
        self._lifecycle.move(Move.ABANDON)

    def _report_closed(self, code: CloseCode, reason: str, by_peer: bool) -> None:
        self._events.append(SessionClosed(code, reason, by_peer, self._buffer.unacked_messages()))
        self._buffer.clear()
        self._reassembler.discard()
