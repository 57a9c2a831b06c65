"""
Receiving side of messages: fragments put back together, duplicates
dropped, and whole messages released strictly in sequence order within
their lane (each lane its own sequence numbers: a message on one lane never
waits for a missing one on another, PROTOCOL.md §6.7). Memory is
bounded by the receive window the peer was told: a peer that overruns it,
or announces a message larger than the agreed cap, is a protocol violation
(and no buffer of the announced size is ever allocated).
"""

from __future__ import annotations

from typing import Final

import attr

from twistchat.wire.packets import LANE_COUNT, MessageFrame

MESSAGE_ACCOUNTING_OVERHEAD: Final = 64
"""Each message counts its length plus this against the flow window, so
that even empty messages are bounded in number (and the count is close to
what a buffered message really costs in memory)."""
FRAGMENT_ACCOUNTING_OVERHEAD: Final = 64
"""Each fragment of a fragmented message counts this too, so tiny fragments
cannot hold many times the window in memory. The sender charges the same
(``flow_charge``), so an honest sender never overruns the window."""


def flow_charge(length: int, fragments: int) -> int:
    """What one message counts against the receive window, at most."""
    extra = fragments * FRAGMENT_ACCOUNTING_OVERHEAD if fragments > 1 else 0
    return length + MESSAGE_ACCOUNTING_OVERHEAD + extra


class ReassemblyError(Exception):
    """The peer broke the message rules; the session closes with PROTOCOL_VIOLATION."""


class BudgetExhausted(ReassemblyError):
    """The endpoint's shared reassembly memory is spent; the session closes
    with SERVER_BUSY (the peer may have broken no rule)."""


@attr.s(auto_attribs=True, slots=True, eq=False)  # native to mypyc (twistchat/compiled.py)
class ReassemblyBudget:
    """Bytes all the sessions of an endpoint may hold in reassembly together:
    a per-session window times unlimited sessions is no bound."""

    total: int
    used: int = 0


@attr.s(auto_attribs=True, slots=True, eq=False)  # native to mypyc (twistchat/compiled.py)
class _Partial:
    total: int
    pieces: dict[int, bytes] = attr.Factory(dict)
    received: int = 0

    def add(self, offset: int, data: bytes) -> None:
        if offset in self.pieces:
            return
        self.pieces[offset] = data
        self.received += len(data)

    def assemble(self) -> bytes | None:
        if self.received < self.total:
            return None
        out = bytearray()
        for offset in sorted(self.pieces):
            piece = self.pieces[offset]
            if offset < len(out):  # overlapping fragments: a misbehaving peer
                raise ReassemblyError("overlapping fragments")
            if offset > len(out):
                return None
            out += piece
        return bytes(out) if len(out) == self.total else None


@attr.s(auto_attribs=True, slots=True, eq=False)  # native to mypyc (twistchat/compiled.py)
class LaneReassembly:
    """One lane's messages on their way: the next to deliver, and those
    waiting for it (whole, or in fragments)."""

    next_seq: int = 0
    complete: dict[int, bytes] = attr.Factory(dict)
    partial: dict[int, _Partial] = attr.Factory(dict)


@attr.s(auto_attribs=True, slots=True, eq=False)  # native to mypyc (twistchat/compiled.py)
class MessageReassembler:
    """Every lane of one session; they share one window and one budget."""

    max_message_size: int
    window: int
    buffered_bytes: int = 0
    lanes: list[LaneReassembly] = attr.Factory(lambda: [LaneReassembly()])
    """Lane 0 from the start, the others from their first message: most
    sessions never use the bulk lane, and 100,000 idle sessions each
    holding an empty one is memory for nothing."""
    duplicates: int = 0
    budget: ReassemblyBudget | None = None

    def receive(self, frame: MessageFrame) -> list[bytes]:
        """Take one frame; return the messages of its lane now deliverable, in order."""
        if frame.lane >= LANE_COUNT:
            raise ReassemblyError(f"message on lane {frame.lane}: there are {LANE_COUNT}")
        lanes = self.lanes
        while frame.lane >= len(lanes):
            lanes.append(LaneReassembly())
        lane = lanes[frame.lane]
        seq = frame.seq
        if seq < lane.next_seq or seq in lane.complete:
            self.duplicates += 1
            return []
        if frame.total is None:
            self._check_size(len(frame.data))
            self._charge(len(frame.data) + MESSAGE_ACCOUNTING_OVERHEAD)
            lane.complete[seq] = frame.data
        else:
            self._check_size(frame.total)
            partial = lane.partial.get(seq)
            if partial is None:
                self._charge(MESSAGE_ACCOUNTING_OVERHEAD)
                partial = lane.partial[seq] = _Partial(frame.total)
            elif partial.total != frame.total:
                raise ReassemblyError(f"message {seq} announced as {partial.total} and {frame.total} bytes")
            if frame.offset in partial.pieces:
                self.duplicates += 1
                return []
            self._charge(len(frame.data) + FRAGMENT_ACCOUNTING_OVERHEAD)
            partial.add(frame.offset, frame.data)
            whole = partial.assemble()
            if whole is None:
                return []
            del lane.partial[seq]
            # Now one bytes object: the per-fragment cost is gone.
            self._uncharge(len(partial.pieces) * FRAGMENT_ACCOUNTING_OVERHEAD)
            lane.complete[seq] = whole
        return self._release(lane)

    def _check_size(self, size: int) -> None:
        if size > self.max_message_size:
            raise ReassemblyError(f"message of {size} bytes over the cap of {self.max_message_size}")

    def _charge(self, size: int) -> None:
        self.buffered_bytes += size
        budget = self.budget
        if budget is not None:
            budget.used += size  # charged together, so ``discard`` gives back exactly this
        if self.buffered_bytes > self.window:
            raise ReassemblyError(f"peer overran the receive window of {self.window} bytes")
        if budget is not None and budget.used > budget.total:
            raise BudgetExhausted(f"reassembly budget of {budget.total} bytes spent")

    def _uncharge(self, size: int) -> None:
        self.buffered_bytes -= size
        if self.budget is not None:
            self.budget.used -= size

    def discard(self) -> None:
        """Forget everything held (the session ended) and give it back to the budget."""
        self._uncharge(self.buffered_bytes)
        for lane in self.lanes:
            lane.complete.clear()
            lane.partial.clear()

    def rest(self) -> None:
        """An idle session gives back its emptied dicts' tables (a dict keeps
        its table when its last item goes, until cleared: issue 16)."""
        for lane in self.lanes:
            if not lane.complete:
                lane.complete.clear()
            if not lane.partial:
                lane.partial.clear()

    def _release(self, lane: LaneReassembly) -> list[bytes]:
        ready = []
        while lane.next_seq in lane.complete:
            data = lane.complete.pop(lane.next_seq)
            self._uncharge(len(data) + MESSAGE_ACCOUNTING_OVERHEAD)
            ready.append(data)
            lane.next_seq += 1
        return ready
