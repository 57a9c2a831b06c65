"""
What a ``ChatClient`` tells the application: the observer it calls with
everything the server sends unasked, and the errors its Deferreds fail with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twistchat.chat import protocol as p

if TYPE_CHECKING:
    from twistchat.client.link import LinkState


class ChatError(Exception):
    """The server refused a request: ``code`` is its machine code
    (PROTOCOL.md, C9), ``message`` its short text."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


class Disconnected(Exception):
    """The session ended before the server answered and the request could
    not safely be sent again (it may or may not have been carried out), or
    the client is not connected and will not be."""


class PasswordRequired(Exception):
    """This nick is registered with a password and none was given."""


class ChatObserver:
    """Override what you need; every method has a do-nothing default."""

    def message(self, event: p.MessageEvent, replay: bool) -> None:
        """A room message; ``replay``: from history, after a (re)join."""

    def direct(self, event: p.DmEvent) -> None:
        """A DM, once per ``dm_id``; ``event.stored``: it waited in the mailbox."""

    def delivered(self, event: p.DeliveredEvent) -> None:
        """A DM we sent has reached its recipient's transport: at once for an
        online recipient, at its next login otherwise; told after our own
        next login if we were gone by then. Once per ``dm_id``."""

    def data(self, event: p.DataEvent) -> None:
        """Opaque binary data relayed from another nick."""

    def presence(self, event: p.Event) -> None:
        """join, part, quit, kick, nick, away, topic, mode, op, invited."""

    def contact(self, event: p.ContactEvent) -> None:
        """A watched nick's state (``event.state``: online, away, offline,
        with ``last_seen``): one per contact after each login, then each change."""

    def rejoined(self, event: p.RejoinedEvent) -> None:
        """After a login, the server put us back in ``event.room`` (we never
        parted it); ``event.missed`` replayed lines follow (``message`` with
        ``replay``), ``event.not_kept`` older ones were no longer kept."""

    def error(self, error: ChatError) -> None:
        """An error the server sent that answers no request of ours."""

    def server_going_down(self, message: str) -> None:
        """The server announced a shutdown; a disconnect follows."""

    def disconnected(self, reason: str, retry_in: float | None) -> None:
        """The session ended; ``retry_in`` seconds until the next attempt, or
        None when the client will not reconnect."""

    def duplicate_dropped(self, event: p.Event) -> None:
        """A ``dm`` or ``delivered`` event seen before (same ``dm_id``) was
        dropped, not shown again; ``client.counters`` counts them."""

    def typing(self, event: p.TypingEvent) -> None:
        """``event.nick`` is typing to ``event.to`` (a room, or our nick for a
        DM); best effort: show it for ``TYPING_SHOWN_FOR`` seconds."""

    def link_state_changed(self, old: LinkState, new: LinkState) -> None:
        """``client.link_state`` moved from ``old`` to ``new`` (``link.py``)."""

    def reconnected(self) -> None:
        """Logged in again after a disconnect, rooms re-joined, history caught up."""

    def server_changed(self, old: str, new: str) -> None:
        """The client moved from ``old`` to ``new`` (``host:port``), the next
        of its servers (``servers.py``): a session on ``old`` was lost, or an
        attempt there failed. The next attempt goes to ``new``; once logged
        in, ``client.address`` and ``status().server`` say it is on it."""

    def server_key_pinned(self, server: str, fingerprint: str, replaced: str | None) -> None:
        """The key ``server`` (``host:port``) proved is pinned from now on:
        first contact (``replaced`` None), or a changed key accepted
        (``accept_new_server_key`` or ``server_key``), ``replaced`` the old one."""

    def transfer_started(self, transfer) -> None:
        """Someone is sending us a file (``IncomingTransfer``): it is being
        written to a part file in the download folder."""

    def transfer_progress(self, transfer) -> None:
        """More of an incoming transfer arrived (``transfer.received`` bytes)."""

    def transfer_received(self, transfer) -> None:
        """An incoming transfer is complete, its size and sha256 checked, and
        saved as ``transfer.path``."""

    def transfer_failed(self, transfer, error) -> None:
        """An incoming transfer ended unfinished (``TransferIncomplete``,
        ``TransferCorrupt`` or another ``TransferError``); nothing was saved."""
