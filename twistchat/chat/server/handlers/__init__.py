"""
The request handlers, grouped by area; each module maps request classes to
``async def handler(server, user, request)`` in its ``HANDLERS``.  A
handler answers with ``user.session.reply``/``fail`` or raises
ChatProtocolError.
"""

from twistchat.chat.server.core import Handler
from twistchat.chat.server.handlers import (
    contacts, direct, identity, operators, presence, rooms, transfers,
)

HANDLERS: dict[type, Handler] = {
    **identity.HANDLERS, **rooms.HANDLERS, **operators.HANDLERS, **direct.HANDLERS,
    **presence.HANDLERS, **contacts.HANDLERS, **transfers.HANDLERS,
}

__all__ = ["HANDLERS"]
