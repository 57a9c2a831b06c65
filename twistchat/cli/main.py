"""
``twistchat-client NICK``: a line-mode chat client.

In a terminal: line editing and input history (Twisted Conch's
``HistoricRecvLine``), and incoming lines are printed above the line being
typed, never through it. In a pipe (stdin not a terminal): every input line
is a command or a message; at end of input the client waits (``--wait``
seconds, default 30) until the server has answered everything, then exits
0 if all of it was accepted, 1 if anything failed or went unanswered, and 2
if it could not connect at all.
"""

from __future__ import annotations

import getpass
import os
import sys
import termios
import tty
from pathlib import Path

from twisted.internet import defer, stdio
from twisted.protocols.basic import LineReceiver
from twisted.python import usage

from twistchat.cli.frontend import Conversation
from twistchat.client import (
    ChatClient, ClientState, KnownServers, PasswordRequired, ServerKeyMismatch, StateError,
    client_endpoint, default_state_dir,
)
from twistchat.client.downloads import default_download_dir
from twistchat.client.known_servers import check_fingerprint, server_name
from twistchat.client.servers import ServerList, ServerListError

DEFAULT_WAIT = 30.0
EXIT_OK, EXIT_FAILED, EXIT_NO_CONNECTION, EXIT_USAGE = 0, 1, 2, 64


class Options(usage.Options):
    synopsis = "NICK [options]"
    longdesc = ("Chat on a twistchat server. Type /help for commands. "
                "With stdin not a terminal, reads lines until end of input, waits for the "
                "server to answer all of them, and exits 0 only if every one was accepted.")
    optParameters = [
        ["host", "h", "127.0.0.1", "Server address, or the nodes of one network, tried in turn: "
         "HOST[:PORT],... (IPv6 as [ADDRESS]:PORT)."],
        ["port", "p", 9999, "Server UDP port (for a --host without one).", int],
        ["password-file", None, None, "Read the nick's password from this file."],
        ["state-dir", None, None, "Where to keep credentials and known_servers, the pinned "
         "server keys (default $XDG_STATE_HOME/twistchat)."],
        ["server-key", None, None, "The fingerprint (SHA256:...) the server must prove, even on "
         "first contact (the operator prints it with: twistd twistchat --fingerprint)."],
        ["wait", None, DEFAULT_WAIT, "Pipe mode: seconds to wait for answers at end of input.", float],
        ["downloads", None, None, "Folder received files are saved in, never overwriting "
         "(default ~/Downloads/twistchat)."],
    ]
    optFlags = [["ask-password", None, "Ask for the nick's password."],
                ["accept-new-server-key", None, "Accept the key the server proves even if it is "
                 "not the one pinned (after a key change you expected), and pin it."]]

    def parseArgs(self, nick: str) -> None:
        self["nick"] = nick

    def postOptions(self) -> None:
        try:
            self["servers"] = ServerList.parse(self["host"], self["port"])
            self["ipv6"] = self["servers"].ipv6
        except ServerListError as e:
            raise usage.UsageError(f"--host: {e}") from None
        if self["password-file"] and self["ask-password"]:
            raise usage.UsageError("give --password-file or --ask-password, not both")
        if self["server-key"] is not None:
            try:
                self["server-key"] = check_fingerprint(self["server-key"])
            except ValueError as e:
                raise usage.UsageError(f"--server-key: {e}") from None

    def password(self) -> str | None:
        if self["password-file"]:
            try:
                return Path(self["password-file"]).read_text().strip()
            except OSError as e:
                raise usage.UsageError(f"cannot read the password file: {e.strerror}") from None
        if self["ask-password"]:
            return getpass.getpass(f"password for {self['nick']}: ")
        return None


class PipeInput(LineReceiver):
    """Lines from a script; end of input ends the session once all is answered."""

    delimiter = b"\n"

    def __init__(self, conversation: Conversation, on_eof) -> None:
        self.conversation = conversation
        self.on_eof = on_eof

    def lineReceived(self, line: bytes) -> None:
        self.conversation.line(line.decode("utf-8", "replace"))

    def connectionLost(self, reason=None) -> None:
        if self._buffer:
            self.lineReceived(self._buffer)
            self._buffer = b""
        self.on_eof()



def pipe_exit_status(conversation: Conversation) -> int:
    """0 only if the server accepted every line, each exactly once: a say, dm
    or data whose answer a lost session took is resent with its idempotency
    key until answered, so a server restart mid-script still ends in 0."""
    unanswered = len(conversation.outstanding) + conversation.unanswered
    return EXIT_FAILED if conversation.failures or unanswered else EXIT_OK


def _mailbox_note(count: int) -> str:
    """Say how many stored DMs follow, so the replay below is not a surprise."""
    if not count:
        return ""
    return "; 1 stored message follows" if count == 1 else f"; {count} stored messages follow"


def _terminal_protocol(conversation: Conversation, clock=None):
    from twisted.conch.recvline import HistoricRecvLine

    class TerminalInput(HistoricRecvLine):
        """Editing and history for the typed line; output goes above it, and
        the status line (who is typing) right above the typed line."""

        ps = (b"> ", b"> ")

        def connectionMade(self) -> None:
            super().connectionMade()
            # Lines typed before raw mode (while connecting) end in \n.
            self.keyHandlers[b"\n"] = self.handle_RETURN
            self.status, self._status_drawn, self._status_call = "", False, None
            conversation.write = self.show
            conversation.status_changed = self.refresh_status

        def refresh_status(self) -> None:
            """Redraw the status line if it changed; come back when it next expires."""
            if self._status_call is not None and self._status_call.active():
                self._status_call.cancel()
            if conversation.status_line() != self.status:
                self.show("")
            expires = conversation.typists.next_change()
            if expires is not None and clock is not None:
                self._status_call = clock.callLater(max(0.0, expires - conversation.now()) + 0.01,
                                                    self.refresh_status)

        def show(self, text: str) -> None:
            terminal = self.terminal
            terminal.write(b"\r")
            terminal.eraseLine()
            if self._status_drawn:  # the status line sits above the typed line
                terminal.cursorUp(1)
                terminal.eraseLine()
            for line in text.splitlines():
                terminal.write(line.encode("utf-8", "replace") + b"\r\n")
            self.status = conversation.status_line()
            self._status_drawn = bool(self.status)
            if self.status:
                terminal.write(f"[{self.status}]".encode("utf-8", "replace") + b"\r\n")
            terminal.write(self.ps[self.pn] + b"".join(self.lineBuffer))
            back = len(self.lineBuffer) - self.lineBufferIndex
            if back:
                terminal.cursorBackward(back)

        def set_status(self, text: str) -> None:
            """The progress line: shown in the prompt, so it never mixes with output."""
            prompt = f"[{text}] > ".encode("utf-8", "replace") if text else b"> "
            self.ps = (prompt, prompt)
            self.show("")

        def lineReceived(self, line: bytes) -> None:
            conversation.line(line.decode("utf-8", "replace"))

        def handle_QUIT(self) -> None:  # Ctrl-D on an empty line
            conversation.line("/quit")

        def keystrokeReceived(self, keyID, modifier) -> None:
            if keyID == b"\x03" or keyID == b"\x04" and not self.lineBuffer:  # Ctrl-C, Ctrl-D
                conversation.line("/quit")
                return
            if keyID == b"\x15":  # Ctrl-U: clear the line, as shells do
                self.lineBuffer, self.lineBufferIndex = [], 0
                self.terminal.write(b"\r")
                self.terminal.eraseLine()
                self.terminal.write(self.ps[self.pn])
                return
            super().keystrokeReceived(keyID, modifier)
            if isinstance(keyID, bytes) and len(keyID) == 1 and keyID >= b" ":
                conversation.keystroke(b"".join(self.lineBuffer).decode("utf-8", "replace"))

    return TerminalInput


def run(reactor, options: Options, password: str | None, interactive: bool) -> defer.Deferred:
    out = sys.stdout
    status = {"code": EXIT_OK}

    def write(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    conversation = Conversation(write, now=reactor.seconds)
    conversation.hold_until_connected()
    try:
        state_dir = options["state-dir"] or default_state_dir()
        state = ClientState.for_network(state_dir, options["nick"], options["servers"])
        known_servers = KnownServers.load(state_dir)
    except StateError as e:
        write(f"twistchat-client: {e}")
        return defer.succeed(EXIT_USAGE)
    endpoint = client_endpoint(reactor)
    reactor.listenUDP(0, endpoint, interface="::" if options["ipv6"] else "")
    client = ChatClient(reactor, endpoint, options["servers"], options["nick"],
                        conversation, password=password, state=state,
                        known_servers=known_servers, server_key=options["server-key"],
                        accept_new_server_key=options["accept-new-server-key"],
                        downloads=options["downloads"] or str(default_download_dir()))
    conversation.client = client
    finished = defer.Deferred()

    def connected(reply) -> None:
        write(f"connected to {server_name(client.address)} as {reply['nick']}"
              + (" (new registration)" if reply.get("registered") else "")
              + _mailbox_note(reply.get("mailbox") or 0))
        if interactive:
            write("type /help for commands, /quit to leave")
        conversation.connected()  # what the login brought follows these lines
        if interactive:
            start_terminal(reactor, conversation, finished)
        else:
            stdio.StandardIO(PipeInput(conversation, end_of_input))
        conversation.quit_requested.addCallback(lambda _: finish())

    def not_connected(failure) -> None:
        conversation.connected()
        if failure.check(PasswordRequired):
            write(f"twistchat-client: {failure.getErrorMessage()}: use --ask-password "
                  "or --password-file")
        elif failure.check(ServerKeyMismatch):
            write(f"twistchat-client: {failure.getErrorMessage()}")
            write("twistchat-client: check the fingerprint with the server's operator "
                  "(twistd twistchat --fingerprint); if the new key is right, run again with "
                  "--accept-new-server-key or --server-key THE_NEW_FINGERPRINT")
        else:
            write(f"twistchat-client: {failure.getErrorMessage()}")
        client.stop()
        status["code"] = EXIT_NO_CONNECTION
        finished.callback(status["code"])

    def end_of_input() -> None:
        waiting = conversation.settled()
        waiting.addTimeout(options["wait"], reactor)
        waiting.addErrback(lambda _: setattr(conversation, "failures", conversation.failures + 1))
        waiting.addBoth(lambda _: leave())

    def leave() -> None:
        unanswered = len(conversation.outstanding) + conversation.unanswered
        if unanswered:
            write(f"twistchat-client: {unanswered} lines unanswered after {options['wait']:g} s")
        status["code"] = pipe_exit_status(conversation)
        if not conversation.quitting:
            conversation.quitting = True
            client.quit().addTimeout(5, reactor).addBoth(lambda _: finish())
        else:
            finish()

    def finish() -> None:
        if not finished.called:
            client.stop()
            finished.callback(status["code"])

    client.connect().addCallbacks(connected, not_connected)
    return finished


def start_terminal(reactor, conversation: Conversation, finished: defer.Deferred) -> None:
    from twisted.conch.insults.insults import ServerProtocol

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)

    def restore(result):
        termios.tcsetattr(fd, termios.TCSANOW, saved)
        sys.stdout.write("\r\n")
        return result
    finished.addBoth(restore)
    stdio.StandardIO(ServerProtocol(_terminal_protocol(conversation, reactor)))


def main(argv: list[str] | None = None) -> int:
    options = Options()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-"):
        argv.append(argv.pop(0))  # NICK first, as users type it; getopt wants it last
    try:
        options.parseOptions(argv)
        password = options.password()
    except usage.UsageError as e:
        print(f"twistchat-client: {e}\n{options}", file=sys.stderr)
        return EXIT_USAGE
    interactive = os.isatty(sys.stdin.fileno()) and os.isatty(sys.stdout.fileno())
    from twisted.internet import reactor
    result = {}

    def done(code):
        result["code"] = code
        reactor.stop()
    reactor.callWhenRunning(lambda: run(reactor, options, password, interactive).addBoth(done))
    reactor.run()
    return result.get("code", EXIT_FAILED)


if __name__ == "__main__":
    sys.exit(main())
