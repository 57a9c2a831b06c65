"""
``ServerCore``: the chat server's state and the rules every request handler
shares (who is online, leaving the server, finding a user's room, ids,
background store writes).  The handlers (``handlers/``) and the lifecycle
(``server.ChatServer``, which extends this class) both build on it, so
neither needs the other.
"""

from __future__ import annotations

import functools
import os
import random
import sys
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from twisted.internet import threads
from twisted.internet.defer import Deferred, DeferredLock, ensureDeferred, maybeDeferred
from twisted.internet.interfaces import IReactorThreads, IReactorTime
from twisted.logger import Logger

from twistchat.chat.protocol import (
    ChatProtocolError, ErrorCode, Event, JoinEvent, QuitEvent, ReplacedEvent, encode, fold_room,
)
from twistchat.chat.server import identities
from twistchat.chat.server.cluster_link import ClusterLink
from twistchat.chat.server.config import ServerConfig
from twistchat.chat.server.contacts import ContactBook
from twistchat.chat.server.guards import CredentialWork, LoginGuard, WorkRefused, source_of
from twistchat.chat.server.ids import IdAllocator
from twistchat.chat.server.mailbox import Mailbox
from twistchat.chat.server.memberships import Memberships, nothing_live
from twistchat.chat.server.rooms import Room, RoomRegistry
from twistchat.chat.server.session import ClientSession
from twistchat.chat.server.transfers import Transfers
from twistchat.chat.server.user import User, send_to_users
from twistchat.cluster.broker import Bounded, Broker, LocalBroker, bounded
from twistchat.endpoint.api import CloseCode
from twistchat.endpoint.ratelimit import KeyedBuckets, Rate
from twistchat.store.base import Account, ChatStore, IdemRecord
from twistchat.store.social import ContactEntry

REPLACED = "replaced"
"""Why a session was closed: the nick logged in again (here or on another node)."""

Handler = Callable[["ServerCore", User, Any], Awaitable[None]]
"""A request handler: ``await handler(server, user, request)``."""


def keyed(handler: Handler) -> Handler:
    """For requests that may carry ``idem`` (PROTOCOL.md C2): one the server
    answered before is answered the same even where doing it now would fail
    (a resend on a new session that has joined no room yet, a recipient gone
    since).  The handler itself keeps the key with its effect."""
    @functools.wraps(handler)
    async def run(server: ServerCore, user: User, request: Any) -> None:
        try:
            await handler(server, user, request)
        except ChatProtocolError:
            known = await server.first_answer(user, request)
            if known is None:
                raise
            user.session.reply(request, **known)
    return run


class ServerCore:
    log = Logger()

    def __init__(self, store: ChatStore, clock: IReactorTime,
                 config: ServerConfig | None = None, rng: random.Random | None = None,
                 broker: Broker | None = None) -> None:
        """``broker``: a shared one makes this a node of a network
        (docs/CLUSTER.md); none, or an unshared one, is today's single node.
        A node's store calls are bounded by ``redis_timeout``."""
        c = config or ServerConfig()
        if broker is not None and broker.shared:
            store = Bounded(store, clock, c.redis_timeout)
        self.store = store
        self.clock = clock
        self.config = c
        self.rooms: RoomRegistry[User] = RoomRegistry(rng or random.SystemRandom())
        self.sessions: dict[ClientSession, User] = {}
        """Every session whose transport is open, and the user behind it."""
        self.online: dict[str, User] = {}
        """Folded nick to its one logged-in user."""
        self.broker: Broker = broker if broker is not None else LocalBroker(clock, c.node_name)
        self.cluster = ClusterLink(self, self.broker) if self.broker.shared else None
        """What this node tells the others, and hears from them; None on a single node."""
        self.mailbox = Mailbox(store, c.mailbox_size, self.online.get,
                               per_sender=c.mailbox_per_sender, total=c.max_stored_dms,
                               replay_budget=c.max_send_queue // 4,
                               elsewhere=self.cluster.receipt_elsewhere if self.cluster else None)
        self.dm_senders = KeyedBuckets(Rate(per_second=c.dm_rate, burst=c.dm_burst))
        """The DM rate per sending nick (every DM is stored: PROTOCOL.md C10)."""
        self.credential_work = CredentialWork(c.credential_workers, c.credential_queue,
                                              c.credential_per_source,
                                              c.credential_per_source_waiting)
        self.logins = LoginGuard(c.login_free_failures, c.login_backoff, c.login_backoff_max,
                                 c.login_queue, Rate(per_second=c.registration_rate / 60,
                                                     burst=c.registration_burst))
        self.shutting_down = False
        self.login_locks: dict[str, DeferredLock] = {}
        """One login's effects at a time per folded nick (its credential is
        checked before, so a wrong one never waits here)."""
        self.ids = IdAllocator(store)
        self.relaying: dict[tuple[str, str], Deferred[None]] = {}
        """Keyed ``data`` being relayed ((folded nick, idem) to its end): a
        resend with that key waits for it instead of relaying again."""
        self.contacts = ContactBook(self.online, clock.seconds,
                                    Rate(per_second=c.churn_rate, burst=c.churn_burst),
                                    publish=self.cluster.presence if self.cluster else None)
        """Who watches whom, and presence notices (issue 14)."""
        self.memberships = Memberships(store, self.rooms, c.history_size, self.background,
                                       replay_budget=c.max_send_queue // 4,
                                       on_enter=self.entered, shared=self.cluster is not None,
                                       live_since=(self.cluster.newest_line if self.cluster
                                                   else nothing_live),
                                       members_of=self.members_of if self.cluster else None)
        """Rooms kept across sessions, and each member's mark (issue 14)."""
        self.transfers = Transfers(clock, self.config)

    def off_reactor(self, function: Callable[..., Any], *args: Any) -> Deferred[Any]:
        """Run CPU-heavy work (scrypt: tens of ms) on the reactor's thread pool,
        so logins never stall everyone else's traffic. On a clock without
        threads (tests) it runs inline."""
        if IReactorThreads.providedBy(self.clock):
            return threads.deferToThreadPool(self.clock, self.clock.getThreadPool(),
                                             in_background, function, *args)
        return maybeDeferred(function, *args)

    def run_credential_work(self, user: User, function: Callable[..., Any], *args: Any) -> Deferred[Any]:
        """Credential work (scrypt) for ``user``'s request, off the reactor
        and bounded (``CredentialWork``): RATE_LIMITED at once when too
        much waits already."""
        try:
            return self.credential_work.run(source_of(user.session.peer),
                                            lambda: self.off_reactor(function, *args))
        except WorkRefused as e:
            raise ChatProtocolError(ErrorCode.RATE_LIMITED, f"{e}; try again in a moment") from None

    def now_ms(self) -> int:
        return int(self.clock.seconds() * 1000)

    async def first_answer(self, user: User, request: Any) -> Mapping[str, Any] | None:
        """The answer already given to this request's ``idem``, if any."""
        if request.idem is None:
            return None
        return await self.store.get_idem(user.key, request.idem)

    def idem_record(self, user: User, request: Any, answer: Mapping[str, Any]) -> IdemRecord | None:
        """What to keep with the effect of a request carrying ``idem``."""
        if request.idem is None:
            return None
        return IdemRecord(nick_key=user.key, idem=request.idem, answer=answer, ts=self.now_ms())

    def depart(self, user: User, reason: str, timeout: bool = False) -> None:
        """Remove a user from every room (announcing ``quit``) and from the
        online map.  Idempotent."""
        if user.departed:
            return
        user.departed = True
        if not user.logged_in:
            return
        self.transfers.departed(user)
        if self.cluster is not None:
            self.cluster.transfers.departed(user)
        now = self.clock.seconds()
        for room in list(user.rooms.values()):
            room.remove(user.key, now)
            self.tell(room, QuitEvent(room=room.name, nick=user.nick, reason=reason, timeout=timeout))
            if self.cluster is not None:
                self.cluster.left(room, user.key)
        user.rooms.clear()
        was_online = self.online.get(user.key) is user
        if was_online:
            del self.online[user.key]
            self.background(self.store.touch_account(user.key, self.now_ms()), "touch")
            if self.cluster is not None:
                self.cluster.released(user)
        self.memberships.departed(user)  # its rooms stay its own: only part ends them
        self.contacts.departed(user, was_online, self.now_ms())
        self.log.info("{nick} left: {reason}", nick=user.nick, reason=reason)

    def tell(self, room: Room[User], event: Event, exclude: User | None = None,
             leaving: User | None = None) -> None:
        """Send ``event`` to every member of ``room`` but ``exclude``; on a
        network, to its members on every node, through the room's channel
        (``leaving``, a member about to leave it, is told at once: it is
        gone from the room before the channel brings the event back)."""
        if self.cluster is None:
            send_to_users(room.members.values(), encode(event),
                          exclude.key if exclude is not None else None)
            return
        if leaving is not None:
            leaving.send(event)
            exclude = leaving
        self.cluster.tell(room.key, event, exclude.key if exclude is not None else None)

    def entered(self, room: Room[User], user: User) -> None:
        """``user`` is in ``room`` again (a kept membership, at login): the
        others hear it joined."""
        self.tell(room, JoinEvent(room=room.name, nick=user.nick), exclude=user)
        if self.cluster is not None:
            self.background(self.cluster.joined(room, user), "join a roster")

    async def members_of(self, room: Room[User]) -> Mapping[str, Any]:
        """``room``'s members, on every node of the network."""
        if self.cluster is None:
            return room.members
        return await self.cluster.members(room)

    async def member_counts(self, rooms: list[Room[User]]) -> dict[str, int]:
        """Room key to its members on every node of the network."""
        if self.cluster is None:
            return {room.key: len(room.members) for room in rooms}
        return await self.bounded(self.cluster.member_counts(rooms))

    def removed_from(self, room: Room[User], target: User) -> None:
        """``target`` (on this node) is out of ``room``: kicked or banned, told already."""
        room.remove(target.key, self.clock.seconds())
        target.rooms.pop(room.key, None)
        self.background(self.memberships.left(target.key, room.key, target), "end a membership")
        if self.cluster is not None:
            self.cluster.left(room, target.key)

    def replace(self, previous: User) -> None:
        """A newer login of ``previous``'s nick (here or on another node): told, and closed."""
        previous.send(ReplacedEvent())
        self.depart(previous, REPLACED)
        previous.session.close(REPLACED, CloseCode.REPLACED, graceful=True)
        self.log.info("{nick} logged in again; older session replaced", nick=previous.nick)

    async def presence_elsewhere(self, contacts: list[ContactEntry]) -> dict[str, dict[str, Any]]:
        """Of ``contacts`` not online here, those online on other nodes (as ``contact`` fields)."""
        if self.cluster is None:
            return {}
        away = [c for c in contacts if c.key not in self.online]
        return await self.bounded(self.cluster.presence_of(away))

    def bounded(self, call: Awaitable[Any]) -> Deferred[Any]:
        """A call to what the network shares, answered or BrokerUnavailable
        within ``redis_timeout``: no request waits on Redis for ever."""
        return bounded(ensureDeferred(call), self.clock, self.config.redis_timeout)

    async def take(self, user: User, bucket: str, rate: float, burst: float) -> bool:
        """A token of ``user``'s bucket shared by every node of the network."""
        return await self.bounded(self.broker.take(f"{bucket}:{user.key}", rate, burst))

    def room_of(self, user: User, name: str) -> Room[User]:
        room = user.rooms.get(fold_room(name))
        if room is None:
            raise ChatProtocolError(ErrorCode.NOT_IN_ROOM)
        return room

    def op_room(self, user: User, name: str) -> Room[User]:
        room = self.room_of(user, name)
        if not room.is_op(user.key):
            raise ChatProtocolError(ErrorCode.NOT_OPERATOR)
        return room

    def save_room(self, room: Room[User]) -> None:
        """Persist operator-set state for rooms worth keeping across restarts
        (on a network, of every live room: another node may open it), and
        tell the other nodes."""
        if self.cluster is not None:
            self.background(self.store.put_room(room.key, room.to_state()), "save room")
            self.cluster.state_changed(room)
        elif room.worth_keeping():
            self.background(self.store.put_room(room.key, room.to_state()), "save room")
        else:
            self.background(self.store.delete_room(room.key), "delete room")

    def background(self, d: Deferred[Any], what: str) -> None:
        """A write nobody waits for: ordered by the store, failures logged."""
        d.addErrback(lambda f: self.log.failure("store {what} failed", f, what=what))

    async def registered(self, key: str) -> Account | None:
        """The live registration for ``key``, dropping it if it lapsed."""
        account = await self.store.get_account(key)
        if (account is not None and key not in self.online
                and identities.is_expired(account, self.now_ms(), self.config.unclaimed_expiry,
                                          self.config.account_expiry)):
            await self.purge_expired()
            self.log.info("registration of {nick} expired", nick=account.nick)
            return None
        return account

    def purge_expired(self) -> Deferred[list[str]]:
        """Delete every registration unused for its expiry (password-less:
        ``unclaimed_expiry``, with a password: ``account_expiry``), but none
        online; fires with the deleted keys."""
        now = self.now_ms()
        return self.store.delete_expired_accounts(
            now - int(self.config.unclaimed_expiry * 1000), keep=set(self.online),
            password_seen_before=now - int(self.config.account_expiry * 1000))


BACKGROUND_NICE = 10
"""How far below the reactor's thread a pool thread runs credential work.
With every core busy, a scrypt (tens of ms of CPU) on a thread of the same
priority shares a core with the reactor, which then answers everyone late
(bench abuse wrong_logins: the reactor 9-17 ms late at 13-20 % of a core);
below it, the reactor runs first and logins wait instead."""

_lowered = threading.local()


def in_background(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` on this pool thread, once lowered below the
    reactor's priority (Linux, where nice is per thread; elsewhere as is)."""
    if not getattr(_lowered, "done", False):
        _lowered.done = True
        if sys.platform.startswith("linux"):
            thread = threading.get_native_id()
            try:
                os.setpriority(os.PRIO_PROCESS, thread,
                               min(19, os.getpriority(os.PRIO_PROCESS, thread) + BACKGROUND_NICE))
            except OSError:
                pass  # a sandbox that forbids it: the work still runs
    return function(*args)
