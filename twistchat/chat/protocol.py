"""
The twistchat application protocol: one codec shared by server and client.

Wire form (docs/PROTOCOL.md Part 2 is the normative text): every reliable
transport message is one UTF-8 JSON object, optionally followed by a single
``b"\\n"`` and an opaque binary payload::

    {"t":"say","id":7,"room":"#tea","text":"hello"}
    {"t":"data","id":8,"to":"bob"}\\n<raw bytes>

``json.dumps`` never emits a raw newline, so the first ``b"\\n"`` always ends
the JSON part; binary data is relayed as-is instead of costing 33 % in
base64.  Every request carries a client-chosen integer ``id``; the server
answers each request with exactly one ``ok`` or ``error`` reply carrying that
id.  Server-initiated events carry no id.

Messages are attrs frozen classes.  Each field declares a *kind* in its
metadata; one generic encoder/decoder walks those declarations, so adding a
message type is declaring a class, and validation cannot drift from the
schema.  Decoding arbitrary bytes raises only :class:`ChatProtocolError`.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

PROTOCOL_VERSION = 1

# ---------------------------------------------------------------- limits

NICK_MAX_LENGTH = 32
ROOM_NAME_MAX_LENGTH = 50
"""Characters after the leading ``#`` of a public room name."""
GROUP_ID_LENGTH = 8
GROUP_ID_ALPHABET = "ABCDEFGHIJKLMNPQRSTUVWXYZ123456789"
"""A-Z and 1-9 without O and 0, so ids survive being read aloud or retyped."""
LINE_MAX_BYTES = 512
"""Topics, reasons, away messages: one short line."""
SECRET_MAX_LENGTH = 256
PASSWORD_MIN_LENGTH = 8
DEFAULT_MAX_TEXT_BYTES = 4096
DEFAULT_MAX_PAYLOAD_BYTES = 65536
HARD_MAX_TEXT_BYTES = 1 << 20
"""Upper bound on what any configuration may allow, so the header cap is finite."""
MAX_REQUEST_ID = (1 << 53) - 1
"""Ids stay exact in every JSON implementation (IEEE doubles)."""
JSON_OVERHEAD_BYTES = 8192
"""Room for field names and short fields on top of escaped text."""

NICK_PATTERN = re.compile(r"[A-Za-z_\[\]{}|^`][A-Za-z0-9_\-\[\]{}|^`]{0,%d}\Z" % (NICK_MAX_LENGTH - 1))
ROOM_PATTERN = re.compile(r"#[A-Za-z0-9_.\-]{1,%d}\Z" % ROOM_NAME_MAX_LENGTH)
GROUP_PATTERN = re.compile(r"[%s]{%d}\Z" % (GROUP_ID_ALPHABET, GROUP_ID_LENGTH))
CODE_PATTERN = re.compile(r"[A-Z][A-Z0-9_]{0,31}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TEXT_FORBIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
"""Message text may hold tabs and newlines, not other C0 controls."""

_NICK_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ[]", "abcdefghijklmnopqrstuvwxyz{}")


def fold_nick(nick: str) -> str:
    """Case-fold a nickname as IRC's rfc1459 mapping does: ASCII letters to lower
    case and ``[]`` to ``{}``.  Two nicks are the same identity iff their folds match."""
    return nick.translate(_NICK_FOLD)


def is_valid_nick(nick: object) -> bool:
    return isinstance(nick, str) and NICK_PATTERN.match(nick) is not None


def is_group_id(room: str) -> bool:
    return GROUP_PATTERN.match(room) is not None


def is_valid_room(room: object) -> bool:
    """``#name`` public room or an 8-character private group id."""
    return isinstance(room, str) and (ROOM_PATTERN.match(room) is not None or is_group_id(room))


def fold_room(room: str) -> str:
    """Public room names are case-insensitive (ASCII); group ids are upper case already."""
    return room.lower() if room.startswith("#") else room


# ---------------------------------------------------------------- errors


class ErrorCode(enum.StrEnum):
    """The one error vocabulary: machine codes carried in ``error`` replies."""

    BAD_MESSAGE = "BAD_MESSAGE"
    UNKNOWN_TYPE = "UNKNOWN_TYPE"
    BAD_FIELD = "BAD_FIELD"
    TOO_LARGE = "TOO_LARGE"
    BAD_NICK = "BAD_NICK"
    BAD_ROOM = "BAD_ROOM"
    NOT_LOGGED_IN = "NOT_LOGGED_IN"
    ALREADY_LOGGED_IN = "ALREADY_LOGGED_IN"
    BAD_CREDENTIAL = "BAD_CREDENTIAL"
    WEAK_PASSWORD = "WEAK_PASSWORD"
    NICK_TAKEN = "NICK_TAKEN"
    NO_SUCH_NICK = "NO_SUCH_NICK"
    NOT_ONLINE = "NOT_ONLINE"
    MAILBOX_FULL = "MAILBOX_FULL"
    NO_SUCH_ROOM = "NO_SUCH_ROOM"
    NOT_IN_ROOM = "NOT_IN_ROOM"
    ALREADY_IN_ROOM = "ALREADY_IN_ROOM"
    ROOM_FULL = "ROOM_FULL"
    TOO_MANY_ROOMS = "TOO_MANY_ROOMS"
    TOO_MANY_CREATED = "TOO_MANY_CREATED"
    BANNED = "BANNED"
    INVITE_ONLY = "INVITE_ONLY"
    BAD_KEY = "BAD_KEY"
    NOT_OPERATOR = "NOT_OPERATOR"
    RATE_LIMITED = "RATE_LIMITED"
    SHUTTING_DOWN = "SHUTTING_DOWN"
    INTERNAL = "INTERNAL"

    @property
    def text(self) -> str:
        return ERROR_TEXT[self]


ERROR_TEXT: Mapping[ErrorCode, str] = {
    ErrorCode.BAD_MESSAGE: "message is not a UTF-8 JSON object (optionally + newline + payload)",
    ErrorCode.UNKNOWN_TYPE: "unknown message type",
    ErrorCode.BAD_FIELD: "a field is missing, of the wrong type or out of range",
    ErrorCode.TOO_LARGE: "text or payload exceeds the size limit",
    ErrorCode.BAD_NICK: "nickname is not 1-32 characters of the allowed set",
    ErrorCode.BAD_ROOM: "room is neither #name nor an 8-character group id",
    ErrorCode.NOT_LOGGED_IN: "log in first",
    ErrorCode.ALREADY_LOGGED_IN: "this session is already logged in",
    ErrorCode.BAD_CREDENTIAL: "wrong password or secret for this nickname",
    ErrorCode.WEAK_PASSWORD: "password too short",
    ErrorCode.NICK_TAKEN: "nickname is registered to someone else",
    ErrorCode.NO_SUCH_NICK: "no such registered nickname",
    ErrorCode.NOT_ONLINE: "nickname is not online",
    ErrorCode.MAILBOX_FULL: "recipient's offline mailbox is full",
    ErrorCode.NO_SUCH_ROOM: "no such room",
    ErrorCode.NOT_IN_ROOM: "you are not in that room",
    ErrorCode.ALREADY_IN_ROOM: "you are already in that room",
    ErrorCode.ROOM_FULL: "room is full",
    ErrorCode.TOO_MANY_ROOMS: "you are in too many rooms",
    ErrorCode.TOO_MANY_CREATED: "you have created too many rooms",
    ErrorCode.BANNED: "you are banned from that room",
    ErrorCode.INVITE_ONLY: "room is invite-only",
    ErrorCode.BAD_KEY: "wrong or missing room key",
    ErrorCode.NOT_OPERATOR: "only the room operator may do that",
    ErrorCode.RATE_LIMITED: "too many requests; slow down",
    ErrorCode.SHUTTING_DOWN: "server is shutting down",
    ErrorCode.INTERNAL: "internal server error",
}


class ChatProtocolError(Exception):
    """A protocol-level refusal: carries a machine code, human text and, when the
    offending message got far enough to show it, the request id to answer."""

    def __init__(self, code: ErrorCode, message: str | None = None,
                 request_id: int | None = None) -> None:
        self.code = ErrorCode(code)
        self.message = message if message is not None else self.code.text
        self.request_id = request_id
        super().__init__(f"{self.code}: {self.message}")

    def to_reply(self) -> ErrorReply:
        return ErrorReply(id=self.request_id, code=str(self.code), message=self.message)


# ---------------------------------------------------------------- limits object


@attrs.frozen
class Limits:
    """Sizes the decoder enforces; the server passes its configured ones."""

    max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES

    @property
    def max_header_bytes(self) -> int:
        # JSON may escape a control character as six bytes (\\u0000).
        return 6 * min(self.max_text_bytes, HARD_MAX_TEXT_BYTES) + JSON_OVERHEAD_BYTES


DEFAULT_LIMITS = Limits()

# ---------------------------------------------------------------- field kinds


class Kind(enum.Enum):
    REQUEST_ID = "request id: integer 0..2^53-1"
    UINT = "integer >= 0"
    BOOL = "boolean"
    NICK = "nickname"
    ROOM = "room"
    TEXT = "message text"
    LINE = "short line"
    SECRET = "password or secret"
    CODE = "error code"
    ANY = "any JSON value"


def _field(kind: Kind, optional: bool = False, **kwargs: Any) -> Any:
    if optional:
        kwargs.setdefault("default", None)
    return attrs.field(metadata={"kind": kind, "optional": optional}, **kwargs)


def _bad(code: ErrorCode, message: str, rid: int | None) -> ChatProtocolError:
    return ChatProtocolError(code, message, rid)


def _check_utf8_str(value: Any, name: str, rid: int | None) -> bytes:
    if not isinstance(value, str):
        raise _bad(ErrorCode.BAD_FIELD, f"{name} must be a string", rid)
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(ErrorCode.BAD_FIELD, f"{name} is not valid Unicode", rid) from None


def _validate(kind: Kind, value: Any, name: str, limits: Limits, rid: int | None) -> Any:
    if kind is Kind.REQUEST_ID or kind is Kind.UINT:
        if type(value) is not int or not 0 <= value <= MAX_REQUEST_ID:
            raise _bad(ErrorCode.BAD_FIELD, f"{name} must be an integer 0..2^53-1", rid)
        return value
    if kind is Kind.BOOL:
        if type(value) is not bool:
            raise _bad(ErrorCode.BAD_FIELD, f"{name} must be a boolean", rid)
        return value
    if kind is Kind.NICK or kind is Kind.ROOM:
        if not isinstance(value, str):
            raise _bad(ErrorCode.BAD_FIELD, f"{name} must be a string", rid)
    if kind is Kind.NICK:
        if not is_valid_nick(value):
            raise _bad(ErrorCode.BAD_NICK, f"{name}: {ERROR_TEXT[ErrorCode.BAD_NICK]}", rid)
        return value
    if kind is Kind.ROOM:
        if not is_valid_room(value):
            raise _bad(ErrorCode.BAD_ROOM, f"{name}: {ERROR_TEXT[ErrorCode.BAD_ROOM]}", rid)
        return value
    if kind is Kind.TEXT:
        encoded = _check_utf8_str(value, name, rid)
        if not encoded:
            raise _bad(ErrorCode.BAD_FIELD, f"{name} must not be empty", rid)
        if len(encoded) > limits.max_text_bytes:
            raise _bad(ErrorCode.TOO_LARGE,
                       f"{name} is {len(encoded)} bytes, limit {limits.max_text_bytes}", rid)
        if _TEXT_FORBIDDEN.search(value):
            raise _bad(ErrorCode.BAD_FIELD, f"{name} holds control characters", rid)
        return value
    if kind is Kind.LINE:
        encoded = _check_utf8_str(value, name, rid)
        if len(encoded) > LINE_MAX_BYTES:
            raise _bad(ErrorCode.TOO_LARGE, f"{name} exceeds {LINE_MAX_BYTES} bytes", rid)
        if _CONTROL.search(value):
            raise _bad(ErrorCode.BAD_FIELD, f"{name} holds control characters", rid)
        return value
    if kind is Kind.SECRET:
        _check_utf8_str(value, name, rid)
        if not 1 <= len(value) <= SECRET_MAX_LENGTH:
            raise _bad(ErrorCode.BAD_FIELD, f"{name} must be 1-{SECRET_MAX_LENGTH} characters", rid)
        return value
    if kind is Kind.CODE:
        if not isinstance(value, str) or CODE_PATTERN.match(value) is None:
            raise _bad(ErrorCode.BAD_FIELD, f"{name} must be an error code", rid)
        return value
    return value  # Kind.ANY


# ---------------------------------------------------------------- messages


class Message:
    """Base of every message.  ``TYPE`` is the wire ``t``; ``HAS_PAYLOAD`` says the
    message carries a binary payload after the newline."""

    TYPE: ClassVar[str] = ""
    HAS_PAYLOAD: ClassVar[bool] = False


class Request(Message):
    """Client to server; answered by exactly one Ok or ErrorReply with the same id."""

    id: int


class Event(Message):
    """Server to client, unsolicited; carries no id."""


REQUESTS: dict[str, type[Request]] = {}
SERVER_MESSAGES: dict[str, type[Message]] = {}


def _request(cls: type) -> type:
    REQUESTS[cls.TYPE] = cls
    return cls


def _server(cls: type) -> type:
    SERVER_MESSAGES[cls.TYPE] = cls
    return cls


# ----- requests


@_request
@attrs.frozen
class Login(Request):
    """Log in as ``nick``; the first login registers it.  Give ``password`` to
    register with (or log in by) a password, ``secret`` to log in with the secret
    a password-less registration returned, or neither to register password-less."""

    TYPE: ClassVar[str] = "login"
    id: int = _field(Kind.REQUEST_ID)
    nick: str = _field(Kind.NICK)
    password: str | None = _field(Kind.SECRET, optional=True)
    secret: str | None = _field(Kind.SECRET, optional=True)


@_request
@attrs.frozen
class SetPassword(Request):
    TYPE: ClassVar[str] = "set_password"
    id: int = _field(Kind.REQUEST_ID)
    password: str = _field(Kind.SECRET)


@_request
@attrs.frozen
class Create(Request):
    """Create a private group with a random id and join it as operator."""

    TYPE: ClassVar[str] = "create"
    id: int = _field(Kind.REQUEST_ID)


@_request
@attrs.frozen
class Join(Request):
    TYPE: ClassVar[str] = "join"
    id: int = _field(Kind.REQUEST_ID)
    room: str = _field(Kind.ROOM)
    key: str | None = _field(Kind.SECRET, optional=True)


@_request
@attrs.frozen
class Part(Request):
    TYPE: ClassVar[str] = "part"
    id: int = _field(Kind.REQUEST_ID)
    room: str = _field(Kind.ROOM)
    reason: str | None = _field(Kind.LINE, optional=True)


@_request
@attrs.frozen
class Say(Request):
    TYPE: ClassVar[str] = "say"
    id: int = _field(Kind.REQUEST_ID)
    room: str = _field(Kind.ROOM)
    text: str = _field(Kind.TEXT)


@_request
@attrs.frozen
class Dm(Request):
    TYPE: ClassVar[str] = "dm"
    id: int = _field(Kind.REQUEST_ID)
    to: str = _field(Kind.NICK)
    text: str = _field(Kind.TEXT)


@_request
@attrs.frozen
class Data(Request):
    """Opaque binary relay to an online nick; the payload follows the newline."""

    TYPE: ClassVar[str] = "data"
    HAS_PAYLOAD: ClassVar[bool] = True
    id: int = _field(Kind.REQUEST_ID)
    to: str = _field(Kind.NICK)
    payload: bytes = attrs.field(default=b"", metadata={"kind": None})


@_request
@attrs.frozen
class Topic(Request):
    """Without ``topic``: read it.  With it: set it (``""`` clears); operator only."""

    TYPE: ClassVar[str] = "topic"
    id: int = _field(Kind.REQUEST_ID)
    room: str = _field(Kind.ROOM)
    topic: str | None = _field(Kind.LINE, optional=True)


@_request
@attrs.frozen
class Who(Request):
    TYPE: ClassVar[str] = "who"
    id: int = _field(Kind.REQUEST_ID)
    room: str = _field(Kind.ROOM)


@_request
@attrs.frozen
class Rooms(Request):
    TYPE: ClassVar[str] = "rooms"
    id: int = _field(Kind.REQUEST_ID)


@_request
@attrs.frozen
class Nick(Request):
    TYPE: ClassVar[str] = "nick"
    id: int = _field(Kind.REQUEST_ID)
    nick: str = _field(Kind.NICK)


@_request
@attrs.frozen
class Away(Request):
    """With ``message``: away.  Without: back."""

    TYPE: ClassVar[str] = "away"
    id: int = _field(Kind.REQUEST_ID)
    message: str | None = _field(Kind.LINE, optional=True)


@_request
@attrs.frozen
class Ping(Request):
    TYPE: ClassVar[str] = "ping"
    id: int = _field(Kind.REQUEST_ID)


@_request
@attrs.frozen
class History(Request):
    """Room messages with ``msg_id`` greater than ``since`` (all kept ones if
    absent), oldest first, at most ``limit``."""

    TYPE: ClassVar[str] = "history"
    id: int = _field(Kind.REQUEST_ID)
    room: str = _field(Kind.ROOM)
    since: int | None = _field(Kind.UINT, optional=True)
    limit: int | None = _field(Kind.UINT, optional=True)


@_request
@attrs.frozen
class Kick(Request):
    TYPE: ClassVar[str] = "kick"
    id: int = _field(Kind.REQUEST_ID)
    room: str = _field(Kind.ROOM)
    nick: str = _field(Kind.NICK)
    reason: str | None = _field(Kind.LINE, optional=True)


@_request
@attrs.frozen
class Ban(Request):
    TYPE: ClassVar[str] = "ban"
    id: int = _field(Kind.REQUEST_ID)
    room: str = _field(Kind.ROOM)
    nick: str = _field(Kind.NICK)
    reason: str | None = _field(Kind.LINE, optional=True)


@_request
@attrs.frozen
class Unban(Request):
    TYPE: ClassVar[str] = "unban"
    id: int = _field(Kind.REQUEST_ID)
    room: str = _field(Kind.ROOM)
    nick: str = _field(Kind.NICK)


@_request
@attrs.frozen
class Mode(Request):
    """Change room settings; absent fields stay unchanged; ``key: ""`` removes the key."""

    TYPE: ClassVar[str] = "mode"
    id: int = _field(Kind.REQUEST_ID)
    room: str = _field(Kind.ROOM)
    invite_only: bool | None = _field(Kind.BOOL, optional=True)
    key: str | None = _field(Kind.LINE, optional=True)


@_request
@attrs.frozen
class Invite(Request):
    TYPE: ClassVar[str] = "invite"
    id: int = _field(Kind.REQUEST_ID)
    room: str = _field(Kind.ROOM)
    nick: str = _field(Kind.NICK)


@_request
@attrs.frozen
class Op(Request):
    """Hand operator status on to another member (you lose it)."""

    TYPE: ClassVar[str] = "op"
    id: int = _field(Kind.REQUEST_ID)
    room: str = _field(Kind.ROOM)
    nick: str = _field(Kind.NICK)


@_request
@attrs.frozen
class Quit(Request):
    TYPE: ClassVar[str] = "quit"
    id: int = _field(Kind.REQUEST_ID)
    reason: str | None = _field(Kind.LINE, optional=True)


# ----- replies


@_server
@attrs.frozen
class Ok(Message):
    """Success reply.  ``result`` holds the request-specific fields, which travel
    flat next to ``t`` and ``id`` on the wire (see the protocol document)."""

    TYPE: ClassVar[str] = "ok"
    id: int = _field(Kind.REQUEST_ID)
    result: Mapping[str, Any] = attrs.field(factory=dict, metadata={"kind": None})

    def __getitem__(self, key: str) -> Any:
        return self.result[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.result.get(key, default)


@_server
@attrs.frozen
class ErrorReply(Message):
    """Failure reply.  ``id`` is null only when the request id could not be read."""

    TYPE: ClassVar[str] = "error"
    id: int | None = _field(Kind.REQUEST_ID, optional=True)
    code: str = _field(Kind.CODE, default="INTERNAL")
    message: str = _field(Kind.ANY, default="")

    @property
    def error_code(self) -> ErrorCode | None:
        """The enum member, or None for a code this client does not know yet."""
        try:
            return ErrorCode(self.code)
        except ValueError:
            return None


# ----- events


@_server
@attrs.frozen
class MessageEvent(Event):
    TYPE: ClassVar[str] = "message"
    room: str = _field(Kind.ROOM)
    nick: str = _field(Kind.NICK)
    text: str = _field(Kind.TEXT)
    msg_id: int = _field(Kind.UINT)
    ts: int = _field(Kind.UINT)


@_server
@attrs.frozen
class DmEvent(Event):
    """A direct message; ``stored`` is true when it waited in the offline mailbox."""

    TYPE: ClassVar[str] = "dm"
    nick: str = _field(Kind.NICK)
    to: str = _field(Kind.NICK)
    text: str = _field(Kind.TEXT)
    dm_id: int = _field(Kind.UINT)
    ts: int = _field(Kind.UINT)
    stored: bool = _field(Kind.BOOL, default=False)


@_server
@attrs.frozen
class DeliveredEvent(Event):
    """A DM you sent while its recipient was offline has now reached them."""

    TYPE: ClassVar[str] = "delivered"
    dm_id: int = _field(Kind.UINT)
    to: str = _field(Kind.NICK)
    ts: int = _field(Kind.UINT)


@_server
@attrs.frozen
class DataEvent(Event):
    TYPE: ClassVar[str] = "data"
    HAS_PAYLOAD: ClassVar[bool] = True
    nick: str = _field(Kind.NICK)
    payload: bytes = attrs.field(default=b"", metadata={"kind": None})


@_server
@attrs.frozen
class JoinEvent(Event):
    TYPE: ClassVar[str] = "join"
    room: str = _field(Kind.ROOM)
    nick: str = _field(Kind.NICK)


@_server
@attrs.frozen
class PartEvent(Event):
    TYPE: ClassVar[str] = "part"
    room: str = _field(Kind.ROOM)
    nick: str = _field(Kind.NICK)
    reason: str | None = _field(Kind.LINE, optional=True)


@_server
@attrs.frozen
class QuitEvent(Event):
    """A member left the server; ``timeout`` is true when it was reaped as idle."""

    TYPE: ClassVar[str] = "quit"
    room: str = _field(Kind.ROOM)
    nick: str = _field(Kind.NICK)
    reason: str | None = _field(Kind.LINE, optional=True)
    timeout: bool = _field(Kind.BOOL, default=False)


@_server
@attrs.frozen
class KickEvent(Event):
    """``nick`` was removed from ``room`` by operator ``by`` (sent to the victim too)."""

    TYPE: ClassVar[str] = "kick"
    room: str = _field(Kind.ROOM)
    nick: str = _field(Kind.NICK)
    by: str = _field(Kind.NICK)
    reason: str | None = _field(Kind.LINE, optional=True)
    banned: bool = _field(Kind.BOOL, default=False)


@_server
@attrs.frozen
class NickEvent(Event):
    TYPE: ClassVar[str] = "nick"
    room: str = _field(Kind.ROOM)
    old: str = _field(Kind.NICK)
    new: str = _field(Kind.NICK)


@_server
@attrs.frozen
class AwayEvent(Event):
    """``message`` set: ``nick`` is away; null: back."""

    TYPE: ClassVar[str] = "away"
    room: str = _field(Kind.ROOM)
    nick: str = _field(Kind.NICK)
    message: str | None = _field(Kind.LINE, optional=True)


@_server
@attrs.frozen
class TopicEvent(Event):
    TYPE: ClassVar[str] = "topic"
    room: str = _field(Kind.ROOM)
    topic: str = _field(Kind.LINE)
    nick: str = _field(Kind.NICK)
    ts: int = _field(Kind.UINT)


@_server
@attrs.frozen
class ModeEvent(Event):
    TYPE: ClassVar[str] = "mode"
    room: str = _field(Kind.ROOM)
    nick: str = _field(Kind.NICK)
    invite_only: bool = _field(Kind.BOOL)
    has_key: bool = _field(Kind.BOOL)


@_server
@attrs.frozen
class OpEvent(Event):
    """``nick`` is now the operator of ``room``, handed on by ``by``."""

    TYPE: ClassVar[str] = "op"
    room: str = _field(Kind.ROOM)
    nick: str = _field(Kind.NICK)
    by: str = _field(Kind.NICK)


@_server
@attrs.frozen
class InvitedEvent(Event):
    TYPE: ClassVar[str] = "invited"
    room: str = _field(Kind.ROOM)
    by: str = _field(Kind.NICK)


@_server
@attrs.frozen
class ReplacedEvent(Event):
    """Sent to a session just before it is closed because the same nick logged
    in again elsewhere (newest login wins)."""

    TYPE: ClassVar[str] = "replaced"
    message: str = _field(Kind.LINE, default="logged in from another session")


@_server
@attrs.frozen
class ShutdownEvent(Event):
    TYPE: ClassVar[str] = "shutdown"
    message: str = _field(Kind.LINE, default="server shutting down")


# ---------------------------------------------------------------- codec


def encode(message: Message) -> bytes:
    """Serialise one message to the bytes of one reliable transport message."""
    obj: dict[str, Any] = {"t": message.TYPE}
    payload = b""
    for field in attrs.fields(type(message)):
        value = getattr(message, field.name)
        if field.name == "payload":
            payload = value
        elif field.name == "result":
            for key, item in value.items():
                if key in ("t", "id"):
                    raise ValueError(f"reply field {key!r} is reserved")
                obj[key] = item
        elif value is not None or (field.name == "id" and isinstance(message, ErrorReply)):
            obj[field.name] = value
    header = json.dumps(obj, ensure_ascii=False, separators=(",", ":"),
                        allow_nan=False).encode("utf-8")
    if message.HAS_PAYLOAD:
        return header + b"\n" + bytes(payload)
    return header


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key")
    return obj


def _parse(data: bytes, limits: Limits) -> tuple[dict[str, Any], bytes | None]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ChatProtocolError(ErrorCode.BAD_MESSAGE, "message must be bytes")
    data = bytes(data)
    newline = data.find(b"\n")
    header, payload = (data, None) if newline < 0 else (data[:newline], data[newline + 1:])
    if len(header) > limits.max_header_bytes:
        raise ChatProtocolError(ErrorCode.TOO_LARGE, "JSON part too large")
    try:
        text = header.decode("utf-8")
        obj = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except UnicodeDecodeError:
        raise ChatProtocolError(ErrorCode.BAD_MESSAGE, "not valid UTF-8") from None
    except (ValueError, RecursionError):
        raise ChatProtocolError(ErrorCode.BAD_MESSAGE, "not a valid JSON object") from None
    if not isinstance(obj, dict):
        raise ChatProtocolError(ErrorCode.BAD_MESSAGE, "not a JSON object")
    return obj, payload


def _build(cls: type[Message], obj: dict[str, Any], payload: bytes | None,
           limits: Limits, rid: int | None) -> Message:
    if payload is not None and not cls.HAS_PAYLOAD:
        raise ChatProtocolError(ErrorCode.BAD_MESSAGE, f"{cls.TYPE} carries no payload", rid)
    kwargs: dict[str, Any] = {}
    for field in attrs.fields(cls):
        if field.name == "payload":
            if payload is None:
                raise ChatProtocolError(ErrorCode.BAD_FIELD, "payload missing", rid)
            if len(payload) > limits.max_payload_bytes:
                raise ChatProtocolError(
                    ErrorCode.TOO_LARGE,
                    f"payload is {len(payload)} bytes, limit {limits.max_payload_bytes}", rid)
            kwargs["payload"] = payload
            continue
        if field.name == "result":
            kwargs["result"] = {k: v for k, v in obj.items() if k not in ("t", "id")}
            continue
        kind: Kind = field.metadata["kind"]
        optional = field.metadata["optional"]
        value = obj.get(field.name)
        if value is None:
            if optional:
                kwargs[field.name] = None
                continue
            if field.default is not attrs.NOTHING and field.name not in obj:
                continue
            raise ChatProtocolError(ErrorCode.BAD_FIELD, f"{field.name} missing", rid)
        kwargs[field.name] = _validate(kind, value, field.name, limits, rid)
    return cls(**kwargs)


def _request_id(obj: dict[str, Any]) -> int | None:
    rid = obj.get("id")
    return rid if type(rid) is int and 0 <= rid <= MAX_REQUEST_ID else None


def decode_request(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Request:
    """Decode what a client sent.  Raises ChatProtocolError (with ``request_id``
    set whenever the message had a readable id) and nothing else."""
    obj, payload = _parse(data, limits)
    rid = _request_id(obj)
    kind = obj.get("t")
    if not isinstance(kind, str):
        raise ChatProtocolError(ErrorCode.BAD_MESSAGE, "field t missing", rid)
    cls = REQUESTS.get(kind)
    if cls is None:
        raise ChatProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown request type {kind[:40]!r}", rid)
    if rid is None:
        raise ChatProtocolError(ErrorCode.BAD_FIELD, "id must be an integer 0..2^53-1")
    return _build(cls, obj, payload, limits, rid)  # type: ignore[return-value]


def decode_server_message(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Message:
    """Decode what a server sent (a reply or an event).  Raises only ChatProtocolError."""
    obj, payload = _parse(data, limits)
    kind = obj.get("t")
    if not isinstance(kind, str):
        raise ChatProtocolError(ErrorCode.BAD_MESSAGE, "field t missing")
    cls = SERVER_MESSAGES.get(kind)
    if cls is None:
        raise ChatProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown server message {kind[:40]!r}")
    return _build(cls, obj, payload, limits, None)

