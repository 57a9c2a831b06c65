"""The one error vocabulary: machine codes carried in ``error`` replies, and
their human text.  A leaf, so replies and exceptions can both name a code."""

from __future__ import annotations

import enum
from collections.abc import Mapping


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
    NOT_DELIVERED = "NOT_DELIVERED"
    MAILBOX_FULL = "MAILBOX_FULL"
    MAILBOX_QUOTA = "MAILBOX_QUOTA"
    STORE_FULL = "STORE_FULL"
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
    REPLY_TOO_LARGE = "REPLY_TOO_LARGE"
    SHUTTING_DOWN = "SHUTTING_DOWN"
    INTERNAL = "INTERNAL"
    UNAVAILABLE = "UNAVAILABLE"
    TOO_MANY_CONTACTS = "TOO_MANY_CONTACTS"
    # transfers (PROTOCOL.md C14)
    NO_SUCH_TRANSFER = "NO_SUCH_TRANSFER"
    BAD_PIECE = "BAD_PIECE"
    TOO_MANY_TRANSFERS = "TOO_MANY_TRANSFERS"
    SENDER_LEFT = "SENDER_LEFT"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"

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
    ErrorCode.NOT_DELIVERED: "the recipient's session ended before it had the payload",
    ErrorCode.MAILBOX_FULL: "recipient's offline mailbox is full",
    ErrorCode.MAILBOX_QUOTA: "you have as many DMs waiting in that mailbox as one sender may",
    ErrorCode.STORE_FULL: "the server stores no more DMs for now",
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
    ErrorCode.REPLY_TOO_LARGE: "the answer would not fit in one message your transport takes",
    ErrorCode.SHUTTING_DOWN: "server is shutting down",
    ErrorCode.INTERNAL: "internal server error",
    ErrorCode.UNAVAILABLE: "the server cannot reach its store; try again",
    ErrorCode.TOO_MANY_CONTACTS: "your contact list is full",
    ErrorCode.NO_SUCH_TRANSFER: "no open transfer of yours has that id",
    ErrorCode.BAD_PIECE: "piece out of order, past the size, over the window, or a wrong end",
    ErrorCode.TOO_MANY_TRANSFERS: "too many transfers under way; try again when one ends",
    ErrorCode.SENDER_LEFT: "the sender left before the transfer ended",
    ErrorCode.CANCELLED: "the sender cancelled the transfer",
    ErrorCode.TIMED_OUT: "nothing moved in the transfer for too long",
}
