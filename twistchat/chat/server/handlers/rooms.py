"""Room requests: create a group, join, part, say, read and set the topic,
list members and rooms, page history.  Every listing reply is bounded by
bytes and paged (PROTOCOL.md C6, "Paging"): it never exceeds what the
peer's transport takes, or it is refused with REPLY_TOO_LARGE."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twistchat.chat import protocol as p
from twistchat.chat.protocol import ChatProtocolError, ErrorCode, fold_nick, fold_room
from twistchat.chat.protocol.pages import JOIN_MEMBERS, fill, hist, page, room_entry
from twistchat.chat.server.core import Handler, ServerCore, keyed
from twistchat.chat.server.rooms import Room
from twistchat.chat.server.user import User
from twistchat.store.base import HistoryEntry


def _check_room_capacity(server: ServerCore, user: User) -> None:
    if len(user.rooms) >= server.config.max_rooms_per_client:
        raise ChatProtocolError(ErrorCode.TOO_MANY_ROOMS)


def _check_can_create(server: ServerCore, user: User) -> None:
    """One node's count: the rooms it has open that ``user`` created (a
    network's is kept in the shared store: ``SharedRooms.open_or_create``)."""
    if server.rooms.created_by(user.key) >= server.config.max_rooms_created:
        raise ChatProtocolError(ErrorCode.TOO_MANY_CREATED)


async def create(server: ServerCore, user: User, request: p.Create) -> None:
    _check_room_capacity(server, user)
    if server.cluster is not None:  # counted over the network, in the step that creates
        room = await server.cluster.shared_rooms.new_group(user, server.config.max_rooms_created)
    else:
        _check_can_create(server, user)
        group = server.rooms.new_group_id()
        room = server.rooms.create(group, group, user)
    server.log.info("{nick} created group {room}", nick=user.nick, room=room.key)
    await _enter(server, user, request, room)


async def join(server: ServerCore, user: User, request: p.Join) -> None:
    key = fold_room(request.room)
    if key in user.rooms:
        raise ChatProtocolError(ErrorCode.ALREADY_IN_ROOM)
    _check_room_capacity(server, user)
    room = server.rooms.get(key)
    if room is None and server.cluster is not None:
        if request.room.startswith("#"):
            # one step in the shared store: opened as the network has it, or
            # created if the user has created fewer than the quota network-wide
            room = await server.cluster.shared_rooms.open_or_create(
                key, request.room, user, server.config.max_rooms_created)
        else:
            room = await server.cluster.shared_rooms.open_room(key)  # on another node, maybe
    if room is None:
        if not request.room.startswith("#"):
            raise ChatProtocolError(ErrorCode.NO_SUCH_ROOM)
        _check_can_create(server, user)
        room = server.rooms.create(key, request.room, user)
    room.check_join(user.key, request.key, server.config.max_members_per_room,
                    await server.members_of(room))
    await _enter(server, user, request, room)


def _budget(server: ServerCore, user: User) -> int:
    """The most bytes a reply to ``user`` may take: what the server announced
    it may send, and what the user's transport takes."""
    return min(server.config.max_message_bytes, user.peer_max_message_size)


def _join_reply(budget: int, request: p.Request, room: Room[User],
                entries: list[HistoryEntry], members: Mapping[str, Any]) -> dict[str, Any]:
    """The room, its member count and first members, and the newest lines
    that fit (``history_more``: older kept lines were left out)."""
    fields: dict[str, Any] = {**room.describe(members), "members": [], "history": [],
                              "history_more": False}
    fields["members"] = fill(budget, request.id, fields, "members",
                             room.member_list(count=JOIN_MEMBERS, members=members))
    lines = fill(budget, request.id, fields, "history", [_hist(e) for e in entries], newest=True)
    return {**fields, "history": lines, "history_more": len(lines) < len(entries)}


async def _enter(server: ServerCore, user: User, request: p.Request, room: Room[User]) -> None:
    members = await server.members_of(room)
    _join_reply(_budget(server, user), request, room, [], members)  # REPLY_TOO_LARGE before joining
    if server.cluster is not None:
        await server.cluster.joined(room, user)
        if user.departed:  # its session ended while the network answered
            server.cluster.left(room, user.key)
            return
    room.add(user)
    user.rooms[room.key] = room
    if room.invite_only:
        server.save_room(room)  # the invitation was used up
    server.tell(room, p.JoinEvent(room=room.name, nick=user.nick), exclude=user)
    server.log.info("{nick} joined {room}", nick=user.nick, room=room.name)
    history = await server.store.get_history(room.key, None, server.config.history_size)
    await server.memberships.joined(user, room)  # committed before the ok (C12)
    user.session.reply(request, **_join_reply(_budget(server, user), request, room, history,
                                              await server.members_of(room)))
    user.send(p.JoinEvent(room=room.name, nick=user.nick))


async def part(server: ServerCore, user: User, request: p.Part) -> None:
    room = server.room_of(user, request.room)
    server.tell(room, p.PartEvent(room=room.name, nick=user.nick, reason=request.reason), leaving=user)
    room.remove(user.key, server.clock.seconds())
    del user.rooms[room.key]
    if server.cluster is not None:
        server.cluster.left(room, user.key)
    await server.memberships.left(user.key, room.key, user)  # committed before the ok (C12)
    user.session.reply(request, room=room.name)


@keyed
async def say(server: ServerCore, user: User, request: p.Say) -> None:
    room = server.room_of(user, request.room)
    if server.cluster is not None:
        return await _say_on_the_network(server, user, request, room)
    msg_id = server.ids.ready()
    if msg_id is None:  # its block is used up: wait for the next one's commit
        msg_id = await server.ids.next_id()
    ts = server.now_ms()
    answer = {"room": room.name, "msg_id": msg_id, "ts": ts}
    # The line goes out and is echoed once committed (with its idem), so a
    # resend after a crash finds it and nobody sees it twice; that wait does
    # not hold up this session's next request.
    d = server.store.append_history(
        HistoryEntry(room=room.key, msg_id=msg_id, nick=user.nick, text=request.text, ts=ts),
        server.config.history_size, server.idem_record(user, request, answer))
    d.addCallbacks(_said, _store_failed, callbackArgs=(server, user, request, room, answer),
                   errbackArgs=(server, user, request))


def _said(known: Mapping[str, Any] | None, server: ServerCore, user: User, request: p.Say,
          room: Room[User], answer: dict[str, Any]) -> None:
    """The commit's callback; the store's failure is ``_store_failed``, on
    the same step of the Deferred (one pass of its callbacks, not two:
    issue 16), so what fails here is answered here."""
    try:
        if known is not None:  # said before: answered as then, not said again
            user.session.reply(request, **known)
            return
        server.memberships.deliver(room, p.MessageEvent(room=room.name, nick=user.nick,
                                                        text=request.text, msg_id=answer["msg_id"],
                                                        ts=answer["ts"]), sender=user)
        user.session.reply(request, **answer)
    except Exception:
        server.log.failure("a committed line of {nick} failed on its way", nick=user.nick)
        user.session.fail(request, ErrorCode.INTERNAL)


async def _say_on_the_network(server: ServerCore, user: User, request: p.Say,
                              room: Room[User]) -> None:
    """One script in the shared store takes the line's id, keeps it (and its
    idem) and publishes it on the room's channel, from which every node,
    this one too, delivers it: the ok comes once the store said so."""
    c = server.config
    if not await server.take(user, "say", c.rate, c.burst):
        raise ChatProtocolError(ErrorCode.RATE_LIMITED, "too many lines; slow down")
    ts = server.now_ms()
    entry, known = await server.store.append_line(
        room.key, user.nick, request.text, ts, c.history_size,
        server.idem_record(user, request, {"room": room.name, "ts": ts}),
        server.broker.room_channel(room.key))
    if known is not None:  # said before: answered as then, not said again
        user.session.reply(request, **known)
        return
    user.session.reply(request, room=room.name, msg_id=entry.msg_id, ts=entry.ts)


def _store_failed(failure: Any, server: ServerCore, user: User, request: p.Request) -> None:
    server.log.failure("store write failed for {type}", failure, type=request.TYPE)
    user.session.fail(request, ErrorCode.INTERNAL)


async def topic(server: ServerCore, user: User, request: p.Topic) -> None:
    room = server.room_of(user, request.room)
    if request.topic is not None:
        if not room.is_op(user.key):
            raise ChatProtocolError(ErrorCode.NOT_OPERATOR)
        ts = server.now_ms()
        room.topic, room.topic_by, room.topic_ts = (request.topic or None), user.nick, ts
        server.save_room(room)
        server.tell(room, p.TopicEvent(room=room.name, topic=request.topic, nick=user.nick, ts=ts))
    user.session.reply(request, room=room.name, topic=room.topic, nick=room.topic_by, ts=room.topic_ts)


async def who(server: ServerCore, user: User, request: p.Who) -> None:
    room = server.room_of(user, request.room)
    after = None if request.after is None else fold_nick(request.after)
    members = await server.members_of(room)
    user.session.reply(request, **page(_budget(server, user), request.id,
                                       {"room": room.name, "count": len(members)},
                                       "members", room.member_list(after, members=members),
                                       "a member"))


async def list_rooms(server: ServerCore, user: User, request: p.Rooms) -> None:
    after = None if request.after is None else fold_room(request.after)
    rooms = server.rooms if server.cluster is None else await server.cluster.all_rooms()
    listed = sorted((r for r in rooms if (not r.private or r.key in user.rooms)
                     and (after is None or r.key > after)), key=lambda r: r.key)
    counts = await server.member_counts(listed)
    entries = [room_entry(r.name, counts[r.key], r.topic, r.key in user.rooms) for r in listed
               if counts[r.key] or r.key in server.rooms.rooms]
    user.session.reply(request, **page(_budget(server, user), request.id, {}, "rooms", entries,
                                       "a room"))


async def history(server: ServerCore, user: User, request: p.History) -> None:
    room = server.room_of(user, request.room)
    size = server.config.history_size
    limit = size if request.limit is None else min(request.limit, size)
    entries = await server.store.get_history(room.key, request.since, limit)
    user.session.reply(request, **page(_budget(server, user), request.id, {"room": room.name},
                                       "history", [_hist(e) for e in entries], "a line"))


def _hist(entry: HistoryEntry) -> dict[str, Any]:
    return hist(entry.msg_id, entry.nick, entry.text, entry.ts)


HANDLERS: dict[type, Handler] = {
    p.Create: create, p.Join: join, p.Part: part, p.Say: say, p.Topic: topic, p.Who: who,
    p.Rooms: list_rooms, p.History: history,
}
