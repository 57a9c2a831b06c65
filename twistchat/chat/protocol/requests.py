"""Every request a client may send: one frozen class per wire ``t``, answered
by exactly one ``ok`` or ``error`` reply carrying the request's ``id``."""

from __future__ import annotations

from typing import ClassVar

import attrs

from twistchat.chat.protocol.schema import Kind, Request, payload_field, request, wire_field


@request
@attrs.frozen
class Login(Request):
    """Log in as ``nick``; the first login registers it.  Give ``password`` to
    register with (or log in by) a password, ``secret`` to log in with the secret
    a password-less registration returned, or neither to register password-less."""

    TYPE: ClassVar[str] = "login"
    id: int = wire_field(Kind.REQUEST_ID)
    nick: str = wire_field(Kind.NICK)
    password: str | None = wire_field(Kind.SECRET, optional=True)
    secret: str | None = wire_field(Kind.SECRET, optional=True)


@request
@attrs.frozen
class SetPassword(Request):
    """Set or change the password of the logged-in nick; ``current`` is the
    credential it logs in with now (its password, or the secret of a
    password-less registration): ``BAD_CREDENTIAL`` if wrong."""

    TYPE: ClassVar[str] = "set_password"
    id: int = wire_field(Kind.REQUEST_ID)
    password: str = wire_field(Kind.SECRET)
    current: str = wire_field(Kind.SECRET)


@request
@attrs.frozen
class Create(Request):
    """Create a private group with a random id and join it as operator."""

    TYPE: ClassVar[str] = "create"
    id: int = wire_field(Kind.REQUEST_ID)


@request
@attrs.frozen
class Join(Request):
    TYPE: ClassVar[str] = "join"
    id: int = wire_field(Kind.REQUEST_ID)
    room: str = wire_field(Kind.ROOM)
    key: str | None = wire_field(Kind.SECRET, optional=True)


@request
@attrs.frozen
class Part(Request):
    TYPE: ClassVar[str] = "part"
    id: int = wire_field(Kind.REQUEST_ID)
    room: str = wire_field(Kind.ROOM)
    reason: str | None = wire_field(Kind.LINE, optional=True)


@request
@attrs.frozen
class Say(Request):
    """A line to a room; ``idem`` makes a resend safe (PROTOCOL.md C2)."""

    TYPE: ClassVar[str] = "say"
    id: int = wire_field(Kind.REQUEST_ID)
    room: str = wire_field(Kind.ROOM)
    text: str = wire_field(Kind.TEXT)
    idem: str | None = wire_field(Kind.IDEM, optional=True)


@request
@attrs.frozen
class Dm(Request):
    """A direct message; ``idem`` makes a resend safe (PROTOCOL.md C2)."""

    TYPE: ClassVar[str] = "dm"
    id: int = wire_field(Kind.REQUEST_ID)
    to: str = wire_field(Kind.NICK)
    text: str = wire_field(Kind.TEXT)
    idem: str | None = wire_field(Kind.IDEM, optional=True)


@request
@attrs.frozen
class Data(Request):
    """Opaque binary relay to an online nick (``to``) or to the other members
    of a room (``room``): exactly one of the two; the payload follows the newline."""

    TYPE: ClassVar[str] = "data"
    HAS_PAYLOAD: ClassVar[bool] = True
    id: int = wire_field(Kind.REQUEST_ID)
    to: str | None = wire_field(Kind.NICK, optional=True)
    idem: str | None = wire_field(Kind.IDEM, optional=True)
    payload: bytes = payload_field()
    room: str | None = wire_field(Kind.ROOM, optional=True)


@request
@attrs.frozen
class Topic(Request):
    """Without ``topic``: read it.  With it: set it (``""`` clears); operator only."""

    TYPE: ClassVar[str] = "topic"
    id: int = wire_field(Kind.REQUEST_ID)
    room: str = wire_field(Kind.ROOM)
    topic: str | None = wire_field(Kind.LINE, optional=True)


@request
@attrs.frozen
class Who(Request):
    """A room's members, one page (PROTOCOL.md C6, "Paging"): in folded-nick
    order, those after the nick ``after`` (from the start if absent)."""

    TYPE: ClassVar[str] = "who"
    id: int = wire_field(Kind.REQUEST_ID)
    room: str = wire_field(Kind.ROOM)
    after: str | None = wire_field(Kind.NICK, optional=True)


@request
@attrs.frozen
class Rooms(Request):
    """The room list, one page: in folded-name order, the rooms after the
    room ``after`` (from the start if absent)."""

    TYPE: ClassVar[str] = "rooms"
    id: int = wire_field(Kind.REQUEST_ID)
    after: str | None = wire_field(Kind.ROOM, optional=True)


@request
@attrs.frozen
class Nick(Request):
    TYPE: ClassVar[str] = "nick"
    id: int = wire_field(Kind.REQUEST_ID)
    nick: str = wire_field(Kind.NICK)


@request
@attrs.frozen
class Away(Request):
    """With ``message``: away.  Without: back."""

    TYPE: ClassVar[str] = "away"
    id: int = wire_field(Kind.REQUEST_ID)
    message: str | None = wire_field(Kind.LINE, optional=True)


@request
@attrs.frozen
class Ping(Request):
    TYPE: ClassVar[str] = "ping"
    id: int = wire_field(Kind.REQUEST_ID)


@request
@attrs.frozen
class History(Request):
    """Room messages with ``msg_id`` greater than ``since`` (all kept ones if
    absent), oldest first: of the newest ``limit`` of them, as many as fit
    one reply (``more`` says whether some were left for the next page)."""

    TYPE: ClassVar[str] = "history"
    id: int = wire_field(Kind.REQUEST_ID)
    room: str = wire_field(Kind.ROOM)
    since: int | None = wire_field(Kind.UINT, optional=True)
    limit: int | None = wire_field(Kind.UINT, optional=True)


@request
@attrs.frozen
class Kick(Request):
    TYPE: ClassVar[str] = "kick"
    id: int = wire_field(Kind.REQUEST_ID)
    room: str = wire_field(Kind.ROOM)
    nick: str = wire_field(Kind.NICK)
    reason: str | None = wire_field(Kind.LINE, optional=True)


@request
@attrs.frozen
class Ban(Request):
    TYPE: ClassVar[str] = "ban"
    id: int = wire_field(Kind.REQUEST_ID)
    room: str = wire_field(Kind.ROOM)
    nick: str = wire_field(Kind.NICK)
    reason: str | None = wire_field(Kind.LINE, optional=True)


@request
@attrs.frozen
class Unban(Request):
    TYPE: ClassVar[str] = "unban"
    id: int = wire_field(Kind.REQUEST_ID)
    room: str = wire_field(Kind.ROOM)
    nick: str = wire_field(Kind.NICK)


@request
@attrs.frozen
class Mode(Request):
    """Change room settings; absent fields stay unchanged; ``key: ""`` removes the key,
    ``limit: 0`` the member cap (``/mode +l N``: at most the server's members per room)."""

    TYPE: ClassVar[str] = "mode"
    id: int = wire_field(Kind.REQUEST_ID)
    room: str = wire_field(Kind.ROOM)
    invite_only: bool | None = wire_field(Kind.BOOL, optional=True)
    key: str | None = wire_field(Kind.LINE, optional=True)
    limit: int | None = wire_field(Kind.UINT, optional=True)


@request
@attrs.frozen
class Invite(Request):
    TYPE: ClassVar[str] = "invite"
    id: int = wire_field(Kind.REQUEST_ID)
    room: str = wire_field(Kind.ROOM)
    nick: str = wire_field(Kind.NICK)


@request
@attrs.frozen
class Op(Request):
    """Hand operator status on to another member (you lose it)."""

    TYPE: ClassVar[str] = "op"
    id: int = wire_field(Kind.REQUEST_ID)
    room: str = wire_field(Kind.ROOM)
    nick: str = wire_field(Kind.NICK)


@request
@attrs.frozen
class Quit(Request):
    TYPE: ClassVar[str] = "quit"
    id: int = wire_field(Kind.REQUEST_ID)
    reason: str | None = wire_field(Kind.LINE, optional=True)


# ----- contacts (issue 14, PROTOCOL.md C11): a watch list kept by the server


@request
@attrs.frozen
class Watch(Request):
    """Add a registered nick to your contacts (at most ``max_contacts``);
    watching a nick already watched changes nothing and answers the same."""

    TYPE: ClassVar[str] = "watch"
    id: int = wire_field(Kind.REQUEST_ID)
    nick: str = wire_field(Kind.NICK)


@request
@attrs.frozen
class Unwatch(Request):
    """Remove a nick from your contacts (one not there: answered the same)."""

    TYPE: ClassVar[str] = "unwatch"
    id: int = wire_field(Kind.REQUEST_ID)
    nick: str = wire_field(Kind.NICK)


@request
@attrs.frozen
class Contacts(Request):
    """Your contacts and their state, one page: in folded-nick order, those
    after the nick ``after`` (from the start if absent)."""

    TYPE: ClassVar[str] = "contacts"
    id: int = wire_field(Kind.REQUEST_ID)
    after: str | None = wire_field(Kind.NICK, optional=True)
