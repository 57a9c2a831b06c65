"""``/send`` and received files as ``twistchat-client`` shows them: the
command, the lines at start and end (with the rate), the progress line in a
terminal, and the download folder, on the simulator."""

from __future__ import annotations

import pytest

from client.harness import World

from twistchat.cli.commands import Command, CommandError, parse
from twistchat.cli.frontend import Conversation
from twistchat.cli.transfers import rate_text, size_text


def test_send_parses_a_target_and_a_file_name_with_spaces():
    assert parse("/send bob my holiday.jpg", None) == Command("send_file", ("bob", "my holiday.jpg"))
    assert parse("/send #tea ~/cat.png", None) == Command("send_file", ("#tea", "~/cat.png"))
    with pytest.raises(CommandError, match="usage: /send"):
        parse("/send bob", None)


def test_sizes_and_rates_read_as_people_read_them():
    assert size_text(512) == "512 bytes"
    assert size_text(8 * 1024 * 1024) == "8.0 MiB"
    assert rate_text(1_000_000, 8.0) == "976.6 KiB in 8.0 s (1.00 Mbit/s)"


def without_time(lines: list[str]) -> list[str]:
    return [line.split(" ", 1)[1] for text in lines for line in text.splitlines()]


def test_a_sent_file_is_announced_at_start_and_end_and_saved_on_the_other_side(tmp_path):
    world = World()
    sender_lines: list[str] = []
    receiver_lines: list[str] = []
    statuses: list[str] = []
    alice = Conversation(sender_lines.append, now=world.clock.seconds)
    bob = Conversation(receiver_lines.append, now=world.clock.seconds)
    alice.status_changed = lambda: statuses.append(alice.status_line())  # a terminal
    alice.client, _ = world.client("alice")
    bob.client, _ = world.client("bob", downloads=str(tmp_path / "downloads"))
    for conversation in (alice, bob):
        conversation.client.observer = conversation
        world.wait(conversation.client.connect())
    source = tmp_path / "notes.txt"
    source.write_bytes(b"n" * 100_000)
    alice.line(f"/send bob {source}")
    world.wait(alice.settled(), limit=60)
    world.run(1)
    said = without_time(sender_lines)
    assert any(line == f"-!- sending {source} to bob" for line in said)
    assert any(line.startswith(f"-!- sent {source} to bob: 97.7 KiB in ") and "Mbit/s" in line
               for line in said), said
    assert statuses and statuses[-1] == "" and any("↑ notes.txt" in s for s in statuses)
    heard = without_time(receiver_lines)
    assert "-!- alice is sending you notes.txt (97.7 KiB)" in heard
    saved = tmp_path / "downloads" / "notes.txt"
    assert any(line.startswith("-!- received notes.txt from alice: 97.7 KiB in ")
               and line.endswith(f"sha256 checked; saved as {saved}") for line in heard), heard
    assert saved.read_bytes() == source.read_bytes()
    assert alice.failures == 0


def test_a_send_that_fails_is_an_error_line_and_counts_as_a_failure(tmp_path):
    world = World()
    lines: list[str] = []
    alice = Conversation(lines.append, now=world.clock.seconds)
    alice.client, _ = world.client("alice")
    alice.client.observer = alice
    world.wait(alice.client.connect())
    alice.line(f"/send nobody {tmp_path / 'missing.txt'}")
    world.wait(alice.settled())
    assert alice.failures == 1
    assert any("!!! FILE_ERROR: send_file nobody" in line for line in lines), lines
