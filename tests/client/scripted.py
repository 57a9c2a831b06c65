"""A scripted stand-in for the server, for what the real one will not do on
cue: it answers every request with a plain ``ok`` (one reactor turn later,
as a network would) and hands the client whatever server message a test
pushes, as often as the test pushes it."""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.task import Clock

from twistchat.chat import protocol as p
from twistchat.endpoint.api import CloseCode, CloseReason, MessageProtocol

REPLY_DELAY = 0.01
"""Virtual seconds between a request and its answer."""


class ScriptedConnection:
    def __init__(self, server: "ScriptedServer", protocol: MessageProtocol) -> None:
        self.server = server
        self.protocol = protocol
        self.open = True
        self.peer_address = server.address
        self.connection_id = len(server.connections)
        self.last_receive_time = server.clock.seconds()

    def send_message(self, data: bytes) -> None:
        request = p.decode_request(data)
        self.server.requests.append(request)
        self.server.clock.callLater(REPLY_DELAY, self._answer, request)

    def send_unreliable(self, data: bytes) -> None:
        pass

    def close(self, message: str = "", code: CloseCode = CloseCode.NORMAL,
              graceful: bool = True) -> None:
        self.server.clock.callLater(0, self.end, CloseReason(code, message))

    def push(self, message: p.Message) -> None:
        if self.open:
            self.protocol.message_received(p.encode(message))

    def end(self, reason: CloseReason) -> None:
        if self.open:
            self.open = False
            self.protocol.connection_lost(reason)

    def _answer(self, request) -> None:
        result = {"nick": request.nick, "registered": False} if isinstance(request, p.Login) else {}
        self.push(p.Ok(id=request.id, result=result))


class ScriptedServer:
    """Plays the ``ClientEndpoint`` to a ``ChatClient``: every connect succeeds."""

    def __init__(self, clock: Clock, address: tuple[str, int] = ("127.0.0.10", 9999)) -> None:
        self.clock = clock
        self.address = address
        self.connections: list[ScriptedConnection] = []
        self.requests: list = []

    def connect(self, address: tuple, protocol: MessageProtocol) -> defer.Deferred:
        connection = ScriptedConnection(self, protocol)
        self.connections.append(connection)
        protocol.connection_made(connection)
        return defer.succeed(protocol)

    @property
    def current(self) -> ScriptedConnection:
        return self.connections[-1]

    def push(self, message: p.Message) -> None:
        """Send ``message`` on the newest session."""
        self.current.push(message)

    def drop(self) -> None:
        """The newest session ends under the client (the server restarted)."""
        self.current.end(CloseReason(CloseCode.RESET, by_peer=True))
