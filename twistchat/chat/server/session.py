"""
One client session: the ``MessageProtocol`` the transport drives.  It decodes,
applies flood control, and feeds requests one at a time to the server, so a
request waiting on the store never overtakes or interleaves with the next.
Nothing raised by a request escapes ``message_received``.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
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
from twistchat.endpoint.ratelimit import TokenBucket
from twistchat.endpoint.api import CloseCode, CloseReason, MessageConnection, MessageProtocol, TransportError

if TYPE_CHECKING:
    from twistchat.chat.server.rooms import Room
    from twistchat.chat.server.server import ChatServer


class ClientSession(MessageProtocol):
    log = Logger()

    def __init__(self, server: ChatServer) -> None:
        self.server = server
        now = server.clock.seconds()
        self.bucket = TokenBucket(rate=server.config.rate, burst=server.config.burst, updated=now)
        self._last_request = now
        self.key: str = ""
        """Folded nick once logged in; empty before."""
        self.nick: str = ""
        self.away: str | None = None
        self.rooms: dict[str, Room] = {}
        self.departed = False
        """Removed from the server (quit, replaced, reaped, lost): send nothing more."""
        self._queue: deque[Request] = deque()
        self._busy = False
        self._pumping = False
        self._unanswered: set[int] = set()
        """id() of requests dispatched but not yet answered: exactly one reply each."""

    @property
    def last_heard(self) -> float:
        """When the client last showed life: a request, an unreliable message,
        or anything at all on its transport session (keepalives included), so
        an idle but connected client is not reaped."""
        transport = getattr(self.connection, "last_receive_time", None)
        return self._last_request if transport is None else max(self._last_request, transport)

    @property
    def logged_in(self) -> bool:
        return bool(self.key)

    # ---- transport side

    def connection_made(self, connection: MessageConnection) -> None:
        super().connection_made(connection)
        self.server.session_started(self)

    def message_received(self, data: bytes) -> None:
        self._last_request = self.server.clock.seconds()
        try:
            request = decode_request(data, self.server.config.limits)
        except ChatProtocolError as error:
            self.send(error.to_reply())
            return
        if not self.bucket.take(self._last_request) or len(self._queue) >= self.server.config.max_pending_requests:
            self.send(ErrorReply(id=request.id, code=ErrorCode.RATE_LIMITED,
                                 message=ErrorCode.RATE_LIMITED.text))
            return
        self._queue.append(request)
        self._pump()

    def unreliable_received(self, data: bytes) -> None:
        self._last_request = self.server.clock.seconds()

    def connection_lost(self, reason: CloseReason) -> None:
        self._queue.clear()
        self.server.session_lost(self, reason)

    # ---- request processing, strictly one at a time

    def _pump(self) -> None:
        if self._pumping:
            return
        self._pumping = True
        try:
            while self._queue and not self._busy and not self.departed:
                request = self._queue.popleft()
                self._busy = True
                Deferred.fromCoroutine(self._process(request)).addBoth(self._finished)
        finally:
            self._pumping = False

    def _finished(self, _: Any) -> None:
        self._busy = False
        self._pump()

    async def _process(self, request: Request) -> None:
        self._unanswered.add(id(request))
        try:
            await self.server.dispatch(self, request)
        except ChatProtocolError as error:
            self.fail(request, error.code, error.message)
        except Exception:
            self.log.failure("request {type} from {nick} failed", type=request.TYPE, nick=self.nick)
            self.fail(request, ErrorCode.INTERNAL)

    # ---- replies and events

    def reply(self, request: Request, **fields: Any) -> None:
        """The one ok reply for ``request``."""
        if self._mark_replied(request):
            self.send(Ok(id=request.id, result=fields))

    def fail(self, request: Request, code: ErrorCode, message: str | None = None) -> None:
        """The one error reply for ``request`` (ignored if it was answered already)."""
        if self._mark_replied(request):
            self.send(ErrorReply(id=request.id, code=str(code), message=message or code.text))

    def _mark_replied(self, request: Request) -> bool:
        token = id(request)
        if token not in self._unanswered:
            return False
        self._unanswered.discard(token)
        return True

    def send(self, message: Message) -> None:
        self.send_bytes(encode(message))

    def send_bytes(self, data: bytes) -> None:
        if self.connection is None:
            return
        try:
            self.connection.send_message(data)
        except TransportError as error:
            self.log.debug("dropped a message to {nick}: {error}", nick=self.nick, error=error)

    def close(self, message: str, code: CloseCode, graceful: bool = True) -> None:
        if self.connection is not None:
            try:
                self.connection.close(message, code, graceful)
            except TransportError:
                pass

    @property
    def peer(self) -> Any:
        return getattr(self.connection, "peer_address", None)

