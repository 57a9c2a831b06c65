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

The package, bottom up (each module imports only those above it):

* ``limits``: name rules, folding, sizes (``Limits``)
* ``codes``: ``ErrorCode``, the one error vocabulary
* ``schema``: field kinds, message bases, the type registries
* ``requests``, ``server_messages``: one frozen class per wire ``t``
* ``errors``: ``ChatProtocolError``
* ``validation``, ``codec``: ``encode``, ``decode_request``, ``decode_server_message``
* ``pages``: the entries listing replies carry, and how many fit a reply
* ``transfers``: the messages of a transfer in pieces (PROTOCOL.md C14)
* ``sizes``: the byte sizes the limits imply (largest request, largest message)
* ``typing_notices``: typing notices, sent as unreliable transport messages

Everything public is re-exported here: ``from twistchat.chat import protocol as p``.
"""

from twistchat.chat.protocol.codec import decode_request, decode_server_message, encode
from twistchat.chat.protocol.codes import ERROR_TEXT, ErrorCode
from twistchat.chat.protocol.errors import ChatProtocolError
from twistchat.chat.protocol.limits import (
    CODE_PATTERN,
    DEFAULT_LIMITS,
    DEFAULT_MAX_PAYLOAD_BYTES,
    DEFAULT_MAX_TEXT_BYTES,
    GROUP_ID_ALPHABET,
    GROUP_ID_LENGTH,
    GROUP_PATTERN,
    HARD_MAX_TEXT_BYTES,
    IDEM_MAX_LENGTH,
    IDEM_PATTERN,
    JSON_OVERHEAD_BYTES,
    LINE_MAX_BYTES,
    MAX_REQUEST_ID,
    NICK_MAX_LENGTH,
    NICK_PATTERN,
    PASSWORD_MIN_LENGTH,
    PROTOCOL_VERSION,
    ROOM_NAME_MAX_LENGTH,
    ROOM_PATTERN,
    SECRET_MAX_LENGTH,
    Limits,
    fold_nick,
    fold_room,
    is_group_id,
    is_valid_nick,
    is_valid_room,
)
from twistchat.chat.protocol.requests import (
    Away,
    Ban,
    Contacts,
    Create,
    Data,
    Dm,
    History,
    Invite,
    Join,
    Kick,
    Login,
    Mode,
    Nick,
    Op,
    Part,
    Ping,
    Quit,
    Rooms,
    Say,
    SetPassword,
    Topic,
    Unban,
    Unwatch,
    Watch,
    Who,
)
from twistchat.chat.protocol.transfers import (
    SHA256_HEX,
    TRANSFER_EVENTS,
    Piece,
    PieceEvent,
    TransferCancel,
    TransferEnd,
    TransferEndEvent,
    TransferEvent,
    TransferFailedEvent,
    TransferOpen,
)
from twistchat.chat.protocol.pages import JOIN_MEMBERS, hist, member, room_entry
from twistchat.chat.protocol.sizes import (
    max_event_bytes, max_login_request_bytes, max_request_bytes, max_server_message_bytes,
)
from twistchat.chat.protocol.schema import REQUESTS, SERVER_MESSAGES, Event, Kind, Message, Request
from twistchat.chat.protocol.typing_notices import (
    TYPING_SEND_INTERVAL,
    TYPING_SHOWN_FOR,
    TypingEvent,
    TypingNotice,
    decode_typing_event,
    decode_typing_notice,
)
from twistchat.chat.protocol.server_messages import (
    AwayEvent,
    ContactEvent,
    DataEvent,
    DeliveredEvent,
    DmEvent,
    ErrorReply,
    InvitedEvent,
    JoinEvent,
    KickEvent,
    MessageEvent,
    ModeEvent,
    NickEvent,
    Ok,
    OpEvent,
    PartEvent,
    QuitEvent,
    RejoinedEvent,
    ReplacedEvent,
    ShutdownEvent,
    TopicEvent,
)

__all__ = [name for name in dir() if not name.startswith("_")
           and name not in ("codec", "codes", "errors", "limits", "requests", "schema",
                            "server_messages", "sizes", "validation", "pages", "typing_notices", "transfers")]
