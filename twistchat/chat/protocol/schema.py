"""
How a message is declared.  Each attrs field names its *kind* in metadata
and the registries map the wire ``t`` to a class; the codec and the
validator walk these declarations, so adding a message type is declaring a
class, and validation cannot drift from the schema.
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar

import attrs


class Kind(enum.Enum):
    REQUEST_ID = "request id: integer 0..2^53-1"
    UINT = "integer >= 0"
    BOOL = "boolean"
    NICK = "nickname"
    ROOM = "room"
    TEXT = "message text"
    LINE = "short line"
    SECRET = "password or secret"
    IDEM = "idempotency key"
    CODE = "error code"
    ANY = "any JSON value"


def wire_field(kind: Kind, optional: bool = False, **kwargs: Any) -> Any:
    """An attrs field the codec checks as ``kind``; optional ones default to None."""
    if optional:
        kwargs.setdefault("default", None)
    return attrs.field(metadata={"kind": kind, "optional": optional}, **kwargs)


def payload_field() -> Any:
    """The binary part after the newline: relayed as-is, never validated."""
    return attrs.field(default=b"", metadata={"kind": None})


class Message:
    """Base of every message.  ``TYPE`` is the wire ``t``; ``HAS_PAYLOAD`` says the
    message carries a binary payload after the newline."""

    TYPE: ClassVar[str] = ""
    HAS_PAYLOAD: ClassVar[bool] = False


class Request(Message):
    """Client to server; answered by exactly one Ok or ErrorReply with the same id.
    ``PACED``: paced by a window of its own (transfer pieces), not by the
    session's request bucket."""

    PACED: ClassVar[bool] = False
    id: int


class Event(Message):
    """Server to client, unsolicited; carries no id."""


REQUESTS: dict[str, type[Request]] = {}
SERVER_MESSAGES: dict[str, type[Message]] = {}


def request(cls: type) -> type:
    """Register a request class under its wire type."""
    REQUESTS[cls.TYPE] = cls
    return cls


def server_message(cls: type) -> type:
    """Register a reply or event class under its wire type."""
    SERVER_MESSAGES[cls.TYPE] = cls
    return cls
