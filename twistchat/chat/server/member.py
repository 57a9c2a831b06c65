"""
What rooms, the mailbox and the request handlers need of a connected user:
who it is (``key``, ``nick``, ``away``) and a way to reach it (``send``).
A leaf of the server package, so the room and mailbox rules can be
tested, and reasoned about, without sessions or the server.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from twistchat.chat.protocol import Event, Message, encode


class Member(Protocol):
    key: str
    """Folded nick: the identity."""
    nick: str
    """The spelling shown to others."""
    away: str | None

    def send(self, message: Message) -> None:
        """Queue one message to this user; never raises for a closed transport."""

    def send_encoded(self, data: bytes) -> None:
        """``send`` for a message already encoded (fan-out encodes once)."""


def broadcast(members: Iterable[Member], event: Event, exclude: Member | None = None) -> None:
    """Encode ``event`` once and send it to every member but ``exclude``."""
    data = encode(event)
    for member in list(members):
        if member is not exclude:
            member.send_encoded(data)
