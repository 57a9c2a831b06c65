"""
The pipe front end's bookkeeping: a command the server never answers is
reported by name when ``--wait`` runs out, and counts against the exit status.
"""

from twisted.internet import defer, task

from twistchat.cli.frontend import Conversation


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
