"""The real ``twistd twistchat`` process on loopback: it starts, chats over
the real transport, and keeps accounts, history and the mailbox across a
graceful restart and a SIGKILL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor

from twistchat.chat import protocol as p
from twistchat.endpoint.endpoint import ClientEndpoint

from .chatpeer import ChatPeer

pytestmark = pytest.mark.e2e
TWISTD = str(Path(sys.executable).with_name("twistd"))
START_TIMEOUT = 15


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir = workdir
        self.port = port
        self.log = workdir / "twistd.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.log.write_text("")
        self.process = subprocess.Popen(
            [TWISTD, "-n", "--pidfile=", "--logfile", str(self.log), "twistchat",
             "--port", str(self.port), "--interface", "127.0.0.1",
             "--db", str(self.workdir / "chat.sqlite3")],
            cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while "twistchat listening" not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("server did not start:\n" + self.log.read_text())
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.process.send_signal(sig)
        self.process.wait(timeout=15)

    def log_text(self) -> str:
        return self.log.read_text()


@pytest.fixture
def server(tmp_path):
    server = Server(tmp_path, free_udp_port())
    server.start()
    yield server
    if server.process.poll() is None:
        server.stop(signal.SIGKILL)


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
