"""Issue 14 with real processes: ``twistd twistchat`` and ``twistchat-client``
through pipes.  A contact logging in and out is announced to its watcher;
a client that quit, and one killed with SIGKILL, while its room talked
comes back into the room with every missed line once and in order, then
live lines."""

from __future__ import annotations

import re
import time

import pytest

from .test_cli_e2e import DEADLINE, Client, pipe

pytestmark = pytest.mark.e2e


def wait_count(client: Client, needle: str, count: int) -> None:
    deadline = time.monotonic() + DEADLINE
    while client.text().count(needle) < count:
        assert time.monotonic() < deadline, f"not {count} of {needle!r} in:\n{client.text()}"
        time.sleep(0.05)


def room_lines(output: str, sender: str) -> list[str]:
    marker = f"[#tea] <{sender}> "
    return [line.split(marker, 1)[1] for line in output.splitlines() if marker in line]


def test_a_watcher_is_told_and_a_restarted_client_gets_every_missed_line_once(twistd_server, tmp_path):
    server = twistd_server
    assert pipe("bob", server, tmp_path)[0] == 0  # registers bob
    alice = Client("alice", server, tmp_path)
    alice.send("/watch bob", "/join #tea")
    alice.wait_for("watching bob: bob is offline (last seen")
    alice.wait_for("now talking in #tea")

    bob = Client("bob", server, tmp_path)
    alice.wait_for("-!- bob is online")
    bob.send("/join #tea")
    alice.wait_for("bob joined #tea")
    alice.send("hello bob")
    bob.wait_for("<alice> hello bob")
    assert bob.finish() == 0, bob.text()  # /quit at end of input: the membership stays
    alice.wait_for("-!- bob is offline (last seen")

    alice.send(*[f"while bob quit {n}" for n in range(10)])
    alice.wait_for("<alice> while bob quit 9")
    bob = Client("bob", server, tmp_path)
    alice.wait_for("bob joined #tea")
    bob.wait_for("10 messages you missed in #tea follow")
    bob.wait_for("while bob quit 9 (history)")
    wait_count(alice, "-!- bob is online", 2)
    assert room_lines(bob.text(), "alice") == [f"while bob quit {n} (history)" for n in range(10)]

    bob.process.kill()  # SIGKILL: no quit, no state saved; the server still thinks it is there
    bob.process.wait(timeout=DEADLINE)
    alice.send(*[f"while bob was dead {n}" for n in range(10)])
    alice.wait_for("<alice> while bob was dead 9")
    bob = Client("bob", server, tmp_path)  # the newest login replaces the dead session
    bob.wait_for("while bob was dead 9 (history)")
    alice.send("live again")
    bob.wait_for("<alice> live again")
    seen = room_lines(bob.text(), "alice")
    assert seen == [f"while bob was dead {n} (history)" for n in range(10)] + ["live again"]
    assert re.search(r"back in #tea \(members: .*alice", bob.text())
    text = bob.text()  # what the login brought follows the line that says it connected
    assert text.index("connected to") < text.index("back in #tea") < text.index("dead 0 (history)")
    assert bob.finish() == 0, bob.text()
    assert alice.finish() == 0, alice.text()
    assert "Traceback" not in server.log_text()
