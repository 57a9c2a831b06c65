"""Presence: away and back, ping (which also tells the keepalive interval),
and quit."""

from __future__ import annotations

from twistchat.chat import protocol as p
from twistchat.chat.server.core import Handler, ServerCore
from twistchat.chat.server.user import User
from twistchat.endpoint.api import CloseCode


async def away(server: ServerCore, user: User, request: p.Away) -> None:
    user.away = request.message or None
    for room in list(user.rooms.values()):
        server.tell(room, p.AwayEvent(room=room.name, nick=user.nick, message=user.away))
        if server.cluster is not None:
            server.background(server.cluster.joined(room, user), "update a roster")
    server.contacts.online(user)
    user.session.reply(request, away=user.away)


async def ping(server: ServerCore, user: User, request: p.Ping) -> None:
    user.session.reply(request, ts=server.now_ms(), keepalive=int(server.config.keepalive_interval))


async def quit_server(server: ServerCore, user: User, request: p.Quit) -> None:
    await user.session.others_answered(request)
    if user.departed:
        return  # the session ended meanwhile: departed once, for that reason
    user.session.reply(request)
    server.depart(user, request.reason or "quit")
    user.session.close(request.reason or "quit", CloseCode.NORMAL, graceful=True)


HANDLERS: dict[type, Handler] = {p.Away: away, p.Ping: ping, p.Quit: quit_server}
