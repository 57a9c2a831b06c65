"""
Names and sizes: what a nickname, a room and a line may be, how names fold,
and the size limits the decoder enforces.  A leaf of the protocol package, so
the client can check what a user typed without the codec.
"""

from __future__ import annotations

import re

import attrs

PROTOCOL_VERSION = 1

NICK_MAX_LENGTH = 32
ROOM_NAME_MAX_LENGTH = 50
"""Characters after the leading ``#`` of a public room name."""
GROUP_ID_LENGTH = 8
GROUP_ID_ALPHABET = "ABCDEFGHIJKLMNPQRSTUVWXYZ123456789"
"""A-Z and 1-9 without O and 0, so ids survive being read aloud or retyped."""
LINE_MAX_BYTES = 512
"""Topics, reasons, away messages: one short line."""
SECRET_MAX_LENGTH = 256
IDEM_MAX_LENGTH = 64
"""An idempotency key (PROTOCOL.md C2): room for a UUID or 32 hex digits and a prefix."""
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
IDEM_PATTERN = re.compile(r"[A-Za-z0-9_.:\-]{1,%d}\Z" % IDEM_MAX_LENGTH)
CODE_PATTERN = re.compile(r"[A-Z][A-Z0-9_]{0,31}\Z")

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
