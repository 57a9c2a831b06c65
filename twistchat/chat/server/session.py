"""
``ClientSession``: the adapter between one transport session (a
``MessageConnection``) and the chat server.  It decodes, applies flood
control, and feeds requests one at a time to its host, so a request waiting
on the store never overtakes or interleaves with the next; it makes sure
each request gets exactly one reply.  Who the client is (nick, rooms) is the
server's business (``user.User``), not this module's: nothing raised by a
request escapes ``message_received``.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Coroutine
from typing import Any, Protocol

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from twistchat.chat.protocol import (
    ChatProtocolError,
    ErrorCode,
    ErrorReply,
    Message,
    Ok,
    Request,
    decode_request,
    encode,
)
from twistchat.chat.server.config import ServerConfig
from twistchat.chat.server.member import NotAcknowledged
from twistchat.endpoint.api import (
    INTERACTIVE_LANE, CloseCode, CloseReason, ConnectionClosed, MessageConnection, MessageProtocol,
    MessageTooLarge, TransportError,
)
from twistchat.endpoint.ratelimit import TokenBucket


class SessionHost(Protocol):
    """What a session hands its traffic to: the chat server."""

    clock: IReactorTime
    config: ServerConfig

    def session_started(self, session: ClientSession) -> None: ...

    def session_lost(self, session: ClientSession, reason: CloseReason) -> None: ...

    def dispatch(self, session: ClientSession, request: Request) -> Awaitable[None]:
        """Run one request; it answers through ``reply``/``fail`` or raises
        ChatProtocolError, and may answer nothing for a session it is done with."""

    def unreliable_received(self, session: ClientSession, data: bytes) -> None:
        """One unreliable message (a typing notice): best effort, never answered."""


class ClientSession(MessageProtocol):
    log = Logger()

    def __init__(self, host: SessionHost) -> None:
        self.host = host
        now = host.clock.seconds()
        self.bucket = TokenBucket(rate=host.config.rate, burst=host.config.burst, updated=now)
        self._last_request = now
        self._queue: list[Request] = []
        """Requests waiting their turn, oldest first: at most
        ``max_pending_requests`` (a list: 56 bytes empty, a deque 760, for
        every one of 100,000 idle sessions)."""
        self._busy = False
        self._pumping = False
        self._unanswered: set[int] | None = None
        """id() of requests dispatched but not yet answered: exactly one reply
        each. None when there are none (an empty set is 216 bytes, and an
        idle session has none)."""
        self._answers_awaited: tuple[int, Deferred[None]] | None = None
        """A request waiting for every other one to be answered (``others_answered``)."""
        self._awaiting_ack: dict[int, Deferred[None]] = {}
        """Tracked messages sent and not yet acknowledged; failed when the session ends."""
        self._tracking = itertools.count()

    @property
    def last_heard(self) -> float:
        """When the client last showed life: a request, an unreliable message,
        or anything at all on its transport session (keepalives included), so
        an idle but connected client is not reaped."""
        transport = getattr(self.connection, "last_receive_time", None)
        return self._last_request if transport is None else max(self._last_request, transport)

    @property
    def transport_idle_timeout(self) -> float | None:
        """How long the transport lets this session be silent before it ends
        it itself (and ``connection_lost`` says why), if it does."""
        return getattr(self.connection, "idle_timeout", None)

    @property
    def peer(self) -> Any:
        return getattr(self.connection, "peer_address", None)

    # ---- transport side

    def connection_made(self, connection: MessageConnection) -> None:
        super().connection_made(connection)
        self.host.session_started(self)

    def message_received(self, data: bytes) -> None:
        config = self.host.config
        self._last_request = self.host.clock.seconds()
        try:
            request = decode_request(data, config.limits)
        except ChatProtocolError as error:
            self.send(error.to_reply())
            return
        paced = request.PACED  # a transfer's pieces: bounded by its window (PROTOCOL.md C14)
        if (not paced and not self.bucket.take(self._last_request)) \
                or len(self._queue) >= config.max_pending_requests:
            self.send(ErrorReply(id=request.id, code=ErrorCode.RATE_LIMITED,
                                 message=ErrorCode.RATE_LIMITED.text))
            return
        self._queue.append(request)
        self._pump()

    def unreliable_received(self, data: bytes) -> None:
        self._last_request = self.host.clock.seconds()
        self.host.unreliable_received(self, data)

    def connection_lost(self, reason: CloseReason) -> None:
        self._queue.clear()
        self._release_awaiting()
        waiting, self._awaiting_ack = self._awaiting_ack, {}
        for d in waiting.values():
            d.errback(NotAcknowledged(f"session ended: {reason.code.name}"))
        self.host.session_lost(self, reason)

    # ---- request processing, strictly one at a time

    def _pump(self) -> None:
        if self._pumping:
            return
        self._pumping = True
        try:
            while self._queue and not self._busy:
                request = self._queue.pop(0)
                self._busy = True
                self._start(self._process(request))
        finally:
            self._pumping = False

    def _start(self, processing: Coroutine[Any, Any, None]) -> None:
        """Run one request's first step now. Most (a say while its block of
        ids lasts: its commit is not awaited) finish in it, and cost no
        Deferred, no ``inlineCallbacks`` loop, no copied context (issue 16);
        one that awaits a Deferred not fired yet is handed, suspended there,
        to ``Deferred.fromCoroutine``, which resumes it when it fires
        (``Deferred.__await__`` looks at the Deferred again when resumed)."""
        try:
            processing.send(None)
        except StopIteration:
            self._busy = False
            return
        except BaseException:
            self._busy = False
            raise
        Deferred.fromCoroutine(processing).addBoth(self._finished)

    def _finished(self, _: Any) -> None:
        self._busy = False
        self._pump()

    async def _process(self, request: Request) -> None:
        if self._unanswered is None:
            self._unanswered = set()
        self._unanswered.add(id(request))
        try:
            await self.host.dispatch(self, request)
        except ChatProtocolError as error:
            self.fail(request, error.code, error.message)
        except Exception:
            self.log.failure("request {type} from {peer} failed", type=request.TYPE, peer=self.peer)
            self.fail(request, ErrorCode.INTERNAL)

    # ---- replies and events

    def reply(self, request: Request, **fields: Any) -> None:
        """The one ok reply for ``request``; if the peer's transport could not
        take it, REPLY_TOO_LARGE instead, so the request is still answered.
        Its transport's own check says so (``send_message`` raises
        MessageTooLarge over the peer's cap), not a size asked for first:
        one call less through the layers for every reply (issue 16)."""
        if self._mark_replied(request):
            try:
                self.send_encoded(encode(Ok(id=request.id, result=fields)), too_large_raises=True)
            except MessageTooLarge:
                code = ErrorCode.REPLY_TOO_LARGE
                self.send(ErrorReply(id=request.id, code=str(code), message=code.text))
            self._sent_answer()

    def fail(self, request: Request, code: ErrorCode, message: str | None = None) -> None:
        """The one error reply for ``request`` (ignored if it was answered already)."""
        if self._mark_replied(request):
            self.send(ErrorReply(id=request.id, code=str(code), message=message or code.text))
            self._sent_answer()

    def _mark_replied(self, request: Request) -> bool:
        token = id(request)
        unanswered = self._unanswered
        if unanswered is None or token not in unanswered:
            return False
        unanswered.discard(token)
        if not unanswered:
            self._unanswered = None
        return True

    def _answered_all_but(self, token: int) -> bool:
        """Every dispatched request but the one ``id()`` is ``token`` is answered."""
        unanswered = self._unanswered
        return unanswered is None or unanswered <= {token}

    def _sent_answer(self) -> None:
        """An answer went out: the request waiting for the others may go on."""
        if self._answers_awaited is not None and self._answered_all_but(self._answers_awaited[0]):
            self._release_awaiting()

    def others_answered(self, request: Request) -> Deferred[None]:
        """Fires once every request dispatched before ``request`` is answered,
        or the session ended. A say is answered when its commit lands (a
        data when its recipient acknowledged it), after later requests have
        begun, so a quit waits on this before it closes the session:
        otherwise the sender never hears that its line was kept (PROTOCOL.md
        C2). Requests run one at a time, so one waits at most."""
        if self._answered_all_but(id(request)):
            return succeed(None)
        waiting: Deferred[None] = Deferred()
        self._answers_awaited = (id(request), waiting)
        return waiting

    def _release_awaiting(self) -> None:
        if self._answers_awaited is not None:
            waiting, self._answers_awaited = self._answers_awaited[1], None
            waiting.callback(None)

    def send(self, message: Message, lane: int = INTERACTIVE_LANE) -> None:
        self.send_encoded(encode(message), lane)

    def send_encoded(self, data: bytes, lane: int = INTERACTIVE_LANE,
                     too_large_raises: bool = False) -> int | None:
        """Queue ``data`` on ``lane``; returns its transport sequence number
        there (on the interactive lane, compare with ``acked_below``), or
        None if the transport would not take it. ``too_large_raises``: a
        message over the peer's cap raises ``MessageTooLarge`` instead, for
        a caller that answers otherwise (``reply``)."""
        if self.connection is None:
            return None
        try:
            return self.connection.send_message(data, lane=lane)
        except ConnectionClosed:
            return None  # it has ended: its close is on its way here, unsaid
        except TransportError as error:
            if too_large_raises and isinstance(error, MessageTooLarge):
                raise
            self.log.debug("dropped a message to {peer}: {error}", peer=self.peer, error=error)
            return None

    @property
    def acked_below(self) -> int:
        """Every message whose ``send_encoded`` returned less than this has
        been acknowledged by the peer's transport, with every earlier one
        (PROTOCOL.md C12's marks are read from it); 0 without a connection."""
        connection = self.connection
        return 0 if connection is None else connection.acked_below

    def send_unreliable(self, data: bytes) -> None:
        """Best effort (typing notices): may be lost, never resent, never raises."""
        if self.connection is None:
            return
        try:
            self.connection.send_unreliable(data)
        except TransportError as error:
            self.log.debug("dropped an unreliable message to {peer}: {error}", peer=self.peer,
                           error=error)

    def send_tracked(self, data: bytes, lane: int = INTERACTIVE_LANE) -> Deferred[None]:
        """Send encoded ``data``; the Deferred fires once the peer's transport
        has acknowledged all of it, and fails with NotAcknowledged if the
        session ends first or cannot take it (closed, over the peer's cap).
        This is what "the recipient has it" means (PROTOCOL.md C10)."""
        if self.connection is None:
            return fail(NotAcknowledged("no connection"))
        token = next(self._tracking)
        d: Deferred[None] = Deferred()
        self._awaiting_ack[token] = d

        def acked() -> None:
            if self._awaiting_ack.pop(token, None) is not None:
                d.callback(None)
        try:
            self.connection.send_message(data, on_acked=acked, lane=lane)
        except TransportError as error:
            self._awaiting_ack.pop(token, None)
            self.log.debug("could not send a tracked message to {peer}: {error}", peer=self.peer,
                           error=error)
            return fail(NotAcknowledged(str(error)))
        return d

    @property
    def peer_max_message_size(self) -> int:
        """The largest message the peer's transport takes (0 without a connection)."""
        return getattr(self.connection, "peer_max_message_size", 0)

    def mark_trusted(self) -> None:
        """Vouch for this session to the transport (its user logged in): a
        full server closes sessions nobody vouched for first."""
        mark = getattr(self.connection, "mark_trusted", None)
        if mark is not None:
            mark()

    def close(self, message: str, code: CloseCode, graceful: bool = True) -> None:
        if self.connection is not None:
            try:
                self.connection.close(message, code, graceful)
            except TransportError:
                pass
