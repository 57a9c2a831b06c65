"""The terminal front end in a real pseudo-terminal: line editing, history,
and incoming lines drawn above the line being typed, never through it."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time

import pytest

from support.processes import BIN

pytestmark = pytest.mark.e2e
DEADLINE = 20


class Terminal:
    def __init__(self, argv: list[str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become the client
            os.execv(argv[0], argv)
        self.screen = b""

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def wait_for(self, needle: bytes) -> bytes:
        """Read until ``needle`` appears; return everything read after it."""
        deadline = time.monotonic() + DEADLINE
        while needle not in self.screen:
            assert time.monotonic() < deadline, f"no {needle!r} in {self.screen!r}"
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    self.screen += os.read(self.fd, 4096)
                except OSError:
                    break
        return self.screen.split(needle, 1)[1]

    def settle(self, seconds: float = 0.5) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                try:
                    self.screen += os.read(self.fd, 4096)
                except OSError:
                    return

    def exit_status(self) -> int:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            self.settle(0.1)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, 9)
        raise AssertionError("the client did not exit")


def test_typed_line_survives_incoming_messages_and_history_recalls_it(twistd_server, tmp_path):
    client = [str(BIN / "twistchat-client"), "--port", str(twistd_server.port),
              "--state-dir", str(tmp_path)]
    zed = Terminal(client[:1] + ["zed"] + client[1:])
    zed.wait_for(b"type /help")
    zed.wait_for(b"> ")
    zed.type(b"/join #tea\r")
    zed.wait_for(b"members: @zed")                # your own join: no "zed joined #tea"
    zed.type(b"hel")                              # half a line typed ...
    zed.settle()
    subprocess.run(client[:1] + ["yan"] + client[1:], input="/join #tea\nincoming line\n",
                   text=True, capture_output=True, timeout=DEADLINE, check=True)
    after = zed.wait_for(b"<yan> incoming line")
    zed.settle()
    after = zed.screen.split(b"<yan> incoming line", 1)[1]
    # ... the incoming line is drawn on its own line, then the prompt and the
    # half-typed text come back, ready to go on.
    assert after.startswith(b"\r")
    assert b"> hel" in after
    zed.type(b"lo\r")
    zed.wait_for(b"[#tea] <zed> hello")
    zed.type(b"\x1b[A")                           # up arrow: the last line again
    zed.settle()
    assert zed.screen.rstrip().endswith(b"hello")
    zed.type(b"\x15")                             # Ctrl-U clears it
    zed.type(b"\x04")                             # Ctrl-D on an empty line quits
    assert zed.exit_status() == 0


def test_typing_in_one_terminal_shows_on_the_others_status_line(twistd_server, tmp_path):
    client = [str(BIN / "twistchat-client"), "--port", str(twistd_server.port),
              "--state-dir", str(tmp_path)]
    zed = Terminal(client[:1] + ["zed"] + client[1:])
    wen = Terminal(client[:1] + ["wen"] + client[1:])
    for person in (zed, wen):                     # zed first, then wen
        person.wait_for(b"type /help")
        person.wait_for(b"> ")
        person.type(b"/join #tea\r")
        person.wait_for(b"members: ")
    zed.wait_for(b"wen joined #tea")
    zed.type(b"oolong")                           # typing, not sent yet
    wen.wait_for(b"[zed is typing in #tea]")
    zed.type(b"\r")
    wen.wait_for(b"<zed> oolong")
    wen.settle()
    # the line arrived: the status line is drawn again without the notice
    assert b"[zed is typing" not in wen.screen.split(b"<zed> oolong", 1)[1]
    for person in (zed, wen):
        person.type(b"\x04")
        assert person.exit_status() == 0

