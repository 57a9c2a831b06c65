"""
The client's side of typing notices (PROTOCOL.md C11): at most one notice
per target every ``TYPING_SEND_INTERVAL`` seconds while the user types,
sent on the unreliable channel and never held, queued or sent again.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from twistchat.chat.protocol import TYPING_SEND_INTERVAL, TypingNotice, encode, fold_nick, fold_room
from twistchat.chat.protocol.limits import is_valid_room
from twistchat.endpoint.api import TransportError

MAX_TARGETS_REMEMBERED = 64


class TypingPacer:
    def __init__(self, interval: float = TYPING_SEND_INTERVAL) -> None:
        self.interval = interval
        self._last: OrderedDict[str, float] = OrderedDict()
        """Folded target to when a notice last went to it, oldest first."""

    def due(self, to: str, now: float) -> bool:
        """Whether a notice to ``to`` may go now (and note it if so)."""
        key = fold_room(to) if is_valid_room(to) else fold_nick(to)
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            return False
        self._last[key] = now
        self._last.move_to_end(key)
        while len(self._last) > MAX_TARGETS_REMEMBERED:
            self._last.popitem(last=False)
        return True

    def sent(self, to: str) -> None:
        """A line went to ``to``: the next keystroke starts a new notice at once."""
        self._last.pop(fold_room(to) if is_valid_room(to) else fold_nick(to), None)


def send_typing(connection: Any, to: str) -> bool:
    """One notice on the unreliable channel; False if the transport refused it."""
    try:
        connection.send_unreliable(encode(TypingNotice(to=to)))
    except TransportError:
        return False
    return True
