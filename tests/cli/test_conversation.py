"""
The pipe front end's bookkeeping: a command the server never answers is
reported by name when ``--wait`` runs out, and counts against the exit status.
"""

from twisted.internet import defer, task

from client.harness import World

from twistchat.cli import render
from twistchat.cli.frontend import Conversation
from twistchat.client import ClientState
from twistchat.endpoint.keys import key_fingerprint


class SilentClient:
    """A ChatClient stand-in whose server never answers."""

    rooms: dict = {}
    nick = "alice"

    def say(self, room, text):
        return defer.Deferred()


def test_unanswered_commands_are_named_when_the_wait_runs_out():
    clock = task.Clock()
    lines = []
    conversation = Conversation(lines.append, now=lambda: 0.0)
    conversation.client = SilentClient()
    conversation.current_room = "#lobby"
    conversation.line("hello")
    waiting = conversation.settled()
    waiting.addTimeout(5, clock)
    clock.advance(4.9)
    assert conversation.unanswered == 0 and lines == []
    clock.advance(0.1)
    assert waiting.called
    assert conversation.failures == 1
    assert conversation.unanswered == 1
    assert not conversation.outstanding
    assert lines[-1].endswith("NO_ANSWER: say: the server did not answer in time")



def without_time(lines: list[str]) -> list[str]:
    return [line.split(" ", 1)[1] for text in lines for line in text.splitlines()]


def test_a_dm_is_rendered_as_the_server_stored_it_then_delivered_once_the_recipient_has_it():
    world = World()
    lines: list[str] = []
    alice = Conversation(lines.append, now=world.clock.seconds)
    alice.client, _ = world.client("alice")
    alice.client.observer = alice
    bob, _ = world.client("bob")
    carol, _ = world.client("carol")
    for client in (alice.client, bob, carol):
        world.wait(client.connect())
    # First contact: the server's key is pinned, and the user is told so.
    assert without_time(lines) == [
        f"-!- new server key {key_fingerprint(world.server_key)} for 127.0.0.10:9999, pinned"]
    lines.clear()
    carol_secret = carol.state.secret
    world.wait(carol.quit())
    alice.line("/msg bob are you there?")
    world.wait(alice.settled())
    world.run(2)
    sent_at = render.clock_text(now=world.clock.seconds())
    assert without_time(lines) == [
        "[dm to bob] are you there?",                              # online: no "offline" line
        f"-!- bob received your message of {sent_at} (delivered)"]
    alice.line("/msg carol lunch at one?")
    world.wait(alice.settled())
    world.run(2)
    assert without_time(lines)[2:] == [
        "[dm to carol] lunch at one?", "-!- carol is offline: stored for offline delivery"]
    back, _ = world.client("carol", state=ClientState(None, secret=carol_secret))
    world.wait(back.connect())
    world.run(2)
    assert without_time(lines)[4:] == [
        f"-!- carol received your message of {sent_at} (delivered)"]
