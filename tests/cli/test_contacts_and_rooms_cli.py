"""What a user types and sees for contacts and kept rooms (issue 14): the
commands, the lines for each contact state and for a room the login put
the user back in, and the conversation making that room current."""

from __future__ import annotations

import time

import pytest

from client.harness import World

from twistchat.chat import protocol as p
from twistchat.cli import render
from twistchat.cli.commands import Command, CommandError, parse
from twistchat.cli.frontend import Conversation

TS = 1_700_000_000_000
HHMM = time.strftime("%H:%M", time.localtime(TS / 1000))
NOW = TS / 1000


@pytest.mark.parametrize("line, expected", [
    ("/watch bob", Command("watch", ("bob",))),
    ("/unwatch bob", Command("unwatch", ("bob",))),
    ("/contacts", Command("contacts", ())),
])
def test_contact_commands(line, expected):
    assert parse(line, None) == expected


def test_watch_needs_one_nick():
    with pytest.raises(CommandError, match="usage: /watch NICK"):
        parse("/watch", None)


def test_each_contact_state_in_words():
    online = p.ContactEvent(nick="bob", state="online")
    away = p.ContactEvent(nick="bob", state="away", away="lunch")
    offline = p.ContactEvent(nick="bob", state="offline", last_seen=TS)
    older = p.ContactEvent(nick="bob", state="offline", last_seen=TS - 3 * 86_400_000)
    assert render.contact(online, NOW) == f"{HHMM} -!- bob is online"
    assert render.contact(away, NOW) == f"{HHMM} -!- bob is away (lunch)"
    assert render.contact(offline, NOW) == f"{HHMM} -!- bob is offline (last seen {HHMM})"
    day = time.strftime("%Y-%m-%d", time.localtime(TS / 1000 - 3 * 86400))
    assert render.contact(older, NOW) == f"{HHMM} -!- bob is offline (last seen {day} {HHMM})"
    listing = render.reply("contacts", (), {"contacts": [{"nick": "bob", "state": "online"}]}, NOW)
    assert listing == [f"{HHMM} -!- bob is online"]
    assert render.reply("contacts", (), {"contacts": []}, NOW) == [
        f"{HHMM} -!- you watch nobody (/watch NICK)"]
    watching = render.reply("watch", ("bob",), {"nick": "bob", "state": "online"}, NOW)
    assert watching == [f"{HHMM} -!- watching bob: bob is online"]


def test_a_room_the_login_put_us_back_in():
    event = p.RejoinedEvent(room="#tea", member_count=2, members=[{"nick": "alice", "op": True},
                                                                  {"nick": "bob"}],
                            missed=3, not_kept=12)
    assert render.rejoined(event, NOW) == [
        f"{HHMM} -!- back in #tea (members: @alice, bob)",
        f"{HHMM} -!- 12 earlier messages in #tea not kept",
        f"{HHMM} -!- 3 messages you missed in #tea follow",
    ]


def test_after_a_restart_the_last_joined_room_is_current_and_missed_lines_show_as_history():
    world = World()
    alice, _ = world.client("alice")
    bob, _ = world.client("bob")
    for client in (alice, bob):
        world.wait(client.connect())
    for room in ("#cake", "#tea"):
        world.wait(alice.join(room))
        world.wait(bob.join(room))
    bob.stop()
    world.wait(alice.say("#tea", "where are you?"))
    lines: list[str] = []
    conversation = Conversation(lines.append, now=world.clock.seconds)
    conversation.client, _ = world.client("bob", state=bob.state)
    conversation.client.observer = conversation
    world.wait(conversation.client.connect())
    assert conversation.current_room == "#tea"
    shown = [line.split(" ", 1)[1] for line in lines]
    assert shown[-2:] == ["-!- 1 message you missed in #tea follows",
                          "[#tea] <alice> where are you? (history)"]
    conversation.line("here")
    world.run(1)
    assert lines[-1].endswith("[#tea] <bob> here")
