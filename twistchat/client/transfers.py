"""
Transfers from the client's side (PROTOCOL.md C14).

Sending: a file (or bytes) is offered to a nick or a room, then read and
sent in pieces of ``PIECE_BYTES``: at most the server's ``window`` of bytes
unanswered, and a new piece only while this session's transport has next
to nothing it never sent (``chat.pacing``). The pieces and the end go on
the transport's bulk lane, in order with each other, so a chat line typed
meanwhile (interactive lane) goes out first and never waits for a lost
piece to be resent; the offer and a cancel stay on the interactive lane
(PROTOCOL.md C14). Progress is told as the server answers
pieces (every recipient's transport has them); the Deferred fires with the
figures once the end is answered, or fails with ``TransferError``.

Receiving: pieces are written, in order, to a part file in the download
folder (never held in memory), hashed as they come, and checked against
the end's size and sha256; only then is the file given its name
(``downloads.claim``: sanitised, never overwriting). Anything else ends in
``TransferIncomplete`` or ``TransferCorrupt`` and the part file is removed.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import attrs
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from twistchat.chat import protocol as p
from twistchat.chat.pacing import LOW_WATER_CHUNKS, POLL_INTERVAL, transport_backlog
from twistchat.client.downloads import claim, safe_file_name
from twistchat.client.observer import ChatError, Disconnected
from twistchat.endpoint.api import BULK_LANE, INTERACTIVE_LANE

PIECE_BYTES = 4 * 1024
"""What the client puts in one piece (at most the server's ``piece_bytes``):
about four datagrams, so a chat line never waits behind much more."""


class TransferError(Exception):
    """A transfer ended unfinished: ``code`` is the server's (PROTOCOL.md C9,
    C14) or the client's own (``DISCONNECTED``, ``FILE_ERROR``, ...)."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


class TransferIncomplete(TransferError):
    """Receiving: the transfer ended before every byte and its end arrived."""


class TransferCorrupt(TransferError):
    """Receiving: what arrived is not what the end says (size or sha256)."""


@attrs.define(eq=False)
class OutgoingTransfer:
    """What the application sees of a file it sends (progress callbacks get it)."""

    target: str
    name: str
    size: int
    started: float
    transfer: int | None = None
    recipients: int = 0
    confirmed: int = 0
    """Bytes every recipient's transport has (the server answered the pieces)."""
    missed: list[str] = attrs.Factory(list)
    """Room members who left before the end."""
    finished: float | None = None
    sha256: str = ""


@attrs.define(eq=False)
class IncomingTransfer:
    """What the application sees of a file it receives."""

    transfer: int
    sender: str
    name: str
    """As the sender called it; ``safe_name`` is what it is saved as."""
    safe_name: str
    size: int
    room: str | None
    started: float
    received: int = 0
    path: Path | None = None
    """Where it was saved, once complete and checked."""
    finished: float | None = None


def rate(done: int, started: float, finished: float | None, now: float) -> float:
    """Bytes per second over the transfer so far."""
    return done / max((finished or now) - started, 1e-6)


class _Sending:
    log = Logger()

    def __init__(self, desk: Transfers, info: OutgoingTransfer, source: BinaryIO,
                 progress: Callable[[OutgoingTransfer], None] | None) -> None:
        self.desk = desk
        self.info = info
        self.source = source
        self.progress = progress
        self.deferred: defer.Deferred = defer.Deferred()
        self.hasher = hashlib.sha256()
        self.window = 0
        self.piece = PIECE_BYTES
        self.sent = 0
        self.end_sent = False
        self._poll = None

    def opened(self, reply: dict[str, Any]) -> None:
        self.info.transfer = reply["transfer"]
        self.info.recipients = reply.get("recipients", 1)
        self.window = reply["window"]
        self.piece = max(1, min(PIECE_BYTES, reply["piece_bytes"], self.window))
        self.pump()

    def pump(self) -> None:
        """Send what the window and the transport's backlog allow."""
        self._poll = None
        desk = self.desk
        while not self.deferred.called and self.sent < self.info.size:
            length = min(self.piece, self.info.size - self.sent)
            if self.sent - self.info.confirmed + length > self.window:
                return  # the next answer opens the window
            if transport_backlog(desk.connection()) > LOW_WATER_CHUNKS:
                self._poll = desk.reactor.callLater(POLL_INTERVAL, self.pump)
                return
            try:
                data = self.source.read(length)
            except OSError as e:
                self.cancel(TransferError("FILE_ERROR", f"cannot read {self.info.name}: {e}"))
                return
            if len(data) != length:
                self.cancel(TransferError("FILE_ERROR", f"{self.info.name} changed while being sent"))
                return
            self.hasher.update(data)
            offset, self.sent = self.sent, self.sent + length
            desk.send(p.Piece, {"transfer": self.info.transfer, "offset": offset, "payload": data},
                      BULK_LANE).addCallbacks(self._piece_done, self._request_failed, callbackArgs=(length,))
        if self.sent == self.info.size and not self.end_sent and not self.deferred.called:
            self.end_sent = True
            self.info.sha256 = self.hasher.hexdigest()
            # Behind the pieces on their lane: the server checks it follows them all.
            desk.send(p.TransferEnd, {"transfer": self.info.transfer, "size": self.info.size,
                                      "sha256": self.info.sha256}, BULK_LANE
                      ).addCallbacks(self._ended, self._request_failed)

    def _piece_done(self, _: dict[str, Any], length: int) -> None:
        if self.deferred.called:
            return
        self.info.confirmed += length
        self._tell()
        self.pump()

    def _ended(self, reply: dict[str, Any]) -> None:
        info = self.info
        info.finished = self.desk.reactor.seconds()
        info.missed = list(reply.get("missed", info.missed))
        self._close()
        self.deferred.callback({"transfer": info.transfer, "size": info.size,
                                "sha256": info.sha256, "delivered": reply.get("delivered"),
                                "missed": info.missed, "seconds": info.finished - info.started,
                                "rate": rate(info.size, info.started, info.finished, info.finished)})

    def _request_failed(self, failure: Any) -> None:
        if failure.check(ChatError):
            self.fail(TransferError(failure.value.code, failure.value.message))
        elif failure.check(Disconnected):
            self.fail(TransferError("DISCONNECTED", failure.getErrorMessage()))
        else:
            self.fail(TransferError("INTERNAL", failure.getErrorMessage()))

    def missed(self, nick: str) -> None:
        self.info.missed.append(nick)
        self._tell()

    def cancel(self, error: TransferError) -> None:
        if self.info.transfer is not None and self.desk.ready():
            self.desk.send(p.TransferCancel, {"transfer": self.info.transfer,
                                              "reason": error.message[:200] or None}
                           ).addErrback(lambda _: None)
        self.fail(error)

    def fail(self, error: TransferError) -> None:
        if self.deferred.called:
            return
        self._close()
        self.deferred.errback(error)

    def _tell(self) -> None:
        if self.progress is not None:
            try:
                self.progress(self.info)
            except Exception:
                self.log.failure("a transfer progress callback failed")

    def _close(self) -> None:
        if self._poll is not None and self._poll.active():
            self._poll.cancel()
        self._poll = None
        self.desk.sending.pop(self.info.transfer, None)
        self.source.close()


class _Receiving:
    def __init__(self, desk: Transfers, info: IncomingTransfer, part: Path, file: BinaryIO) -> None:
        self.desk = desk
        self.info = info
        self.part = part
        self.file = file
        self.hasher = hashlib.sha256()

    def piece(self, event: p.PieceEvent) -> None:
        info = self.info
        if event.offset != info.received or info.received + len(event.payload) > info.size:
            self.decline(TransferCorrupt("CORRUPT", f"piece at {event.offset} after {info.received} "
                                      f"of {info.size} bytes"))
            return
        try:
            self.file.write(event.payload)
        except OSError as e:
            self.decline(TransferError("FILE_ERROR", f"cannot write {self.part}: {e}"))
            return
        self.hasher.update(event.payload)
        info.received += len(event.payload)
        self.desk.observer().transfer_progress(info)

    def end(self, event: p.TransferEndEvent) -> None:
        info = self.info
        if not (event.size == info.size == info.received):
            self.fail(TransferCorrupt("CORRUPT", f"{info.received} bytes arrived, the end says "
                                      f"{event.size}, the offer {info.size}"))
            return
        if self.hasher.hexdigest() != event.sha256:
            self.fail(TransferCorrupt("CORRUPT", "the sha256 of what arrived is not the sender's"))
            return
        try:
            self.file.close()
            info.path = claim(self.part.parent, info.safe_name, self.part)
        except OSError as e:
            self.fail(TransferError("FILE_ERROR", f"cannot save {info.safe_name}: {e}"))
            return
        info.finished = self.desk.reactor.seconds()
        del self.desk.receiving[info.transfer]
        self.desk.observer().transfer_received(info)

    def decline(self, error: TransferError) -> None:
        """A failure of our own making (cannot write, out of order): tell the
        server, so it sends us no more of it, then fail."""
        self.desk.decline(self.info.transfer, error.message)
        self.fail(error)

    def fail(self, error: TransferError) -> None:
        self.desk.receiving.pop(self.info.transfer, None)
        self.file.close()
        try:
            self.part.unlink()
        except OSError:
            pass
        self.desk.observer().transfer_failed(self.info, error)


class Transfers:
    """Every transfer of one ``ChatClient``, both ways, on its current session."""

    def __init__(self, reactor: IReactorTime, downloads: str | Path | None,
                 observer: Callable[[], Any], request: Callable[..., defer.Deferred],
                 send: Callable[..., defer.Deferred], connection: Callable[[], Any],
                 ready: Callable[[], bool]) -> None:
        self.reactor = reactor
        self.downloads = Path(downloads).expanduser() if downloads is not None else None
        self.observer = observer
        self.request = request
        self._send = send
        self.connection = connection
        self.ready = ready
        self.sending: dict[int | None, _Sending] = {}
        self.receiving: dict[int, _Receiving] = {}

    def send(self, cls: type, fields: dict[str, Any],
             lane: int = INTERACTIVE_LANE) -> defer.Deferred:
        """A transfer request on this session only: never held for the next."""
        return self._send(cls, fields, internal=True, lane=lane)

    # -- sending

    def send_file(self, target: str, path: str | Path, name: str | None = None,
                  progress: Callable[[OutgoingTransfer], None] | None = None) -> defer.Deferred:
        path = Path(path).expanduser()
        try:
            source = path.open("rb")
            size = os.fstat(source.fileno()).st_size
        except OSError as e:
            return defer.fail(TransferError("FILE_ERROR", f"cannot read {path}: {e.strerror}"))
        return self._start(target, source, size, name or path.name, progress)

    def send_bytes(self, target: str, data: bytes, name: str,
                   progress: Callable[[OutgoingTransfer], None] | None = None) -> defer.Deferred:
        return self._start(target, io.BytesIO(data), len(data), name, progress)

    def _start(self, target: str, source: BinaryIO, size: int, name: str,
               progress: Callable[[OutgoingTransfer], None] | None) -> defer.Deferred:
        info = OutgoingTransfer(target, name, size, self.reactor.seconds())
        sending = _Sending(self, info, source, progress)
        where = {"room": target} if target.startswith("#") or p.is_group_id(target) else {"to": target}

        def opened(reply: dict[str, Any]) -> None:
            self.sending[reply["transfer"]] = sending
            sending.opened(reply)

        def refused(failure: Any) -> None:
            sending._request_failed(failure)
        self.request(p.TransferOpen, name=name, size=size, **where).addCallbacks(opened, refused)
        return sending.deferred

    # -- what arrives

    def event(self, event: p.Event) -> None:
        if isinstance(event, p.TransferEvent):
            self._offered(event)
        elif isinstance(event, p.PieceEvent):
            if event.transfer in self.receiving:
                self.receiving[event.transfer].piece(event)
        elif isinstance(event, p.TransferEndEvent):
            if event.transfer in self.receiving:
                self.receiving[event.transfer].end(event)
        elif isinstance(event, p.TransferFailedEvent):
            self._failed(event)

    def _offered(self, event: p.TransferEvent) -> None:
        info = IncomingTransfer(event.transfer, event.nick, event.name, safe_file_name(event.name),
                                event.size, event.room, self.reactor.seconds())
        if self.downloads is None:
            self.decline(event.transfer, "no download folder")
            self.observer().transfer_failed(info, TransferError("NOT_SAVED", "no download folder"))
            return
        try:
            self.downloads.mkdir(parents=True, exist_ok=True)
            part = self.downloads / f".twistchat-{secrets.token_hex(8)}.part"
            file = part.open("xb")
        except OSError as e:
            self.decline(event.transfer, "cannot save it")
            self.observer().transfer_failed(info, TransferError(
                "FILE_ERROR", f"cannot write into {self.downloads}: {e.strerror}"))
            return
        self.receiving[event.transfer] = _Receiving(self, info, part, file)
        self.observer().transfer_started(info)

    def decline(self, transfer: int, reason: str) -> None:
        """Ask the server to send us no more of an incoming transfer."""
        if self.ready():
            self.send(p.TransferCancel, {"transfer": transfer, "reason": reason[:200] or None}
                      ).addErrback(lambda _: None)

    def _failed(self, event: p.TransferFailedEvent) -> None:
        sending = self.sending.get(event.transfer)
        if sending is not None:
            if event.nick is not None:
                sending.missed(event.nick)
            else:
                sending.fail(TransferError(event.code, event.message))
        receiving = self.receiving.get(event.transfer)
        if receiving is not None and event.nick is None:
            receiving.fail(TransferIncomplete(event.code, event.message))

    def session_lost(self, why: str) -> None:
        """Transfers live as long as the session: every one still going fails."""
        for sending in list(self.sending.values()):
            sending.fail(TransferError("DISCONNECTED", why))
        for receiving in list(self.receiving.values()):
            receiving.fail(TransferIncomplete("DISCONNECTED", f"the session ended: {why}"))
