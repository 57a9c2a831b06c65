"""
Rooms the server keeps for us (PROTOCOL.md C12).  After every login the
server puts the nick back in its rooms: one ``rejoined`` event per room,
then the lines missed since the nick's mark (``message`` events with
``replay: true``), then live lines; ``part`` is what ends a membership.
So the client re-joins nothing: a room the server did not put it back in
is no longer its own (its re-join is kept for a server whose login reply
has no ``rooms``, which keeps no memberships), and shows each replayed line
unless it saw it in this run or an earlier one (the marks in its state
file: ``catchup.RoomCatchUp.replayed``).

The login reply's ``rooms`` says how many rooms follow; the server puts
them back before it takes the session's next request, so the answer to a
request sent after the login reply comes after them all.
"""

from __future__ import annotations

from twistchat.chat import protocol as p
from twistchat.chat.protocol import fold_room


class KeptRooms:
    def __init__(self, rooms: dict[str, str]) -> None:
        self._rooms = rooms
        """The client's rooms (folded name to canonical), shared with it."""
        self.restored: set[str] = set()
        """Rooms the server put us back in on this session."""

    def new_session(self) -> None:
        self.restored.clear()

    def rejoined(self, event: p.RejoinedEvent) -> None:
        key = fold_room(event.room)
        self._rooms[key] = event.room
        self.restored.add(key)

    def was_restored(self, room: str) -> bool:
        return fold_room(room) in self.restored

    def not_restored(self) -> list[str]:
        """After a server that keeps memberships put us back in our rooms:
        the rooms we thought we were in that it did not (the nick parted
        them from another client, or was banned), no longer ours."""
        gone = [name for key, name in self._rooms.items() if key not in self.restored]
        for name in gone:
            del self._rooms[fold_room(name)]
        return gone
