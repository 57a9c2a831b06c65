"""
What the session has to send and has not had acknowledged: reliable
messages cut into chunks (a whole small message, or one fragment of a large
one), the queues they wait in, the flow window, and the frames they are
(re)sent as.

Each lane (PROTOCOL.md §6.7) numbers its messages on its own and has its
own queues and its own cumulative mark (``acked_below``); a packet takes
lane 0's lost and new chunks before any of lane 1's, so a chat line never
waits behind a queued transfer (strict priority, as QUIC schedulers give
streams).

Lost data is never resent in its old packet: a lost chunk waits in its
lane's retransmit queue for a new packet number (RFC 9002 §2). The flow
window, one for the session, bounds the bytes of messages from each lane's
oldest unacknowledged one onwards (what the peer may have to buffer while
it waits for that one) by what the peer said it would buffer, each message
charged as the receiver's reassembly charges it (``reassembly.flow_charge``).

Loss-adaptive redundancy: while the flow is application-limited and loss is
observed, a recent chunk whose acknowledgement is overdue (smoothed RTT +
1.5 x RTT variance after it was sent: ``packet_builder``) is copied, in a
packet of its own if none goes out then, and rides again in the packets
that go out after it until it is acknowledged (at most ``redundancy``
copies), so a loss is repaired well before loss detection would find it,
and a chunk acknowledged in time is not copied at all. It costs nothing
on a clean path.
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Final

import attr

from twistchat.reliable.config import SessionStats
from twistchat.reliable.reassembly import flow_charge
from twistchat.wire.packets import (
    CONNECTION_ID_SIZE, INTERACTIVE_LANE, TAG_SIZE, MessageFields, Unreliable, frame_size,
    message_frame_size,
)

DATA_HEADER_MAX: Final = 1 + CONNECTION_ID_SIZE + 8
MESSAGE_FRAME_MAX_OVERHEAD: Final = 1 + 8 + 8 + 8 + 8
"""Type, sequence number, total, offset, length at their longest (a lane
number's one byte fits in the slack: none of the others reaches 8 bytes
below 2^30)."""
ACK_ROOM: Final = 48
"""Fragments leave this much room so an ACK frame rides along."""
UNRELIABLE_FRAME_OVERHEAD: Final = 10
"""Type byte and a length varint, with slack."""


class Chunk(MessageFields):
    """A whole small message, or one fragment of a large one, as it is
    (re)sent: it goes into packets as its own message frame. A whole
    message's chunk is also its record in ``SendLane.outgoing`` (one object
    per message per member in a fan-out, not two: issue 16)."""

    __slots__ = ("seq", "data", "offset", "total", "lane", "size", "acked", "in_flight", "copies",
                 "last_sent", "charge", "tracked")

    def __init__(self, seq: int, data: bytes, offset: int, total: int | None,
                 lane: int = INTERACTIVE_LANE, charge: int = 0, tracked: bool = False) -> None:
        self.seq = seq
        self.data = data
        self.offset = offset
        self.total = total
        self.lane = lane
        self.size = message_frame_size(seq, len(data), lane, total, offset)
        """Its frame's bytes sent alone and not last: what packing reserves."""
        self.acked = False
        """Acknowledged; for a whole message's chunk, so is its message."""
        self.in_flight = 0
        self.copies = 0
        self.last_sent = 0.0
        # As the message's record (a whole message only): see _OutgoingMessage.
        self.charge = charge
        self.tracked = tracked


@attr.s(auto_attribs=True, slots=True, eq=False)  # native to mypyc (twistchat/compiled.py)
class _OutgoingMessage:
    """A fragmented message's record in ``SendLane.outgoing``."""

    data: bytes
    charge: int
    chunks_left: int
    acked: bool = False
    """All of it acknowledged."""
    tracked: bool = False


@attr.s(auto_attribs=True, slots=True, eq=False)  # native to mypyc (twistchat/compiled.py)
class SendLane:
    """One lane's side of sending: its numbers, its queues, its mark."""

    next_seq: int = 0
    acked_below: int = 0
    """Every message of this lane numbered below this is acknowledged, all
    of it (the oldest unacknowledged one's number, or ``next_seq``): kept
    running, so the chat layer reads "how far has the peer got" in O(1)
    instead of a callback per message."""
    queue: deque[Chunk] | None = None
    """Chunks never sent, in order; None in a session at rest
    (``SendBuffer.rest``: an empty deque is 760 bytes)."""
    retransmit_queue: list[Chunk] = attr.Factory(list)
    """Chunks whose every copy was lost, oldest first: a list, not a deque
    (an empty deque is 760 bytes, an empty list 56: it is empty in nearly
    every session nearly all the time, and short when it is not)."""
    outgoing: dict[int, Chunk | _OutgoingMessage] = attr.Factory(dict)
    """Messages from the oldest unacknowledged one on, by sequence number: a
    whole message's record is its chunk."""


@attr.s(auto_attribs=True, slots=True, eq=False)  # native to mypyc (twistchat/compiled.py)
class SendQueueBudget:
    """Bytes all of an endpoint's sessions may have queued and not yet
    acknowledged together: a SendQ per session times many sessions is no
    bound. Once it is spent, a session asking to queue more than an even
    share (``total / holders``) is refused, as its own SendQ would refuse
    it; one under its share may go on, so the total stays under twice the
    budget and a hoarder is the one closed, not whoever sends next."""

    total: int
    used: int = 0
    holders: int = 0
    """Sessions with anything queued or unacknowledged."""

    def refuses(self, queued: int, adding: int) -> bool:
        return (self.used + adding > self.total
                and queued + adding > self.total // max(1, self.holders))


class SendBuffer:
    __slots__ = (
        "_on_tracked_acked", "budget", "flow_used", "fragment_size", "lanes", "recent", "redundancy",
        "stats", "unacked_bytes", "unreliable_queue", "unreliable_room"
    )
    # One per session: no per-instance dict (issue 16, idle sessions).

    def __init__(self, max_datagram_size: int, redundancy: int, stats: SessionStats,
                 on_tracked_acked: Callable[[int, int], None],
                 budget: SendQueueBudget | None = None) -> None:
        self.fragment_size = max_datagram_size - DATA_HEADER_MAX - TAG_SIZE \
            - MESSAGE_FRAME_MAX_OVERHEAD - ACK_ROOM
        self.unreliable_room = max_datagram_size - DATA_HEADER_MAX - TAG_SIZE - 1 - 8 - ACK_ROOM
        self.redundancy = redundancy
        self.stats = stats
        self._on_tracked_acked = on_tracked_acked
        """Told the lane and sequence number of each tracked message once all of it is acknowledged."""
        self.lanes = [SendLane()]
        """By priority: a packet takes what lane 0 has before lane 1's.
        Lane 0 from the start, the others from their first message (most
        sessions never use the bulk lane)."""
        self.unreliable_queue: list[bytes] = []
        """Unreliable messages waiting for a packet, oldest first (a short
        list: at most ``MAX_UNRELIABLE_QUEUED``)."""
        self.recent: deque[Chunk] | None = None
        """Recently sent chunks: candidates for redundant copies; None
        until the first is sent, and again at rest (``rest``)."""
        self.flow_used = 0
        self.unacked_bytes = 0
        """Bytes of the messages queued or in flight and not acknowledged, kept
        running: back-pressure reads it on every send."""
        self.budget = budget

    def _account(self, delta: int) -> None:
        before = self.unacked_bytes
        self.unacked_bytes = after = before + delta
        budget = self.budget
        if budget is not None:
            budget.used += delta
            budget.holders += (after > 0) - (before > 0)

    # -- what the application queues ------------------------------------

    def queue_message(self, data: bytes, tracked: bool = False, lane: int = INTERACTIVE_LANE) -> int:
        """Its sequence number on ``lane``."""
        lanes = self.lanes
        on_lane = lanes[lane] if lane < len(lanes) else self.lane(lane)
        seq = on_lane.next_seq
        on_lane.next_seq = seq + 1
        piece = self.fragment_size
        queue = on_lane.queue
        if queue is None:
            queue = on_lane.queue = deque()
        if len(data) <= piece:
            chunk = Chunk(seq, data, 0, None, lane, flow_charge(len(data), 1), tracked)
            queue.append(chunk)
            on_lane.outgoing[seq] = chunk
        else:
            chunks = [Chunk(seq, data[i:i + piece], i, len(data), lane)
                      for i in range(0, len(data), piece)]
            queue.extend(chunks)
            on_lane.outgoing[seq] = _OutgoingMessage(data, flow_charge(len(data), len(chunks)),
                                                     len(chunks), tracked=tracked)
        self._account(len(data))
        self.stats.messages_sent += 1
        return seq

    def lane(self, lane: int) -> SendLane:
        """``lane``'s state, made on first use."""
        lanes = self.lanes
        while lane >= len(lanes):
            lanes.append(SendLane())
        return lanes[lane]

    def has_data_to_send(self) -> bool:
        """Chunks waiting for a packet, new or to retransmit."""
        if self.unreliable_queue:
            return True
        for lane in self.lanes:  # a loop, not any(...): this runs for every packet built
            if lane.queue or lane.retransmit_queue:
                return True
        return False

    def has_unacked_data(self) -> bool:
        """Messages queued or sent and not all acknowledged (a queued one is outgoing too)."""
        for lane in self.lanes:  # a loop, not any(...): this runs for every message queued
            if lane.outgoing:
                return True
        return False

    def unsent_chunks(self) -> int:
        return sum(len(lane.queue) for lane in self.lanes if lane.queue)

    def has_unsent(self) -> bool:
        """Chunks never sent on any lane (whether the sender is app-limited)."""
        for lane in self.lanes:  # a loop, not any(...): this runs for every packet sealed
            if lane.queue:
                return True
        return False

    def unacked_messages(self) -> tuple[bytes, ...]:
        """Lane by lane, each in order."""
        return tuple(m.data for lane in self.lanes for m in lane.outgoing.values() if not m.acked)

    def clear(self) -> None:
        for lane in self.lanes:
            lane.queue = None
            lane.retransmit_queue.clear()
            lane.outgoing.clear()
        self.unreliable_queue.clear()
        self.recent = None
        self._account(-self.unacked_bytes)

    def rest(self) -> None:
        """The session is at rest (a keepalive answered, nothing unacknowledged):
        give back the empty structures it would hold for nothing while idle,
        an empty deque's 760 bytes and an emptied dict's table, for every one
        of 100,000 idle sessions (issue 16). The next message makes them again."""
        for lane in self.lanes:
            if not lane.queue:
                lane.queue = None
            if not lane.outgoing:
                lane.outgoing.clear()  # an emptied dict keeps its table until cleared
        if not self.recent:
            self.recent = None

    # -- what recovery reports ----------------------------------------------

    def on_chunks_acked(self, chunks: list[Chunk], in_flight: bool = True) -> None:
        """The chunks of one acknowledged packet: retired in one pass, and
        each lane's head of fully acknowledged messages cleared as it moves
        (a fan-out retires a chunk per member per line: issue 16).
        ``in_flight`` False: the packet had been declared lost (so was no
        longer counted in flight) and was acknowledged after all."""
        lanes = self.lanes
        released = 0
        for chunk in chunks:
            if in_flight:
                chunk.in_flight -= 1
            if chunk.acked:
                continue
            chunk.acked = True
            seq = chunk.seq
            lane = lanes[chunk.lane]
            outgoing = lane.outgoing
            message = outgoing.get(seq)
            if message is None:
                continue
            if message is not chunk:  # a fragment: its message's record counts them
                assert isinstance(message, _OutgoingMessage)  # typed so for mypyc (issue 16)
                message.chunks_left -= 1
                if message.chunks_left:
                    continue
                message.acked = True
            released += len(message.data)
            if message.tracked:
                self._on_tracked_acked(chunk.lane, seq)
            below = lane.acked_below
            if seq != below:
                continue
            # Messages are numbered without gaps, so the head is found by
            # number: no iterator over a dict whose front keeps being deleted.
            while message is not None and message.acked:
                del outgoing[below]
                self.flow_used -= message.charge
                below += 1
                message = outgoing.get(below)
            lane.acked_below = below
        if released:
            self._account(-released)

    def on_chunk_lost(self, chunk: Chunk) -> None:
        chunk.in_flight -= 1
        if not chunk.acked and chunk.in_flight == 0:
            self.lanes[chunk.lane].retransmit_queue.append(chunk)

    # -- filling a packet: each takes the room left and returns what is left ----

    def add_reliable(self, frames: list, chunks: list, room: int, now: float, window: int) -> int:
        """Lane by lane in priority order, its lost chunks then its new ones
        (as far as ``window``, the peer's receive window, allows); a lane
        whose next chunk waits (for room or for the window) holds back the
        lanes after it, so they never take what it waits for."""
        for lane in self.lanes:
            room = self._add_retransmissions(lane.retransmit_queue, frames, chunks, room, now)
            if lane.retransmit_queue:
                break
            room = self._add_new(lane, frames, chunks, room, now, window)
            if lane.queue:
                break
        return room

    def _add_retransmissions(self, queue: list[Chunk], frames: list, chunks: list, room: int,
                             now: float) -> int:
        taken = 0
        for chunk in queue:
            if chunk.acked or chunk.in_flight:
                taken += 1
                continue
            size = chunk.size
            if size > room:
                break
            taken += 1
            _put(chunk, frames, chunks, now)
            self.stats.retransmitted_frames += 1
            # A repair is as worth protecting as the original: let the
            # next packets carry redundant copies of it too.
            chunk.copies = 1
            recent = self.recent
            if recent is None:
                self.recent = deque((chunk,))
            elif chunk not in recent:
                recent.append(chunk)
            room -= size
        del queue[:taken]
        return room

    def _add_new(self, lane: SendLane, frames: list, chunks: list, room: int, now: float,
                 window: int) -> int:
        queue = lane.queue
        if not queue:
            return room
        recent = self.recent
        if recent is None:
            recent = self.recent = deque()
        while queue:
            chunk = queue[0]
            size = chunk.size
            if size > room:
                break
            if chunk.offset == 0:
                charge = lane.outgoing[chunk.seq].charge
                if self.flow_used + charge > window:
                    # Flow control: the peer would have to buffer too much. A
                    # message larger than the whole window waits for it to
                    # grow (a server grows it at login: PROTOCOL.md §6.4).
                    break
                self.flow_used += charge
            queue.popleft()
            _put(chunk, frames, chunks, now)
            recent.append(chunk)
            room -= size
        return room

    def add_unreliable(self, frames: list, room: int) -> int:
        queue = self.unreliable_queue
        while queue and len(queue[0]) + UNRELIABLE_FRAME_OVERHEAD <= room:
            frame = Unreliable(queue.pop(0))
            frames.append(frame)
            room -= frame_size(frame)
        return room

    def forget_old_recent(self, horizon: float) -> None:
        recent = self.recent
        while recent and (recent[0].acked or recent[0].last_sent < horizon):
            recent.popleft()

    def oldest_unrepaired_send(self) -> float | None:
        """When the oldest recent chunk sent once and not acknowledged was
        sent: its repair is due an overdue delay after that. ``recent`` is
        in send order, and a chunk sent once was last sent when appended,
        but for a retransmission of a chunk still in it (it keeps its
        place): then this errs late, never early, and only until that one's
        repair is due (``add_redundant`` copies every overdue chunk)."""
        for chunk in self.recent or ():
            if chunk.copies == 1 and not chunk.acked:
                return chunk.last_sent
        return None

    def add_redundant(self, frames: list, chunks: list, room: int, now: float,
                      overdue_sent: float) -> int:
        """Copy recent unacked chunks whose acknowledgement is overdue: sent
        once, at or before ``overdue_sent``; or already copied once (found
        overdue before, and still unacknowledged), as far as ``redundancy``."""
        for chunk in list(self.recent or ()):
            if chunk in chunks or chunk.acked or chunk.copies > self.redundancy:
                continue
            if chunk.copies == 1 and chunk.last_sent > overdue_sent:
                continue
            size = chunk.size
            if size > room:
                break
            _put(chunk, frames, chunks, now)
            self.stats.redundant_frames += 1
            room -= size
        return room

    def add_probe_copies(self, oldest_first, frames: list, chunks: list, room: int,
                         now: float) -> int:
        """A probe carries the oldest data still in flight (RFC 9002 §6.2.4):
        the unacked chunks of the first of ``oldest_first`` (sent packets) that has any."""
        for packet in oldest_first:
            for chunk in packet.chunks:
                if chunk.acked or chunk in chunks:
                    continue
                size = chunk.size
                if size > room:
                    return room
                _put(chunk, frames, chunks, now)
                self.stats.retransmitted_frames += 1
                room -= size
            if chunks:
                break
        return room


def _put(chunk: Chunk, frames: list, chunks: list, now: float) -> None:
    frames.append(chunk)
    chunks.append(chunk)
    chunk.in_flight += 1
    chunk.copies += 1
    chunk.last_sent = now
