"""Pipe mode's exit status across a server kill: 0 means every line was
posted exactly once, even when the server died after committing a line and
before answering it (the line is resent with its key and answered)."""

from __future__ import annotations

from client.harness import World
from client.test_resend import AFTER_ACK, said

from twistchat.cli.frontend import Conversation
from twistchat.cli.main import EXIT_FAILED, EXIT_OK, pipe_exit_status

LINES = [f"deploy step {n}" for n in range(12)]


def scripted_conversation(world: World, nick: str = "deploybot") -> tuple[Conversation, list[str]]:
    output: list[str] = []
    conversation = Conversation(output.append, now=world.clock.seconds)
    client, _ = world.client(nick)
    client.observer = conversation
    conversation.client = client
    world.wait(client.connect())
    return conversation, output


def test_exit_0_means_every_line_was_posted_once_across_a_server_kill() -> None:
    world = World()
    conversation, output = scripted_conversation(world)
    conversation.line("/join #ops")
    world.wait(conversation.settled())
    world.kill_server_before(said, after=AFTER_ACK)   # dies with an answer owed
    for text in LINES:
        conversation.line(text)
    world.run(5)
    assert not world.server_alive
    world.start_server()
    world.wait(conversation.settled(), limit=90)
    assert pipe_exit_status(conversation) == EXIT_OK, output
    history = [entry.text for entry in world.store.history["#ops"]]
    assert history == LINES                            # each once, in order
    assert sum(line.endswith(tuple(LINES)) for line in output) == len(LINES)


def test_a_refused_line_still_means_exit_1() -> None:
    world = World()
    conversation, output = scripted_conversation(world)
    conversation.line("/join #ops")
    conversation.line("/msg nobody-here hello")
    world.wait(conversation.settled())
    assert pipe_exit_status(conversation) == EXIT_FAILED
    assert any("NO_SUCH_NICK" in line for line in output)
