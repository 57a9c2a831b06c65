"""``twistd twistchat`` without ``-n``: the way an operator runs it in the
background.  twistd forks after building the service, so anything started
before the fork (a store thread) is gone in the daemon; this test chats
through a daemonized server and stops it with SIGTERM via its pidfile."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
import pytest_twisted
from twisted.internet import reactor

from support.processes import BIN, free_udp_port
from twistchat.client import ChatClient, ChatObserver, ClientState
from twistchat.endpoint.endpoint import ClientEndpoint

pytestmark = pytest.mark.e2e
TIMEOUT = 10


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def daemon(tmp_path):
    """A daemonized server: its port, pid and log."""
    port, pidfile, log = free_udp_port(), tmp_path / "twistd.pid", tmp_path / "twistd.log"
    subprocess.run(
        [str(BIN / "twistd"), f"--pidfile={pidfile}", "--logfile", str(log), "twistchat",
         "--port", str(port), "--interface", "127.0.0.1", "--db", str(tmp_path / "chat.sqlite3")],
        cwd=tmp_path, check=True, timeout=TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while not (pidfile.exists() and log.exists() and "twistchat listening" in log.read_text()):
        assert time.monotonic() < deadline, "daemon did not start"
        time.sleep(0.05)
    pid = int(pidfile.read_text())
    yield port, pid, log
    if alive(pid):
        os.kill(pid, signal.SIGKILL)


@pytest_twisted.inlineCallbacks
def test_daemonized_server_answers_and_stops_on_sigterm(daemon, tmp_path):
    port, pid, log = daemon
    endpoint = ClientEndpoint(reactor)
    listening = reactor.listenUDP(0, endpoint, interface="127.0.0.1")
    try:
        alice = ChatClient(reactor, endpoint, ("127.0.0.1", port), "alice", ChatObserver(),
                           password="correct horse", state=ClientState(None), reconnect=False)
        yield alice.connect().addTimeout(TIMEOUT, reactor)      # scrypt + account write
        yield alice.join("#lobby").addTimeout(TIMEOUT, reactor)
        yield alice.say("#lobby", "hi").addTimeout(TIMEOUT, reactor)  # history write
        yield alice.quit().addTimeout(TIMEOUT, reactor)
    finally:
        yield listening.stopListening()
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + TIMEOUT
    while alive(pid):
        assert time.monotonic() < deadline, "daemon did not stop on SIGTERM:\n" + log.read_text()
        time.sleep(0.05)
    text = log.read_text()
    assert "stopped" in text and "Traceback" not in text
