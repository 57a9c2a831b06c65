"""Encryption as an attacker on the path sees it (issue 13), with real
processes: ``twistd twistchat``, two ``twistchat-client`` processes and the
``python -m twistchat.netem`` proxy, every datagram between them captured
by a relay in the test (``support/capture.py``: clients -> capture ->
netem -> server).

- Nothing a user typed, no password, secret, nick or room name appears in
  any captured datagram.
- Datagrams injected from another port with a sniffed connection id (a
  captured DATA packet replayed, the same with payload bytes flipped, and
  one with the header and random bytes) towards the server and towards a
  client change nothing the users see.
- A restarted twistd with another key is refused by the CLI that pinned the
  old one: exit 2, both fingerprints named; ``--accept-new-server-key``
  re-pins it."""

from __future__ import annotations

import os
import re
import socket
import sys
import time
from pathlib import Path

import pytest

from cli.test_cli_e2e import Client, pipe
from support.capture import CaptureRelay
from support.processes import Server
from twistchat.wire.packets import CONNECTION_ID_SIZE, PacketType, peek_route

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the bench harness lives at the repository root
    sys.path.insert(0, str(REPO))

from bench.common import NetemProcess  # noqa: E402

pytestmark = pytest.mark.e2e
KEY_LINE = re.compile(r"server key (SHA256:\S+)")
SECRETS = {
    "alice_nick": "alicexq", "bob_nick": "bobqzw", "room": "#secretroom42",
    "alice_password": "alices-old-password-7", "alice_new_password": "alices-new-password-8",
    "bob_password": "bobs-first-password-9",
    "line": "the typed line nobody may read", "dm": "a direct message kept private",
    "late_line": "said after the injection",
}


@pytest.fixture
def server(twistd_server):
    return twistd_server


@pytest.fixture
def path(server):
    """netem at 0 % loss, 2 % duplication, and the capture in front of it."""
    netem = NetemProcess(server.port, loss=0.0, delay_ms=2.0, dup=0.02, seed=13)
    relay = CaptureRelay(("127.0.0.1", netem.port))
    yield relay
    relay.stop()
    netem.stop()


def data_packets(relay: CaptureRelay, direction: str) -> list[tuple[tuple, bytes]]:
    found = []
    for record in relay.datagrams():
        if record.direction == direction and peek_route(record.data)[0] is PacketType.DATA:
            found.append((record.client, record.data))
    return found


def flipped(packet: bytes) -> bytes:
    """The header kept (type, connection id, packet number: a varint whose
    two high bits give its length), every sealed byte changed."""
    start = 1 + CONNECTION_ID_SIZE + (1 << (packet[1 + CONNECTION_ID_SIZE] >> 6))
    return packet[:start] + bytes(b ^ 0x5A for b in packet[start:])


def inject(datagrams: list[bytes], to: tuple[str, int]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
        attacker.bind(("127.0.0.1", 0))  # another port than any real peer's
        for datagram in datagrams:
            attacker.sendto(datagram, to)


def test_nothing_readable_on_the_wire_and_injected_datagrams_change_nothing(server, path, tmp_path):
    s = SECRETS
    (tmp_path / "alice.pw").write_text(s["alice_password"])
    alice = Client(s["alice_nick"], server, tmp_path, "--password-file", str(tmp_path / "alice.pw"),
                   port=path.port)
    alice.wait_for("pinned")  # first contact; bob shares alice's state dir, so the pin
    bob = Client(s["bob_nick"], server, tmp_path, port=path.port)
    for client in (alice, bob):
        client.wait_for("connected to")
        client.send(f"/join {s['room']}")
        client.wait_for(f"now talking in {s['room']}")
    # bob registered password-less: the server sent him a secret, which his
    # /register below sends back as the current credential.
    bob_state = next((tmp_path / "state").glob(f"{s['bob_nick']}@*.json")).read_text()
    bob_secret = re.search(r'"secret": "([^"]+)"', bob_state).group(1)
    alice.wait_for(f"{s['bob_nick']} joined")
    alice.send(s["line"], f"/msg {s['bob_nick']} {s['dm']}",
               f"/password {s['alice_password']} {s['alice_new_password']}")
    bob.send(f"/register {s['bob_password']}")
    bob.wait_for(f"<{s['alice_nick']}> {s['line']}")
    bob.wait_for(s["dm"])
    alice.wait_for("your password is changed")
    bob.wait_for("your nick is now protected")

    # The attacker sniffed connection ids: replay, flip, forge, from another port.
    up, down = data_packets(path, "up"), data_packets(path, "down")
    assert up and down
    before = {alice: alice.text(), bob: bob.text()}
    to_server = [packet for _, packet in up[-20:]]
    inject(to_server + [flipped(p) for p in to_server]
           + [p[:9] + os.urandom(len(p) - 9) for p in to_server], ("127.0.0.1", server.port))
    bob_address = next(client for client, _ in down if client in path.clients())
    to_client = [packet for _, packet in down[-20:]]
    inject(to_client + [flipped(p) for p in to_client], bob_address)
    time.sleep(1.0)
    for client in (alice, bob):
        assert client.text() == before[client], "an injected datagram showed up"
    alice.send(s["late_line"])
    bob.wait_for(f"<{s['alice_nick']}> {s['late_line']}")
    assert alice.finish() == 0, alice.text()
    assert bob.finish() == 0, bob.text()
    for output in (alice.text(), bob.text()):
        assert "disconnected" not in output and "reconnect" not in output
    assert bob.text().count(s["line"]) == 1 and bob.text().count(s["late_line"]) == 1
    assert bob.text().count(s["dm"]) == 1

    wire = [record.data for record in path.datagrams()]
    assert len(wire) > 50
    for name, text in [*s.items(), ("bob's secret", bob_secret)]:
        needle = text.encode()
        assert not any(needle in datagram for datagram in wire), f"{name} readable on the wire"
    assert "Traceback" not in server.log_text()


def test_a_restarted_server_with_another_key_is_refused_by_the_cli(server, tmp_path):
    old = KEY_LINE.search(server.log_text()).group(1)
    code, output = pipe("dana", server, tmp_path)
    assert code == 0 and f"new server key {old} for 127.0.0.1:{server.port}, pinned" in output
    server.stop()
    (tmp_path / "twistchat.key").unlink()  # the operator lost the key: a new one is made
    server.start()
    new = KEY_LINE.search(server.log_text()).group(1)
    assert new != old
    code, output = pipe("dana", server, tmp_path, "hello")
    assert code == 2, output
    assert old in output and new in output and "mismatch" in output
    assert "connected to" not in output
    code, output = pipe("dana", server, tmp_path, options=("--server-key", old))
    assert code == 2 and new in output                  # the old key, given: still refused
    code, output = pipe("dana", server, tmp_path, options=("--accept-new-server-key",))
    assert code == 0, output
    assert f"changed from {old} to {new}: accepted and pinned" in output
    code, output = pipe("dana", server, tmp_path)        # the new pin holds, silently
    assert code == 0 and "pinned" not in output
