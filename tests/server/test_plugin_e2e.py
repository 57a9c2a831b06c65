"""The real ``twistd twistchat`` process on loopback: it starts, chats over
the real transport, and keeps accounts, history and the mailbox across a
graceful restart and a SIGKILL."""

from __future__ import annotations

import signal

import pytest
import pytest_twisted
from twisted.internet import reactor

from twistchat.chat import protocol as p
from twistchat.endpoint.endpoint import ClientEndpoint


from .chatpeer import ChatPeer

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(twistd_server):
    return twistd_server


@pytest.fixture
def client_endpoint():
    endpoint = ClientEndpoint(reactor)
    port = reactor.listenUDP(0, endpoint, interface="127.0.0.1")
    yield endpoint
    port.stopListening()


def connect(endpoint, server) -> "Deferred":
    return endpoint.connect(("127.0.0.1", server.port), ChatPeer()).addTimeout(5, reactor)


@pytest_twisted.inlineCallbacks
def test_twistd_plugin_chats_and_keeps_data_across_restarts(server, client_endpoint):
    alice = yield connect(client_endpoint, server)
    reply = yield alice.request(p.Login, nick="alice", password="correct horse")
    assert isinstance(reply, p.Ok)
    bob = yield connect(client_endpoint, server)
    reply = yield bob.request(p.Login, nick="bob", password="battery staple")
    assert isinstance(reply, p.Ok)
    for peer in (alice, bob):
        assert isinstance((yield peer.request(p.Join, room="#lobby")), p.Ok)
    said = yield alice.request(p.Say, room="#lobby", text="hello bob")
    assert isinstance(said, p.Ok)
    yield bob.request(p.Quit)
    stored = yield alice.request(p.Dm, to="bob", text="while you were away")
    assert isinstance(stored, p.Ok)

    # Graceful restart: every client is told, nothing acknowledged is lost.
    server.stop(signal.SIGTERM)
    reason = yield alice.lost.addTimeout(5, reactor)
    assert reason.code.name == "SHUTTING_DOWN"
    assert any(isinstance(e, p.ShutdownEvent) for e in alice.events)
    server.start()
    alice = yield connect(client_endpoint, server)
    assert isinstance((yield alice.request(p.Login, nick="alice", password="wrong")),
                      p.ErrorReply)
    assert isinstance((yield alice.request(p.Login, nick="alice", password="correct horse")),
                      p.Ok)
    yield alice.request(p.Join, room="#lobby")
    yield alice.request(p.Say, room="#lobby", text="after the restart")

    # Hard kill: what was acknowledged is on disk.
    server.stop(signal.SIGKILL)
    server.start()
    bob = yield connect(client_endpoint, server)
    assert isinstance((yield bob.request(p.Login, nick="bob", password="battery staple")), p.Ok)
    joined = yield bob.request(p.Join, room="#lobby")
    history = [entry["text"] for entry in joined["history"]]
    assert history == ["hello bob", "after the restart"]
    mailbox = [getattr(e, "text", None) for e in bob.events]
    assert mailbox == ["while you were away"]
    assert "Traceback" not in server.log_text()
