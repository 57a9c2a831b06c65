"""
``ChatClient``: the chat protocol from Python, on the reliable transport.

Every action returns a Deferred that fires with the server's reply (the
``ok`` fields, as a dict) or fails with ``ChatError`` carrying the server's
error code, or ``Disconnected`` if the session ended before the answer.
Everything the server sends unasked reaches one ``ChatObserver``.

When the server stops answering, the client says so, reconnects with
exponential backoff, logs in again with the credential it keeps in its
state file, is put back in its rooms by the server, which replays what it
missed there (``membership.py``: memberships outlive sessions; a room the
server did not restore is re-joined, its history after the last message id
seen merged with the live lines that came meanwhile: ``catchup.py``; stored
DMs come from the server's mailbox), and
resends what was never answered (``say``, ``dm`` and ``data`` with their
idempotency key, so nothing is posted twice: ``resend.py``), so a server
restart costs the user a notice and nothing else.

A client may be given the nodes of one network instead of one server
(``servers.py``): a lost session, or a failed attempt, moves it to the next,
round robin, with the back-off per round of the list; it logs in there and
catches up as after any reconnect, and ``observer.server_changed`` says
where it went.

Every session, reconnects too, must prove the server key pinned on first
contact (``pinning.py``, ``known_servers.py``): else ``ServerKeyMismatch``.

Where the client stands (connecting, ready, reconnecting, leaving...) is one
``LinkState``, moved only by the transitions in ``link.py``; the observer
and the errors are in ``observer.py``. All are importable from here too.
Where it stands, as a snapshot, is ``status()`` (``status.py``); typing
notices go out paced and unreliably (``typing_notices.py``); a first
connect may keep trying (``keep_trying``: ``first_connect.py``).

At about 640 lines it is over the project's ~450: it is one short method per
request (about thirty); whatever keeps state of its own is a module beside it
(contacts in ``contacts.py``, kept rooms in ``membership.py``, transfers in
``transfers.py``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from twistchat.chat import protocol as p
from twistchat.chat.protocol import ChatProtocolError, ErrorCode, fold_room
from twistchat.client.catchup import RoomCatchUp
from twistchat.client.first_connect import connect_until_logged_in
from twistchat.client.contacts import ContactList
from twistchat.client.known_servers import KnownServers, ServerKeyMismatch, server_name
from twistchat.client.limits import ServerLimits
from twistchat.client.membership import KeptRooms
from twistchat.client.link import (
    RECONNECT_DELAYS, RECONNECT_JITTER, LinkEvent, LinkLifecycle, LinkState, LinkStateError, describe,
)
from twistchat.client.observer import ChatError, ChatObserver, Disconnected, PasswordRequired
from twistchat.client.pinning import ServerKeyPin
from twistchat.client.paging import paged
from twistchat.client.resend import Outbox, OutgoingRequest, new_idem
from twistchat.client.seen import RecentIds
from twistchat.client.servers import Address, ServerList, ServerRotation
from twistchat.client.state import ClientState
from twistchat.client.transfers import Transfers
from twistchat.client.status import ClientCounters, ClientStatus, client_status
from twistchat.client.typing_notices import TypingPacer, send_typing
from twistchat.endpoint.api import INTERACTIVE_LANE, CloseReason, MessageProtocol
from twistchat.endpoint.endpoint import ClientEndpoint

__all__ = ["ChatClient", "ChatError", "ChatObserver", "Disconnected", "LinkState", "LinkStateError",
           "PasswordRequired", "RECONNECT_DELAYS", "RECONNECT_JITTER", "ServerKeyMismatch"]

PRESENCE_EVENTS = (p.JoinEvent, p.PartEvent, p.QuitEvent, p.KickEvent, p.NickEvent,
                   p.AwayEvent, p.TopicEvent, p.ModeEvent, p.OpEvent, p.InvitedEvent)


class _Link(MessageProtocol):
    """One transport session; the client outlives many of them."""

    def __init__(self, client: "ChatClient") -> None:
        self.client = client

    def message_received(self, data: bytes) -> None:
        self.client._received(self, data)

    def unreliable_received(self, data: bytes) -> None:
        self.client._unreliable(self, data)

    def connection_lost(self, reason: CloseReason) -> None:
        self.client._link_lost(self, reason)


class ChatClient:
    log = Logger()

    def __init__(self, reactor: IReactorTime, endpoint: ClientEndpoint,
                 address: Address | Sequence[Address] | ServerList, nick: str,
                 observer: ChatObserver | None = None, password: str | None = None,
                 state: ClientState | None = None, reconnect: bool = True,
                 rng: random.Random | None = None, known_servers: KnownServers | None = None,
                 server_key: str | None = None, accept_new_server_key: bool = False,
                 keep_trying: bool = False, downloads: str | None = None) -> None:
        """``address``: the server, or the servers of one network in the order
        to try them (``servers.py``); ``known_servers``, ``server_key`` (a
        fingerprint to require) and ``accept_new_server_key``: see ``pinning.ServerKeyPin``; ``keep_trying``:
        a first ``connect()`` backs off and tries again (``first_connect.py``);
        ``downloads``: the folder received files are saved in (None: declined)."""
        self.reactor = reactor
        self.endpoint = endpoint
        self.servers = ServerList.of(address)
        self.rotation = ServerRotation(self.servers)
        self.nick = nick
        self.observer = observer or ChatObserver()
        self.password = password
        self.state = state or ClientState(None)
        self.reconnect = reconnect
        self.rng = rng or random.Random()
        self.pin = ServerKeyPin(known_servers, server_key, accept_new_server_key,
                                network=self.servers.addresses)
        self.rooms: dict[str, str] = {}
        """Folded room name to its canonical spelling, for re-joining."""
        self.login_reply: dict[str, Any] = {}
        self.limits = ServerLimits()
        """What the server's login reply said may be sent either way."""
        self.away_message: str | None = None
        """Our away status, set again after a re-login (a new session is not away)."""
        self._lifecycle = LinkLifecycle(self.rng, keep_trying, self._state_changed)
        self._link: _Link | None = None
        self._outbox = Outbox()
        self._next_id = 0
        self._retry_call = None
        self._retry_wait: defer.Deferred | None = None
        """A first connect's pause between attempts (``keep_trying``)."""
        self.counters = ClientCounters()
        self.logged_in_at: float | None = None
        self.last_ping_rtt: float | None = None
        self._typing = TypingPacer()
        self._quit_waiter: tuple[_Link, defer.Deferred] | None = None
        """The session ``quit()`` is ending, and what fires when it has."""
        self._seen_dms, self._seen_deliveries = RecentIds(), RecentIds()
        for dm_id in self.state.dm_ids:  # shown by an earlier run
            self._seen_dms.add(dm_id)
        self.catchup = RoomCatchUp(self.state)
        self.kept = KeptRooms(self.rooms)
        self.contact_list = ContactList()
        """Watched nicks and their state, as the server last said (issue 14)."""
        self.transfers = Transfers(reactor, downloads, lambda: self.observer, self._request, self._send,
                                   lambda: self._link and self._link.connection, lambda: self.ready)

    @property
    def address(self) -> Address:
        """The server the client is on, or trying next."""
        return self.rotation.current

    @property
    def server_key(self) -> bytes | None:
        """The server's static public key this client holds to, once known."""
        return self.pin.key

    @property
    def link_state(self) -> LinkState:
        """Where the client stands; every change is told to
        ``observer.link_state_changed(old, new)``."""
        return self._lifecycle.state

    def _state_changed(self, old: LinkState, new: LinkState) -> None:
        self.observer.link_state_changed(old, new)

    def status(self) -> ClientStatus:
        """Server, key, nick, rooms, RTT and loss, up time, what is unanswered."""
        return client_status(self)

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
        return defer.Deferred.fromCoroutine(connect_until_logged_in(self))

    async def _attempt(self) -> dict[str, Any]:
        """Open a session, log in, re-join: one try, first or not."""
        link = _Link(self)
        await self.pin.connect(self.endpoint, self.address, link, self.observer)
        if self._lifecycle.final:
            # quit() or stop() came while this session was opening: closed
            # unused, or it would log in for a client that has ended.
            link.connection.close("bye", graceful=False)
            raise Disconnected("ended while connecting")
        self._link = link
        self.kept.new_session()
        reply = await self._login()
        self.login_reply, self.limits = reply, ServerLimits.from_login(reply)
        self.nick = reply["nick"]
        if "rooms" in reply:  # the server keeps memberships (PROTOCOL.md C12)
            if reply["rooms"]:  # answered once it put us back in them all
                await self._send(p.Ping, {}, internal=True)
            for room in self.kept.not_restored():
                self.observer.presence(p.PartEvent(room=room, nick=self.nick,
                                                   reason="no longer a member"))
        await self._rejoin()
        await self._restore_away()
        self.logged_in_at = self.reactor.seconds()
        self._lifecycle.fire(LinkEvent.LOGGED_IN)
        for request in self._outbox.release():  # held while away, or never answered
            self._transmit(request)
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
        """Rooms we are in that the server did not put us back in."""
        for room in list(self.rooms.values()):
            if self.kept.was_restored(room):
                continue
            self.catchup.begin(room)
            try:
                await self._joined(await self._send(p.Join, {"room": room}, internal=True), True)
            except ChatError as e:  # banned, key changed, room gone: tell, go on
                self.rooms.pop(fold_room(room), None)
                self._show(self.catchup.abandon(room))
                self.observer.error(ChatError(e.code, f"could not re-join {room}: {e.message}"))

    async def _restore_away(self) -> None:
        try:
            if self.away_message is not None:
                await self._send(p.Away, {"message": self.away_message}, internal=True)
        except ChatError as e:
            self.observer.error(ChatError(e.code, f"could not set away again: {e.message}"))

    def _move_on(self, session_lost: bool = False) -> bool:
        """To the next server of the list (``ServerRotation.move_on``);
        True when a round of them begins, so the back-off is due."""
        old = self.address
        round_begins = self.rotation.move_on(session_lost)
        if self.address != old:
            self.observer.server_changed(server_name(old), server_name(self.address))
        return round_begins

    def _drop_half_open(self) -> None:
        """An attempt failed after its session opened (a login refused for
        now): that session is done."""
        if self._link is not None:
            self._close_link(graceful=False)
            self._link = None

    def _schedule_reconnect(self, session_lost: bool = False) -> float:
        delay = self._lifecycle.next_delay(self._move_on(session_lost))
        self._retry_call = self.reactor.callLater(delay, self._retry)
        return delay

    def _retry(self) -> None:
        self._retry_call = None

        def succeeded(_: Any) -> None:
            self.observer.reconnected()

        def failed(failure) -> None:
            if self._lifecycle.final or failure.check(PasswordRequired, ServerKeyMismatch):
                self._lifecycle.fire(LinkEvent.GIVE_UP)
                self._outbox.fail_held(failure.getErrorMessage())
                self.observer.disconnected(failure.getErrorMessage(), None)
                return
            self._drop_half_open()
            self.observer.disconnected(failure.getErrorMessage(), self._schedule_reconnect())
        defer.Deferred.fromCoroutine(self._attempt()).addCallbacks(succeeded, failed)

    # -- requests ---------------------------------------------------------------

    def _request(self, cls: type, **fields: Any) -> defer.Deferred:
        """Send now if logged in; while reconnecting, hold it and send it once
        logged in again (so a line typed during a server restart is not lost)."""
        request = OutgoingRequest(cls, fields)
        if self._lifecycle.logged_in:
            self._transmit(request)
        elif self._lifecycle.holds_requests:
            self._outbox.held.append(request)
        else:
            request.deferred.errback(Disconnected("not connected"))
        return request.deferred

    def _send(self, cls: type, fields: dict[str, Any], internal: bool = False,
              lane: int = INTERACTIVE_LANE) -> defer.Deferred:
        request = OutgoingRequest(cls, fields, internal=internal, lane=lane)
        self._transmit(request)
        return request.deferred

    def _transmit(self, request: OutgoingRequest) -> None:
        """Send on the current session (again, after a reconnect: same fields,
        same ``idem``, a new request id)."""
        if self._link is None:
            request.deferred.errback(Disconnected("not connected"))
            return
        self._next_id += 1
        try:
            request.data = p.encode(request.cls(id=self._next_id, **request.fields))
        except ChatProtocolError as e:
            request.deferred.errback(ChatError(e.code.value, e.message))
            return
        try:
            self._link.connection.send_message(request.data, lane=request.lane)
        except Exception as e:  # MessageTooLarge, ConnectionClosed
            request.deferred.errback(ChatError(ErrorCode.TOO_LARGE.value, str(e)))
            return
        self._outbox.sent[self._next_id] = request

    def join(self, room: str, key: str | None = None) -> defer.Deferred:
        """Join (or create) ``room``; the kept history is replayed to the observer."""
        self.catchup.begin(room)

        def refused(failure):
            self._show(self.catchup.abandon(room))
            return failure
        return self._request(p.Join, room=room, key=key).addCallbacks(self._joined, refused)

    def create(self) -> defer.Deferred:
        """Create a private group; fires with the join reply (``room`` is its id)."""
        return self._request(p.Create).addCallback(self._joined)

    def _joined(self, reply: dict[str, Any], rejoining: bool = False) -> defer.Deferred:
        self.rooms[fold_room(reply["room"])] = reply["room"]
        return defer.Deferred.fromCoroutine(self.catchup.arrived(  # and pages what did not fit
            reply, self._send, self._show, self.observer.error, rejoining))

    def _show(self, lines: list[tuple[p.MessageEvent, bool]]) -> None:
        for event, replay in lines:
            self.observer.message(event, replay=replay)

    def part(self, room: str, reason: str | None = None) -> defer.Deferred:
        """Leave ``room``: the one way to end a membership, which outlives
        sessions (PROTOCOL.md C12); held while reconnecting, resent if its
        answer was lost. Not in the room (any more): done, ``{"room"}``."""
        key = fold_room(room)
        self.rooms.pop(key, None)

        def left(reply: dict[str, Any]) -> dict[str, Any]:
            self.rooms.pop(key, None)  # put back meanwhile by a reconnect's restore
            return reply

        def not_in(failure):
            failure.trap(ChatError)
            if failure.value.code != ErrorCode.NOT_IN_ROOM.value:
                return failure
            return left({"room": room})
        return self._request(p.Part, room=room, reason=reason).addCallbacks(left, not_in)

    def watch(self, nick: str) -> defer.Deferred:
        """Add ``nick`` to the contacts the server keeps (PROTOCOL.md C11);
        fires with its state now (``nick``, ``state``, ``away``, ``last_seen``)."""
        def watching(reply: dict[str, Any]) -> dict[str, Any]:
            self.contact_list.update(reply)
            return reply
        return self._request(p.Watch, nick=nick).addCallback(watching)

    def unwatch(self, nick: str) -> defer.Deferred:
        def unwatched(reply: dict[str, Any]) -> dict[str, Any]:
            self.contact_list.remove(nick)
            return reply
        return self._request(p.Unwatch, nick=nick).addCallback(unwatched)

    def contacts(self) -> defer.Deferred:
        """Every contact and its state (all pages): ``{"contacts": [...]}``."""
        def listed(reply: dict[str, Any]) -> dict[str, Any]:
            self.contact_list.listed(reply["contacts"])
            return reply
        return paged(self._request, p.Contacts).addCallback(listed)

    def say(self, room: str, text: str) -> defer.Deferred:
        """Fires with ``msg_id`` and ``ts``: the server's receipt (echo),
        once the line is committed; resent after a reconnect until answered."""
        def echoed(reply: dict[str, Any]) -> dict[str, Any]:
            self.catchup.own(reply["room"], reply["msg_id"])
            return reply
        self._typing.sent(room)
        return self._request(p.Say, room=room, text=text, idem=new_idem()).addCallback(echoed)

    def msg(self, nick: str, text: str) -> defer.Deferred:
        """A DM; fires once it is committed to the recipient's mailbox, with
        ``dm_id``, ``ts``, ``status`` "stored" and ``online`` (whether the
        recipient has a session now). ``observer.delivered`` follows once the
        recipient has it."""
        self._typing.sent(nick)
        return self._request(p.Dm, to=nick, text=text, idem=new_idem())

    def send_data(self, target: str, payload: bytes) -> defer.Deferred:
        """To a nick: fires once its transport has the payload; fails with
        ``ChatError`` NOT_ONLINE, or NOT_DELIVERED if its session ended first.
        To a room: fires once every other member has it (``delivered``, and
        ``missed``: those whose session ended first)."""
        where = {"room": target} if target.startswith("#") or p.is_group_id(target) else {"to": target}
        return self._request(p.Data, payload=payload, idem=new_idem(), **where)

    def send_file(self, target: str, path: str, progress=None) -> defer.Deferred:
        """Send the file at ``path`` to a nick or a room in pieces (transfers.py);
        ``progress(OutgoingTransfer)`` as recipients get them; fires with the
        figures once every recipient has it all, or fails with TransferError."""
        return self.transfers.send_file(target, path, progress=progress)

    def send_bytes(self, target: str, data: bytes, name: str, progress=None) -> defer.Deferred:
        """``send_file`` for bytes in memory, offered as ``name``."""
        return self.transfers.send_bytes(target, data, name, progress=progress)

    def set_nick(self, nick: str) -> defer.Deferred:
        def renamed(reply: dict[str, Any]) -> dict[str, Any]:
            self.nick = reply["nick"]
            return reply
        return self._request(p.Nick, nick=nick).addCallback(renamed)

    def topic(self, room: str, topic: str | None = None) -> defer.Deferred:
        return self._request(p.Topic, room=room, topic=topic)

    def who(self, room: str) -> defer.Deferred:
        return paged(self._request, p.Who, room=room)

    def list_rooms(self) -> defer.Deferred:
        return paged(self._request, p.Rooms)

    def away(self, message: str | None = None) -> defer.Deferred:
        """Away with ``message``; back without."""
        def noted(reply: dict[str, Any]) -> dict[str, Any]:
            self.away_message = reply.get("away")
            return reply
        return self._request(p.Away, message=message).addCallback(noted)

    def register(self, password: str, current: str | None = None) -> defer.Deferred:
        """Add or change the nick's password (logging in with it from now on);
        ``current``: by default the password or secret this client logged in with."""
        def registered(reply: dict[str, Any]) -> dict[str, Any]:
            self.password = password
            self.state.secret, self.state.password_required = None, True
            self.state.save()
            return reply
        current = current or self.password or self.state.secret or ""
        return self._request(p.SetPassword, password=password, current=current).addCallback(registered)

    def ping(self) -> defer.Deferred:
        """A round trip to the server: fires with ``rtt`` (seconds, from this
        call to the reply), the server's ``ts`` and ``keepalive``."""
        asked = self.reactor.seconds()

        def timed(reply: dict[str, Any]) -> dict[str, Any]:
            self.last_ping_rtt = self.reactor.seconds() - asked
            return {**reply, "rtt": self.last_ping_rtt}
        return self._request(p.Ping).addCallback(timed)

    def typing(self, to: str) -> bool:
        """Tell ``to`` (a room or a nick) we are typing: unreliable, at most
        one notice per target every few seconds; True if one went out now."""
        if not self.ready or self._link is None or not self._typing.due(to, self.reactor.seconds()):
            self.counters.typing_held_back += 1
            return False
        sent = send_typing(self._link.connection, to)
        self.counters.typing_sent += sent
        return sent

    def history(self, room: str, since: int | None = None) -> defer.Deferred:
        return paged(self._request, p.History, room=room, since=since)

    def kick(self, room: str, nick: str, reason: str | None = None) -> defer.Deferred:
        return self._request(p.Kick, room=room, nick=nick, reason=reason)

    def ban(self, room: str, nick: str, reason: str | None = None) -> defer.Deferred:
        return self._request(p.Ban, room=room, nick=nick, reason=reason)

    def unban(self, room: str, nick: str) -> defer.Deferred:
        return self._request(p.Unban, room=room, nick=nick)

    def mode(self, room: str, invite_only: bool | None = None,
             key: str | None = None, limit: int | None = None) -> defer.Deferred:
        """``key=""`` removes the key, ``limit=0`` the member cap."""
        return self._request(p.Mode, room=room, invite_only=invite_only, key=key, limit=limit)

    def invite(self, room: str, nick: str) -> defer.Deferred:
        return self._request(p.Invite, room=room, nick=nick)

    def op(self, room: str, nick: str) -> defer.Deferred:
        return self._request(p.Op, room=room, nick=nick)

    def quit(self, reason: str | None = None) -> defer.Deferred:
        """Leave the server for good (no reconnect); fires once the session ended."""
        self._lifecycle.fire(LinkEvent.STOP)
        self._cancel_retry()
        if self._link is None:
            self._outbox.fail_held("quit before reconnecting")
            return defer.succeed(None)
        link = self._link
        ended = defer.Deferred()
        self._quit_waiter = (link, ended)
        self._send(p.Quit, {"reason": reason}).addErrback(lambda _: None)
        return ended

    def stop(self) -> None:
        """Stop at once: no more reconnects, the session closed without waiting."""
        self._lifecycle.fire(LinkEvent.STOP)
        self._cancel_retry()
        self._outbox.fail_held("stopped")
        self._close_link(graceful=False)
        self.endpoint.flush_now()  # what was read is shown and acknowledged, the CLOSE sent
        self._save_state()  # now: the program may exit straight after

    def _save_state(self) -> None:
        try:
            self.state.save()
        except Exception:
            self.log.failure("could not save the client state")

    def _cancel_retry(self) -> None:
        if self._retry_call is not None and self._retry_call.active():
            self._retry_call.cancel()
        if self._retry_wait is not None and not self._retry_wait.called:
            self._retry_wait.cancel()  # a first connect's pause: that connect fails

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
            request = self._outbox.answered(message.id)
            if request is None:
                if isinstance(message, p.ErrorReply):
                    self.observer.error(ChatError(message.code, message.message))
            elif isinstance(message, p.Ok):
                request.deferred.callback(dict(message.result))
            elif message.code == ErrorCode.SHUTTING_DOWN.value and self._may_retry(request):
                self._outbox.held.append(request)  # not done: send it after the restart
            else:
                request.deferred.errback(ChatError(message.code, message.message))
            return
        self._dispatch(message)

    def _dispatch(self, event: p.Event) -> None:
        observer = self.observer
        if isinstance(event, p.MessageEvent):
            self._show(self.catchup.replayed(event) if event.replay else self.catchup.live(event))
        elif isinstance(event, p.RejoinedEvent):
            self.kept.rejoined(event)
            observer.rejoined(event)
        elif isinstance(event, p.ContactEvent):
            self.contact_list.event(event)
            observer.contact(event)
        elif isinstance(event, p.DmEvent):
            if self._seen_dms.add(event.dm_id):  # the mailbox hands a DM over again
                self.state.saw_dm(event.dm_id)   # until the recipient's transport acked it
                observer.direct(event)
            else:
                self.counters.duplicate_dms += 1
                observer.duplicate_dropped(event)
        elif isinstance(event, p.DeliveredEvent):
            if self._seen_deliveries.add(event.dm_id):
                observer.delivered(event)
            else:
                self.counters.duplicate_deliveries += 1
                observer.duplicate_dropped(event)
        elif isinstance(event, p.DataEvent):
            observer.data(event)
        elif isinstance(event, p.TRANSFER_EVENTS):
            self.transfers.event(event)
        elif isinstance(event, PRESENCE_EVENTS):
            if isinstance(event, (p.KickEvent, p.PartEvent)) and event.nick == self.nick:
                self.rooms.pop(fold_room(event.room), None)
            observer.presence(event)
        elif isinstance(event, p.ShutdownEvent):
            observer.server_going_down(event.message)
        elif isinstance(event, p.ReplacedEvent):
            self._lifecycle.fire(LinkEvent.STOP)  # newest login wins: do not fight it
            observer.error(ChatError("REPLACED", event.message))

    def _unreliable(self, link: _Link, data: bytes) -> None:
        """Best effort from the server: a typing notice, or dropped."""
        if link is not self._link:
            return
        try:
            event = p.decode_typing_event(data)
        except ChatProtocolError:
            self.counters.unreadable_unreliable += 1
            return
        self.observer.typing(event)

    def _may_retry(self, request: OutgoingRequest) -> bool:
        return request.may_wait and self.reconnect and not self._lifecycle.final

    def _link_lost(self, link: _Link, reason: CloseReason) -> None:
        if link is not self._link:
            return
        was_ready = self._lifecycle.logged_in
        will_retry = self.reconnect and not self._lifecycle.final
        self._link = None
        self._lifecycle.fire(LinkEvent.LINK_LOST)
        self.transfers.session_lost(describe(reason))
        if was_ready and not will_retry:
            self._lifecycle.fire(LinkEvent.GIVE_UP)
        self._outbox.session_lost(reason, will_retry)
        self._save_state()
        if self._quit_waiter is not None and self._quit_waiter[0] is link:
            ended, self._quit_waiter = self._quit_waiter[1], None
            ended.callback(reason)
        if not was_ready:
            return  # lost while (re)connecting: that attempt fails and decides what next
        text = describe(reason)
        if not will_retry:
            self._outbox.fail_held("disconnected")
            self.observer.disconnected(text, None)
            return
        self.observer.disconnected(text, self._schedule_reconnect(session_lost=True))

