"""What the server sends: the two replies (``ok``, ``error``) and the
events it pushes unasked, one frozen class per wire ``t``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from twistchat.chat.protocol.codes import ErrorCode
from twistchat.chat.protocol.schema import Event, Kind, Message, payload_field, server_message, wire_field


# ----- replies


@server_message
@attrs.frozen
class Ok(Message):
    """Success reply.  ``result`` holds the request-specific fields, which travel
    flat next to ``t`` and ``id`` on the wire (see the protocol document)."""

    TYPE: ClassVar[str] = "ok"
    id: int = wire_field(Kind.REQUEST_ID)
    result: Mapping[str, Any] = attrs.field(factory=dict, metadata={"kind": None})

    def __getitem__(self, key: str) -> Any:
        return self.result[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.result.get(key, default)


@server_message
@attrs.frozen
class ErrorReply(Message):
    """Failure reply.  ``id`` is null only when the request id could not be read."""

    TYPE: ClassVar[str] = "error"
    id: int | None = wire_field(Kind.REQUEST_ID, optional=True)
    code: str = wire_field(Kind.CODE, default="INTERNAL")
    message: str = wire_field(Kind.ANY, default="")

    @property
    def error_code(self) -> ErrorCode | None:
        """The enum member, or None for a code this client does not know yet."""
        try:
            return ErrorCode(self.code)
        except ValueError:
            return None


# ----- events


@server_message
@attrs.frozen
class MessageEvent(Event):
    TYPE: ClassVar[str] = "message"
    room: str = wire_field(Kind.ROOM)
    nick: str = wire_field(Kind.NICK)
    text: str = wire_field(Kind.TEXT)
    msg_id: int = wire_field(Kind.UINT)
    ts: int = wire_field(Kind.UINT)
    replay: bool | None = wire_field(Kind.BOOL, optional=True)
    """True on a line replayed after a login (PROTOCOL.md C12); absent live."""


@server_message
@attrs.frozen
class DmEvent(Event):
    """A direct message; ``stored`` is true when it waited in the offline mailbox."""

    TYPE: ClassVar[str] = "dm"
    nick: str = wire_field(Kind.NICK)
    to: str = wire_field(Kind.NICK)
    text: str = wire_field(Kind.TEXT)
    dm_id: int = wire_field(Kind.UINT)
    ts: int = wire_field(Kind.UINT)
    stored: bool = wire_field(Kind.BOOL, default=False)


@server_message
@attrs.frozen
class DeliveredEvent(Event):
    """A DM you sent while its recipient was offline has now reached them."""

    TYPE: ClassVar[str] = "delivered"
    dm_id: int = wire_field(Kind.UINT)
    to: str = wire_field(Kind.NICK)
    ts: int = wire_field(Kind.UINT)


@server_message
@attrs.frozen
class DataEvent(Event):
    """Binary data from ``nick``: to you, or to ``room`` if set."""

    TYPE: ClassVar[str] = "data"
    HAS_PAYLOAD: ClassVar[bool] = True
    nick: str = wire_field(Kind.NICK)
    payload: bytes = payload_field()
    room: str | None = wire_field(Kind.ROOM, optional=True)


@server_message
@attrs.frozen
class JoinEvent(Event):
    TYPE: ClassVar[str] = "join"
    room: str = wire_field(Kind.ROOM)
    nick: str = wire_field(Kind.NICK)


@server_message
@attrs.frozen
class PartEvent(Event):
    TYPE: ClassVar[str] = "part"
    room: str = wire_field(Kind.ROOM)
    nick: str = wire_field(Kind.NICK)
    reason: str | None = wire_field(Kind.LINE, optional=True)


@server_message
@attrs.frozen
class QuitEvent(Event):
    """A member left the server; ``timeout`` is true when it was reaped as idle."""

    TYPE: ClassVar[str] = "quit"
    room: str = wire_field(Kind.ROOM)
    nick: str = wire_field(Kind.NICK)
    reason: str | None = wire_field(Kind.LINE, optional=True)
    timeout: bool = wire_field(Kind.BOOL, default=False)


@server_message
@attrs.frozen
class KickEvent(Event):
    """``nick`` was removed from ``room`` by operator ``by`` (sent to the victim too)."""

    TYPE: ClassVar[str] = "kick"
    room: str = wire_field(Kind.ROOM)
    nick: str = wire_field(Kind.NICK)
    by: str = wire_field(Kind.NICK)
    reason: str | None = wire_field(Kind.LINE, optional=True)
    banned: bool = wire_field(Kind.BOOL, default=False)


@server_message
@attrs.frozen
class NickEvent(Event):
    TYPE: ClassVar[str] = "nick"
    room: str = wire_field(Kind.ROOM)
    old: str = wire_field(Kind.NICK)
    new: str = wire_field(Kind.NICK)


@server_message
@attrs.frozen
class AwayEvent(Event):
    """``message`` set: ``nick`` is away; null: back."""

    TYPE: ClassVar[str] = "away"
    room: str = wire_field(Kind.ROOM)
    nick: str = wire_field(Kind.NICK)
    message: str | None = wire_field(Kind.LINE, optional=True)


@server_message
@attrs.frozen
class TopicEvent(Event):
    TYPE: ClassVar[str] = "topic"
    room: str = wire_field(Kind.ROOM)
    topic: str = wire_field(Kind.LINE)
    nick: str = wire_field(Kind.NICK)
    ts: int = wire_field(Kind.UINT)


@server_message
@attrs.frozen
class ModeEvent(Event):
    TYPE: ClassVar[str] = "mode"
    room: str = wire_field(Kind.ROOM)
    nick: str = wire_field(Kind.NICK)
    invite_only: bool = wire_field(Kind.BOOL)
    has_key: bool = wire_field(Kind.BOOL)
    limit: int | None = wire_field(Kind.UINT, optional=True)
    """The room's member cap set by its operator (``/mode +l``); absent: none."""


@server_message
@attrs.frozen
class OpEvent(Event):
    """``nick`` is now the operator of ``room``, handed on by ``by``."""

    TYPE: ClassVar[str] = "op"
    room: str = wire_field(Kind.ROOM)
    nick: str = wire_field(Kind.NICK)
    by: str = wire_field(Kind.NICK)


@server_message
@attrs.frozen
class InvitedEvent(Event):
    TYPE: ClassVar[str] = "invited"
    room: str = wire_field(Kind.ROOM)
    by: str = wire_field(Kind.NICK)


@server_message
@attrs.frozen
class ReplacedEvent(Event):
    """Sent to a session just before it is closed because the same nick logged
    in again elsewhere (newest login wins)."""

    TYPE: ClassVar[str] = "replaced"
    message: str = wire_field(Kind.LINE, default="logged in from another session")


@server_message
@attrs.frozen
class ShutdownEvent(Event):
    TYPE: ClassVar[str] = "shutdown"
    message: str = wire_field(Kind.LINE, default="server shutting down")


# ----- contacts and kept rooms (issue 14, PROTOCOL.md C11, C12)


@server_message
@attrs.frozen
class ContactEvent(Event):
    """A contact's state: at login (one per contact), and when it changes.
    ``state`` is ``online``, ``away`` or ``offline``; ``last_seen`` (ms) is
    when an offline contact's last session ended, null if never seen."""

    TYPE: ClassVar[str] = "contact"
    nick: str = wire_field(Kind.NICK)
    state: str = wire_field(Kind.LINE)
    away: str | None = wire_field(Kind.LINE, optional=True)
    last_seen: int | None = wire_field(Kind.UINT, optional=True)


@server_message
@attrs.frozen
class RejoinedEvent(Event):
    """After a login, one per room the user is still a member of: the room
    as a ``join`` reply describes it (without lines), then ``missed``
    replayed ``message`` events (``replay: true``), oldest first; ``not_kept``
    lines after the user's last seen one were trimmed from history before."""

    TYPE: ClassVar[str] = "rejoined"
    room: str = wire_field(Kind.ROOM)
    topic: str | None = wire_field(Kind.LINE, optional=True)
    topic_by: str | None = wire_field(Kind.NICK, optional=True)
    topic_ts: int | None = wire_field(Kind.UINT, optional=True)
    op: str | None = wire_field(Kind.NICK, optional=True)
    invite_only: bool = wire_field(Kind.BOOL, default=False)
    has_key: bool = wire_field(Kind.BOOL, default=False)
    limit: int | None = wire_field(Kind.UINT, optional=True)
    member_count: int = wire_field(Kind.UINT, default=0)
    members: list | None = wire_field(Kind.ANY, optional=True)
    missed: int = wire_field(Kind.UINT, default=0)
    not_kept: int = wire_field(Kind.UINT, default=0)
