"""
ChatServer: ties identities, rooms, the mailbox and flood control together.

``ChatServer(store, clock, config)``; ``build_protocol()`` gives the transport
one ``ClientSession`` per new session.  ``start()`` loads kept rooms and the
id counter and starts the reaper; ``stop()`` stops the reaper; ``shutdown()``
tells every client, flushes the store and closes sessions gracefully.

The reaper is a ``LoopingCall`` on the injected clock, exposed as
``reaper``; the twistd plugin just calls ``start()``/``shutdown()`` from its
service's startService/stopService (no TimerService needed: ``start`` also
runs the async loading that a TimerService could not express).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet import threads
from twisted.internet.defer import Deferred, DeferredLock, maybeDeferred
from twisted.internet.interfaces import IReactorThreads, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from twistchat.chat import protocol as p
from twistchat.chat.protocol import ChatProtocolError, ErrorCode, fold_nick, fold_room
from twistchat.chat.server import identities
from twistchat.chat.server.config import ServerConfig
from twistchat.chat.server.mailbox import Mailbox
from twistchat.chat.server.rooms import Room, RoomRegistry
from twistchat.chat.server.session import ClientSession
from twistchat.endpoint.api import CloseCode, CloseReason
from twistchat.store.base import Account, ChatStore, HistoryEntry, StoredDm

TIMED_OUT = "timed out"
REPLACED = "replaced"

Handler = Callable[[ClientSession, Any], Awaitable[None]]


class ChatServer:
    log = Logger()

    def __init__(self, store: ChatStore, clock: IReactorTime,
                 config: ServerConfig | None = None, rng: random.Random | None = None) -> None:
        self.store = store
        self.clock = clock
        self.config = config or ServerConfig()
        self.rooms = RoomRegistry(rng or random.SystemRandom())
        self.sessions: set[ClientSession] = set()
        self.online: dict[str, ClientSession] = {}
        """Folded nick to its one live session."""
        self.mailbox = Mailbox(store, self.config.mailbox_size, self.online.get)
        self.reaper = LoopingCall(self.reap)
        self.reaper.clock = clock
        self.shutting_down = False
        self._last_id = 0
        self._last_purge = clock.seconds()
        self._login_locks: dict[str, DeferredLock] = {}
        self._handlers: dict[type, Handler] = {
            p.Login: self._login, p.SetPassword: self._set_password, p.Create: self._create,
            p.Join: self._join, p.Part: self._part, p.Say: self._say, p.Dm: self._dm,
            p.Data: self._data, p.Topic: self._topic, p.Who: self._who, p.Rooms: self._rooms,
            p.Nick: self._nick, p.Away: self._away, p.Ping: self._ping, p.History: self._history,
            p.Kick: self._kick, p.Ban: self._ban, p.Unban: self._unban, p.Mode: self._mode,
            p.Invite: self._invite, p.Op: self._op, p.Quit: self._quit,
        }

    # ------------------------------------------------------------ lifecycle

    def off_reactor(self, function: Callable[..., Any], *args: Any) -> Deferred[Any]:
        """Run CPU-heavy work (scrypt: tens of ms) on the reactor's thread pool,
        so logins never stall everyone else's traffic. On a clock without
        threads (tests) it runs inline."""
        if IReactorThreads.providedBy(self.clock):
            return threads.deferToThreadPool(self.clock, self.clock.getThreadPool(),
                                             function, *args)
        return maybeDeferred(function, *args)

    def build_protocol(self) -> ClientSession:
        return ClientSession(self)

    def start(self) -> Deferred[None]:
        """Load the id counter and kept rooms, then start the reaper."""
        async def load() -> None:
            self._last_id = max(self._last_id, await self.store.last_id())
            now = self.clock.seconds()
            for key, state in (await self.store.load_rooms()).items():
                if key not in self.rooms.rooms:
                    self.rooms.rooms[key] = Room.from_state(key, state, now)
            if not self.reaper.running:
                self.reaper.start(self.config.reap_interval, now=False)
            self.log.info("chat server started: {rooms} kept rooms", rooms=len(self.rooms.rooms))
        return Deferred.fromCoroutine(load())

    def stop(self) -> None:
        if self.reaper.running:
            self.reaper.stop()

    def shutdown(self, message: str = "server shutting down") -> Deferred[None]:
        """Tell everyone, wait for every store write (so all acknowledged data
        is on disk and every pending ack went out), then close sessions."""
        self.shutting_down = True
        self.stop()
        event = p.encode(p.ShutdownEvent(message=message))
        for session in list(self.sessions):
            session.send_bytes(event)
        self.log.info("shutting down: {count} sessions", count=len(self.sessions))

        def close_all(_: Any) -> None:
            for session in list(self.sessions):
                session.departed = True
                session.close(message, CloseCode.SHUTTING_DOWN, graceful=True)
        return self.store.flush().addCallback(close_all)

    # ------------------------------------------------------------ helpers

    def now_ms(self) -> int:
        return int(self.clock.seconds() * 1000)

    def next_id(self) -> int:
        self._last_id += 1
        return self._last_id

    def session_started(self, session: ClientSession) -> None:
        self.sessions.add(session)
        self.log.info("session from {peer}", peer=session.peer)

    def session_lost(self, session: ClientSession, reason: CloseReason) -> None:
        self.sessions.discard(session)
        self._keep_unacknowledged_dms(session, reason.unacked)
        if not session.departed:
            timeout = reason.code == CloseCode.IDLE_TIMEOUT
            text = TIMED_OUT if timeout else (reason.message or "connection closed")
            self._depart(session, text, timeout)

    def _keep_unacknowledged_dms(self, session: ClientSession, unacked: tuple[bytes, ...]) -> None:
        """DMs the transport could not get acknowledged before the session
        died go (back) to the recipient's mailbox: never silently lost. The
        recipient may see one twice (it arrived, its ack did not); clients
        de-duplicate by ``dm_id``."""
        if not session.key:
            return
        for data in unacked:
            try:
                message = p.decode_server_message(data)
            except ChatProtocolError:
                continue
            if not isinstance(message, p.DmEvent):
                continue
            dm = StoredDm(dm_id=message.dm_id, to_key=session.key, to_nick=message.to,
                          sender=message.nick, text=message.text, ts=message.ts)
            self.log.info("DM {dm_id} for {nick} not acknowledged; back to the mailbox",
                          dm_id=dm.dm_id, nick=dm.to_nick)
            self.store.store_dm(dm).addErrback(
                lambda failure: self.log.failure("could not keep an unacknowledged DM", failure))

    def _depart(self, session: ClientSession, reason: str, timeout: bool = False) -> None:
        """Remove a session from every room (announcing ``quit``) and from the
        online map.  Idempotent."""
        if session.departed:
            return
        session.departed = True
        if not session.logged_in:
            return
        now = self.clock.seconds()
        for room in list(session.rooms.values()):
            room.remove(session.key, now)
            room.broadcast(p.QuitEvent(room=room.name, nick=session.nick, reason=reason,
                                       timeout=timeout))
        session.rooms.clear()
        if self.online.get(session.key) is session:
            del self.online[session.key]
            self._background(self.store.touch_account(session.key, self.now_ms()), "touch")
        self.log.info("{nick} left: {reason}", nick=session.nick, reason=reason)

    def _room_of(self, session: ClientSession, name: str) -> Room:
        room = session.rooms.get(fold_room(name))
        if room is None:
            raise ChatProtocolError(ErrorCode.NOT_IN_ROOM)
        return room

    def _op_room(self, session: ClientSession, name: str) -> Room:
        room = self._room_of(session, name)
        if not room.is_op(session.key):
            raise ChatProtocolError(ErrorCode.NOT_OPERATOR)
        return room

    def _save_room(self, room: Room) -> None:
        """Persist operator-set state for rooms worth keeping across restarts."""
        if room.worth_keeping():
            self._background(self.store.put_room(room.key, room.to_state()), "save room")
        else:
            self._background(self.store.delete_room(room.key), "delete room")

    def _background(self, d: Deferred[Any], what: str) -> None:
        """A write nobody waits for: ordered by the store, failures logged."""
        d.addErrback(lambda f: self.log.failure("store {what} failed", f, what=what))

    async def _registered(self, key: str) -> Account | None:
        """The live registration for ``key``, dropping it if it lapsed."""
        account = await self.store.get_account(key)
        if (account is not None and key not in self.online
                and identities.is_expired(account, self.now_ms(), self.config.unclaimed_expiry)):
            await self.store.delete_expired_accounts(account.last_seen + 1, keep=set(self.online))
            self.log.info("registration of {nick} expired", nick=account.nick)
            return None
        return account

    # ------------------------------------------------------------ reaping

    def reap(self) -> None:
        """One reaper tick: drop idle sessions, remove expired empty rooms,
        and now and then purge lapsed password-less registrations."""
        now = self.clock.seconds()
        for session in list(self.sessions):
            if now - session.last_heard > self.config.idle_timeout and not session.departed:
                self.log.info("reaping idle session {nick} from {peer}", nick=session.nick or "-",
                              peer=session.peer)
                self._depart(session, TIMED_OUT, timeout=True)
                self.sessions.discard(session)
                session.close(TIMED_OUT, CloseCode.IDLE_TIMEOUT, graceful=False)
        for room in self.rooms.expired(now, self.config.room_ttl, self.config.kept_room_ttl):
            self.log.info("reaping empty room {room}", room=room.name)
            self._background(self.store.delete_history(room.key), "delete history")
            self._background(self.store.delete_room(room.key), "delete room")
        if now - self._last_purge >= self.config.purge_interval:
            self._last_purge = now
            cutoff = self.now_ms() - int(self.config.unclaimed_expiry * 1000)
            d = self.store.delete_expired_accounts(cutoff, keep=set(self.online))
            d.addCallback(lambda gone: gone and self.log.info(
                "purged {count} lapsed registrations", count=len(gone)))
            d.addErrback(lambda f: self.log.failure("purging registrations failed", f))

    # ------------------------------------------------------------ dispatch

    async def dispatch(self, session: ClientSession, request: p.Request) -> None:
        if self.shutting_down:
            raise ChatProtocolError(ErrorCode.SHUTTING_DOWN)
        if not session.logged_in and not isinstance(request, p.Login):
            raise ChatProtocolError(ErrorCode.NOT_LOGGED_IN)
        await self._handlers[type(request)](session, request)

    # ------------------------------------------------------------ identities

    async def _login(self, session: ClientSession, request: p.Login) -> None:
        if session.logged_in:
            raise ChatProtocolError(ErrorCode.ALREADY_LOGGED_IN)
        key = fold_nick(request.nick)
        lock = self._login_locks.setdefault(key, DeferredLock())
        await lock.acquire()
        try:
            await self._login_locked(session, request, key)
        finally:
            lock.release()
            if not lock.locked and not lock.waiting:
                self._login_locks.pop(key, None)

    async def _login_locked(self, session: ClientSession, request: p.Login, key: str) -> None:
        config = self.config
        account = await self._registered(key)
        new_secret = None
        registered_now = account is None
        if account is None:
            if request.password is not None:
                credential, has_password = await self._password_hash(request.password), True
            else:
                new_secret = identities.new_secret(config.secret_bytes)
                credential, has_password = await self._hash(new_secret), False
            now = self.now_ms()
            account = Account(key=key, nick=request.nick, credential=credential,
                               has_password=has_password, created=now, last_seen=now)
            await self.store.put_account(account)
            self.log.info("registered {nick}", nick=request.nick)
        else:
            given = request.password if request.password is not None else request.secret
            if given is None or not await self.off_reactor(identities.verify_credential,
                                                           given, account.credential):
                self.log.info("wrong credential for {nick} from {peer}", nick=request.nick,
                              peer=session.peer)
                raise ChatProtocolError(ErrorCode.BAD_CREDENTIAL)
        if session.departed:  # the transport went away while we checked
            return
        previous = self.online.get(key)
        if previous is not None and previous is not session:
            previous.send(p.ReplacedEvent())
            self._depart(previous, REPLACED)
            self.sessions.discard(previous)
            previous.close(REPLACED, CloseCode.REPLACED, graceful=True)
            self.log.info("{nick} logged in again; older session replaced", nick=account.nick)
        session.key, session.nick = key, account.nick
        self.online[key] = session
        await self.store.touch_account(key, self.now_ms())
        waiting = await self.mailbox.pending(key)
        fields: dict[str, Any] = {
            "nick": account.nick, "registered": registered_now,
            "keepalive": int(config.keepalive_interval), "idle_timeout": int(config.idle_timeout),
            "max_text_bytes": config.max_text_bytes, "max_payload_bytes": config.max_payload_bytes,
            "mailbox": len(waiting)}
        if new_secret is not None:
            fields["secret"] = new_secret
        session.reply(request, **fields)
        self.log.info("{nick} logged in from {peer}", nick=account.nick, peer=session.peer)
        await self.mailbox.replay(session, waiting)

    def _hash(self, secret: str) -> Deferred[str]:
        c = self.config
        return self.off_reactor(identities.hash_credential, secret, c.scrypt_n, c.scrypt_r,
                                c.scrypt_p)

    async def _password_hash(self, password: str) -> str:
        if len(password) < p.PASSWORD_MIN_LENGTH:
            raise ChatProtocolError(ErrorCode.WEAK_PASSWORD)
        return await self._hash(password)

    async def _set_password(self, session: ClientSession, request: p.SetPassword) -> None:
        credential = await self._password_hash(request.password)
        account = await self.store.get_account(session.key)
        if account is None:
            raise ChatProtocolError(ErrorCode.NO_SUCH_NICK)
        await self.store.put_account(Account(
            key=account.key, nick=account.nick, credential=credential, has_password=True,
            created=account.created, last_seen=self.now_ms()))
        session.reply(request)

    async def _nick(self, session: ClientSession, request: p.Nick) -> None:
        new_key = fold_nick(request.nick)
        old_key, old_nick = session.key, session.nick
        if new_key != old_key and (new_key in self.online or await self._registered(new_key) is not None):
            raise ChatProtocolError(ErrorCode.NICK_TAKEN)
        account = await self.store.get_account(old_key)
        if account is None:
            raise ChatProtocolError(ErrorCode.NO_SUCH_NICK)
        if new_key != old_key and new_key in self.online:  # raced with a login
            raise ChatProtocolError(ErrorCode.NICK_TAKEN)
        await self.store.rename_account(old_key, Account(
            key=new_key, nick=request.nick, credential=account.credential,
            has_password=account.has_password, created=account.created, last_seen=self.now_ms()))
        del self.online[old_key]
        session.key, session.nick = new_key, request.nick
        self.online[new_key] = session
        self.rooms.rename_member(old_key, session)
        for room in list(session.rooms.values()):
            room.broadcast(p.NickEvent(room=room.name, old=old_nick, new=request.nick))
            if room.op_key == new_key:
                self._save_room(room)
        session.reply(request, nick=request.nick)

    # ------------------------------------------------------------ rooms

    def _check_room_capacity(self, session: ClientSession) -> None:
        if len(session.rooms) >= self.config.max_rooms_per_client:
            raise ChatProtocolError(ErrorCode.TOO_MANY_ROOMS)

    def _check_can_create(self, session: ClientSession) -> None:
        if self.rooms.created_by(session.key) >= self.config.max_rooms_created:
            raise ChatProtocolError(ErrorCode.TOO_MANY_CREATED)

    async def _create(self, session: ClientSession, request: p.Create) -> None:
        self._check_room_capacity(session)
        self._check_can_create(session)
        group = self.rooms.new_group_id()
        room = self.rooms.create(group, group, session)
        self.log.info("{nick} created group {room}", nick=session.nick, room=group)
        await self._enter(session, request, room)

    async def _join(self, session: ClientSession, request: p.Join) -> None:
        key = fold_room(request.room)
        if key in session.rooms:
            raise ChatProtocolError(ErrorCode.ALREADY_IN_ROOM)
        self._check_room_capacity(session)
        room = self.rooms.get(key)
        if room is None:
            if not request.room.startswith("#"):
                raise ChatProtocolError(ErrorCode.NO_SUCH_ROOM)
            self._check_can_create(session)
            room = self.rooms.create(key, request.room, session)
        room.check_join(session.key, request.key, self.config.max_members_per_room)
        await self._enter(session, request, room)

    async def _enter(self, session: ClientSession, request: p.Request, room: Room) -> None:
        room.add(session)
        session.rooms[room.key] = room
        if room.invite_only:
            self._save_room(room)  # the invitation was used up
        room.broadcast(p.JoinEvent(room=room.name, nick=session.nick), exclude=session)
        self.log.info("{nick} joined {room}", nick=session.nick, room=room.name)
        history = await self.store.get_history(room.key, None, self.config.history_size)
        session.reply(request, **room.describe(), history=[_hist(e) for e in history])
        session.send(p.JoinEvent(room=room.name, nick=session.nick))

    async def _part(self, session: ClientSession, request: p.Part) -> None:
        room = self._room_of(session, request.room)
        room.broadcast(p.PartEvent(room=room.name, nick=session.nick, reason=request.reason))
        room.remove(session.key, self.clock.seconds())
        del session.rooms[room.key]
        session.reply(request, room=room.name)

    async def _say(self, session: ClientSession, request: p.Say) -> None:
        room = self._room_of(session, request.room)
        msg_id, ts = self.next_id(), self.now_ms()
        room.broadcast(p.MessageEvent(room=room.name, nick=session.nick, text=request.text,
                                      msg_id=msg_id, ts=ts), exclude=session)
        # The echo waits for the commit, without holding up this session's next request.
        d = self.store.append_history(
            HistoryEntry(room=room.key, msg_id=msg_id, nick=session.nick, text=request.text, ts=ts),
            self.config.history_size)
        d.addCallback(lambda _: session.reply(request, room=room.name, msg_id=msg_id, ts=ts))
        d.addErrback(self._store_failed, session, request)

    def _store_failed(self, failure: Any, session: ClientSession, request: p.Request) -> None:
        self.log.failure("store write failed for {type}", failure, type=request.TYPE)
        session.fail(request, ErrorCode.INTERNAL)

    async def _topic(self, session: ClientSession, request: p.Topic) -> None:
        room = self._room_of(session, request.room)
        if request.topic is not None:
            if not room.is_op(session.key):
                raise ChatProtocolError(ErrorCode.NOT_OPERATOR)
            ts = self.now_ms()
            room.topic, room.topic_by, room.topic_ts = (request.topic or None), session.nick, ts
            self._save_room(room)
            room.broadcast(p.TopicEvent(room=room.name, topic=request.topic, nick=session.nick, ts=ts))
        session.reply(request, room=room.name, topic=room.topic, nick=room.topic_by, ts=room.topic_ts)

    async def _who(self, session: ClientSession, request: p.Who) -> None:
        room = self._room_of(session, request.room)
        session.reply(request, room=room.name, members=room.member_list())

    async def _rooms(self, session: ClientSession, request: p.Rooms) -> None:
        listing = [{"room": r.name, "members": len(r.members), "topic": r.topic,
                    "joined": r.key in session.rooms}
                   for r in self.rooms if not r.private or r.key in session.rooms]
        session.reply(request, rooms=sorted(listing, key=lambda item: item["room"]))

    async def _away(self, session: ClientSession, request: p.Away) -> None:
        session.away = request.message or None
        for room in list(session.rooms.values()):
            room.broadcast(p.AwayEvent(room=room.name, nick=session.nick, message=session.away))
        session.reply(request, away=session.away)

    async def _ping(self, session: ClientSession, request: p.Ping) -> None:
        session.reply(request, ts=self.now_ms(), keepalive=int(self.config.keepalive_interval))

    async def _history(self, session: ClientSession, request: p.History) -> None:
        room = self._room_of(session, request.room)
        limit = self.config.history_size if request.limit is None else min(request.limit, self.config.history_size)
        entries = await self.store.get_history(room.key, request.since, limit)
        session.reply(request, room=room.name, history=[_hist(e) for e in entries])

    # ------------------------------------------------------------ operator actions

    def _target(self, room: Room, session: ClientSession, nick: str) -> ClientSession:
        key = fold_nick(nick)
        if key == session.key:
            raise ChatProtocolError(ErrorCode.NOT_OPERATOR, "an operator cannot target themself")
        target = room.members.get(key)
        if target is None:
            raise ChatProtocolError(ErrorCode.NOT_IN_ROOM, f"{nick} is not in {room.name}")
        return target

    def _remove_member(self, room: Room, target: ClientSession, by: ClientSession,
                       reason: str | None, banned: bool) -> None:
        room.broadcast(p.KickEvent(room=room.name, nick=target.nick, by=by.nick, reason=reason,
                                   banned=banned))
        room.remove(target.key, self.clock.seconds())
        target.rooms.pop(room.key, None)
        self.log.info("{by} removed {nick} from {room}", by=by.nick, nick=target.nick, room=room.name)

    async def _kick(self, session: ClientSession, request: p.Kick) -> None:
        room = self._op_room(session, request.room)
        target = self._target(room, session, request.nick)
        self._remove_member(room, target, session, request.reason, banned=False)
        session.reply(request)

    async def _ban(self, session: ClientSession, request: p.Ban) -> None:
        room = self._op_room(session, request.room)
        key = fold_nick(request.nick)
        if key == session.key:
            raise ChatProtocolError(ErrorCode.NOT_OPERATOR, "an operator cannot ban themself")
        room.bans[key] = request.nick
        room.invites.discard(key)
        self._save_room(room)
        target = room.members.get(key)
        if target is not None:
            self._remove_member(room, target, session, request.reason, banned=True)
        session.reply(request, bans=sorted(room.bans.values()))

    async def _unban(self, session: ClientSession, request: p.Unban) -> None:
        room = self._op_room(session, request.room)
        room.bans.pop(fold_nick(request.nick), None)
        self._save_room(room)
        session.reply(request, bans=sorted(room.bans.values()))

    async def _mode(self, session: ClientSession, request: p.Mode) -> None:
        room = self._op_room(session, request.room)
        if request.invite_only is not None:
            room.invite_only = request.invite_only
        if request.key is not None:
            room.join_key = request.key or None
        self._save_room(room)
        room.broadcast(p.ModeEvent(room=room.name, nick=session.nick, invite_only=room.invite_only,
                                   has_key=bool(room.join_key)))
        session.reply(request, room=room.name, invite_only=room.invite_only, has_key=bool(room.join_key))

    async def _invite(self, session: ClientSession, request: p.Invite) -> None:
        room = self._op_room(session, request.room)
        key = fold_nick(request.nick)
        if key not in self.online and await self._registered(key) is None:
            raise ChatProtocolError(ErrorCode.NO_SUCH_NICK)
        room.invites.add(key)
        self._save_room(room)
        invitee = self.online.get(key)
        if invitee is not None:
            invitee.send(p.InvitedEvent(room=room.name, by=session.nick))
        session.reply(request)

    async def _op(self, session: ClientSession, request: p.Op) -> None:
        room = self._op_room(session, request.room)
        target = self._target(room, session, request.nick)
        room.op_key, room.op_nick = target.key, target.nick
        self._save_room(room)
        room.broadcast(p.OpEvent(room=room.name, nick=target.nick, by=session.nick))
        session.reply(request, room=room.name, op=target.nick)

    # ------------------------------------------------------------ direct traffic

    async def _dm(self, session: ClientSession, request: p.Dm) -> None:
        key = fold_nick(request.to)
        dm_id, ts = self.next_id(), self.now_ms()
        recipient = self.online.get(key)
        if recipient is not None:
            recipient.send(p.DmEvent(nick=session.nick, to=recipient.nick, text=request.text,
                                     dm_id=dm_id, ts=ts))
            session.reply(request, to=recipient.nick, dm_id=dm_id, ts=ts, status="delivered")
            return
        account = await self._registered(key)
        if account is None:
            raise ChatProtocolError(ErrorCode.NO_SUCH_NICK)
        await self.mailbox.store(StoredDm(dm_id=dm_id, to_key=key, to_nick=account.nick,
                                          sender=session.nick, text=request.text, ts=ts))
        session.reply(request, to=account.nick, dm_id=dm_id, ts=ts, status="stored")

    async def _data(self, session: ClientSession, request: p.Data) -> None:
        recipient = self.online.get(fold_nick(request.to))
        if recipient is None:
            raise ChatProtocolError(ErrorCode.NOT_ONLINE)
        recipient.send(p.DataEvent(nick=session.nick, payload=request.payload))
        session.reply(request, to=recipient.nick)

    async def _quit(self, session: ClientSession, request: p.Quit) -> None:
        session.reply(request)
        self._depart(session, request.reason or "quit")
        self.sessions.discard(session)
        session.close(request.reason or "quit", CloseCode.NORMAL, graceful=True)


def _hist(entry: HistoryEntry) -> dict[str, Any]:
    return {"msg_id": entry.msg_id, "nick": entry.nick, "text": entry.text, "ts": entry.ts}


__all__ = ["ChatServer"]
