"""The real ``twistchat-client`` processes, driven through pipes, against the
real ``twistd twistchat``: room chat both ways, a DM to an offline user
delivered when that user comes back (the sender is told), every line
exactly once and in order, and the exit status a script relies on."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from support.processes import BIN, Server

pytestmark = pytest.mark.e2e
LINES = 25
DEADLINE = 30


class Client:
    def __init__(self, nick: str, server: Server, workdir: Path, *options: str,
                 port: int | None = None) -> None:
        """``port``: talk to this port instead of the server's (a proxy's)."""
        self.out = workdir / f"{nick}.out"
        self.output = self.out.open("w")
        self.process = subprocess.Popen(
            [str(BIN / "twistchat-client"), nick, "--port", str(port or server.port),
             "--state-dir", str(workdir / "state"), *options],
            stdin=subprocess.PIPE, stdout=self.output, stderr=subprocess.STDOUT, text=True)

    def send(self, *lines: str) -> None:
        for line in lines:
            self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def text(self) -> str:
        return self.out.read_text()

    def wait_for(self, needle: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while needle not in self.text():
            assert time.monotonic() < deadline, f"no {needle!r} in:\n{self.text()}"
            assert self.process.poll() is None, f"exited early:\n{self.text()}"
            time.sleep(0.05)

    def finish(self) -> int:
        self.process.stdin.close()
        code = self.process.wait(timeout=DEADLINE)
        self.output.close()
        return code


def pipe(nick: str, server: Server, workdir: Path, *lines: str,
         options: tuple[str, ...] = ()) -> tuple[int, str]:
    client = Client(nick, server, workdir, *options)
    client.send(*lines)
    return client.finish(), client.text()


@pytest.fixture
def server(twistd_server):
    return twistd_server


def received(output: str, sender: str) -> list[str]:
    marker = f"[#tea] <{sender}> "
    return [line.split(marker, 1)[1] for line in output.splitlines() if marker in line]


def test_two_clients_chat_through_pipes_and_offline_dm_is_delivered(server, tmp_path):
    code, output = pipe("carol", server, tmp_path)  # registers carol, then leaves
    assert code == 0, output
    alice, bob = Client("alice", server, tmp_path), Client("bob", server, tmp_path)
    for client in (alice, bob):
        client.send("/join #tea")
        client.wait_for("now talking in #tea")
    alice.wait_for("bob joined #tea")
    alice.send(*[f"a{i}" for i in range(LINES)])
    bob.send(*[f"b{i}" for i in range(LINES)])
    alice.wait_for(f"<bob> b{LINES - 1}")
    bob.wait_for(f"<alice> a{LINES - 1}")
    assert received(alice.text(), "bob") == [f"b{i}" for i in range(LINES)]
    assert received(bob.text(), "alice") == [f"a{i}" for i in range(LINES)]

    alice.send("/msg carol see you at five")
    alice.wait_for("carol is offline: stored for offline delivery")
    code, carol_output = pipe("carol", server, tmp_path)
    assert code == 0, carol_output
    assert carol_output.count("[dm] <alice> see you at five (sent while you were away)") == 1
    alice.wait_for("carol received your message")

    assert alice.finish() == 0, alice.text()
    assert bob.finish() == 0, bob.text()
    assert "Traceback" not in server.log_text()


def test_a_refused_line_makes_the_exit_status_non_zero(server, tmp_path):
    code, output = pipe("dave", server, tmp_path, "/join #tea", "/msg nobody hello", "/bogus")
    assert code == 1
    assert "NO_SUCH_NICK" in output and "unknown command /bogus" in output


def test_unreachable_server_is_a_clear_error_not_a_hang(tmp_path):
    # No hang: the run's timeout fails the test (the handshake gives up after 10 s).
    result = subprocess.run(
        [str(BIN / "twistchat-client"), "erin", "--port", "9", "--state-dir", str(tmp_path)],
        input="hello\n", capture_output=True, text=True, timeout=DEADLINE)
    assert result.returncode == 2
    assert "cannot reach 127.0.0.1:9" in result.stdout
