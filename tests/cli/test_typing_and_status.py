"""Typing notices in the terminal (on the status line, expiring, never in
pipe mode), and ``/ping`` and ``/status`` as a person sees them."""

from __future__ import annotations

import pytest
from twisted.conch.insults.helper import TerminalBuffer
from twisted.internet.task import Clock

from client.harness import World

from twistchat.chat import protocol as p
from twistchat.cli.commands import parse, typing_target, Command
from twistchat.cli.frontend import Conversation
from twistchat.cli.main import _terminal_protocol
from twistchat.cli.typing_line import TypingBoard


def screen(buffer: TerminalBuffer) -> list[str]:
    return [line for line in bytes(buffer).decode().splitlines() if line.strip()]


def test_who_is_typing_expires_and_goes_when_their_line_arrives():
    board = TypingBoard(shown_for=6)
    board.noticed(p.TypingEvent(nick="bob", to="#tea"), now=0)
    board.noticed(p.TypingEvent(nick="carol", to="alice"), now=2)
    assert board.text(3) == "bob is typing in #tea; carol is typing to you"
    assert board.next_change() == 6
    assert board.text(6.5) == "carol is typing to you"
    board.spoke("Carol", None)
    assert board.text(6.5) == "" and board.next_change() is None


@pytest.mark.parametrize("line, target", [
    ("hel", "#tea"), ("/me wav", "#tea"), ("//slash", "#tea"), ("/msg bob hi", "bob"),
    ("/msg bob", None), ("/join #x", None), ("   ", None),
])
def test_a_half_typed_line_is_for_the_current_room_or_the_dm_peer(line, target):
    assert typing_target(line, "#tea") == target


def test_ping_and_status_are_commands():
    assert parse("/ping", None) == Command("ping")
    assert parse("/status", None) == Command("status")


class TypingClient:
    rooms: dict = {}
    nick = "alice"

    def __init__(self) -> None:
        self.typed: list[str] = []

    def typing(self, to: str) -> bool:
        self.typed.append(to)
        return True


def terminal(clock: Clock) -> tuple[Conversation, object, TerminalBuffer]:
    conversation = Conversation(lambda text: None, now=clock.seconds)
    conversation.client = TypingClient()
    conversation.current_room = "#tea"
    protocol = _terminal_protocol(conversation, clock)()
    buffer = TerminalBuffer()
    buffer.connectionMade()
    protocol.makeConnection(buffer)
    return conversation, protocol, buffer


def test_the_terminal_shows_typing_on_the_status_line_above_the_typed_line_until_it_expires():
    clock = Clock()
    conversation, protocol, buffer = terminal(clock)
    for key in b"mor":
        protocol.keystrokeReceived(bytes([key]), None)
    assert conversation.client.typed == ["#tea", "#tea", "#tea"]  # the client paces them
    conversation.typing(p.TypingEvent(nick="bob", to="#tea"))
    conversation.write("12:00 [#tea] <carol> hello")
    assert screen(buffer) == ["12:00 [#tea] <carol> hello", "[bob is typing in #tea]", "> mor"]
    clock.advance(p.TYPING_SHOWN_FOR + 0.1)
    assert screen(buffer) == ["12:00 [#tea] <carol> hello", "> mor"]
    conversation.typing(p.TypingEvent(nick="bob", to="#tea"))
    conversation.message(p.MessageEvent(room="#tea", nick="bob", text="done", msg_id=1, ts=0),
                         replay=False)
    assert "[bob is typing in #tea]" not in screen(buffer)


def test_pipe_mode_neither_shows_nor_sends_typing():
    lines: list[str] = []
    conversation = Conversation(lines.append)
    conversation.client = TypingClient()
    conversation.current_room = "#tea"
    conversation.typing(p.TypingEvent(nick="bob", to="#tea"))
    conversation.keystroke("hello")
    assert lines == [] and conversation.client.typed == []


def without_time(lines: list[str]) -> list[str]:
    return [line.split(" ", 1)[1] for text in lines for line in text.splitlines()]


def test_ping_and_status_as_a_person_sees_them():
    world = World(rtt=0.03)
    lines: list[str] = []
    alice = Conversation(lines.append, now=world.clock.seconds)
    alice.client, _ = world.client("alice")
    alice.client.observer = alice
    world.wait(alice.client.connect())
    alice.line("/join #tea")
    alice.line("/ping")
    world.run(1)
    pong = [line for line in without_time(lines) if line.startswith("-!- pong")]
    assert len(pong) == 1 and pong[0].endswith("ms round trip to the server")
    lines.clear()
    alice.line("/status")
    shown = without_time(lines)
    assert shown[0].startswith("-!- server 127.0.0.10:9999, key SHA256:")
    assert shown[1].startswith("-!- you are alice, ready for 0m0")
    assert shown[2] == "-!- rooms: #tea"
    assert shown[3].startswith("-!- rtt ") and "last /ping" in shown[3] and "loss 0.0% out" in shown[3]
    assert shown[4] == ("-!- unacknowledged: 0 messages (0 bytes) on the transport; "
                        "0 requests unanswered, 0 held for the next login")
