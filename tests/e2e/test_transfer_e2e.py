"""Files between real ``twistchat-client`` processes through the real
``twistd twistchat`` and the impairment proxy (``python -m twistchat.netem``,
20 ms round trip): at 10 % loss each way, a file to a nick and to a room of
three, 8 MiB each time, arrives byte for byte (sha256) in each recipient's
download folder (about 16 s a transfer since issue 15's transport; it took
80 s before). ``python -m bench transfer`` measures the rate and the chat
beside it. Each step is bounded in time."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.processes import BIN

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the bench harness lives at the repository root
    sys.path.insert(0, str(REPO))

from bench.common import NetemProcess  # noqa: E402

pytestmark = pytest.mark.e2e

FULL_SIZE = 8 * 1024 * 1024
DEADLINE = 90.0


class Client:
    def __init__(self, nick: str, port: int, workdir: Path) -> None:
        self.nick = nick
        self.downloads = workdir / f"downloads-{nick}"
        self.out = workdir / f"{nick}.out"
        self.process = subprocess.Popen(
            [str(BIN / "twistchat-client"), nick, "--port", str(port),
             "--state-dir", str(workdir / "state"), "--downloads", str(self.downloads),
             "--wait", str(DEADLINE)],
            stdin=subprocess.PIPE, stdout=self.out.open("w"), stderr=subprocess.STDOUT, text=True)

    def send(self, line: str) -> None:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def text(self) -> str:
        return self.out.read_text()

    def wait_for(self, needle: str, count: int = 1) -> None:
        deadline = time.monotonic() + DEADLINE
        while self.text().count(needle) < count:
            assert time.monotonic() < deadline, f"no {needle!r} x{count} in:\n{self.text()}"
            assert self.process.poll() is None, f"exited early:\n{self.text()}"
            time.sleep(0.1)

    def finish(self) -> int:
        self.process.stdin.close()
        return self.process.wait(timeout=DEADLINE)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def room_of_three(port: int, workdir: Path) -> list[Client]:
    """One after the other, as people do: the server checks at most a couple
    of logins from one address at once (the rest are RATE_LIMITED)."""
    clients = []
    for nick in ("alice", "bob", "carol"):
        client = Client(nick, port, workdir)
        client.wait_for("connected to ")
        client.send("/join #files")
        client.wait_for("now talking in #files")
        clients.append(client)
    return clients


@pytest.fixture
def proxies(twistd_server):
    """Start an impairment proxy in front of the server; all stopped afterwards."""
    started: list[NetemProcess] = []

    def start(loss: float, seed: int) -> NetemProcess:
        started.append(NetemProcess(twistd_server.port, loss=loss, delay_ms=10.0, seed=seed))
        return started[-1]
    yield start
    for proxy in started:
        proxy.stop()


def test_eight_mebibytes_reach_a_nick_and_a_room_of_three_byte_for_byte_at_ten_percent_loss(
        twistd_server, proxies, tmp_path):
    proxy = proxies(0.10, seed=11)
    clients = room_of_three(proxy.port, tmp_path)
    alice, bob, carol = clients
    try:
        source = tmp_path / "big.bin"
        source.write_bytes(os.urandom(FULL_SIZE))
        alice.send(f"/send bob {source}")
        alice.wait_for(f"sent {source} to bob: 8.0 MiB in ")
        bob.wait_for("received big.bin from alice: 8.0 MiB in ")
        assert sha256(bob.downloads / "big.bin") == sha256(source)
        alice.send(f"/send #files {source}")
        alice.wait_for(f"sent {source} to #files: 8.0 MiB in ")
        for receiver in (bob, carol):
            receiver.wait_for("received big.bin from alice: 8.0 MiB in ",
                              count=2 if receiver is bob else 1)
        assert sha256(bob.downloads / "big (1).bin") == sha256(source)  # never overwritten
        assert sha256(carol.downloads / "big.bin") == sha256(source)
        assert "Mbit/s" in [line for line in alice.text().splitlines() if "sent" in line][-1]
        assert not [p for p in bob.downloads.iterdir() if p.name.endswith(".part")]
    finally:
        codes = [client.finish() for client in clients]
        counters = proxy.counters()
    assert codes == [0, 0, 0], [client.text() for client in clients]
    assert counters["up"]["dropped"] + counters["down"]["dropped"] > 0  # it really lost datagrams
    assert "Traceback" not in twistd_server.log_text()
    for line in alice.text().splitlines():
        if "Mbit/s" in line:
            print(line)  # the rate, for the record (pytest -s)
