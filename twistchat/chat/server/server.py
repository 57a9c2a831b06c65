"""
ChatServer: the chat server's lifecycle, its sessions and the reaper, on top
of ``core.ServerCore`` (state and shared rules) and ``handlers`` (one module
per area of requests).

``ChatServer(store, clock, config)``; ``build_protocol()`` gives the transport
one ``ClientSession`` per new session.  ``start()`` loads kept rooms, reserves
the first block of ids and starts the reaper; ``stop()`` stops the reaper; ``shutdown()``
tells every client, flushes the store and closes sessions gracefully.

The reaper is a ``LoopingCall`` on the injected clock, exposed as
``reaper``; it looks only at the users ``idle_watch`` says may be idle; the twistd plugin just calls ``start()``/``shutdown()`` from its
service's startService/stopService (no TimerService needed: ``start`` also
runs the async loading that a TimerService could not express).
"""

from __future__ import annotations

import random
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

from twistchat.chat import protocol as p
from twistchat.chat.protocol import ChatProtocolError, ErrorCode
from twistchat.chat.server.config import ServerConfig
from twistchat.chat.server.core import ServerCore
from twistchat.chat.server.guards import Deadlines
from twistchat.chat.server.handlers import HANDLERS
from twistchat.chat.server.idle_watch import IdleWatch
from twistchat.chat.server.rooms import Room
from twistchat.chat.server.session import ClientSession
from twistchat.chat.server.typing_relay import TypingRelay
from twistchat.chat.server.user import User
from twistchat.cluster import Broker, BrokerUnavailable
from twistchat.endpoint.api import CloseCode, CloseReason
from twistchat.endpoint.ratelimit import TokenBucket
from twistchat.store.base import ChatStore, StoreUnavailable

UNREACHABLE = (BrokerUnavailable, StoreUnavailable)
"""What a call to Redis (the broker's, or a Redis store's) raises while
Redis is away or too slow: the request is answered UNAVAILABLE (PROTOCOL.md
C9), logged in one line, never as a traceback."""

TIMED_OUT = "timed out"
LOGIN_TIMEOUT = "login timeout"
CHURN: tuple[type[p.Request], ...] = (p.Away, p.Join, p.Create, p.Part, p.Nick)
"""Requests every member of the sender's rooms hears of: on the churn bucket too."""


class ChatServer(ServerCore):
    def __init__(self, store: ChatStore, clock: IReactorTime,
                 config: ServerConfig | None = None, rng: random.Random | None = None,
                 broker: Broker | None = None) -> None:
        super().__init__(store, clock, config, rng, broker)
        self.reaper = LoopingCall(self.reap)
        self.reaper.clock = clock
        self._last_purge = clock.seconds()
        self._handlers = dict(HANDLERS)
        """Request class to handler; per server, so a test can swap one."""
        self.login_deadlines: Deadlines[ClientSession] = Deadlines(
            clock, self.config.login_timeout, self._login_overdue)
        """Sessions that must log in by ``login_timeout`` (one timer for all)."""
        self.typing = TypingRelay(clock, self.config, self.online, network=self.cluster)
        """Typing notices, relayed over the unreliable channel (PROTOCOL.md C13)."""
        self.idle_watch: IdleWatch[User] = IdleWatch(self.config.reap_interval)
        """Users by their idle deadline last seen: a reaper tick looks at
        those due, not at every live user."""

    # ------------------------------------------------------------ lifecycle

    def build_protocol(self) -> ClientSession:
        return ClientSession(self)

    def start(self) -> Deferred[None]:
        """Reserve ids, load kept rooms, then start the reaper."""
        async def load() -> None:
            if self.cluster is not None:
                await self.cluster.start()
            await self.ids.prepare()
            await self.memberships.load()
            now = self.clock.seconds()
            # A node of a network opens rooms as its users come to them (cluster_link).
            kept = {} if self.cluster is not None else await self.store.load_rooms()
            for key, state in kept.items():
                if key not in self.rooms.rooms:
                    self.rooms.rooms[key] = Room.from_state(key, state, now)
            if not self.reaper.running:
                self.reaper.start(self.config.reap_interval, now=False)
            self.log.info("chat server started: {rooms} kept rooms", rooms=len(self.rooms.rooms))
        return Deferred.fromCoroutine(load())

    def stop(self) -> None:
        self._stop_timers()
        if self.cluster is not None:
            self.background(self.cluster.stop(), "leave the network")

    def _stop_timers(self) -> None:
        if self.reaper.running:
            self.reaper.stop()
        self.login_deadlines.stop()

    def shutdown(self, message: str = "server shutting down") -> Deferred[None]:
        """Tell everyone, wait for every store write (so all acknowledged data
        is on disk and every pending ack went out), then close sessions."""
        self.shutting_down = True
        self._stop_timers()
        event = p.encode(p.ShutdownEvent(message=message))
        for user in self.live_users():
            user.send_encoded(event)
        self.log.info("shutting down: {count} sessions", count=len(self.sessions))
        self.background(self.memberships.flush(), "write room marks")

        def close_all(_: Any) -> None:
            for user in self.live_users():
                if self.cluster is not None:  # the other nodes' members hear it, now
                    self.depart(user, message)
                user.departed = True
                user.session.close(message, CloseCode.SHUTTING_DOWN, graceful=True)
            if self.cluster is not None:
                self.background(self.cluster.stop(), "leave the network")
        return self.store.flush().addCallback(close_all)

    def live_users(self) -> list[User]:
        """Users the server is not done with yet (a replaced or quitting session
        may still be closing)."""
        return [user for user in self.sessions.values() if not user.departed]

    # ------------------------------------------------------------ sessions

    def session_started(self, session: ClientSession) -> None:
        c = self.config
        user = self.sessions[session] = User(session, churn=TokenBucket(
            rate=c.churn_rate, burst=c.churn_burst, updated=self.clock.seconds()))
        self.idle_watch.file(user, self._next_look(session, session.last_heard))
        self.login_deadlines.add(session)
        self.log.info("session from {peer}", peer=session.peer)

    def _login_overdue(self, session: ClientSession) -> None:
        """A session still not logged in ``login_timeout`` after it began:
        closed, so sessions that never log in hold no slot for long."""
        user = self.sessions.get(session)
        if user is None or user.logged_in or user.departed:
            return
        self.log.info("closing a session from {peer} that did not log in", peer=session.peer)
        self.depart(user, LOGIN_TIMEOUT)
        session.close(f"{LOGIN_TIMEOUT}: no login within {self.config.login_timeout:g} s",
                      CloseCode.NORMAL, graceful=False)

    def session_lost(self, session: ClientSession, reason: CloseReason) -> None:
        self.login_deadlines.discard(session)
        user = self.sessions.pop(session, None)
        if user is None:
            return
        self.idle_watch.discard(user)
        # Nothing to rescue from reason.unacked: a DM or receipt is deleted
        # only once acknowledged, so what never was is still stored.
        if not user.departed:
            timeout = reason.code == CloseCode.IDLE_TIMEOUT
            text = TIMED_OUT if timeout else (reason.message or "connection closed")
            self.depart(user, text, timeout)

    async def dispatch(self, session: ClientSession, request: p.Request) -> None:
        user = self.sessions.get(session)
        if user is None or user.departed:
            return  # the server is done with this session: nothing more runs
        if self.shutting_down:
            raise ChatProtocolError(ErrorCode.SHUTTING_DOWN)
        if not user.logged_in and not isinstance(request, p.Login):
            raise ChatProtocolError(ErrorCode.NOT_LOGGED_IN)
        try:
            if isinstance(request, CHURN) and not await self._churn(user):
                raise ChatProtocolError(ErrorCode.RATE_LIMITED,
                                        "too many presence, join, part or nick changes; slow down")
            await self._handlers[type(request)](self, user, request)
        except UNREACHABLE as e:
            self.log.info("{type} answered UNAVAILABLE: {why}", type=request.TYPE, why=e)
            raise ChatProtocolError(ErrorCode.UNAVAILABLE) from None

    async def _churn(self, user: User) -> bool:
        """A token of the churn bucket: the session's, or on a network the user's on every node."""
        if self.cluster is not None:
            return await self.take(user, "churn", self.config.churn_rate, self.config.churn_burst)
        return user.churn is None or user.churn.take(self.clock.seconds())

    def unreliable_received(self, session: ClientSession, data: bytes) -> None:
        user = self.sessions.get(session)
        if user is not None:
            self.typing.received(user, data)

    # ------------------------------------------------------------ reaping

    def _next_look(self, session: ClientSession, last_heard: float) -> float:
        """When the reaper looks at ``session`` again. A transport that ends a
        silent session itself, no later than our idle timeout, departs its
        user through ``session_lost``, timed out as the reaper would: the
        reaper is then its backstop only and looks one idle timeout later,
        so an idle user is looked at every 2-2.5 minutes instead of every
        45-75 s (issue 16: py-spy put the reaper's tick at ~2.7 % of a core
        with 100,000 idle users, the server's whole idle share ~25 %)."""
        idle_timeout = self.config.idle_timeout
        transport_timeout = session.transport_idle_timeout
        if transport_timeout is not None and transport_timeout <= idle_timeout:
            return last_heard + 2 * idle_timeout
        return last_heard + idle_timeout

    def reap(self) -> None:
        """One reaper tick: drop idle sessions, remove expired empty rooms,
        and now and then purge lapsed password-less registrations and old
        idempotency keys."""
        now = self.clock.seconds()
        idle_timeout = self.config.idle_timeout
        for user in self.idle_watch.take_due(now):
            if user.departed:
                continue  # quit or replaced: no longer the reaper's
            session = user.session
            last_heard = session.last_heard
            if now - last_heard <= idle_timeout:
                self.idle_watch.file(user, self._next_look(session, last_heard))  # heard since
                continue
            self.log.info("reaping idle session {nick} from {peer}", nick=user.nick or "-",
                          peer=session.peer)
            self.depart(user, TIMED_OUT, timeout=True)
            session.close(TIMED_OUT, CloseCode.IDLE_TIMEOUT, graceful=False)
        self.background(self.memberships.flush(), "write room marks")
        self.contacts.tick()
        self.transfers.reap(now)
        if self.cluster is not None:
            self.cluster.transfers.reap(now)
        for room in self.rooms.expired(now, self.config.room_ttl, self.config.kept_room_ttl,
                                       held=self.memberships.holds):
            if self.cluster is not None:
                self.cluster.shared_rooms.closed(room)  # the network's: other nodes may have it
                continue
            self.log.info("reaping empty room {room}", room=room.name)
            self.background(self.store.delete_history(room.key), "delete history")
            self.background(self.store.delete_room(room.key), "delete room")
        if now - self._last_purge >= self.config.purge_interval:
            self._last_purge = now
            if self.cluster is not None:
                # Other nodes purge too, knowing only their own online users:
                # this node's are seen now, so none lapses while online here.
                for key in list(self.online):
                    self.background(self.store.touch_account(key, self.now_ms()), "touch")
            d = self.purge_expired()
            d.addCallback(lambda gone: self.memberships.forget(gone) or gone)
            d.addCallback(lambda gone: gone and self.log.info(
                "purged {count} lapsed registrations", count=len(gone)))
            d.addErrback(lambda f: self.log.failure("purging registrations failed", f))
            idem_cutoff = self.now_ms() - int(self.config.idem_ttl * 1000)
            self.background(self.store.delete_idem_before(idem_cutoff), "purge idempotency keys")


__all__ = ["ChatServer"]
