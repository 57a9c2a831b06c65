"""What typed lines mean."""

from __future__ import annotations

import pytest

from twistchat.cli.commands import Command, CommandError, parse


@pytest.mark.parametrize("line, expected", [
    ("hello", Command("say", ("#tea", "hello"))),
    ("//etc/passwd is a path", Command("say", ("#tea", "/etc/passwd is a path"))),
    ("/me waves", Command("say", ("#tea", "/me waves"))),
    ("/join #coffee", Command("join", ("#coffee", None))),
    ("/JOIN #coffee sesame", Command("join", ("#coffee", "sesame"))),
    ("/join ABCD1234", Command("join", ("ABCD1234", None))),
    ("/part", Command("part", ("#tea", None))),
    ("/part #coffee bye all", Command("part", ("#coffee", "bye all"))),
    ("/part ABCD1234", Command("part", ("ABCD1234", None))),
    ("/part going home", Command("part", ("#tea", "going home"))),
    ("/msg bob hi there", Command("msg", ("bob", "hi there"))),
    ("/nick robert", Command("set_nick", ("robert",))),
    ("/topic", Command("topic", ("#tea", None))),
    ("/topic all about tea", Command("topic", ("#tea", "all about tea"))),
    ("/who", Command("who", ("#tea",))),
    ("/who #coffee", Command("who", ("#coffee",))),
    ("/rooms", Command("list_rooms", ())),
    ("/away lunch", Command("away", ("lunch",))),
    ("/away", Command("away", ("away",))),
    ("/back", Command("away", (None,))),
    ("/create", Command("create", ())),
    ("/kick bob spam", Command("kick", ("#tea", "bob", "spam"))),
    ("/ban bob", Command("ban", ("#tea", "bob", None))),
    ("/unban bob", Command("unban", ("#tea", "bob"))),
    ("/invite carol", Command("invite", ("#tea", "carol"))),
    ("/op carol", Command("op", ("#tea", "carol"))),
    ("/mode +i", Command("mode", ("#tea", True, None))),
    ("/mode -i", Command("mode", ("#tea", False, None))),
    ("/mode +k sesame", Command("mode", ("#tea", None, "sesame"))),
    ("/mode -k", Command("mode", ("#tea", None, ""))),
    ("/mode +l 5", Command("mode", ("#tea", None, None, 5))),
    ("/mode -l", Command("mode", ("#tea", None, None, 0))),
    ("/register hunter22hunter", Command("register", ("hunter22hunter",))),
    ("/password old-one new-one", Command("register", ("new-one", "old-one"))),
    ("/quit", Command("quit", (None,))),
    ("/quit off to bed", Command("quit", ("off to bed",))),
    ("/help", Command("help", ())),
])
def test_lines_become_commands(line, expected):
    assert parse(line, "#tea") == expected


@pytest.mark.parametrize("line", ["", "   ", "\n"])
def test_empty_lines_are_nothing(line):
    assert parse(line, "#tea") is None


@pytest.mark.parametrize("line, message", [
    ("/frobnicate", "unknown command /frobnicate"),
    ("/msg bob", "usage: /msg"),
    ("/join", "usage: /join"),
    ("/nick", "usage: /nick"),
    ("/nick two words", "usage: /nick"),
    ("/mode +x", "usage: /mode"),
    ("/mode +l", "usage: /mode"),
    ("/mode +l many", "usage: /mode"),
    ("/mode +l 0", "usage: /mode"),
    ("/kick", "usage: /kick"),
    ("/password onlyone", "usage: /password CURRENT NEW"),
    ("/password a b c", "usage: /password CURRENT NEW"),
])
def test_bad_commands_are_refused_with_a_short_error(line, message):
    with pytest.raises(CommandError, match=message):
        parse(line, "#tea")


@pytest.mark.parametrize("line", ["hello", "/me waves", "/topic", "/kick bob", "/part"])
def test_room_commands_need_a_current_room(line):
    with pytest.raises(CommandError, match="join a room first"):
        parse(line, None)
