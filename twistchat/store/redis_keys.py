"""
Every Redis key the store uses, named once (docs/CLUSTER.md, "Keys"): all
under ``tc:s:``, disjoint from the broker's ``tc:b:``.  A family that holds
one key per nick, room or id is a prefix the variable part follows; no
family's name is a prefix of another's (each ends in ``:``), so two
families never share a key whatever the nick or room.

The Lua scripts get the same names from here (``LUA_KEYS``), so a key is
spelled in this module only.
"""

from __future__ import annotations

import json

PREFIX = "tc:s:"

ID_COUNTER = PREFIX + "id"
"""String: the high-water mark of msg_id and dm_id (``INCR``/``INCRBY``)."""

ACCOUNT = PREFIX + "account:"
"""+ nick key. Hash: nick, credential, has_password (0/1), created, last_seen."""
SEEN_UNCLAIMED = PREFIX + "seen-unclaimed"
"""Sorted set: password-less account keys by last_seen (for expiry)."""
SEEN_PASSWORD = PREFIX + "seen-password"
"""Sorted set: password account keys by last_seen."""

HISTORY = PREFIX + "history:"
"""+ room key. Sorted set by msg_id of JSON lines ``{"msg_id", "line", "nick", "text", "ts"}``."""
ROOM_LINES = PREFIX + "room-lines"
"""Hash: room key to the number of lines ever kept there (the newest line's number)."""

DM = PREFIX + "dm:"
"""+ dm_id. Hash: the StoredDm's fields."""
MAILBOX = PREFIX + "mailbox:"
"""+ recipient key. Sorted set of dm_ids by dm_id."""
MAILBOX_SENDERS = PREFIX + "mailbox-senders:"
"""+ recipient key. Hash: sender key to its DMs waiting in that mailbox."""
SENT = PREFIX + "sent:"
"""+ sender key. Set of the dm_ids it has waiting anywhere (so a rename finds them)."""
DM_COUNT = PREFIX + "dm-count"
"""String: DMs in all mailboxes together."""
RECEIPT = PREFIX + "receipt:"
"""+ dm_id. Hash: sender_key, to_nick, ts."""
RECEIPTS = PREFIX + "receipts:"
"""+ sender key. Sorted set of the dm_ids of its receipts, by dm_id."""

IDEM = PREFIX + "idem:"
"""+ nick key. Hash: idempotency key to its first answer (JSON)."""
IDEM_ORDER = PREFIX + "idem-order:"
"""+ nick key. Sorted set of its idempotency keys by when kept (``IDEM_SEQ``)."""
IDEM_AGE = PREFIX + "idem-age"
"""Sorted set of ``<len(nick)>:<nick><idem>`` by ts, for the purge by age."""
IDEM_SEQ = PREFIX + "idem-seq"
"""String: counter ordering kept idempotency keys."""

ROOMS = PREFIX + "rooms"
"""Hash: room key to its kept state (JSON)."""
CREATED = PREFIX + "created:"
"""+ creator's nick key. Set of the room keys it created that are kept
(``max_rooms_created`` counts these, network-wide)."""
ROOM_CREATOR = PREFIX + "room-creator"
"""Hash: room key to the nick key whose ``CREATED`` set holds it (a rename
moves both, so a room dropped later leaves the right set)."""

CONTACTS = PREFIX + "contacts:"
"""+ owner key. Set of watched nick keys."""
MEMBERSHIPS = PREFIX + "memberships:"
"""+ nick key. Hash: room key to ``"<last_seen> <seen_line> <seq> <room name>"``."""
MEMBERS = PREFIX + "members"
"""Set of the nick keys that hold a kept membership."""
MEMBERSHIP_SEQ = PREFIX + "membership-seq"
"""String: counter ordering memberships as joined."""

LUA_KEYS = {
    "id": ID_COUNTER, "account": ACCOUNT, "seen_unclaimed": SEEN_UNCLAIMED,
    "seen_password": SEEN_PASSWORD, "history": HISTORY, "room_lines": ROOM_LINES,
    "dm": DM, "mailbox": MAILBOX, "mailbox_senders": MAILBOX_SENDERS, "sent": SENT,
    "dm_count": DM_COUNT, "receipt": RECEIPT, "receipts": RECEIPTS, "idem": IDEM,
    "idem_order": IDEM_ORDER, "idem_age": IDEM_AGE, "idem_seq": IDEM_SEQ, "rooms": ROOMS,
    "created": CREATED, "room_creator": ROOM_CREATOR,
    "contacts": CONTACTS, "memberships": MEMBERSHIPS, "members": MEMBERS,
    "membership_seq": MEMBERSHIP_SEQ,
}


def lua_key_table() -> str:
    """``local K = {...}``: the names above for the scripts (JSON strings are Lua strings)."""
    return "local K = {" + ", ".join(f"{name} = {json.dumps(key)}" for name, key in LUA_KEYS.items()) + "}\n"
