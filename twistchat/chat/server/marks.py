"""
Each member's delivery mark in a room (``memberships``' docstring says what a
mark is for) and a room line's copies: sent to every member and remembered
on each one's mark.  This is the per-member loop of a fan-out, so it is
compiled with the transport (``twistchat/compiled.py``, issue 16): the marks
are native objects, and the loop calls the sessions' ``send_message``
without a Python call per member.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Final

from twistchat.endpoint.broadcast import send_to_each

NEVER_ACKED: Final = None
"""What ``send_encoded`` returns for a line the transport would not take (over
the peer's cap, or the session ending): no mark moves over it, nor over any
later line, on that session, so later lines are not even remembered."""

HAD: Final = -1
"""The sequence number of a line the user has without its transport's word
(its own ``say``, answered with it; a replay part already acknowledged)."""

TRIM_AT: Final = 64
"""Lines a mark holds before it trims those already acknowledged as it
records more (between flushes); after a trim, the next comes at twice what
was left, so a member with many lines unacknowledged is not trimmed at every
line.  What a mark holds is bounded by the larger of this and twice what the
transport has not acknowledged (bounded by the SendQ); nothing after a
refused line (``NEVER_ACKED``)."""


class DeliveryMark:
    """One session's mark in one room: the newest ``msg_id`` with it and
    every line sent before it acknowledged by the transport.  A line costs
    one append; the mark is worked out from the session's ``acked_below``
    when it is needed (``advance``), O(1) a line amortized."""

    __slots__ = ("mark", "_sent", "stuck", "_trim_at")

    def __init__(self, mark: int = 0) -> None:
        self.mark = mark
        self._sent: deque[tuple[int, int]] = deque()
        """(transport seq, msg_id) of lines sent and not yet under the mark,
        in the order sent."""
        self.stuck = False
        """A line was refused (NEVER_ACKED): the mark stops before it for good."""
        self._trim_at = TRIM_AT

    def sent(self, seq: int | None, msg_id: int) -> bool:
        """Remember a line sent (``seq`` from ``send_encoded``, or ``HAD``);
        True if it is time to trim (``advance``)."""
        if self.stuck:
            return False
        if seq is NEVER_ACKED:
            self.stuck = True
            return False
        sent = self._sent
        sent.append((seq, msg_id))
        return len(sent) > self._trim_at

    def advance(self, acked_below: int) -> bool:
        """Move the mark over every line the transport has acknowledged (seq
        below ``acked_below``), in order; True if it moved."""
        sent, mark = self._sent, self.mark
        while sent and sent[0][0] < acked_below:
            msg_id = sent.popleft()[1]
            if msg_id > mark:
                mark = msg_id
        moved, self.mark = mark != self.mark, mark
        self._trim_at = max(TRIM_AT, 2 * len(sent))
        return moved

    @property
    def waiting(self) -> bool:
        """Lines sent that are not under the mark yet."""
        return bool(self._sent)


def deliver_copies(members: list[Any], sender: Any, data: bytes, msg_id: int, room_key: str,
                   marks: dict[Any, dict[str, DeliveryMark]],
                   waiting: set[Any]) -> list[tuple[Any, DeliveryMark]]:
    """``data`` (the room line ``msg_id``) to every one of ``members`` (users
    of a room, whose ``session.connection`` carries it) but ``sender``, each
    copy remembered on the member's mark in ``room_key`` (made if it has
    none) with its transport sequence number; the sender's own line counts
    as had (its ``say`` was answered with it).  Every member is added to
    ``waiting``.  Returns the (member, mark) pairs due a trim (``advance``)."""
    connections: list[Any] = []
    for member in members:
        connections.append(None if member is sender else member.session.connection)
    seqs = send_to_each(connections, data)
    due: list[tuple[Any, DeliveryMark]] = []
    for index, member in enumerate(members):
        rooms = marks.get(member)
        if rooms is None:
            rooms = marks[member] = {}
        mark = rooms.get(room_key)
        if mark is None:
            mark = rooms[room_key] = DeliveryMark()
        if mark.sent(HAD if member is sender else seqs[index], msg_id):
            due.append((member, mark))
        waiting.add(member)
    return due
