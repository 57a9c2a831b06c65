"""``data`` to a room (PROTOCOL.md C6): one payload to every other member,
as seed 000's group relay broadcasts; answered once every member's
transport has it (or its session ended: then it is named in ``missed``).
Never stored, like ``data`` to a nick; ``idem`` is kept as there."""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred, DeferredList

from twistchat.chat import protocol as p
from twistchat.chat.server.core import ServerCore
from twistchat.chat.server.user import User


async def relay(server: ServerCore, user: User, request: p.Data, token: tuple[str, str],
                forget: Callable[..., None]) -> None:
    room = server.room_of(user, request.room)
    event = p.encode(p.DataEvent(nick=user.nick, payload=request.payload, room=room.name))
    members = [member for member in room.members.values() if member is not user]
    missed = [member.nick for member in members if len(event) > member.peer_max_message_size]
    sent = [(member.nick, member.send_tracked(event)) for member in members
            if member.nick not in missed]
    done: Deferred[None] = Deferred()
    if request.idem is not None:
        server.relaying[token] = done
    finished = Deferred.fromCoroutine(_settle(server, user, request, room.name, sent, missed))
    finished.addErrback(lambda failure: (server.log.failure("room data relay failed", failure),
                                         user.session.fail(request, p.ErrorCode.INTERNAL)))
    finished.addBoth(forget, server, token, done)


async def _settle(server: ServerCore, user: User, request: p.Data, room: str,
                  sent: list[tuple[str, Deferred[None]]], missed: list[str]) -> None:
    results = await DeferredList([d for _, d in sent], consumeErrors=True)
    missed = missed + [nick for (nick, _), (ok, _) in zip(sent, results) if not ok]
    delivered = sum(1 for ok, _ in results if ok)
    answer: dict[str, Any] = {"room": room, "delivered": delivered, "missed": missed}
    record = server.idem_record(user, request, answer)
    if record is not None:
        answer = dict(await server.store.put_idem(record) or answer)
    user.session.reply(request, **answer)
