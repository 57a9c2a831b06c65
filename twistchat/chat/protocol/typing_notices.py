"""
Typing notices (IRCv3 ``+typing``, PROTOCOL.md C11): "I am typing to this
room or nick". They travel as *unreliable* transport messages, one JSON
object each, never as requests: nothing answers them, nothing resends them,
and a lost one costs only a notice that would have expired anyway.

    client -> server   {"t":"typing","to":"#tea"}         (or "to":"bob")
    server -> members  {"t":"typing","nick":"alice","to":"#tea"}
    server -> bob      {"t":"typing","nick":"alice","to":"bob"}   (a DM)
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from twistchat.chat.protocol.codec import _parse, encode
from twistchat.chat.protocol.codes import ErrorCode
from twistchat.chat.protocol.errors import ChatProtocolError
from twistchat.chat.protocol.limits import is_valid_nick, is_valid_room
from twistchat.chat.protocol.schema import Event, Kind, Message, wire_field

TYPING = "typing"
TYPING_SEND_INTERVAL = 3.0
"""A client sends at most one notice per target this often while its user types."""
TYPING_SHOWN_FOR = 6.0
"""A receiver shows a notice this long after the last one (two intervals:
one lost notice does not blank it)."""
MAX_TYPING_BYTES = 256
"""A notice is far smaller; anything larger is not one (and must fit a datagram)."""


@attrs.frozen
class TypingNotice(Message):
    """Client to server: the user is typing to ``to`` (a room, or a nick for a DM)."""

    TYPE: ClassVar[str] = TYPING
    to: str = wire_field(Kind.ANY)


@attrs.frozen
class TypingEvent(Event):
    """Server to client: ``nick`` is typing to ``to`` (the room, or your nick for a DM)."""

    TYPE: ClassVar[str] = TYPING
    nick: str = wire_field(Kind.NICK)
    to: str = wire_field(Kind.ANY)

    @property
    def room(self) -> str | None:
        """The room it is typed to; None for a DM."""
        return self.to if is_valid_room(self.to) else None


def is_target(to: Any) -> bool:
    return is_valid_room(to) or is_valid_nick(to)


def _fields(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_TYPING_BYTES:
        raise ChatProtocolError(ErrorCode.TOO_LARGE, "not a typing notice: too large")
    obj, payload = _parse(data, None)
    if obj.get("t") != TYPING or payload is not None:
        raise ChatProtocolError(ErrorCode.UNKNOWN_TYPE, "not a typing notice")
    if not is_target(obj.get("to")):
        raise ChatProtocolError(ErrorCode.BAD_FIELD, "to must be a room or a nick")
    return obj


def decode_typing_notice(data: bytes) -> TypingNotice:
    """What a client sent unreliably; raises only ChatProtocolError."""
    return TypingNotice(to=_fields(data)["to"])


def decode_typing_event(data: bytes) -> TypingEvent:
    """What the server sent unreliably; raises only ChatProtocolError."""
    obj = _fields(data)
    if not is_valid_nick(obj.get("nick")):
        raise ChatProtocolError(ErrorCode.BAD_NICK, "nick must be a nickname")
    return TypingEvent(nick=obj["nick"], to=obj["to"])


__all__ = ["MAX_TYPING_BYTES", "TYPING", "TYPING_SEND_INTERVAL", "TYPING_SHOWN_FOR",
           "TypingEvent", "TypingNotice", "decode_typing_event", "decode_typing_notice", "encode"]
