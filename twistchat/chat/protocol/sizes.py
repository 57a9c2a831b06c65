"""
The byte sizes the limits imply (PROTOCOL.md C10), so the announced limits
are the real ones: the largest request a client may send (what the server's
transport must accept) and the largest event the server may send (what a
client's transport must accept, announced in the login reply as
``max_message_bytes``).  Worked out by encoding the worst case, so they
cannot drift from the codec.
"""

from __future__ import annotations

from twistchat.chat.protocol.codec import encode
from twistchat.chat.protocol.limits import (
    GROUP_ID_LENGTH,
    MAX_REQUEST_ID,
    NICK_MAX_LENGTH,
    ROOM_NAME_MAX_LENGTH,
    Limits,
)
from twistchat.chat.protocol.schema import Message
from twistchat.chat.protocol.server_messages import DataEvent, DmEvent, MessageEvent

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
    """The largest chat event the server may send under ``limits``: what a
    client's transport must accept (``max_message_bytes`` in the login reply)."""
    return max(len(encode(event)) for event in worst_case_events(limits))
