"""``data`` to a room (PROTOCOL.md C6): one payload to every other member,
as seed 000's group relay broadcasts; answered once every member's
transport has it (or its session ended: then it is named in ``missed``).
Never stored, like ``data`` to a nick; ``idem`` is kept as there.  On a
network of nodes it goes to the members on every node
(``room_data_relay``)."""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred, DeferredList
from twisted.python.failure import Failure

from twistchat.chat import protocol as p
from twistchat.chat.server.core import ServerCore
from twistchat.chat.server.rooms import Room
from twistchat.chat.server.user import User
from twistchat.cluster.broker import BrokerUnavailable
from twistchat.store.base import StoreUnavailable


async def relay(server: ServerCore, user: User, request: p.Data, token: tuple[str, str],
                forget: Callable[..., None]) -> None:
    room = server.room_of(user, request.room)
    event = p.encode(p.DataEvent(nick=user.nick, payload=request.payload, room=room.name))
    if server.cluster is not None:
        # On the room's channel: every node, this one too, sends it to its
        # members in the room's one order, and says who has it.
        outcome = server.cluster.room_data.send(room, user, event)
    else:
        outcome = Deferred.fromCoroutine(_send(room, user, event))
    done: Deferred[None] = Deferred()
    if request.idem is not None:
        server.relaying[token] = done
    finished = Deferred.fromCoroutine(_settle(server, user, request, room.name, outcome))
    finished.addErrback(_failed, server, user, request)
    finished.addBoth(forget, server, token, done)


async def _send(room: Room[User], user: User, event: bytes) -> tuple[int, list[str]]:
    """To every other member of this node's room: how many have it, who missed it."""
    members = [member for member in room.members.values() if member is not user]
    missed = [member.nick for member in members if len(event) > member.peer_max_message_size]
    sent = [(member.nick, member.send_tracked(event)) for member in members
            if member.nick not in missed]
    results = await DeferredList([d for _, d in sent], consumeErrors=True)
    missed = missed + [nick for (nick, _), (ok, _) in zip(sent, results) if not ok]
    return sum(1 for ok, _ in results if ok), missed


def _failed(failure: Failure, server: ServerCore, user: User, request: p.Data) -> None:
    if failure.check(BrokerUnavailable, StoreUnavailable):  # Redis away: nothing was sent
        server.log.info("room data answered UNAVAILABLE: {why}", why=failure.value)
        user.session.fail(request, p.ErrorCode.UNAVAILABLE)
        return
    server.log.failure("room data relay failed", failure)
    user.session.fail(request, p.ErrorCode.INTERNAL)


async def _settle(server: ServerCore, user: User, request: p.Data, room: str,
                  outcome: Deferred[tuple[int, list[str]]]) -> None:
    delivered, missed = await outcome
    answer: dict[str, Any] = {"room": room, "delivered": delivered, "missed": missed}
    record = server.idem_record(user, request, answer)
    if record is not None:
        answer = dict(await server.store.put_idem(record) or answer)
    user.session.reply(request, **answer)
