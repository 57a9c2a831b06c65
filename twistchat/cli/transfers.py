"""
Transfers as a person sees them in ``twistchat-client``: ``/send NICK|#room
FILE``, and files others send saved into the download folder. In a
terminal, a progress line (every transfer under way, on the status line
above the typed line, redrawn at most every ``PROGRESS_EVERY`` seconds); in
a pipe, a plain line when a transfer starts and when it ends, the closing
one with its rate.
"""

from __future__ import annotations

from typing import Any, Callable

from twistchat.cli import render
from twistchat.client import IncomingTransfer, OutgoingTransfer, TransferError

PROGRESS_EVERY = 0.25
"""Seconds between redraws of the progress line."""


def size_text(size: float) -> str:
    for unit in ("bytes", "KiB", "MiB"):
        if size < 1024 or unit == "MiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def rate_text(done: int, seconds: float) -> str:
    """``8.0 MiB in 28.1 s (2.39 Mbit/s)``: what a closing note says."""
    seconds = max(seconds, 1e-3)
    return f"{size_text(done)} in {seconds:.1f} s ({done * 8 / seconds / 1e6:.2f} Mbit/s)"


def percent(done: int, size: int) -> str:
    return f"{100 * done // size if size else 100}%"


class TransferLines:
    """Mixed into the ``Conversation``: the ``/send`` action and the
    observer's transfer methods. Uses its ``client``, ``write`` and ``now``;
    in a terminal (``status_changed`` set) the progress goes on the status
    line (``progress_text``)."""

    client: Any
    write: Callable[[str], None]
    now: Callable[[], float]
    status_changed: Callable[[], None] | None

    _lines: dict[object, str] | None = None
    """What the progress line shows, by transfer (made on first use)."""
    _drawn_at = float("-inf")

    def send_file(self, target: str, path: str):
        """``/send``: fires with the figures, fails with TransferError."""
        seen: list[OutgoingTransfer] = []

        def progressed(transfer: OutgoingTransfer) -> None:
            seen[:] = [transfer]
            self._show_progress(transfer, f"↑ {transfer.name} {percent(transfer.confirmed, transfer.size)}")
        self.write(render.notice(f"sending {path} to {target}", self.now()))
        sent = self.client.send_file(target, path, progress=progressed)
        sent.addBoth(lambda result: self._forget_progress(seen[0] if seen else None) or result)
        return sent

    def sent_note(self, args: tuple, result: dict[str, Any]) -> str:
        target, path = args
        note = f"sent {path} to {target}: {rate_text(result['size'], result['seconds'])}"
        if result.get("missed"):
            note += f"; not received by {', '.join(result['missed'])} (they left)"
        return render.notice(note, self.now())

    # -- ChatObserver

    def transfer_started(self, transfer: IncomingTransfer) -> None:
        where = f" in {transfer.room}" if transfer.room else ""
        self.write(render.notice(f"{transfer.sender}{where} is sending you {transfer.safe_name} "
                                 f"({size_text(transfer.size)})", self.now()))

    def transfer_progress(self, transfer: IncomingTransfer) -> None:
        self._show_progress(transfer, f"↓ {transfer.safe_name} {percent(transfer.received, transfer.size)}")

    def transfer_received(self, transfer: IncomingTransfer) -> None:
        self._forget_progress(transfer)
        seconds = (transfer.finished or self.now()) - transfer.started
        self.write(render.notice(f"received {transfer.safe_name} from {transfer.sender}: "
                                 f"{rate_text(transfer.size, seconds)}, sha256 checked; "
                                 f"saved as {transfer.path}", self.now()))

    def transfer_failed(self, transfer: IncomingTransfer, error: TransferError) -> None:
        self._forget_progress(transfer)
        self.write(render.error(error.code, f"{transfer.safe_name} from {transfer.sender} was not "
                                f"saved ({size_text(transfer.received)} of "
                                f"{size_text(transfer.size)}): {error.message}", self.now()))

    # -- the progress line: part of the terminal's status line

    def progress_text(self) -> str:
        """Every transfer under way, for the status line ("" when none)."""
        return " · ".join((self._lines or {}).values())

    def _show_progress(self, key: object, text: str) -> None:
        if self._lines is None:
            self._lines = {}
        self._lines[key] = text
        if self.status_changed is not None and self.now() - self._drawn_at >= PROGRESS_EVERY:
            self._drawn_at = self.now()
            self.status_changed()

    def _forget_progress(self, key: object) -> None:
        if self._lines is not None:
            self._lines.pop(key, None)
        if self.status_changed is not None:
            self._drawn_at = float("-inf")
            self.status_changed()
