"""Checking one decoded field value against its declared kind; raises
ChatProtocolError with the code a client can act on (BAD_NICK, TOO_LARGE...)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from twistchat.chat.protocol.codes import ERROR_TEXT, ErrorCode
from twistchat.chat.protocol.errors import ChatProtocolError
from twistchat.chat.protocol.limits import (
    CODE_PATTERN,
    IDEM_MAX_LENGTH,
    IDEM_PATTERN,
    LINE_MAX_BYTES,
    MAX_REQUEST_ID,
    SECRET_MAX_LENGTH,
    Limits,
    is_valid_nick,
    is_valid_room,
)
from twistchat.chat.protocol.schema import Kind

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TEXT_FORBIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
"""Message text may hold tabs and newlines, not other C0 controls."""


Check = Callable[[Any, str, Limits, "int | None"], Any]
"""(value, field name, limits, request id) -> the value, or ChatProtocolError."""


def _bad(code: ErrorCode, message: str, rid: int | None) -> ChatProtocolError:
    return ChatProtocolError(code, message, rid)


def _check_utf8_str(value: Any, name: str, rid: int | None) -> bytes:
    if not isinstance(value, str):
        raise _bad(ErrorCode.BAD_FIELD, f"{name} must be a string", rid)
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(ErrorCode.BAD_FIELD, f"{name} is not valid Unicode", rid) from None


def _uint(value: Any, name: str, limits: Limits, rid: int | None) -> Any:
    if type(value) is not int or not 0 <= value <= MAX_REQUEST_ID:
        raise _bad(ErrorCode.BAD_FIELD, f"{name} must be an integer 0..2^53-1", rid)
    return value


def _bool(value: Any, name: str, limits: Limits, rid: int | None) -> Any:
    if type(value) is not bool:
        raise _bad(ErrorCode.BAD_FIELD, f"{name} must be a boolean", rid)
    return value


def _name_check(is_valid: Callable[[str], bool], code: ErrorCode) -> Check:
    """The check of a nick or a room name: a string, then its own rules."""
    def check(value: Any, name: str, limits: Limits, rid: int | None) -> Any:
        if not isinstance(value, str):
            raise _bad(ErrorCode.BAD_FIELD, f"{name} must be a string", rid)
        if not is_valid(value):
            raise _bad(code, f"{name}: {ERROR_TEXT[code]}", rid)
        return value
    return check


def _text(value: Any, name: str, limits: Limits, rid: int | None) -> Any:
    encoded = _check_utf8_str(value, name, rid)
    if not encoded:
        raise _bad(ErrorCode.BAD_FIELD, f"{name} must not be empty", rid)
    if len(encoded) > limits.max_text_bytes:
        raise _bad(ErrorCode.TOO_LARGE,
                   f"{name} is {len(encoded)} bytes, limit {limits.max_text_bytes}", rid)
    if _TEXT_FORBIDDEN.search(value):
        raise _bad(ErrorCode.BAD_FIELD, f"{name} holds control characters", rid)
    return value


def _line(value: Any, name: str, limits: Limits, rid: int | None) -> Any:
    encoded = _check_utf8_str(value, name, rid)
    if len(encoded) > LINE_MAX_BYTES:
        raise _bad(ErrorCode.TOO_LARGE, f"{name} exceeds {LINE_MAX_BYTES} bytes", rid)
    if _CONTROL.search(value):
        raise _bad(ErrorCode.BAD_FIELD, f"{name} holds control characters", rid)
    return value


def _secret(value: Any, name: str, limits: Limits, rid: int | None) -> Any:
    _check_utf8_str(value, name, rid)
    if not 1 <= len(value) <= SECRET_MAX_LENGTH:
        raise _bad(ErrorCode.BAD_FIELD, f"{name} must be 1-{SECRET_MAX_LENGTH} characters", rid)
    return value


def _idem(value: Any, name: str, limits: Limits, rid: int | None) -> Any:
    if not isinstance(value, str) or IDEM_PATTERN.match(value) is None:
        raise _bad(ErrorCode.BAD_FIELD, f"{name} must be 1-{IDEM_MAX_LENGTH} of A-Z a-z 0-9 _ . : -", rid)
    return value


def _code(value: Any, name: str, limits: Limits, rid: int | None) -> Any:
    if not isinstance(value, str) or CODE_PATTERN.match(value) is None:
        raise _bad(ErrorCode.BAD_FIELD, f"{name} must be an error code", rid)
    return value


def _any(value: Any, name: str, limits: Limits, rid: int | None) -> Any:
    return value


_CHECKS: dict[Kind, Check] = {
    Kind.REQUEST_ID: _uint, Kind.UINT: _uint, Kind.BOOL: _bool,
    Kind.NICK: _name_check(is_valid_nick, ErrorCode.BAD_NICK),
    Kind.ROOM: _name_check(is_valid_room, ErrorCode.BAD_ROOM), Kind.TEXT: _text, Kind.LINE: _line, Kind.SECRET: _secret,
    Kind.IDEM: _idem, Kind.CODE: _code, Kind.ANY: _any,
}


def checker(kind: Kind) -> Check:
    """The check of ``kind``'s values: the codec looks it up once a message
    class, not per field decoded (on 3.11 every ``Kind.X`` read, and every
    hash of an enum member, is a Python-level call)."""
    return _CHECKS[kind]
