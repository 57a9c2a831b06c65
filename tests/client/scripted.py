"""A scripted stand-in for the server, for what the real one will not do on
cue: it answers every request with a plain ``ok`` (one reactor turn later,
as a network would), or with what ``results`` says for its type, or not at
all for the types in ``silent`` (the test answers those itself, or drops
the session first); and it hands the client whatever server message a test
pushes, as often as the test pushes it."""

from __future__ import annotations

import random
from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.task import Clock

from twistchat.chat import protocol as p
from twistchat.client import ChatClient
from twistchat.endpoint.api import INTERACTIVE_LANE, CloseCode, CloseReason, MessageProtocol

from .harness import Recording

REPLY_DELAY = 0.01
"""Virtual seconds between a request and its answer."""
SERVER_KEY = bytes(range(32))
"""The static key every scripted session claims to have proved."""


class ScriptedConnection:
    def __init__(self, server: "ScriptedServer", protocol: MessageProtocol) -> None:
        self.server = server
        self.protocol = protocol
        self.open = True
        self.peer_address = server.address
        self.connection_id = len(server.connections)
        self.last_receive_time = server.clock.seconds()
        self.server_key = SERVER_KEY

    def send_message(self, data: bytes, lane: int = INTERACTIVE_LANE) -> None:
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
        if type(request) in self.server.silent:
            return
        if type(request) in self.server.results:
            result = self.server.results[type(request)](request)
        elif isinstance(request, p.Login):
            result = {"nick": request.nick, "registered": False}
        else:
            result = {}
        self.push(result if isinstance(result, p.Message) else p.Ok(id=request.id, result=result))


class ScriptedServer:
    """Plays the ``ClientEndpoint`` to a ``ChatClient``: every connect succeeds."""

    def __init__(self, clock: Clock, address: tuple[str, int] = ("127.0.0.10", 9999)) -> None:
        self.clock = clock
        self.address = address
        self.connections: list[ScriptedConnection] = []
        self.requests: list = []
        self.silent: set[type] = set()
        self.results: dict[type, Callable[[Any], dict | p.Message]] = {}

    def connect(self, address: tuple, protocol: MessageProtocol,
                server_key: bytes | None = None) -> defer.Deferred:
        connection = ScriptedConnection(self, protocol)
        self.connections.append(connection)
        protocol.connection_made(connection)
        return defer.succeed(protocol)

    def flush_now(self) -> None:
        """Nothing waits for a flush here: every message is handed over as it is pushed."""

    def sent(self, request_type: type) -> list:
        """The requests of that type the client sent, oldest first."""
        return [r for r in self.requests if isinstance(r, request_type)]

    @property
    def current(self) -> ScriptedConnection:
        return self.connections[-1]

    def push(self, message: p.Message) -> None:
        """Send ``message`` on the newest session."""
        self.current.push(message)

    def drop(self) -> None:
        """The newest session ends under the client (the server restarted)."""
        self.current.end(CloseReason(CloseCode.RESET, by_peer=True))


def run(clock: Clock, seconds: float) -> None:
    """Virtual time in small steps, so every callLater due fires in order."""
    clock.pump([0.05] * int(seconds / 0.05))


def logged_in(nick: str = "bob", server: ScriptedServer | None = None):
    """A ChatClient logged in to a scripted server: (clock, server, client, observer)."""
    clock = server.clock if server is not None else Clock()
    server = server or ScriptedServer(clock)
    observer = Recording()
    client = ChatClient(clock, server, server.address, nick, observer, rng=random.Random(1))
    connected = client.connect()
    run(clock, 1)
    assert connected.called and client.connected
    return clock, server, client, observer
