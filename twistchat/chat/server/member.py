"""
What rooms, the mailbox and the request handlers need of a connected user:
who it is (``key``, ``nick``, ``away``) and a way to reach it (``send``, and
``send_tracked`` for what must be known to have arrived).
A leaf of the server package, so the room and mailbox rules can be
tested, and reasoned about, without sessions or the server.
"""

from __future__ import annotations

from typing import Protocol

from twisted.internet.defer import Deferred

from twistchat.chat.protocol import Message


class NotAcknowledged(Exception):
    """A tracked message the peer's transport never acknowledged: the session
    ended first, or could not take it."""


class Member(Protocol):
    key: str
    """Folded nick: the identity."""
    nick: str
    """The spelling shown to others."""
    away: str | None
    departed: bool
    """The server is done with this member: nothing more is sent to it."""

    def notice_on_its_way(self, token: tuple[str, int]) -> bool:
        """A tracked notice (("dm", dm_id), ("delivered", dm_id)) is on its
        way on this session: each is sent once per session."""

    def notice_sent(self, token: tuple[str, int]) -> None:
        """``token`` is on its way now."""

    def notice_settled(self, token: tuple[str, int]) -> None:
        """``token`` was acknowledged, or never will be on this session."""

    @property
    def peer_max_message_size(self) -> int:
        """The largest message this member's transport takes."""

    def send_tracked(self, data: bytes) -> Deferred[None]:
        """Send encoded ``data``; fires once the member's transport has all of
        it, fails with NotAcknowledged if it never will."""

    def send(self, message: Message) -> None:
        """Queue one message to this user; never raises for a closed transport."""

    def send_encoded(self, data: bytes) -> None:
        """``send`` for a message already encoded (fan-out encodes once)."""
