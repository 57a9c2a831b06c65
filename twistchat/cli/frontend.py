"""
The conversation between a person (or a script) and a ChatClient: typed
lines become commands, replies and events become lines of output. The
terminal and the pipe front ends (``main.py``) differ only in how lines
come in and go out.
"""

from __future__ import annotations

import time
from typing import Callable

from twisted.internet import defer

from twistchat.chat import protocol as p
from twistchat.chat.protocol import fold_nick, fold_room
from twistchat.cli import render
from twistchat.cli.commands import HELP, Command, CommandError, parse, typing_target
from twistchat.cli.transfers import TransferLines
from twistchat.cli.typing_line import TypingBoard
from twistchat.client import ChatClient, ChatError, ChatObserver, Disconnected, TransferError
from twistchat.client.known_servers import server_name


class Conversation(TransferLines, ChatObserver):
    """Runs commands on ``client`` and writes one line per thing to show."""

    def __init__(self, write: Callable[[str], None], now: Callable[[], float] = time.time) -> None:
        self.write = write
        self.now = now
        self.client: ChatClient | None = None
        self.current_room: str | None = None
        self.outstanding: set[defer.Deferred] = set()
        self.failures = 0
        self.unanswered = 0
        """Commands given up on (pipe mode's ``--wait`` ran out)."""
        self.quitting = False
        self.quit_requested: defer.Deferred = defer.Deferred()
        self._room_before_join: dict[str, str | None] = {}
        self.typists = TypingBoard()
        self.status_changed: Callable[[], None] | None = None
        """Set by the terminal front end, which has a status line; without
        one (pipe mode) typing notices are neither shown nor sent."""
        self._current_restored = False
        """The current room is one the server put us back in (not joined by hand)."""
        self._early: list[str] | None = None
        """What the login brought (rooms put back, missed lines, stored DMs,
        contacts), held to follow the "connected" line; None: shown at once."""

    def hold_until_connected(self) -> None:
        self._early = []

    def connected(self) -> None:
        """The "connected" line is out: what came with the login follows it."""
        early, self._early = self._early, None
        for text in early or ():
            self.write(text)

    def _show(self, text: str) -> None:
        if self._early is not None:
            self._early.append(text)
        else:
            self.write(text)

    # -- input ------------------------------------------------------------------

    def line(self, text: str) -> None:
        try:
            command = parse(text, self.current_room)
        except CommandError as e:
            self.failures += 1
            self.write(render.error("USAGE", str(e), self.now()))
            return
        if command is not None:
            self.run(command)

    def run(self, command: Command) -> None:
        action, args = command.action, command.args
        if action == "help":
            for help_line in HELP.splitlines():
                self.write(help_line)
            return
        if action == "status":
            for status_line in render.status(self.client.status(), self.now()):
                self.write(status_line)
            return
        if action == "join" and fold_room(args[0]) in self.client.rooms:
            self.current_room = self.client.rooms[fold_room(args[0])]
            self.write(render.notice(f"now talking in {self.current_room}", self.now()))
            return
        if action == "quit":
            self.quitting = True
            done = self.client.quit(*args)
            done.addBoth(lambda _: self.quit_requested.callback(None)
                         if not self.quit_requested.called else None)
            return
        if action == "register" and len(args) == 1 and self.client.password is not None:
            self.failures += 1
            self.write(render.error("USAGE", "your nick has a password: change it with "
                                    "/password CURRENT NEW", self.now()))
            return
        if action == "join":
            # The last joined room is current from now on: lines that follow
            # (a script types faster than the server answers) go there; the
            # server handles one session's requests in order.
            previous, self.current_room = self.current_room, args[0]
            self._current_restored = False
            self._room_before_join[args[0]] = previous
        if action == "send_file":  # with a progress line: cli/transfers.py
            result = self.send_file(*args)
        else:
            result = getattr(self.client, action)(*args)
        self.outstanding.add(result)
        result.addCallbacks(self._succeeded, self._failed,
                            callbackArgs=(action, args), errbackArgs=(action, args))
        result.addBoth(self._settled, result)

    def _settled(self, _, result: defer.Deferred) -> None:
        self.outstanding.discard(result)

    def _succeeded(self, reply: dict, action: str, args: tuple) -> None:
        if action in ("join", "create"):
            self.current_room = reply["room"]
        elif action == "part" and self.current_room and \
                fold_room(self.current_room) == fold_room(reply.get("room", "")):
            rooms = list(self.client.rooms.values())
            self.current_room = rooms[-1] if rooms else None
        if action == "say":
            self.write(render.own_message(reply["room"], self.client.nick, args[1], reply["ts"]))
        elif action == "msg":
            self.write(render.own_direct(reply.get("to", args[0]), args[1], reply))
        elif action == "send_file":
            self.write(self.sent_note(args, reply))
        for out in render.reply(action, args, reply, self.now()):
            self.write(out)

    def _failed(self, failure, action: str, args: tuple = ()) -> None:
        self.failures += 1
        if action == "join" and self.current_room == args[0]:
            self.current_room = self._room_before_join.pop(args[0], None)
        if failure.check(ChatError):
            error = failure.value
            self.write(render.error(error.code, error.message, self.now()))
        elif failure.check(TransferError):
            error = failure.value
            self.write(render.error(error.code, f"{action} {' '.join(args)}: {error.message}", self.now()))
        elif failure.check(Disconnected):
            self.write(render.error("NOT_SENT", f"{action}: {failure.getErrorMessage()}", self.now()))
        elif failure.check(defer.CancelledError):
            self.unanswered += 1
            self.write(render.error("NO_ANSWER", f"{action}: the server did not answer in time",
                                    self.now()))
        else:
            self.write(render.error("INTERNAL", failure.getErrorMessage(), self.now()))

    def settled(self) -> defer.Deferred:
        """Fires once every command sent so far has its answer."""
        return defer.DeferredList(list(self.outstanding), consumeErrors=True)

    # -- ChatObserver --------------------------------------------------------------

    def message(self, event: p.MessageEvent, replay: bool) -> None:
        self.typists.spoke(event.nick, event.room)  # before the line: drawn once, without it
        self._show(render.message(event, replay))

    def direct(self, event: p.DmEvent) -> None:
        self.typists.spoke(event.nick, None)
        self._show(render.direct(event))

    # -- typing notices: on the terminal's status line only

    def typing(self, event: p.TypingEvent) -> None:
        if self.status_changed is not None:
            self.typists.noticed(event, self.now())
            self.status_changed()

    def status_line(self) -> str:
        """Who is typing, and every transfer under way (cli/transfers.py)."""
        return " · ".join(part for part in (self.typists.text(self.now()), self.progress_text())
                          if part)

    def keystroke(self, line_so_far: str) -> None:
        """The person typed a character: tell the room or nick it is for."""
        target = typing_target(line_so_far, self.current_room)
        if target is not None and self.client is not None and self.status_changed is not None:
            self.client.typing(target)

    def delivered(self, event: p.DeliveredEvent) -> None:
        self._show(render.delivered(event, self.now()))

    def data(self, event: p.DataEvent) -> None:
        where = f" to {event.room}" if event.room else ""
        self._show(render.notice(f"{event.nick} sent {len(event.payload)} bytes of data{where}",
                                 self.now()))

    def presence(self, event: p.Event) -> None:
        if isinstance(event, p.JoinEvent) and self.client is not None and \
                fold_nick(event.nick) == fold_nick(self.client.nick):
            return  # our own join: the reply said "now talking in" already
        self._show(render.presence(event, self.now()))

    def contact(self, event: p.ContactEvent) -> None:
        self._show(render.contact(event, self.now()))

    def rejoined(self, event: p.RejoinedEvent) -> None:
        """Back in a room we never parted: the last one put back (the last
        joined) is current, unless one joined by hand still is ours."""
        for out in render.rejoined(event, self.now()):
            self._show(out)
        if (self.current_room is None or self._current_restored
                or fold_room(self.current_room) not in self.client.rooms):
            self.current_room, self._current_restored = event.room, True

    def error(self, error: ChatError) -> None:
        self.write(render.error(error.code, error.message, self.now()))

    def server_going_down(self, message: str) -> None:
        self.write(render.notice(f"server going down: {message}", self.now()))

    def disconnected(self, reason: str, retry_in: float | None) -> None:
        if self.quitting:
            return
        if retry_in is None:
            self.write(render.notice(f"disconnected: {reason}", self.now()))
            if not self.quit_requested.called:
                self.quit_requested.callback(None)
        else:
            self.write(render.notice(f"disconnected: {reason}; {self._retrying(retry_in)}",
                                     self.now()))

    def _other_servers(self) -> bool:
        """The client has a list of servers, so say which one it is on."""
        return self.client is not None and len(self.client.servers) > 1

    def _retrying(self, retry_in: float) -> str:
        if not self._other_servers():
            return f"reconnecting in {retry_in:.0f} s"
        server = server_name(self.client.address)
        return f"trying {server} now" if not retry_in else f"reconnecting to {server} in {retry_in:.0f} s"

    def server_key_pinned(self, server: str, fingerprint: str, replaced: str | None) -> None:
        if replaced is None:
            self.write(render.notice(f"new server key {fingerprint} for {server}, pinned", self.now()))
        else:
            self.write(render.notice(f"server key for {server} changed from {replaced} to "
                                     f"{fingerprint}: accepted and pinned", self.now()))

    def reconnected(self) -> None:
        rooms = ", ".join(self.client.rooms.values()) or "no rooms"
        where = f" to {server_name(self.client.address)}" if self._other_servers() else ""
        self.write(render.notice(f"reconnected{where} ({rooms})", self.now()))
