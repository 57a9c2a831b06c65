"""
Replies bounded by bytes (PROTOCOL.md C6, "Paging"): the entries the
listing replies carry (``hist``, ``member``, a room of ``rooms``) and how
many of a list fit one reply of at most a given number of bytes.

A reply is one transport message, and the peer takes none larger than it
announced; so ``history``, ``who``, ``rooms`` and ``join`` carry as many
entries as fit and say whether more remain, and the client asks again from
a cursor.  Sizes are exact: a list's JSON is ``[`` + the entries' JSON
joined by ``,`` + ``]``, encoded as ``codec.encode`` encodes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from twistchat.chat.protocol.codec import encode
from twistchat.chat.protocol.codes import ErrorCode
from twistchat.chat.protocol.errors import ChatProtocolError
from twistchat.chat.protocol.server_messages import Ok

Entry = Mapping[str, Any]

JOIN_MEMBERS = 20
"""Members a ``join`` reply lists at most (the first ``who`` page's first
ones): a join costs the same bytes however full the room."""


def hist(msg_id: int, nick: str, text: str, ts: int) -> dict[str, Any]:
    """One kept line, as ``history`` and ``join`` carry it."""
    return {"msg_id": msg_id, "nick": nick, "text": text, "ts": ts}


def member(nick: str, away: str | None, op: bool) -> dict[str, Any]:
    """One member, as ``who`` and ``join`` list it."""
    return {"nick": nick, "away": away, "op": op}


def room_entry(room: str, members: int, topic: str | None, joined: bool) -> dict[str, Any]:
    """One room, as ``rooms`` lists it."""
    return {"room": room, "members": members, "topic": topic, "joined": joined}


def json_size(value: Any) -> int:
    """Bytes ``value`` takes inside an encoded message."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False).encode("utf-8"))


def too_large(what: str) -> ChatProtocolError:
    return ChatProtocolError(ErrorCode.REPLY_TOO_LARGE,
                             f"{what} would not fit in one message your transport takes")


def fill(budget: int, request_id: int, fields: Mapping[str, Any], field: str,
         entries: Sequence[Entry], newest: bool = False) -> list[Entry]:
    """The entries of ``entries`` that fit in ``field`` of an ``ok`` to
    ``request_id`` with ``fields`` (where ``field`` holds a placeholder) in
    at most ``budget`` bytes: the first ones, or with ``newest`` the last
    ones, in their order.  Raises REPLY_TOO_LARGE if not even the reply
    without entries fits.  A flag saying more remain must be in ``fields``
    at its longest (``False``), so that the reply stays within budget."""
    used = len(encode(Ok(id=request_id, result={**fields, field: []})))
    if used > budget:
        raise too_large("the reply")
    order = reversed(range(len(entries))) if newest else range(len(entries))
    taken = 0
    for index in order:
        used += json_size(entries[index]) + (1 if taken else 0)
        if used > budget:
            break
        taken += 1
    if newest:
        return list(entries[len(entries) - taken:])
    return list(entries[:taken])


def page(budget: int, request_id: int, fields: Mapping[str, Any], field: str,
         entries: Sequence[Entry], what: str) -> dict[str, Any]:
    """A listing reply's fields: ``fields``, then in ``field`` the first
    entries that fit and ``more``, true if some were left for the next page.
    REPLY_TOO_LARGE if there are entries and not even the first one fits."""
    taken = fill(budget, request_id, {**fields, "more": False}, field, entries)
    if entries and not taken:
        raise too_large(f"{what} alone")
    return {**fields, field: taken, "more": len(taken) < len(entries)}
