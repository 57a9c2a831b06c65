"""Direct traffic.  A DM is committed to the recipient's mailbox before the
sender hears "stored", online recipient or not, and its life goes on in
``mailbox`` (deleted when acknowledged, then "delivered").  Binary data goes
to an online nick only and is ok once the recipient's transport has it."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from twistchat.chat import protocol as p
from twistchat.chat.protocol import ChatProtocolError, ErrorCode, fold_nick
from twistchat.chat.server.core import Handler, ServerCore, keyed
from twistchat.chat.server.handlers import room_data
from twistchat.chat.server.member import Member, NotAcknowledged
from twistchat.chat.server.user import User
from twistchat.store.base import StoredDm


def check_fits(recipient: Member, data: bytes) -> None:
    """Refuse, before any ok, what the recipient's transport could never take."""
    if len(data) > recipient.peer_max_message_size:
        raise ChatProtocolError(ErrorCode.TOO_LARGE, "too large for the recipient's transport")


@keyed
async def dm(server: ServerCore, user: User, request: p.Dm) -> None:
    key = fold_nick(request.to)
    recipient = server.online.get(key)
    if recipient is not None:
        to_nick = recipient.nick
    else:
        account = await server.registered(key)
        if account is None:
            raise ChatProtocolError(ErrorCode.NO_SUCH_NICK)
        to_nick = account.nick
    if not await _may_send_dm(server, user):
        raise ChatProtocolError(ErrorCode.RATE_LIMITED, "too many DMs; slow down")
    elsewhere = None
    if recipient is None and server.cluster is not None:
        elsewhere = await server.bounded(server.cluster.holder(key))  # online on another node
    dm_id, ts = await server.ids.next_id(), server.now_ms()
    stored = StoredDm(dm_id=dm_id, to_key=key, to_nick=to_nick, sender=user.nick,
                      text=request.text, ts=ts, sender_key=user.key)
    if recipient is not None:
        check_fits(recipient, server.mailbox.event(stored, recipient, stored=False))
    answer = {"to": to_nick, "dm_id": dm_id, "ts": ts, "status": "stored",
              "online": recipient is not None or elsewhere is not None}
    known = await server.mailbox.store(stored, server.idem_record(user, request, answer))
    if known is not None:
        user.session.reply(request, **known)
        if server.cluster is not None and "dm_id" in known:
            await _hand_over_again(server, key, int(known["dm_id"]))
        return
    user.session.reply(request, **answer)
    recipient = server.online.get(key)  # who is online now, the commit done
    if recipient is not None:
        server.mailbox.hand_over(recipient, stored, stored=False)
    elif server.cluster is not None:  # its node, if any, hands it over, deletes it on the ack
        server.cluster.dm_to_holder(key, stored)


async def _hand_over_again(server: ServerCore, key: str, dm_id: int) -> None:
    """A resent DM, on a network: the node that kept it first may have died
    before it handed it over (it answers nothing more, so the client sent
    it again here), leaving it in the mailbox of a recipient online
    elsewhere that reads it only at its next login.  If it is still there,
    it goes to the recipient now (a session that has it already is not sent
    it twice: ``Mailbox.hand_over``)."""
    waiting = [dm for dm in await server.store.get_mailbox(key) if dm.dm_id == dm_id]
    recipient = server.online.get(key)
    for dm in waiting:
        if recipient is not None:
            server.mailbox.hand_over(recipient, dm, stored=False)
        else:
            server.cluster.dm_to_holder(key, dm)


async def _may_send_dm(server: ServerCore, user: User) -> bool:
    """The nick's DM bucket: on a network, one for all its sessions on every node."""
    c = server.config
    if server.cluster is not None:
        return await server.take(user, "dm", c.dm_rate, c.dm_burst)
    return server.dm_senders.take(user.key, server.clock.seconds())


async def data(server: ServerCore, user: User, request: p.Data) -> None:
    token = (user.key, request.idem or "")
    while request.idem is not None and token in server.relaying:
        await _end_of(server.relaying[token])  # the same key on its way: wait, then look
    known = await server.first_answer(user, request)
    if known is not None:
        user.session.reply(request, **known)
        return
    if (request.to is None) == (request.room is None):
        raise ChatProtocolError(ErrorCode.BAD_FIELD, "give exactly one of to and room")
    if request.room is not None:
        return await room_data.relay(server, user, request, token, _forget_relay)
    recipient = server.online.get(fold_nick(request.to))
    event = p.encode(p.DataEvent(nick=user.nick, payload=request.payload))
    if recipient is None and server.cluster is not None:
        holder = await server.bounded(server.cluster.holder(fold_nick(request.to)))
        if holder is None:
            raise ChatProtocolError(ErrorCode.NOT_ONLINE)
        to_nick = request.to  # its node sends it; the ok waits for its word
        sent = server.cluster.data.send(holder, fold_nick(request.to), event)
    else:
        if recipient is None:
            raise ChatProtocolError(ErrorCode.NOT_ONLINE)
        check_fits(recipient, event)
        to_nick = recipient.nick
        # Sent now, in request order; the ok waits for the recipient's ack
        # without holding up this session's next request.
        sent = recipient.send_tracked(event)
    done: Deferred[None] = Deferred()
    if request.idem is not None:
        server.relaying[token] = done
    finished = Deferred.fromCoroutine(_settle(server, user, request, to_nick, sent))
    finished.addErrback(_relay_failed, server, user, request)
    finished.addBoth(_forget_relay, server, token, done)


async def _settle(server: ServerCore, user: User, request: p.Data, to_nick: str,
                  sent: Deferred[None]) -> None:
    try:
        await sent
    except NotAcknowledged:
        user.session.fail(request, ErrorCode.NOT_DELIVERED)
        return
    answer: dict[str, Any] = {"to": to_nick}
    record = server.idem_record(user, request, answer)
    if record is not None:  # kept before the ok, so an ok'd payload is never relayed again
        answer = dict(await server.store.put_idem(record) or answer)
    user.session.reply(request, **answer)


def _relay_failed(failure: Failure, server: ServerCore, user: User, request: p.Data) -> None:
    server.log.failure("data relay failed", failure)
    user.session.fail(request, ErrorCode.INTERNAL)


def _forget_relay(_: Any, server: ServerCore, token: tuple[str, str], done: Deferred[None]) -> None:
    if server.relaying.get(token) is done:
        del server.relaying[token]
    done.callback(None)


def _end_of(d: Deferred[None]) -> Deferred[None]:
    """A Deferred of our own that fires when ``d`` does (``d`` may have several waiters)."""
    waiter: Deferred[None] = Deferred()

    def fire(result: Any) -> Any:
        waiter.callback(None)
        return result
    d.addBoth(fire)
    return waiter


HANDLERS: dict[type, Handler] = {p.Dm: dm, p.Data: data}
