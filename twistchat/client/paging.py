"""
Asking a listing request page after page (PROTOCOL.md C6, "Paging").

``history``, ``who`` and ``rooms`` replies carry as many entries as fit one
message and ``more: true`` when some remain; the next page is asked with a
cursor, the key of the last entry received (``since`` = its ``msg_id``,
``after`` = its ``nick`` or ``room``).  ``pages`` does that until the server
says no more remain, and hands back one reply whose list is all the pages'
(``paged``: the same for a ``ChatClient`` method, as a Deferred).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from twisted.internet import defer

from twistchat.chat import protocol as p

Send = Callable[[type, dict[str, Any]], Awaitable[dict[str, Any]]]
"""Sends one request (its class and fields) and fires with the ``ok`` fields."""


@attrs.frozen
class Listing:
    """How one request type pages: the list field and the cursor."""

    field: str
    cursor: str
    key: str


LISTINGS: dict[type, Listing] = {
    p.History: Listing("history", "since", "msg_id"),
    p.Who: Listing("members", "after", "nick"),
    p.Rooms: Listing("rooms", "after", "room"),
    p.Contacts: Listing("contacts", "after", "nick"),
}


async def pages(send: Send, cls: type, fields: dict[str, Any], into: list[dict[str, Any]] | None = None,
                until: Any = None) -> dict[str, Any]:
    """Every page of ``cls`` from ``fields`` on, joined: the last reply with
    the whole list in its list field.  Entries are appended to ``into`` as
    they come, so a caller keeps what arrived if a later page fails.  With
    ``until``, stops at the page that reaches that key (the rest is known)."""
    listing = LISTINGS[cls]
    entries = [] if into is None else into
    reply = await send(cls, fields)
    while True:
        page = reply.get(listing.field) or []
        entries.extend(page)
        done = not reply.get("more") or not page
        if done or (until is not None and page[-1][listing.key] >= until):
            return {**reply, listing.field: entries, "more": False}
        reply = await send(cls, {**fields, listing.cursor: page[-1][listing.key]})


def paged(request: Callable[..., Any], cls: type, **fields: Any) -> defer.Deferred:
    """Every page of ``cls``, each asked as ``request(cls, **fields)`` (a
    ``ChatClient`` request: held over a reconnect as any is), as one reply."""
    return defer.Deferred.fromCoroutine(pages(lambda kind, given: request(kind, **given), cls, fields))
