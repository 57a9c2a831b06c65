"""
The byte sizes the limits imply (PROTOCOL.md C10), so the announced limits
are the real ones: the largest request a client may send (what the server's
transport must accept) and the largest event the server may send (what a
client's transport must accept, announced in the login reply as
``max_message_bytes``).  Worked out by encoding the worst case, so they
cannot drift from the codec.  A listing reply is paged to fit
(``pages``), so what it must cover is its smallest page: one entry of the
largest kind.
"""

from __future__ import annotations

import functools
import json

from twistchat.chat.protocol.codec import encode
from twistchat.chat.protocol.limits import (
    GROUP_ID_LENGTH,
    MAX_REQUEST_ID,
    NICK_MAX_LENGTH,
    ROOM_NAME_MAX_LENGTH,
    LINE_MAX_BYTES,
    SECRET_MAX_LENGTH,
    Limits,
)
from twistchat.chat.protocol.pages import hist, member, room_entry
from twistchat.chat.protocol.schema import Message
from twistchat.chat.protocol.server_messages import DataEvent, DmEvent, MessageEvent, Ok

WORST_TEXT_CHAR = '"'
"""A one-byte character the encoder escapes (``\\"``): text of these is
the longest a valid text can encode to."""
LONGEST_NICK = "n" * NICK_MAX_LENGTH
LONGEST_ROOM = "#" + "r" * max(ROOM_NAME_MAX_LENGTH, GROUP_ID_LENGTH)
LARGEST_ID = MAX_REQUEST_ID
"""Ids and timestamps as long as JSON integers may be here."""


def max_request_bytes(limits: Limits) -> int:
    """The largest request the decoder can accept: a JSON part at its cap,
    the newline, and a payload at ``max_payload_bytes``."""
    return limits.max_header_bytes + 1 + limits.max_payload_bytes


WORST_ESCAPED_CHAR = "\U0001F600"
"""One character of a secret at its longest on the wire: JSON with only
ASCII writes it as a surrogate pair of ``\\u`` escapes, 12 bytes."""


def max_login_request_bytes() -> int:
    """The largest request a client needs before it has logged in: a
    ``login`` with password and secret at their longest, every character
    escaped at its worst, in compact JSON (PROTOCOL.md C4).  The server's
    transport offers a session not logged in a receive window for this
    much, not for its largest message (issue 12: partial reassembly)."""
    worst = WORST_ESCAPED_CHAR * SECRET_MAX_LENGTH
    login = {"t": "login", "id": LARGEST_ID, "nick": WORST_ESCAPED_CHAR * NICK_MAX_LENGTH,
             "password": worst, "secret": worst}
    return len(json.dumps(login, ensure_ascii=True, separators=(",", ":")))


def worst_case_events(limits: Limits) -> list[Message]:
    """The largest event of each kind that carries user content."""
    text = WORST_TEXT_CHAR * limits.max_text_bytes
    return [
        MessageEvent(room=LONGEST_ROOM, nick=LONGEST_NICK, text=text, msg_id=LARGEST_ID,
                     ts=LARGEST_ID),
        DmEvent(nick=LONGEST_NICK, to=LONGEST_NICK, text=text, dm_id=LARGEST_ID,
                ts=LARGEST_ID, stored=False),
        DataEvent(nick=LONGEST_NICK, payload=bytes(limits.max_payload_bytes)),
    ]


def max_event_bytes(limits: Limits) -> int:
    """The largest chat event the server may send under ``limits``."""
    return max(len(encode(event)) for event in worst_case_events(limits))


def worst_case_replies(limits: Limits) -> list[Message]:
    """The smallest page of each listing reply at its largest: one entry
    of the largest kind (the longest text, topic or away line, all
    escaped), ``more`` at its longest; and a ``join`` reply with no member
    and no line."""
    line = WORST_TEXT_CHAR * LINE_MAX_BYTES
    text = WORST_TEXT_CHAR * limits.max_text_bytes
    room = {"room": LONGEST_ROOM}
    one_line = hist(LARGEST_ID, LONGEST_NICK, text, LARGEST_ID)
    joined = {**room, "topic": line, "topic_by": LONGEST_NICK, "topic_ts": LARGEST_ID,
              "op": LONGEST_NICK, "invite_only": False, "has_key": False,
              "limit": LARGEST_ID, "member_count": LARGEST_ID, "members": [], "history": [], "history_more": False}
    replies = [
        {**room, "history": [one_line], "more": False},
        {**room, "count": LARGEST_ID, "members": [member(LONGEST_NICK, line, False)], "more": False},
        {"rooms": [room_entry(LONGEST_ROOM, LARGEST_ID, line, False)], "more": False},
        joined,
    ]
    return [Ok(id=LARGEST_ID, result=result) for result in replies]


@functools.lru_cache(maxsize=8)
def max_server_message_bytes(limits: Limits) -> int:
    """The largest chat message the server may send under ``limits``: what
    a client's transport must accept (``max_message_bytes`` in the login
    reply).  Every reply fits in it, paged where it lists (PROTOCOL.md C6)."""
    return max(len(encode(message))
               for message in worst_case_events(limits) + worst_case_replies(limits))
