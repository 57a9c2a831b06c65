"""
``ChatClient``: the chat protocol from Python, on the reliable transport.

Every action returns a Deferred that fires with the server's reply (the
``ok`` fields, as a dict) or fails with ``ChatError`` carrying the server's
error code, or ``Disconnected`` if the session ended before the answer.
Everything the server sends unasked reaches one ``ChatObserver``.

When the server stops answering, the client says so, reconnects with
exponential backoff, logs in again with the credential it keeps in its
state file, re-joins its rooms and replays what it missed (room history
after the last message id it saw; stored DMs come from the server's
mailbox), so a server restart costs the user a notice and nothing else.

Where the client stands (connecting, ready, reconnecting, leaving...) is one
``LinkState``, moved only by the transitions in ``link.py``; the observer
and the errors are in ``observer.py``. All are importable from here too.
"""

from __future__ import annotations

import random
from typing import Any

import attrs

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from twistchat.chat import protocol as p
from twistchat.chat.protocol import ChatProtocolError, ErrorCode, fold_room
from twistchat.client.link import (
    RECONNECT_DELAYS, RECONNECT_JITTER, LinkEvent, LinkLifecycle, LinkState, LinkStateError, describe,
)
from twistchat.client.observer import ChatError, ChatObserver, Disconnected, PasswordRequired
from twistchat.client.state import ClientState
from twistchat.endpoint.api import CloseReason, MessageProtocol
from twistchat.endpoint.endpoint import ClientEndpoint, ConnectError

__all__ = ["ChatClient", "ChatError", "ChatObserver", "Disconnected", "LinkState", "LinkStateError",
           "PasswordRequired", "RECONNECT_DELAYS", "RECONNECT_JITTER"]

PRESENCE_EVENTS = (p.JoinEvent, p.PartEvent, p.QuitEvent, p.KickEvent, p.NickEvent,
                   p.AwayEvent, p.TopicEvent, p.ModeEvent, p.OpEvent, p.InvitedEvent)


@attrs.define
class _Pending:
    deferred: defer.Deferred
    data: bytes
    cls: type
    fields: dict[str, Any]
    internal: bool
    """Part of (re)connecting (login, re-join): never re-queued."""


class _Link(MessageProtocol):
    """One transport session; the client outlives many of them."""

    def __init__(self, client: "ChatClient") -> None:
        self.client = client

    def message_received(self, data: bytes) -> None:
        self.client._received(self, data)

    def connection_lost(self, reason: CloseReason) -> None:
        self.client._link_lost(self, reason)


class ChatClient:
    log = Logger()

    def __init__(self, reactor: IReactorTime, endpoint: ClientEndpoint, address: tuple[str, int],
                 nick: str, observer: ChatObserver | None = None, password: str | None = None,
                 state: ClientState | None = None, reconnect: bool = True,
                 rng: random.Random | None = None) -> None:
        self.reactor = reactor
        self.endpoint = endpoint
        self.address = address
        self.nick = nick
        self.observer = observer or ChatObserver()
        self.password = password
        self.state = state or ClientState(None)
        self.reconnect = reconnect
        self.rng = rng or random.Random()
        self.rooms: dict[str, str] = {}
        """Folded room name to its canonical spelling, for re-joining."""
        self.login_reply: dict[str, Any] = {}
        self._lifecycle = LinkLifecycle(self.rng)
        self._link: _Link | None = None
        self._pending: dict[int, _Pending] = {}
        self._queued: list[tuple[type, dict[str, Any], defer.Deferred]] = []
        self._next_id = 0
        self._retry_call = None
        self._quit_waiter: tuple[_Link, defer.Deferred] | None = None
        """The session ``quit()`` is ending, and what fires when it has."""
        self._seen_dms: set[int] = set()

    @property
    def link_state(self) -> LinkState:
        return self._lifecycle.state

    @property
    def connected(self) -> bool:
        """A session is open (logged in or not)."""
        return self._link is not None

    @property
    def ready(self) -> bool:
        """Logged in and rooms re-joined: requests go out at once."""
        return self._lifecycle.logged_in

    # -- connecting -------------------------------------------------------------

    def connect(self) -> defer.Deferred:
        """Open a session and log in; fires with the login reply."""
        try:
            self._lifecycle.fire(LinkEvent.CONNECT)
        except LinkStateError as e:
            return defer.fail(e)

        def failed(failure):
            self._lifecycle.fire(LinkEvent.GIVE_UP)
            return failure
        return defer.Deferred.fromCoroutine(self._attempt()).addErrback(failed)

    async def _attempt(self) -> dict[str, Any]:
        """Open a session, log in, re-join: one try, first or not."""
        link = _Link(self)
        try:
            await self.endpoint.connect(self.address, link)
        except ConnectError as e:
            raise Disconnected(f"cannot reach {self.address[0]}:{self.address[1]}: "
                               f"{e.reason.message or e.reason.code.name}") from None
        self._link = link
        reply = await self._login()
        self.login_reply = reply
        self.nick = reply["nick"]
        await self._rejoin()
        self._lifecycle.fire(LinkEvent.LOGGED_IN)
        self._send_queued()
        return reply

    async def _login(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"nick": self.nick}
        if self.password is not None:
            fields["password"] = self.password
        elif self.state.secret:
            fields["secret"] = self.state.secret
        elif self.state.password_required:
            self._close_link()
            raise PasswordRequired(f"{self.nick} is registered with a password")
        try:
            reply = await self._send(p.Login, fields, internal=True)
        except ChatError as e:
            if e.code == ErrorCode.BAD_CREDENTIAL.value:
                self._lifecycle.fire(LinkEvent.STOP)  # retrying cannot help
                self._close_link()
            raise
        if "secret" in reply:
            self.state.secret, self.state.password_required = reply["secret"], False
            self.state.save()
        elif self.password is not None and not self.state.password_required:
            self.state.secret, self.state.password_required = None, True
            self.state.save()
        return reply

    async def _rejoin(self) -> None:
        for room in list(self.rooms.values()):
            try:
                self._joined(await self._send(p.Join, {"room": room}, internal=True))
            except ChatError as e:  # banned, key changed, room gone: tell, go on
                self.rooms.pop(fold_room(room), None)
                self.observer.error(ChatError(e.code, f"could not re-join {room}: {e.message}"))

    def _schedule_reconnect(self) -> float:
        delay = self._lifecycle.next_delay()
        self._retry_call = self.reactor.callLater(delay, self._retry)
        return delay

    def _retry(self) -> None:
        self._retry_call = None

        def succeeded(_: Any) -> None:
            self.observer.reconnected()

        def failed(failure) -> None:
            if self._lifecycle.final or failure.check(PasswordRequired):
                self._lifecycle.fire(LinkEvent.GIVE_UP)
                self._fail_queued(failure.getErrorMessage())
                self.observer.disconnected(failure.getErrorMessage(), None)
                return
            self.observer.disconnected(failure.getErrorMessage(), self._schedule_reconnect())
        defer.Deferred.fromCoroutine(self._attempt()).addCallbacks(succeeded, failed)

    # -- requests ---------------------------------------------------------------

    def _request(self, cls: type, **fields: Any) -> defer.Deferred:
        """Send now if logged in; while reconnecting, hold it and send it once
        logged in again (so a line typed during a server restart is not lost)."""
        if self._lifecycle.logged_in:
            return self._send(cls, fields)
        if self._lifecycle.holds_requests:
            waiting = defer.Deferred()
            self._queued.append((cls, fields, waiting))
            return waiting
        return defer.fail(Disconnected("not connected"))

    def _send_queued(self) -> None:
        queued, self._queued = self._queued, []
        for cls, fields, waiting in queued:
            self._send(cls, fields).chainDeferred(waiting)

    def _fail_queued(self, reason: str) -> None:
        queued, self._queued = self._queued, []
        for _, _, waiting in queued:
            waiting.errback(Disconnected(reason))

    def _send(self, cls: type, fields: dict[str, Any], internal: bool = False) -> defer.Deferred:
        if self._link is None:
            return defer.fail(Disconnected("not connected"))
        self._next_id += 1
        request_id = self._next_id
        message = cls(id=request_id, **fields)
        try:
            data = p.encode(message)
        except ChatProtocolError as e:
            return defer.fail(ChatError(e.code.value, e.message))
        try:
            self._link.connection.send_message(data)
        except Exception as e:  # MessageTooLarge, ConnectionClosed
            return defer.fail(ChatError(ErrorCode.TOO_LARGE.value, str(e)))
        waiting = defer.Deferred()
        self._pending[request_id] = _Pending(waiting, data, cls, fields, internal)
        return waiting

    def join(self, room: str, key: str | None = None) -> defer.Deferred:
        """Join (or create) ``room``; the kept history is replayed to the observer."""
        return self._request(p.Join, room=room, key=key).addCallback(self._joined)

    def create(self) -> defer.Deferred:
        """Create a private group; fires with the join reply (``room`` is its id)."""
        return self._request(p.Create).addCallback(self._joined)

    def _joined(self, reply: dict[str, Any]) -> dict[str, Any]:
        room = reply["room"]
        key = fold_room(room)
        self.rooms[key] = room
        seen = self.state.last_seen.get(key, 0)
        for entry in reply.get("history", []):
            if entry["msg_id"] > seen:
                event = p.MessageEvent(room=room, nick=entry["nick"], text=entry["text"],
                                       msg_id=entry["msg_id"], ts=entry["ts"])
                self._saw(event)
                self.observer.message(event, replay=True)
        return reply

    def part(self, room: str, reason: str | None = None) -> defer.Deferred:
        self.rooms.pop(fold_room(room), None)
        return self._request(p.Part, room=room, reason=reason)

    def say(self, room: str, text: str) -> defer.Deferred:
        """Fires with ``msg_id`` and ``ts``: the server's receipt (echo)."""
        def echoed(reply: dict[str, Any]) -> dict[str, Any]:
            self.state.saw(fold_room(reply["room"]), reply["msg_id"])
            return reply
        return self._request(p.Say, room=room, text=text).addCallback(echoed)

    def msg(self, nick: str, text: str) -> defer.Deferred:
        """A DM; the reply's ``status`` is "delivered" or "stored" (offline)."""
        return self._request(p.Dm, to=nick, text=text)

    def send_data(self, nick: str, payload: bytes) -> defer.Deferred:
        return self._request(p.Data, to=nick, payload=payload)

    def set_nick(self, nick: str) -> defer.Deferred:
        def renamed(reply: dict[str, Any]) -> dict[str, Any]:
            self.nick = reply["nick"]
            return reply
        return self._request(p.Nick, nick=nick).addCallback(renamed)

    def topic(self, room: str, topic: str | None = None) -> defer.Deferred:
        return self._request(p.Topic, room=room, topic=topic)

    def who(self, room: str) -> defer.Deferred:
        return self._request(p.Who, room=room)

    def list_rooms(self) -> defer.Deferred:
        return self._request(p.Rooms)

    def away(self, message: str | None = None) -> defer.Deferred:
        """Away with ``message``; back without."""
        return self._request(p.Away, message=message)

    def register(self, password: str) -> defer.Deferred:
        """Add or change the nick's password; from now on the client logs in with it."""
        def registered(reply: dict[str, Any]) -> dict[str, Any]:
            self.password = password
            self.state.secret, self.state.password_required = None, True
            self.state.save()
            return reply
        return self._request(p.SetPassword, password=password).addCallback(registered)

    def history(self, room: str, since: int | None = None) -> defer.Deferred:
        return self._request(p.History, room=room, since=since)

    def kick(self, room: str, nick: str, reason: str | None = None) -> defer.Deferred:
        return self._request(p.Kick, room=room, nick=nick, reason=reason)

    def ban(self, room: str, nick: str, reason: str | None = None) -> defer.Deferred:
        return self._request(p.Ban, room=room, nick=nick, reason=reason)

    def unban(self, room: str, nick: str) -> defer.Deferred:
        return self._request(p.Unban, room=room, nick=nick)

    def mode(self, room: str, invite_only: bool | None = None,
             key: str | None = None) -> defer.Deferred:
        return self._request(p.Mode, room=room, invite_only=invite_only, key=key)

    def invite(self, room: str, nick: str) -> defer.Deferred:
        return self._request(p.Invite, room=room, nick=nick)

    def op(self, room: str, nick: str) -> defer.Deferred:
        return self._request(p.Op, room=room, nick=nick)

    def quit(self, reason: str | None = None) -> defer.Deferred:
        """Leave the server for good (no reconnect); fires once the session ended."""
        self._lifecycle.fire(LinkEvent.STOP)
        if self._retry_call is not None and self._retry_call.active():
            self._retry_call.cancel()
        if self._link is None:
            self._fail_queued("quit before reconnecting")
            return defer.succeed(None)
        link = self._link
        ended = defer.Deferred()
        self._quit_waiter = (link, ended)
        self._send(p.Quit, {"reason": reason}).addErrback(lambda _: None)
        return ended

    def stop(self) -> None:
        """Stop at once: no more reconnects, the session closed without waiting."""
        self._lifecycle.fire(LinkEvent.STOP)
        if self._retry_call is not None and self._retry_call.active():
            self._retry_call.cancel()
        self._fail_queued("stopped")
        self._close_link(graceful=False)

    def _close_link(self, graceful: bool = True) -> None:
        if self._link is not None and self._link.connection is not None:
            self._link.connection.close("bye", graceful=graceful)

    # -- what arrives ---------------------------------------------------------------

    def _received(self, link: _Link, data: bytes) -> None:
        if link is not self._link:
            return
        try:
            message = p.decode_server_message(data)
        except ChatProtocolError as e:
            self.log.warn("undecodable message from the server: {error}", error=e)
            return
        if isinstance(message, (p.Ok, p.ErrorReply)):
            pending = self._pending.pop(message.id, None) if message.id is not None else None
            waiting = pending.deferred if pending is not None else None
            if waiting is None:
                if isinstance(message, p.ErrorReply):
                    self.observer.error(ChatError(message.code, message.message))
                return
            if isinstance(message, p.Ok):
                waiting.callback(dict(message.result))
            else:
                waiting.errback(ChatError(message.code, message.message))
            return
        self._dispatch(message)

    def _dispatch(self, event: p.Event) -> None:
        observer = self.observer
        if isinstance(event, p.MessageEvent):
            self._saw(event)
            observer.message(event, replay=False)
        elif isinstance(event, p.DmEvent):
            if event.dm_id in self._seen_dms:
                return  # the mailbox may hand over a DM whose ack was lost
            self._seen_dms.add(event.dm_id)
            observer.direct(event)
        elif isinstance(event, p.DeliveredEvent):
            observer.delivered(event)
        elif isinstance(event, p.DataEvent):
            observer.data(event)
        elif isinstance(event, PRESENCE_EVENTS):
            if isinstance(event, p.KickEvent) and event.nick == self.nick:
                self.rooms.pop(fold_room(event.room), None)
            observer.presence(event)
        elif isinstance(event, p.ShutdownEvent):
            observer.server_going_down(event.message)
        elif isinstance(event, p.ReplacedEvent):
            self._lifecycle.fire(LinkEvent.STOP)  # newest login wins: do not fight it
            observer.error(ChatError("REPLACED", event.message))

    def _saw(self, event: p.MessageEvent) -> None:
        self.state.saw(fold_room(event.room), event.msg_id)

    def _link_lost(self, link: _Link, reason: CloseReason) -> None:
        if link is not self._link:
            return
        was_ready = self._lifecycle.logged_in
        will_retry = self.reconnect and not self._lifecycle.final
        self._link = None
        self._lifecycle.fire(LinkEvent.LINK_LOST)
        if was_ready and not will_retry:
            self._lifecycle.fire(LinkEvent.GIVE_UP)
        never_arrived = set(reason.unacked)
        pending, self._pending = self._pending, {}
        for entry in pending.values():
            if will_retry and not entry.internal and entry.data in never_arrived:
                # The server never got it: send it again after the reconnect.
                self._queued.append((entry.cls, entry.fields, entry.deferred))
            else:
                entry.deferred.errback(Disconnected(
                    f"{reason.message or reason.code.name}: no answer (it may or may not "
                    "have been done)"))
        try:
            self.state.save()
        except Exception:
            self.log.failure("could not save the client state")
        if self._quit_waiter is not None and self._quit_waiter[0] is link:
            ended, self._quit_waiter = self._quit_waiter[1], None
            ended.callback(reason)
        if not was_ready:
            return  # lost while (re)connecting: that attempt fails and decides what next
        text = describe(reason)
        if not will_retry:
            self._fail_queued("disconnected")
            self.observer.disconnected(text, None)
            return
        self.observer.disconnected(text, self._schedule_reconnect())

