"""Direct traffic: DMs (to the mailbox when the recipient is offline; the
sender hears "stored" only after the commit) and binary data to an online
nick, answered ok only once the recipient's transport has it."""

from __future__ import annotations

from twistchat.chat import protocol as p
from twistchat.chat.protocol import ChatProtocolError, ErrorCode, fold_nick
from twistchat.chat.server.core import Handler, ServerCore
from twistchat.chat.server.session import NotAcknowledged
from twistchat.chat.server.user import User
from twistchat.store.base import StoredDm


async def dm(server: ServerCore, user: User, request: p.Dm) -> None:
    key = fold_nick(request.to)
    dm_id, ts = server.next_id(), server.now_ms()
    recipient = server.online.get(key)
    if recipient is not None:
        recipient.send(p.DmEvent(nick=user.nick, to=recipient.nick, text=request.text,
                                 dm_id=dm_id, ts=ts))
        user.session.reply(request, to=recipient.nick, dm_id=dm_id, ts=ts, status="delivered")
        return
    account = await server.registered(key)
    if account is None:
        raise ChatProtocolError(ErrorCode.NO_SUCH_NICK)
    await server.mailbox.store(StoredDm(dm_id=dm_id, to_key=key, to_nick=account.nick,
                                        sender=user.nick, text=request.text, ts=ts))
    user.session.reply(request, to=account.nick, dm_id=dm_id, ts=ts, status="stored")


def check_fits(recipient: User, data: bytes) -> None:
    """Refuse, before any ok, what the recipient's transport could never take."""
    if len(data) > recipient.session.peer_max_message_size:
        raise ChatProtocolError(ErrorCode.TOO_LARGE, "too large for the recipient's transport")


async def data(server: ServerCore, user: User, request: p.Data) -> None:
    recipient = server.online.get(fold_nick(request.to))
    if recipient is None:
        raise ChatProtocolError(ErrorCode.NOT_ONLINE)
    event = p.encode(p.DataEvent(nick=user.nick, payload=request.payload))
    check_fits(recipient, event)
    try:
        await recipient.session.send_tracked(event)
    except NotAcknowledged:
        raise ChatProtocolError(ErrorCode.NOT_DELIVERED) from None
    user.session.reply(request, to=recipient.nick)


HANDLERS: dict[type, Handler] = {p.Dm: dm, p.Data: data}
