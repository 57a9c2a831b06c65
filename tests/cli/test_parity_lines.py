"""What a person sees, on the simulator: their own join is not echoed back
as a presence line, and the disconnect notice is the one docs/client.md
shows."""

from __future__ import annotations

from pathlib import Path

from client.harness import World

from twistchat.cli.frontend import Conversation

CLIENT_DOC = (Path(__file__).parents[2] / "docs" / "client.md").read_text()


def without_time(lines: list[str]) -> list[str]:
    return [line.split(" ", 1)[1] for text in lines for line in text.splitlines()]


def _person(world: World, nick: str) -> tuple[Conversation, list[str]]:
    lines: list[str] = []
    conversation = Conversation(lines.append, now=world.clock.seconds)
    conversation.client, _ = world.client(nick)
    conversation.client.observer = conversation
    world.wait(conversation.client.connect())
    return conversation, lines


def test_your_own_join_is_shown_once_as_now_talking_in_and_others_see_it():
    world = World()
    alice, alice_lines = _person(world, "alice")
    bob, bob_lines = _person(world, "bob")
    alice.line("/join #tea")
    world.run(1)
    bob.line("/join #tea")
    world.run(1)
    seen = without_time(alice_lines)
    assert "-!- now talking in #tea" in seen
    assert "-!- alice joined #tea" not in seen
    assert "-!- bob joined #tea" in seen
    assert "-!- bob joined #tea" not in without_time(bob_lines)


def test_the_notice_when_the_server_stops_answering_is_the_one_the_docs_show():
    world = World()
    alice, lines = _person(world, "alice")
    alice.line("/join #tea")
    world.run(1)
    world.kill_server()
    world.run(40)
    notices = [line for line in without_time(lines) if line.startswith("-!- disconnected")]
    assert notices, lines
    first = notices[0]
    assert first.startswith("-!- disconnected: the server stopped answering")
    assert first.rsplit(" in ", 1)[0] in CLIENT_DOC
