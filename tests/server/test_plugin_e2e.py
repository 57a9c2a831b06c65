"""The real ``twistd twistchat`` process on loopback, used through the client
library: it starts, chats over the real transport, and keeps accounts,
history and the mailbox across a graceful restart and a SIGKILL."""

from __future__ import annotations

import signal

import pytest
import pytest_twisted
from twisted.internet import reactor

from support.waiting import until, within
from twistchat.client import ChatClient, ChatError, ChatObserver, ClientState
from twistchat.endpoint.endpoint import ClientEndpoint

pytestmark = pytest.mark.e2e


class Seen(ChatObserver):
    def __init__(self) -> None:
        self.messages: list[tuple[str, bool]] = []
        self.dms: list[tuple[str, bool]] = []
        self.going_down: list[str] = []

    def message(self, event, replay):
        self.messages.append((event.text, replay))

    def direct(self, event):
        self.dms.append((event.text, event.stored))

    def server_going_down(self, message):
        self.going_down.append(message)


@pytest.fixture
def server(twistd_server):
    return twistd_server


@pytest.fixture
def endpoint():
    endpoint = ClientEndpoint(reactor)
    port = reactor.listenUDP(0, endpoint, interface="127.0.0.1")
    yield endpoint
    port.stopListening()


def client(endpoint, server, nick, password, state=None):
    seen = Seen()
    return ChatClient(reactor, endpoint, ("127.0.0.1", server.port), nick, seen,
                      password=password, state=state or ClientState(None),
                      reconnect=False), seen


@pytest_twisted.inlineCallbacks
def test_twistd_plugin_chats_and_keeps_data_across_restarts(server, endpoint):
    alice, alice_seen = client(endpoint, server, "alice", "correct horse")
    bob, _ = client(endpoint, server, "bob", "battery staple")
    for each in (alice, bob):
        yield within(each.connect())
        yield within(each.join("#lobby"))
    yield within(alice.say("#lobby", "hello bob"))
    yield within(bob.quit())
    stored = yield within(alice.msg("bob", "while you were away"))
    assert stored["status"] == "stored"

    # Graceful restart: every client is told, nothing acknowledged is lost.
    server.stop(signal.SIGTERM)
    yield until(lambda: not alice.connected)
    assert alice_seen.going_down == ["server shutting down"]
    server.start()
    intruder, _ = client(endpoint, server, "alice", "wrong password")
    with pytest.raises(ChatError) as refused:
        yield within(intruder.connect())
    assert refused.value.code == "BAD_CREDENTIAL"
    alice, _ = client(endpoint, server, "alice", "correct horse")
    yield within(alice.connect())
    assert list(alice.rooms.values()) == ["#lobby"]  # her membership outlived the restart
    yield within(alice.say("#lobby", "after the restart"))

    # Hard kill: what was acknowledged is on disk.
    server.stop(signal.SIGKILL)
    server.start()
    bob, bob_seen = client(endpoint, server, "bob", "battery staple")
    reply = yield within(bob.connect())
    assert reply["mailbox"] == 1 and reply["rooms"] == 1  # back in #lobby, though he quit
    # what bob's quit session had acknowledged is not replayed; what it missed is, once
    assert bob_seen.messages in ([("hello bob", True), ("after the restart", True)],
                                 [("after the restart", True)])
    assert bob_seen.dms == [("while you were away", True)]
    log = server.log_text()
    assert "Traceback" not in log
    assert "hello bob" not in log and "while you were away" not in log  # no message text
    yield within(bob.quit())
