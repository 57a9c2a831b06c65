"""
One reliable conversation with one peer, as a pure state machine.

The endpoint feeds it the datagrams routed to it (``receive_datagram``), application
sends (``send_message``, ``send_unreliable``, ``close``) and timer expiries
(``handle_timer``), each with the current time; it asks for datagrams to
send (``datagrams_to_send``), the next time to be woken (``get_timer``) and
what happened (``next_event``). Nothing here reads a clock or a socket, so
loss, reordering and hours of idle time are tested in milliseconds.

Mechanisms and where they come from:

- packet numbers are never reused: lost data travels again in new packets,
  so every RTT sample is unambiguous (RFC 9002 §2);
- acks carry ranges, are delayed up to ``max_ack_delay`` and sent at once
  every second ack-eliciting packet or on a gap (RFC 9000 §13.2);
- loss is declared by packet threshold 3 or time threshold 9/8 RTT
  (RFC 9002 §6.1), otherwise by the probe timeout (§6.2);
- NewReno congestion control (``congestion.py``) and a flow window: the
  bytes of messages from the oldest unacknowledged one onwards never
  exceed what the peer said it would buffer;
- while the flow is application-limited and loss is observed, recent
  unacknowledged messages ride again in the packets that go out anyway
  (loss-adaptive redundancy): a loss is then repaired one packet later
  instead of one round trip later. It costs nothing on a clean path;
- keepalive, idle timeout, give-up when acks stop coming (the unacked
  messages are reported, never dropped silently), explicit close.
"""

from __future__ import annotations

import enum
import random
from collections import deque
import attrs

from twistchat.reliable.errors import CloseCode, ConnectionClosed, MessageTooLarge
from twistchat.reliable.congestion import DEFAULT_MAX_WINDOW, NewReno
from twistchat.reliable.events import (
    Event, HandshakeCompleted, MessageReceived, PathMigrated, SessionClosed,
    UnreliableReceived,
)
from twistchat.reliable.rangeset import RangeSet
from twistchat.reliable.reassembly import (
    flow_charge, MessageReassembler, ReassemblyError,
)
from twistchat.reliable.rtt import K_GRANULARITY, K_INITIAL_RTT, RttEstimator
from twistchat.wire.packets import (
    CONNECTION_ID_SIZE, MAX_DATAGRAM_SIZE, MIN_HELLO_SIZE, PATH_DATA_SIZE, Accept,
    Ack, Close, Connect, Cookie, Data, DecodeError, Hello, MessageFrame, Packet,
    PathChallenge, PathResponse, Ping, Reset, TransportParameters, Unreliable,
    decode_packet, encode_frame, encode_packet, frame_size,
)
from twistchat.wire.varint import varint_size

K_PACKET_THRESHOLD = 3
"""RFC 9002 §6.1.1: a packet is lost once 3 later packets are acknowledged."""

K_TIME_THRESHOLD = 9 / 8
"""RFC 9002 §6.1.2: ... or once it is 9/8 RTT older than an acknowledged one."""

ACK_ELICITING_THRESHOLD = 2
"""RFC 9000 §13.2.2: acknowledge at once every second ack-eliciting packet."""

MAX_ACK_RANGES_SENT = 32
MAX_PTO_BACKOFF = 6
"""The probe timeout doubles at most this many times (64 x PTO) ..."""

MAX_PROBE_INTERVAL = 1.0
"""... and never beyond one second: on a path losing 30% of packets each
way a probe round trip fails half the time, and a chat session should try
a dozen times before the give-up time rather than three."""

PROBES_PER_TIMEOUT = 2
"""RFC 9002 §6.2.4 allows two probe packets per expiry; two halve the
chance that a lossy path turns one lost ack into a long stall."""

CLOSING_PERIOD_PTOS = 3
"""RFC 9000 §10.2: stay in closing/draining for three probe timeouts."""

HANDSHAKE_RETRY_COPIES = 2
"""A handshake packet sent again goes out twice: the first was lost."""

REDUNDANCY_LOSS_THRESHOLD = 0.01
LOSS_ESTIMATE_GAIN = 1 / 32
MAX_GAP_SAMPLES = 32
"""A jump in packet numbers counts as at most this many losses."""
KEEPALIVE_JITTER = 0.2
"""Keepalives go out at interval x [1, 1.2): never more often than the
interval (RFC 8085 §3.5 asks for no less than 15 s), and not in lockstep."""

DATA_HEADER_MAX = 1 + CONNECTION_ID_SIZE + 8
MESSAGE_FRAME_MAX_OVERHEAD = 1 + 8 + 8 + 8 + 8
ACK_ROOM = 48
"""Fragments leave this much room so an ACK frame rides along."""
MIN_USEFUL_ROOM = 32
"""Below this much congestion-window room, wait for acks instead of sending."""


class State(enum.Enum):
    HANDSHAKE = "handshake"
    ESTABLISHED = "established"
    CLOSING = "closing"
    """We closed: answer stray packets with CLOSE until the period ends."""
    DRAINING = "draining"
    """The peer closed: stay silent until the period ends."""
    CLOSED = "closed"
    """Nothing left: the endpoint may forget this session."""


@attrs.define
class SessionConfig:
    """Every knob of a session. Defaults suit a chat client on the Internet."""

    max_datagram_size: int = MAX_DATAGRAM_SIZE
    max_message_size: int = 64 * 1024
    receive_window: int = 1024 * 1024
    keepalive_interval: float = 15.0
    idle_timeout: float = 45.0
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


@attrs.define(slots=True, eq=False)
class _Chunk:
    """A whole small message, or one fragment of a large one, as it is (re)sent."""

    seq: int
    data: bytes
    offset: int
    total: int | None
    acked: bool = False
    in_flight: int = 0
    copies: int = 0
    last_sent: float = 0.0

    def frame(self) -> MessageFrame:
        return MessageFrame(self.seq, self.data, self.offset, self.total)


@attrs.define(slots=True, eq=False)
class _OutgoingMessage:
    data: bytes
    charge: int
    chunks_left: int
    done: bool = False


@attrs.define(slots=True, eq=False)
class _SentPacket:
    packet_number: int
    sent_time: float
    size: int
    chunks: list
    app_limited: bool


@attrs.define(eq=False)
class _CandidatePath:
    address: tuple
    challenge: bytes
    bytes_received: int = 0
    bytes_sent: int = 0
    challenge_sent_at: float | None = None


class Session:
    """See the module docstring. Build with ``Session.client`` or ``Session.server``."""

    def __init__(self, *, is_client: bool, now: float, local_cid: int, peer_address: tuple,
                 config: SessionConfig, rng: random.Random) -> None:
        self.is_client = is_client
        self.config = config
        self.local_cid = local_cid
        self.peer_cid: int | None = None
        self.peer_address = peer_address
        self.state = State.HANDSHAKE
        self.stats = SessionStats()
        self._rng = rng
        self._events: deque[Event] = deque()
        self.created_at = now

        # parameters the peer announced; ours until the handshake says otherwise
        self.peer_parameters = config.transport_parameters()
        self.idle_timeout = config.idle_timeout
        self.keepalive_interval: float | None = config.keepalive_interval if is_client else None

        # receiving
        self._received = RangeSet()
        self._largest_received_time = 0.0
        self._ack_pending = False
        self._ack_deadline: float | None = None
        self._ack_eliciting_unacked = 0
        self._reassembler = MessageReassembler(config.max_message_size, config.receive_window)
        self._last_receive_time = now

        # sending
        self._next_packet_number = 0
        self._next_seq = 0
        self._send_queue: deque[_Chunk] = deque()
        self._retransmit_queue: deque[_Chunk] = deque()
        self._unreliable_queue: deque[bytes] = deque()
        self._outgoing: dict[int, _OutgoingMessage] = {}
        self._flow_used = 0
        self._sent: dict[int, _SentPacket] = {}
        self._recent: deque[_Chunk] = deque()
        self._largest_acked: int | None = None
        self._last_ack_eliciting_sent = now
        self._last_ack_progress = now
        self._loss_time: float | None = None
        self._pto_count = 0
        self._probes_pending = 0
        self._ping_pending = False
        self._loss_estimate = 0.0
        self._receive_loss_estimate = 0.0
        self._keepalive_due = self._next_keepalive(now)
        self.rtt = RttEstimator(initial_rtt=config.initial_rtt)
        self.congestion = NewReno(config.max_datagram_size, max_window=config.max_window)

        # handshake, paths, closing
        self._handshake_send_pending = False
        self._handshake_sent_at: float | None = None
        self._handshake_tries = 0
        self._cookie: bytes | None = None
        self._accept_pending = False
        self._path_responses: deque[bytes] = deque()
        self._candidate: _CandidatePath | None = None
        self._close_after_flush: tuple[CloseCode, str] | None = None
        self._close_frame: Close | None = None
        self._close_send_pending = False
        self._closing_deadline: float | None = None

    # -- construction -----------------------------------------------------

    @classmethod
    def client(cls, *, now: float, server_address: tuple, config: SessionConfig | None = None,
               rng: random.Random | None = None) -> "Session":
        rng = rng or random.SystemRandom()
        session = cls(is_client=True, now=now, local_cid=rng.getrandbits(64),
                      peer_address=server_address, config=config or SessionConfig(), rng=rng)
        session._handshake_send_pending = True
        return session

    @classmethod
    def server(cls, *, now: float, local_cid: int, client_cid: int, client_address: tuple,
               client_parameters: TransportParameters, config: SessionConfig | None = None,
               rng: random.Random | None = None) -> "Session":
        """A session for a client whose address a cookie has just validated."""
        session = cls(is_client=False, now=now, local_cid=local_cid,
                      peer_address=client_address, config=config or SessionConfig(),
                      rng=rng or random.SystemRandom())
        session.peer_cid = client_cid
        session._adopt_parameters(client_parameters)
        session.state = State.ESTABLISHED
        session._accept_pending = True
        return session

    def _adopt_parameters(self, parameters: TransportParameters) -> None:
        self.peer_parameters = parameters
        if parameters.idle_timeout_ms:
            self.idle_timeout = min(self.config.idle_timeout, parameters.idle_timeout_ms / 1000)
        if self.is_client and parameters.keepalive_interval_ms:
            # The server knows its NAT-facing environment: take its suggestion.
            self.keepalive_interval = parameters.keepalive_interval_ms / 1000
        self._max_ack_delay_peer = parameters.max_ack_delay_ms / 1000

    _max_ack_delay_peer = SessionConfig().max_ack_delay

    # -- queries ---------------------------------------------------------

    @property
    def is_established(self) -> bool:
        return self.state is State.ESTABLISHED

    @property
    def is_closed(self) -> bool:
        return self.state is State.CLOSED

    @property
    def has_ended(self) -> bool:
        """True once the application has been (or is being) told the session ended."""
        return self.state in (State.CLOSING, State.DRAINING, State.CLOSED)

    @property
    def last_receive_time(self) -> float:
        return self._last_receive_time

    def pending_bytes(self) -> int:
        """Bytes of reliable messages not yet acknowledged: for back-pressure."""
        return sum(len(m.data) for m in self._outgoing.values() if not m.done) + \
            sum(len(c.data) for c in self._send_queue)

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def probe_timeout(self) -> float:
        return self.rtt.probe_timeout(self._max_ack_delay_peer)

    # -- application entry points -------------------------------------------

    def send_message(self, data: bytes, now: float) -> int:
        """Queue one reliable message; returns its sequence number."""
        if self.has_ended or self._close_after_flush:
            raise ConnectionClosed("the session has ended")
        limit = self.peer_parameters.max_message_size
        if len(data) > limit:
            raise MessageTooLarge(f"{len(data)} bytes over the peer's cap of {limit}")
        if not self._outgoing and not self._sent:
            self._last_ack_progress = now  # the give-up clock starts with the first unacked byte
        seq = self._next_seq
        self._next_seq += 1
        piece = self.config.max_datagram_size - DATA_HEADER_MAX - MESSAGE_FRAME_MAX_OVERHEAD - ACK_ROOM
        if len(data) <= piece:
            chunks = [_Chunk(seq, data, 0, None)]
        else:
            chunks = [_Chunk(seq, data[i:i + piece], i, len(data)) for i in range(0, len(data), piece)]
        self._send_queue.extend(chunks)
        self._outgoing[seq] = _OutgoingMessage(data, flow_charge(len(data), len(chunks)), len(chunks))
        self.stats.messages_sent += 1
        return seq

    def send_unreliable(self, data: bytes, now: float) -> None:
        if self.has_ended:
            raise ConnectionClosed("the session has ended")
        room = self.config.max_datagram_size - DATA_HEADER_MAX - 1 - 8 - ACK_ROOM
        if len(data) > room:
            raise MessageTooLarge(f"unreliable messages must fit one datagram ({room} bytes)")
        self._unreliable_queue.append(data)

    def close(self, now: float, code: CloseCode = CloseCode.NORMAL, reason: str = "",
              graceful: bool = True) -> None:
        """Close; ``graceful`` first waits until everything queued is acknowledged."""
        if self.has_ended:
            return
        if self.state is State.HANDSHAKE:
            self._enter_closed(now, code, reason, by_peer=False)
            return
        if graceful and self._has_unacked_data():
            self._close_after_flush = (code, reason)
            return
        self._start_closing(now, code, reason)

    # -- network entry point ---------------------------------------------

    def receive_datagram(self, data: bytes, address: tuple, now: float) -> bool:
        """One datagram routed to this session; False if it is malformed
        (dropped, for the endpoint to count: nothing in the session changed)."""
        try:
            packet = decode_packet(data)
        except DecodeError:
            return False
        self._receive_packet(packet, address, len(data), now)
        return True

    def _receive_packet(self, packet: Packet, address: tuple, size: int, now: float) -> None:
        if self.state in (State.DRAINING, State.CLOSED):
            return
        if isinstance(packet, Data):
            self._receive_data(packet, address, size, now)
        elif isinstance(packet, Cookie) and self.is_client:
            if self.state is State.HANDSHAKE and packet.client_cid == self.local_cid \
                    and address == self.peer_address and self._cookie is None:
                self._cookie = packet.cookie
                if self._handshake_tries == 1 and self._handshake_sent_at is not None:
                    self.rtt.update(now - self._handshake_sent_at, 0.0, 0.0)  # Karn: unambiguous
                self._handshake_tries = 0
                self._handshake_send_pending = True
        elif isinstance(packet, Accept) and self.is_client:
            self._receive_accept(packet, address, now)
        elif isinstance(packet, Connect) and not self.is_client:
            # Our ACCEPT was lost: the client asks again.
            if address == self.peer_address and self.state is State.ESTABLISHED:
                self._accept_pending = True
        elif isinstance(packet, Reset) and self.is_client:
            if address == self.peer_address and packet.cid == self.peer_cid:
                self._enter_closed(now, CloseCode.RESET, "the server has no such session", by_peer=True)

    def _receive_accept(self, packet: Accept, address: tuple, now: float) -> None:
        if self.state is not State.HANDSHAKE or packet.client_cid != self.local_cid \
                or address != self.peer_address or self._cookie is None:
            return
        self.peer_cid = packet.server_cid
        self._adopt_parameters(packet.parameters)
        if self._handshake_tries == 1 and self._handshake_sent_at is not None:
            # Karn: only an unambiguous exchange gives an RTT sample.
            self.rtt.update(now - self._handshake_sent_at, 0.0, 0.0)
        self.state = State.ESTABLISHED
        self._handshake_send_pending = False
        self._last_receive_time = now
        self._last_ack_progress = now
        self._keepalive_due = self._next_keepalive(now)
        self._events.append(HandshakeCompleted())

    def _receive_data(self, packet: Data, address: tuple, size: int, now: float) -> None:
        if self.state is State.HANDSHAKE:
            return  # data before ACCEPT: the server will send it again
        if address != self.peer_address and not self._accept_from_new_path(address, size, now):
            self.stats.dropped_from_unvalidated_path += 1
            return
        self.stats.packets_received += 1
        self.stats.bytes_received += size
        self._last_receive_time = now
        if self.state is State.CLOSING:
            self._close_send_pending = True
            return
        pn = packet.packet_number
        largest_before = self._received.largest()
        if not self._received.add(pn):
            self.stats.duplicate_packets += 1
            return
        if largest_before is None or pn > largest_before:
            self._largest_received_time = now
            missing = 0 if largest_before is None else pn - largest_before - 1
            self._note_receive_gaps(missing)
        out_of_order = largest_before is not None and pn != largest_before + 1
        ack_eliciting = False
        for frame in packet.frames:
            if self.state is not State.ESTABLISHED:
                break
            if isinstance(frame, Ack):
                self._receive_ack(frame, now)
            elif isinstance(frame, MessageFrame):
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
                self._path_responses.append(frame.data)
            elif isinstance(frame, PathResponse):
                ack_eliciting = True
                self._receive_path_response(frame, address, now)
        if ack_eliciting:
            self._ack_pending = True
            self._ack_eliciting_unacked += 1
            if out_of_order or self._ack_eliciting_unacked >= ACK_ELICITING_THRESHOLD \
                    or self._receive_loss_estimate > REDUNDANCY_LOSS_THRESHOLD:
                # On a lossy path every ack may be the one that gets through.
                self._ack_deadline = now
            elif self._ack_deadline is None:
                self._ack_deadline = now + self.config.max_ack_delay
        elif out_of_order and self._ack_pending:
            self._ack_deadline = now

    def _note_receive_gaps(self, missing: int) -> None:
        """Estimate loss towards us from gaps in packet numbers (reordering
        counts too, which errs on the side of acking more)."""
        estimate = self._receive_loss_estimate
        for _ in range(min(missing, MAX_GAP_SAMPLES)):
            estimate += (1 - estimate) * LOSS_ESTIMATE_GAIN
        self._receive_loss_estimate = estimate * (1 - LOSS_ESTIMATE_GAIN)

    def _receive_message_frame(self, frame: MessageFrame, now: float) -> None:
        try:
            messages = self._reassembler.receive(frame)
        except ReassemblyError as e:
            self._start_closing(now, CloseCode.PROTOCOL_VIOLATION, str(e))
            return
        self.stats.duplicate_messages = self._reassembler.duplicates
        for data in messages:
            self.stats.messages_delivered += 1
            self._events.append(MessageReceived(data))

    # -- acknowledgements, RTT, loss --------------------------------------------

    def _receive_ack(self, frame: Ack, now: float) -> None:
        largest = frame.largest
        if largest >= self._next_packet_number:
            self._start_closing(now, CloseCode.PROTOCOL_VIOLATION,
                                f"ack of packet {largest} that was never sent")
            return
        if self._largest_acked is None or largest > self._largest_acked:
            self._largest_acked = largest
        sent = self._sent
        if not sent:
            return
        first_outstanding = next(iter(sent))
        newly_acked: list[_SentPacket] = []
        for low, high in frame.ranges:
            if high < first_outstanding:
                break
            for pn in range(max(low, first_outstanding), high + 1):
                packet = sent.pop(pn, None)
                if packet is not None:
                    newly_acked.append(packet)
        if not newly_acked:
            return
        newest = max(newly_acked, key=lambda p: p.packet_number)
        if newest.packet_number == largest:
            self.rtt.update(now - newest.sent_time, frame.delay_us / 1e6, self._max_ack_delay_peer)
        for packet in newly_acked:
            self.congestion.on_packet_acked(packet.size, packet.sent_time, packet.app_limited)
            self._loss_estimate -= self._loss_estimate * LOSS_ESTIMATE_GAIN
            for chunk in packet.chunks:
                chunk.in_flight -= 1
                if not chunk.acked:
                    chunk.acked = True
                    self._chunk_acked(chunk)
        self._pto_count = 0
        self._last_ack_progress = now
        self._detect_lost_packets(now)
        self._maybe_finish_graceful_close(now)

    def _chunk_acked(self, chunk: _Chunk) -> None:
        message = self._outgoing.get(chunk.seq)
        if message is None:
            return
        message.chunks_left -= 1
        if message.chunks_left:
            return
        message.done = True
        outgoing = self._outgoing
        while outgoing:
            seq = next(iter(outgoing))
            head = outgoing[seq]
            if not head.done:
                break
            del outgoing[seq]
            self._flow_used -= head.charge

    def _detect_lost_packets(self, now: float) -> None:
        """RFC 9002 §6.1 (DetectAndRemoveLostPackets)."""
        self._loss_time = None
        if self._largest_acked is None:
            return
        loss_delay = max(K_TIME_THRESHOLD * max(self.rtt.latest_rtt, self.rtt.smoothed_rtt),
                         K_GRANULARITY)
        lost: list[_SentPacket] = []
        for pn, packet in self._sent.items():
            if pn > self._largest_acked:
                break
            # Compare deadlines computed the same way as the timer's, so that
            # waking at the deadline always declares the packet lost (float
            # rounding of ``now - loss_delay`` could otherwise spin forever).
            deadline = packet.sent_time + loss_delay
            if deadline <= now or self._largest_acked >= pn + K_PACKET_THRESHOLD:
                lost.append(packet)
            else:
                if self._loss_time is None or deadline < self._loss_time:
                    self._loss_time = deadline
        if lost:
            self._on_packets_lost(lost, now)

    def _on_packets_lost(self, lost: list[_SentPacket], now: float) -> None:
        for packet in lost:
            del self._sent[packet.packet_number]
            self.stats.packets_lost += 1
            self._loss_estimate += (1 - self._loss_estimate) * LOSS_ESTIMATE_GAIN
            for chunk in packet.chunks:
                chunk.in_flight -= 1
                if not chunk.acked and chunk.in_flight == 0:
                    self._retransmit_queue.append(chunk)
        self.congestion.on_packets_lost([(p.size, p.sent_time) for p in lost], now)

    def _has_ack_eliciting_in_flight(self) -> bool:
        return bool(self._sent)

    def _has_unacked_data(self) -> bool:
        return bool(self._outgoing or self._send_queue)

    # -- timers ------------------------------------------------------------

    def get_timer(self) -> float | None:
        """The next time ``handle_timer`` wants to run, or None."""
        if self.state is State.CLOSED:
            return None
        if self.state in (State.CLOSING, State.DRAINING):
            return self._closing_deadline
        if self.state is State.HANDSHAKE:
            deadline = self.created_at + self.config.handshake_timeout
            if self._handshake_sent_at is not None and not self._handshake_send_pending:
                deadline = min(deadline, self._handshake_retry_time())
            return deadline
        timers = [self._last_receive_time + self.idle_timeout]
        if self._ack_pending and self._ack_deadline is not None:
            timers.append(self._ack_deadline)
        if self._loss_time is not None:
            timers.append(self._loss_time)
        elif self._has_ack_eliciting_in_flight():
            timers.append(self._pto_deadline())
        if self._has_unacked_data() or self._sent:
            timers.append(self._last_ack_progress + self.config.give_up_timeout)
        if self.keepalive_interval:
            timers.append(self._keepalive_due)
        return min(timers)

    def _pto_deadline(self) -> float:
        backoff = 2 ** min(self._pto_count, MAX_PTO_BACKOFF)
        interval = min(self.probe_timeout() * backoff, max(MAX_PROBE_INTERVAL, self.probe_timeout()))
        return self._last_ack_eliciting_sent + interval

    def _handshake_retry_time(self) -> float:
        # Before any RTT sample, retry after the initial RTT (333 ms) rather
        # than a full initial PTO (1 s): a lost HELLO then costs a third of a
        # second, and a spurious retry only a duplicate handshake packet.
        base = self.rtt.probe_timeout(0.0) if self.rtt.has_sample else self.rtt.initial_rtt
        backoff = 2 ** min(self._handshake_tries - 1, MAX_PTO_BACKOFF)
        return self._handshake_sent_at + min(base * backoff, max(MAX_PROBE_INTERVAL, base))

    def _next_keepalive(self, after: float) -> float:
        interval = self.keepalive_interval or self.config.keepalive_interval
        return after + interval * (1 + KEEPALIVE_JITTER * self._rng.random())

    def handle_timer(self, now: float) -> None:
        if self.state is State.CLOSED:
            return
        if self.state in (State.CLOSING, State.DRAINING):
            if self._closing_deadline is not None and now >= self._closing_deadline:
                self.state = State.CLOSED
            return
        if self.state is State.HANDSHAKE:
            if now >= self.created_at + self.config.handshake_timeout:
                self._enter_closed(now, CloseCode.HANDSHAKE_FAILED,
                                   "no answer from the server", by_peer=False)
            elif self._handshake_sent_at is not None and now >= self._handshake_retry_time():
                self._handshake_send_pending = True
            return
        if now >= self._last_receive_time + self.idle_timeout:
            self._enter_closed(now, CloseCode.IDLE_TIMEOUT,
                               f"nothing heard for {self.idle_timeout:g} s", by_peer=False)
            return
        if (self._has_unacked_data() or self._sent) and \
                now >= self._last_ack_progress + self.config.give_up_timeout:
            self._enter_closed(now, CloseCode.PEER_UNRESPONSIVE,
                               f"no acknowledgement for {self.config.give_up_timeout:g} s",
                               by_peer=False)
            return
        if self._loss_time is not None and now >= self._loss_time:
            self._detect_lost_packets(now)
        elif self._loss_time is None and self._sent and now >= self._pto_deadline():
            self._pto_count += 1
            self._probes_pending = PROBES_PER_TIMEOUT
        if self.keepalive_interval and now >= self._keepalive_due:
            self._ping_pending = True
            self._keepalive_due = self._next_keepalive(now)

    # -- building datagrams ------------------------------------------------

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, tuple]]:
        """Everything the session wants on the wire now, with destinations."""
        if self.state is State.HANDSHAKE:
            return self._handshake_datagrams(now)
        if self.state in (State.DRAINING, State.CLOSED):
            return []
        out: list[tuple[bytes, tuple]] = []
        if self.state is State.CLOSING:
            if self._close_send_pending and self._close_frame is not None:
                self._close_send_pending = False
                out.append((self._seal([self._close_frame], now, track=False), self.peer_address))
            return out
        if self._accept_pending:
            self._accept_pending = False
            accept = Accept(self.peer_cid, self.local_cid, self.config.transport_parameters())
            out.append((encode_packet(accept), self.peer_address))
        challenge = self._candidate_challenge(now)
        if challenge is not None:
            out.append(challenge)
        while True:
            datagram = self._build_packet(now)
            if datagram is None:
                break
            out.append((datagram, self.peer_address))
        return out

    def _handshake_datagrams(self, now: float) -> list[tuple[bytes, tuple]]:
        if not self._handshake_send_pending:
            return []
        self._handshake_send_pending = False
        self._handshake_sent_at = now
        self._handshake_tries += 1
        if self._cookie is None:
            datagram = encode_packet(Hello(self.local_cid), pad_to=MIN_HELLO_SIZE)
        else:
            datagram = encode_packet(Connect(self.local_cid, self._cookie,
                                             self.config.transport_parameters()))
        # A retry means something was lost: on such a path two copies make a
        # 10 s handshake all but certain (30% loss: 0.3^2 per copy pair).
        copies = 1 if self._handshake_tries == 1 else HANDSHAKE_RETRY_COPIES
        self.stats.packets_sent += copies
        self.stats.bytes_sent += copies * len(datagram)
        return [(datagram, self.peer_address)] * copies

    def _build_packet(self, now: float) -> bytes | None:
        pn_size = varint_size(self._next_packet_number)
        room = self.config.max_datagram_size - (1 + CONNECTION_ID_SIZE + pn_size)
        frames: list = []
        chunks: list[_Chunk] = []
        ack_due = self._ack_pending and self._ack_deadline is not None and now >= self._ack_deadline
        ack = self._ack_frame(now) if self._ack_pending else None
        if ack is not None:
            room -= frame_size(ack)
        probing = self._probes_pending > 0
        if not probing:
            # Small packets fit where a full one would not: cap the packet at
            # what the window has left rather than refusing to send at all.
            overhead = self.config.max_datagram_size - room
            room = min(room, self.congestion.available() - overhead)
        may_send = probing or room >= MIN_USEFUL_ROOM
        if may_send:
            while self._path_responses and room >= 1 + PATH_DATA_SIZE:
                frames.append(PathResponse(self._path_responses.popleft()))
                room -= 1 + PATH_DATA_SIZE
            if probing:
                # The oldest data in flight first: it is what holds up delivery.
                room = self._add_probe_copies(frames, chunks, room, now)
            room = self._add_chunks(self._retransmit_queue, frames, chunks, room, now,
                                    retransmission=True)
            room = self._add_new_chunks(frames, chunks, room, now)
            self._forget_old_recent(now)
            while self._unreliable_queue and len(self._unreliable_queue[0]) + 10 <= room:
                frame = Unreliable(self._unreliable_queue.popleft())
                frames.append(frame)
                room -= frame_size(frame)
            if chunks and self._redundancy_active():
                room = self._add_redundant_copies(frames, chunks, room, now)
            if (probing or self._ping_pending) and not frames:
                frames.append(Ping())
        if not frames:
            if not ack_due:
                return None
            return self._seal([ack], now, track=False)
        if probing:
            self._probes_pending -= 1
            self.stats.probes_sent += 1
        self._ping_pending = False
        if ack is not None:
            frames.insert(0, ack)
        return self._seal(frames, now, track=True, chunks=chunks)

    def _add_chunks(self, queue: deque, frames: list, chunks: list, room: int, now: float,
                    retransmission: bool) -> int:
        while queue:
            chunk = queue[0]
            if chunk.acked or chunk.in_flight:
                queue.popleft()
                continue
            frame = chunk.frame()
            size = frame_size(frame)
            if size > room:
                break
            queue.popleft()
            self._put_chunk(chunk, frame, frames, chunks, now)
            if retransmission:
                self.stats.retransmitted_frames += 1
                # A repair is as worth protecting as the original: let the
                # next packets carry redundant copies of it too.
                chunk.copies = 1
                if chunk not in self._recent:
                    self._recent.append(chunk)
            room -= size
        return room

    def _add_new_chunks(self, frames: list, chunks: list, room: int, now: float) -> int:
        window = self.peer_parameters.receive_window
        queue = self._send_queue
        while queue:
            chunk = queue[0]
            frame = chunk.frame()
            size = frame_size(frame)
            if size > room:
                break
            if chunk.offset == 0:
                charge = self._outgoing[chunk.seq].charge
                if self._flow_used + charge > window and self._flow_used:
                    break  # flow control: the peer would have to buffer too much
                self._flow_used += charge
            queue.popleft()
            self._put_chunk(chunk, frame, frames, chunks, now)
            self._recent.append(chunk)
            room -= size
        return room

    def _put_chunk(self, chunk: _Chunk, frame: MessageFrame, frames: list, chunks: list,
                   now: float) -> None:
        frames.append(frame)
        chunks.append(chunk)
        chunk.in_flight += 1
        chunk.copies += 1
        chunk.last_sent = now

    def _redundancy_active(self) -> bool:
        return (self.config.redundancy > 0
                and self._loss_estimate > REDUNDANCY_LOSS_THRESHOLD
                and self.congestion.bytes_in_flight * 2 < self.congestion.window)

    def _forget_old_recent(self, now: float) -> None:
        horizon = now - 2 * self.rtt.smoothed_rtt
        recent = self._recent
        while recent and (recent[0].acked or recent[0].last_sent < horizon):
            recent.popleft()

    def _add_redundant_copies(self, frames: list, chunks: list, room: int, now: float) -> int:
        """Resend recent unacked chunks in a packet that goes out anyway."""
        for chunk in list(self._recent):
            if chunk in chunks or chunk.acked or chunk.copies > self.config.redundancy:
                continue
            frame = chunk.frame()
            size = frame_size(frame)
            if size > room:
                break
            self._put_chunk(chunk, frame, frames, chunks, now)
            self.stats.redundant_frames += 1
            room -= size
        return room

    def _add_probe_copies(self, frames: list, chunks: list, room: int, now: float) -> int:
        """A probe carries the oldest data still in flight (RFC 9002 §6.2.4)."""
        for packet in self._sent.values():
            for chunk in packet.chunks:
                if chunk.acked or chunk in chunks:
                    continue
                frame = chunk.frame()
                size = frame_size(frame)
                if size > room:
                    return room
                self._put_chunk(chunk, frame, frames, chunks, now)
                self.stats.retransmitted_frames += 1
                room -= size
            if chunks:
                break
        return room

    def _ack_frame(self, now: float) -> Ack | None:
        ranges = self._received.descending(MAX_ACK_RANGES_SENT)
        if not ranges:
            return None
        delay_us = int(max(0.0, now - self._largest_received_time) * 1e6)
        return Ack(ranges, delay_us)

    def _seal(self, frames: list, now: float, track: bool, chunks: list | None = None) -> bytes:
        pn = self._next_packet_number
        self._next_packet_number += 1
        datagram = encode_packet(Data(self.peer_cid, pn, tuple(frames)))
        size = len(datagram)
        if any(isinstance(f, Ack) for f in frames):
            self._ack_pending = False
            self._ack_deadline = None
            self._ack_eliciting_unacked = 0
        if track:
            if not self._sent and not self._outgoing:
                self._last_ack_progress = now  # a keepalive starts the give-up clock
            if self.keepalive_interval:
                self._keepalive_due = self._next_keepalive(now)
            app_limited = self.congestion.bytes_in_flight + 2 * self.config.max_datagram_size \
                < self.congestion.window and not self._send_queue
            self._sent[pn] = _SentPacket(pn, now, size, chunks or [], app_limited)
            self.congestion.on_packet_sent(size)
            self._last_ack_eliciting_sent = now
        self.stats.packets_sent += 1
        self.stats.bytes_sent += size
        return datagram

    # -- paths (NAT rebinding) -------------------------------------------------

    def _accept_from_new_path(self, address: tuple, size: int, now: float) -> bool:
        """A packet for this session from another address: the client moved
        (NAT rebinding), or someone replays it. Process it, but send nothing
        there but a small challenge until the address proves it is reachable."""
        if self.is_client:
            return False
        candidate = self._candidate
        if candidate is None or candidate.address != address:
            candidate = self._candidate = _CandidatePath(
                address, self._rng.getrandbits(8 * PATH_DATA_SIZE).to_bytes(PATH_DATA_SIZE, "big"))
        candidate.bytes_received += size
        return True

    def _candidate_challenge(self, now: float) -> tuple[bytes, tuple] | None:
        candidate = self._candidate
        if candidate is None:
            return None
        if candidate.challenge_sent_at is not None and \
                now < candidate.challenge_sent_at + self.probe_timeout():
            return None
        pn = self._next_packet_number
        datagram = encode_packet(Data(self.peer_cid, pn, (PathChallenge(candidate.challenge),)))
        if candidate.bytes_sent + len(datagram) > candidate.bytes_received:
            return None  # anti-amplification: never more than it sent us
        self._next_packet_number += 1
        candidate.bytes_sent += len(datagram)
        candidate.challenge_sent_at = now
        self.stats.packets_sent += 1
        self.stats.bytes_sent += len(datagram)
        return datagram, candidate.address

    def _receive_path_response(self, frame: PathResponse, address: tuple, now: float) -> None:
        candidate = self._candidate
        if candidate is None or candidate.address != address or frame.data != candidate.challenge:
            return
        old = self.peer_address
        self.peer_address = address
        self._candidate = None
        self._events.append(PathMigrated(old, address))

    # -- closing -------------------------------------------------------------

    def _maybe_finish_graceful_close(self, now: float) -> None:
        if self._close_after_flush and not self._has_unacked_data():
            code, reason = self._close_after_flush
            self._close_after_flush = None
            self._start_closing(now, code, reason)

    def _unacked_messages(self) -> tuple[bytes, ...]:
        return tuple(m.data for m in self._outgoing.values() if not m.done)

    def _start_closing(self, now: float, code: CloseCode, reason: str) -> None:
        if self.has_ended:
            return
        self._close_frame = Close(int(code), reason)
        self._close_send_pending = True
        self._report_closed(code, reason, by_peer=False)
        self.state = State.CLOSING
        self._closing_deadline = now + CLOSING_PERIOD_PTOS * self.probe_timeout()

    def _enter_draining(self, now: float, frame: Close) -> None:
        try:
            code = CloseCode(frame.code)
        except ValueError:
            code = CloseCode.PROTOCOL_VIOLATION
        self._report_closed(code, frame.reason, by_peer=True)
        self.state = State.DRAINING
        self._closing_deadline = now + CLOSING_PERIOD_PTOS * self.probe_timeout()

    def _enter_closed(self, now: float, code: CloseCode, reason: str, by_peer: bool) -> None:
        """End without a closing period: the peer is gone or never answered."""
        if not self.has_ended:
            self._report_closed(code, reason, by_peer)
        self.state = State.CLOSED

    def _report_closed(self, code: CloseCode, reason: str, by_peer: bool) -> None:
        unacked = self._unacked_messages()
        self._events.append(SessionClosed(code, reason, by_peer, unacked))
        self._send_queue.clear()
        self._retransmit_queue.clear()
        self._unreliable_queue.clear()
        self._recent.clear()
        self._outgoing.clear()
