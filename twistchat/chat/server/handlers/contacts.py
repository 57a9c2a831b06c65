"""Contact requests (PROTOCOL.md C11): watch a registered nick, unwatch it,
list your contacts with their state, paged.  The list is stored: a change
is committed before it is answered."""

from __future__ import annotations

from twistchat.chat import protocol as p
from twistchat.chat.protocol import ChatProtocolError, ErrorCode, fold_nick
from twistchat.chat.protocol.pages import page
from twistchat.chat.server.core import Handler, ServerCore
from twistchat.chat.server.user import User
from twistchat.store.social import ContactEntry, ContactsFull


async def watch(server: ServerCore, user: User, request: p.Watch) -> None:
    key = fold_nick(request.nick)
    online = server.online.get(key)
    account = await server.registered(key) if online is None else None
    if online is None and account is None:
        raise ChatProtocolError(ErrorCode.NO_SUCH_NICK)
    try:
        await server.store.watch(user.key, key, server.config.max_contacts)
    except ContactsFull:
        raise ChatProtocolError(
            ErrorCode.TOO_MANY_CONTACTS,
            f"you watch {server.config.max_contacts} nicks already; /unwatch one first") from None
    if not user.departed:
        server.contacts.add(user, key)
    nick = online.nick if online is not None else account.nick
    last_seen = None if account is None else account.last_seen
    contact = ContactEntry(key, nick, last_seen)
    user.session.reply(request, **server.contacts.entry(
        contact, await server.presence_elsewhere([contact])))


async def unwatch(server: ServerCore, user: User, request: p.Unwatch) -> None:
    key = fold_nick(request.nick)
    await server.store.unwatch(user.key, key)
    server.contacts.remove(user, key)
    user.session.reply(request, nick=request.nick)


async def contacts(server: ServerCore, user: User, request: p.Contacts) -> None:
    after = None if request.after is None else fold_nick(request.after)
    listed = [c for c in await server.store.get_contacts(user.key) if after is None or c.key > after]
    elsewhere = await server.presence_elsewhere(listed)
    entries = [server.contacts.entry(c, elsewhere) for c in listed]
    budget = min(server.config.max_message_bytes, user.peer_max_message_size)
    user.session.reply(request, **page(budget, request.id, {}, "contacts", entries, "a contact"))


HANDLERS: dict[type, Handler] = {p.Watch: watch, p.Unwatch: unwatch, p.Contacts: contacts}
