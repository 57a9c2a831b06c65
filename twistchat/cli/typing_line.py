"""
Who is typing, for the terminal's status line (PROTOCOL.md C11): each
notice shows for ``TYPING_SHOWN_FOR`` seconds after the last one, and goes
at once when its sender's line arrives. Pure: time is passed in.
"""

from __future__ import annotations

from twistchat.chat import protocol as p
from twistchat.chat.protocol import TYPING_SHOWN_FOR, fold_nick

MAX_NAMED = 3
"""More typists than this are counted, not named."""


class TypingBoard:
    def __init__(self, shown_for: float = TYPING_SHOWN_FOR) -> None:
        self.shown_for = shown_for
        self._until: dict[tuple[str, str | None], tuple[str, float]] = {}
        """(folded nick, room or None for a DM) to (nick, when it expires)."""

    def noticed(self, event: p.TypingEvent, now: float) -> None:
        self._until[(fold_nick(event.nick), event.room)] = (event.nick, now + self.shown_for)

    def spoke(self, nick: str, room: str | None) -> None:
        """``nick``'s line (in ``room``, or a DM) arrived: no longer typing it."""
        self._until.pop((fold_nick(nick), room), None)

    def text(self, now: float) -> str:
        """``alice is typing in #tea``, ``bob is typing to you``, or ``""``."""
        self._until = {k: v for k, v in self._until.items() if v[1] > now}
        phrases = [f"{nick} is typing " + (f"in {room}" if room else "to you")
                   for (_, room), (nick, _) in sorted(self._until.items(), key=lambda kv: kv[1][1])]
        if len(phrases) > MAX_NAMED:
            phrases = phrases[:MAX_NAMED] + [f"{len(phrases) - MAX_NAMED} more typing"]
        return "; ".join(phrases)

    def next_change(self) -> float | None:
        """When the text next changes by itself (a notice expires), or None."""
        return min((until for _, until in self._until.values()), default=None)
