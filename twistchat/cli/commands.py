"""
What a typed line means, as data: IRC-style ``/commands``, plain text for
the current room, ``//text`` to send a line that starts with ``/``. Pure
functions, no I/O, so every rule is a unit test.
"""

from __future__ import annotations

import re

import attrs


class CommandError(Exception):
    """The line is not a valid command; nothing is sent. Shown to the user."""


@attrs.frozen
class Command:
    """``action`` names a ChatClient method (or a local action such as
    ``help``); ``args`` are its positional arguments."""

    action: str
    args: tuple = ()


HELP = """\
/join #room [key]      join (or switch to) a room or private group id
/part [#room] [reason] leave a room (default: the current one)
/msg NICK text         direct message (stored if NICK is offline)
/send NICK|#room FILE  send a file (up to 8 MiB) to a nick or to everyone in a room
/me action             an action in the current room
/nick NEW              change your nick
/topic [text]          show or set the current room's topic
/who [#room]           members of a room
/rooms                 list rooms
/away [reason]         mark yourself away; /back to return
/create                create a private group
/kick NICK [reason]    (operator) remove NICK from the current room
/ban NICK [reason]     (operator) ban NICK; /unban NICK
/mode +i|-i|+k KEY|-k|+l N|-l  (operator) invite-only, join key, member cap
/invite NICK           (operator) invite NICK to the current room
/op NICK               (operator) hand on operator status
/register PASSWORD     protect your nick with a password
/password CURRENT NEW  change your nick's password
/ping                  round-trip time to the server
/status                server, key, nick, rooms, RTT, loss, up time, what is unanswered
/watch NICK            tell me when NICK comes online, goes away or offline
/unwatch NICK          stop watching NICK
/contacts              the nicks you watch and their state
/quit [reason]         leave
//text                 send text that starts with /"""

_NO_ROOM = "join a room first (/join #room)"


def _split(rest: str, count: int) -> list[str]:
    """The first ``count - 1`` words, then the rest of the line."""
    parts = rest.split(None, count - 1)
    return parts + [""] * (count - len(parts))


def _room(current: str | None) -> str:
    if current is None:
        raise CommandError(_NO_ROOM)
    return current


def parse(line: str, current_room: str | None) -> Command | None:
    """The command a line stands for; None for an empty line."""
    line = line.rstrip("\r\n")
    if not line.strip():
        return None
    if line.startswith("//"):
        return Command("say", (_room(current_room), line[1:]))
    if not line.startswith("/"):
        return Command("say", (_room(current_room), line))
    name, _, rest = line[1:].partition(" ")
    name, rest = name.lower(), rest.strip()
    parser = _PARSERS.get(name)
    if parser is None:
        raise CommandError(f"unknown command /{name} (try /help; //{name} sends it as text)")
    return parser(rest, current_room)


def _join(rest, current):
    room, key = _split(rest, 2)
    if not room:
        raise CommandError("usage: /join #room [key]")
    return Command("join", (room, key or None))


GROUP_ID = re.compile(r"^[A-NP-Z1-9]{8}$")
"""Private group ids: 8 characters of A-Z and 1-9, no O or 0 (PROTOCOL.md, Part 2)."""


def _is_room(word: str) -> bool:
    return word.startswith("#") or bool(GROUP_ID.match(word))


def _part(rest, current):
    if rest and _is_room(rest.split()[0]):
        room, reason = _split(rest, 2)
    else:
        room, reason = _room(current), rest
    return Command("part", (room, reason or None))


def _msg(rest, current):
    nick, text = _split(rest, 2)
    if not nick or not text:
        raise CommandError("usage: /msg NICK text")
    return Command("msg", (nick, text))


def _send(rest, current):
    target, path = _split(rest, 2)
    if not target or not path:
        raise CommandError("usage: /send NICK|#room FILE")
    return Command("send_file", (target, path))


def _me(rest, current):
    if not rest:
        raise CommandError("usage: /me action")
    return Command("say", (_room(current), f"/me {rest}"))


def _one(action: str, usage: str):
    def parse_one(rest, current):
        word, extra = _split(rest, 2)
        if not word or extra:
            raise CommandError(f"usage: {usage}")
        return Command(action, (word,))
    return parse_one


def _topic(rest, current):
    return Command("topic", (_room(current), rest or None))


def _who(rest, current):
    return Command("who", (rest.split()[0] if rest else _room(current),))


def _away(rest, current):
    return Command("away", (rest or "away",))


def _on_member(action: str, usage: str, with_reason: bool):
    def parse_member(rest, current):
        nick, reason = _split(rest, 2)
        if not nick or (reason and not with_reason):
            raise CommandError(f"usage: {usage}")
        args = (_room(current), nick) + ((reason or None,) if with_reason else ())
        return Command(action, args)
    return parse_member


def _mode(rest, current):
    flag, value = _split(rest, 2)
    room = _room(current)
    if flag == "+i":
        return Command("mode", (room, True, None))
    if flag == "-i":
        return Command("mode", (room, False, None))
    if flag == "+k" and value:
        return Command("mode", (room, None, value))
    if flag == "-k":
        return Command("mode", (room, None, ""))
    if flag == "+l" and value.isdigit() and int(value) > 0:
        return Command("mode", (room, None, None, int(value)))
    if flag == "-l":
        return Command("mode", (room, None, None, 0))
    raise CommandError("usage: /mode +i | -i | +k KEY | -k | +l N | -l")


def _password(rest, current):
    old, new, extra = _split(rest, 3)
    if not new or extra:
        raise CommandError("usage: /password CURRENT NEW")
    return Command("register", (new, old))


def _no_args(action: str):
    def parse_plain(rest, current):
        return Command(action, ())
    return parse_plain


def _quit(rest, current):
    return Command("quit", (rest or None,))


_PARSERS = {
    "join": _join, "j": _join,
    "part": _part, "leave": _part,
    "msg": _msg, "query": _msg,
    "me": _me,
    "send": _send,
    "nick": _one("set_nick", "/nick NEW"),
    "topic": _topic,
    "who": _who, "names": _who,
    "rooms": _no_args("list_rooms"), "list": _no_args("list_rooms"),
    "away": _away,
    "back": lambda rest, current: Command("away", (None,)),
    "create": _no_args("create"),
    "kick": _on_member("kick", "/kick NICK [reason]", True),
    "ban": _on_member("ban", "/ban NICK [reason]", True),
    "unban": _on_member("unban", "/unban NICK", False),
    "invite": _on_member("invite", "/invite NICK", False),
    "op": _on_member("op", "/op NICK", False),
    "mode": _mode,
    "register": _one("register", "/register PASSWORD"),
    "password": _password,
    "quit": _quit, "exit": _quit,
    "help": _no_args("help"),
    "ping": _no_args("ping"),
    "status": _no_args("status"),
    "watch": _one("watch", "/watch NICK"),
    "unwatch": _one("unwatch", "/unwatch NICK"),
    "contacts": _no_args("contacts"),
}


def typing_target(line: str, current_room: str | None) -> str | None:
    """Whom a half-typed line is for, for a typing notice: the current room
    for text (``/me`` and ``//`` too), NICK for ``/msg NICK text``; None for
    other commands, an empty line, or no room."""
    if not line.strip():
        return None
    if line.startswith("//") or not line.startswith("/") or line.startswith("/me "):
        return current_room
    name, _, rest = line[1:].partition(" ")
    if name.lower() in ("msg", "query"):
        nick, text = _split(rest.strip(), 2)
        return nick if nick and text else None
    return None
