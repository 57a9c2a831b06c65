"""Operator requests: kick, ban and unban, room modes, invitations, handing
operator status on.  Each is refused with NOT_OPERATOR for anyone else."""

from __future__ import annotations

from typing import Any

from twistchat.chat import protocol as p
from twistchat.chat.protocol import ChatProtocolError, ErrorCode, fold_nick
from twistchat.chat.server.core import Handler, ServerCore
from twistchat.chat.server.rooms import Room
from twistchat.chat.server.user import User


async def _target(server: ServerCore, room: Room[User], user: User, nick: str) -> Any:
    """The member ``nick`` names: a ``User`` here, or (on a network) a
    ``RemoteMember`` on another node."""
    key = fold_nick(nick)
    if key == user.key:
        raise ChatProtocolError(ErrorCode.NOT_OPERATOR, "an operator cannot target themself")
    target = (await server.members_of(room)).get(key)
    if target is None:
        raise ChatProtocolError(ErrorCode.NOT_IN_ROOM, f"{nick} is not in {room.name}")
    return target


def _remove_member(server: ServerCore, room: Room[User], target: Any, by: User,
                   reason: str | None, banned: bool) -> None:
    """Told, then out of the room: on a network, by the node it is on, once
    the channel brought it the kick."""
    event = p.KickEvent(room=room.name, nick=target.nick, by=by.nick, reason=reason, banned=banned)
    if server.cluster is not None:
        server.cluster.tell(room.key, event, remove=target.key)
        server.background(server.memberships.left(target.key, room.key), "end a membership")
    else:
        server.tell(room, event)
        server.removed_from(room, target)
    server.log.info("{by} removed {nick} from {room}", by=by.nick, nick=target.nick, room=room.name)


async def kick(server: ServerCore, user: User, request: p.Kick) -> None:
    room = server.op_room(user, request.room)
    target = await _target(server, room, user, request.nick)
    _remove_member(server, room, target, user, request.reason, banned=False)
    user.session.reply(request)


async def ban(server: ServerCore, user: User, request: p.Ban) -> None:
    room = server.op_room(user, request.room)
    key = fold_nick(request.nick)
    if key == user.key:
        raise ChatProtocolError(ErrorCode.NOT_OPERATOR, "an operator cannot ban themself")
    room.bans[key] = request.nick
    room.invites.discard(key)
    server.save_room(room)
    target = (await server.members_of(room)).get(key)
    if target is not None:
        _remove_member(server, room, target, user, request.reason, banned=True)
    else:
        server.background(server.memberships.left(key, room.key), "end a membership")
    user.session.reply(request, bans=sorted(room.bans.values()))


async def unban(server: ServerCore, user: User, request: p.Unban) -> None:
    room = server.op_room(user, request.room)
    room.bans.pop(fold_nick(request.nick), None)
    server.save_room(room)
    user.session.reply(request, bans=sorted(room.bans.values()))


async def mode(server: ServerCore, user: User, request: p.Mode) -> None:
    room = server.op_room(user, request.room)
    cap = server.config.max_members_per_room
    if request.limit is not None and request.limit > cap:
        raise ChatProtocolError(ErrorCode.BAD_FIELD,
                                f"limit {request.limit} is over the server's {cap} members per room")
    if request.invite_only is not None:
        room.invite_only = request.invite_only
    if request.key is not None:
        room.join_key = request.key or None
    if request.limit is not None:
        room.member_limit = request.limit or None
    server.save_room(room)
    server.tell(room, p.ModeEvent(room=room.name, nick=user.nick, invite_only=room.invite_only,
                                  has_key=bool(room.join_key), limit=room.member_limit))
    user.session.reply(request, room=room.name, invite_only=room.invite_only,
                       has_key=bool(room.join_key), limit=room.member_limit)


async def invite(server: ServerCore, user: User, request: p.Invite) -> None:
    room = server.op_room(user, request.room)
    key = fold_nick(request.nick)
    if key not in server.online and await server.registered(key) is None:
        raise ChatProtocolError(ErrorCode.NO_SUCH_NICK)
    room.invites.add(key)
    server.save_room(room)
    invitee = server.online.get(key)
    if invitee is not None:
        invitee.send(p.InvitedEvent(room=room.name, by=user.nick))
    elif server.cluster is not None:  # maybe online on another node
        server.cluster.to_user(key, p.encode(p.InvitedEvent(room=room.name, by=user.nick)))
    user.session.reply(request)


async def op(server: ServerCore, user: User, request: p.Op) -> None:
    room = server.op_room(user, request.room)
    target = await _target(server, room, user, request.nick)
    room.op_key, room.op_nick = target.key, target.nick
    server.save_room(room)
    server.tell(room, p.OpEvent(room=room.name, nick=target.nick, by=user.nick))
    user.session.reply(request, room=room.name, op=target.nick)


HANDLERS: dict[type, Handler] = {
    p.Kick: kick, p.Ban: ban, p.Unban: unban, p.Mode: mode, p.Invite: invite, p.Op: op,
}
