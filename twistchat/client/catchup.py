"""
Room lines shown once each, in order, across joins and reconnects.

A (re-)join's reply carries the room's kept history; while it is on its
way, other members' lines already arrive live. If a live line moved the
"last seen" mark first, the older lines of the history would look seen and
be skipped: a member missed lines after a reconnect that way. So while a
join of a room is in flight its live lines are *held*; the reply's history
(lines after the mark) and the held lines are merged by ``msg_id``, each
id shown once, oldest first, and only then does the mark move, over lines
actually shown. The mark is kept in the state file, for the next run.

A join reply carries only the newest lines that fit one message
(``history_more`` says older kept lines were left out). If the lines after
the mark do not all fit, ``gap`` says where to page ``history`` from;
``arrived`` pages them (its only I/O, through the ``send`` it is given), the
live lines still held, and merges the pages and the reply's lines as one
history, so paging costs no line and shows none twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from twistchat.chat import protocol as p
from twistchat.chat.protocol import fold_room
from twistchat.client.observer import ChatError, Disconnected
from twistchat.client.paging import pages
from twistchat.client.seen import RecentIds
from twistchat.client.state import ClientState

Shown = list[tuple[p.MessageEvent, bool]]
"""Lines to hand to the observer, in order, each with its ``replay`` flag."""


class RoomCatchUp:
    def __init__(self, state: ClientState) -> None:
        self.state = state
        self.seen = RecentIds()
        self._held: dict[str, list[p.MessageEvent]] = {}
        """Room key to the live lines that came while its join was in flight."""

    def catching_up(self, room: str) -> bool:
        return fold_room(room) in self._held

    def begin(self, room: str) -> None:
        """A join of ``room`` is sent: hold its live lines until the reply."""
        self._held.setdefault(fold_room(room), [])

    def live(self, event: p.MessageEvent) -> Shown:
        """A ``message`` event: what to show now (nothing while held, or a repeat)."""
        held = self._held.get(fold_room(event.room))
        if held is not None:
            held.append(event)
            return []
        return self._show([(event, False)])

    def gap(self, room: str, reply: Mapping[str, Any]) -> int | None:
        """The ``since`` to page ``history`` from before the join reply's
        lines can be shown, or None if they hold every kept line after the
        mark."""
        if not reply.get("history_more"):
            return None
        mark = self.state.last_seen.get(fold_room(room), 0)
        history = reply.get("history") or []
        if history and history[0]["msg_id"] <= mark + 1:
            return None  # the lines reach back to the mark (ids only grow)
        return mark

    async def arrived(self, reply: dict[str, Any], send: Callable[..., Any],
                      show: Callable[[Shown], None], report: Callable[[ChatError], None],
                      rejoining: bool = False) -> dict[str, Any]:
        """A join reply: ``show`` its lines and the older ones after the mark
        it had no room for, paged with ``send(History, fields, internal=True)``;
        fires with the reply. A page refused is ``report``ed and what came is
        shown. Cut off (``Disconnected``), the lines stay held for the re-join
        after reconnecting; a re-join's own paging fails with it."""
        room = reply["room"]
        history = list(reply.get("history") or [])
        since = self.gap(room, reply)
        if since is not None:
            older: list[dict[str, Any]] = []
            try:
                await pages(lambda cls, fields: send(cls, fields, internal=True), p.History,
                            {"room": room, "since": since}, older,
                            history[0]["msg_id"] if history else None)
            except Disconnected:
                if rejoining:
                    raise
                return reply
            except ChatError as e:
                report(ChatError(e.code, f"could not catch up in {room}: {e.message}"))
            history = older + history
        show(self.joined(room, history))
        return reply

    def joined(self, room: str, history: Iterable[dict[str, Any]]) -> Shown:
        """The join reply for ``room`` (canonical name): its history after the
        mark and the held live lines, merged, each id once, oldest first."""
        key = fold_room(room)
        mark = self.state.last_seen.get(key, 0)
        lines = [(p.MessageEvent(room=room, nick=entry["nick"], text=entry["text"],
                                 msg_id=entry["msg_id"], ts=entry["ts"]), True)
                 for entry in history if entry["msg_id"] > mark]
        lines += [(event, False) for event in self._held.pop(key, [])]
        lines.sort(key=lambda line: line[0].msg_id)
        return self._show(lines)

    def replayed(self, event: p.MessageEvent) -> Shown:
        """A line the server replays after a login (PROTOCOL.md C12): shown,
        as history, unless seen already in this run or up to the mark kept
        from an earlier one (a server's mark may lag a crash: it errs on
        sending a line again, never on leaving one out)."""
        if event.msg_id <= self.state.last_seen.get(fold_room(event.room), 0):
            self.seen.add(event.msg_id)
            return []
        return self._show([(event, True)])

    def abandon(self, room: str) -> Shown:
        """The join failed (or was refused because we are in the room already):
        release what was held as ordinary live lines."""
        return self._show([(event, False) for event in self._held.pop(fold_room(room), [])])

    def own(self, room: str, msg_id: int) -> None:
        """Our own line, echoed in the ``say`` reply: never show it again. The
        mark moves over it unless older lines of the room may still come."""
        self.seen.add(msg_id)
        if not self.catching_up(room):
            self.state.saw(fold_room(room), msg_id)

    def _show(self, lines: Shown) -> Shown:
        shown = [(event, replay) for event, replay in lines if self.seen.add(event.msg_id)]
        for event, _ in shown:
            self.state.saw(fold_room(event.room), event.msg_id)
        return shown
