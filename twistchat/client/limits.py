"""
The sizes client and server agree on (PROTOCOL.md C10): what the client
announces it can take in one transport message, and what the login reply
says a user may send and the server may send back.
"""

from __future__ import annotations

import random
from typing import Any

import attrs

from twisted.internet.interfaces import IReactorTime

from twistchat.endpoint.endpoint import ClientEndpoint
from twistchat.reliable.config import SessionConfig

CLIENT_MAX_MESSAGE_SIZE = 256 * 1024
"""The transport ``max_message_size`` the client announces: at least the
largest chat message a server may send (``max_message_bytes``, a ``data``
event with a full payload and the longest nick), with room to spare."""


def client_session_config() -> SessionConfig:
    """Transport settings for a chat client: the defaults, but able to take
    whatever the server may send."""
    return SessionConfig(max_message_size=CLIENT_MAX_MESSAGE_SIZE)


def client_endpoint(reactor: IReactorTime, rng: random.Random | None = None) -> ClientEndpoint:
    """The endpoint a ``ChatClient`` should be given."""
    return ClientEndpoint(reactor, config=client_session_config(), rng=rng)


@attrs.frozen
class ServerLimits:
    """From the login reply; None until logged in (or from an older server)."""

    max_text_bytes: int | None = None
    """The most UTF-8 bytes a ``say``/``dm`` text may hold."""
    max_payload_bytes: int | None = None
    """The most bytes a ``data`` payload may hold."""
    max_message_bytes: int | None = None
    """The largest chat message the server may send us."""

    @classmethod
    def from_login(cls, reply: dict[str, Any]) -> "ServerLimits":
        return cls(reply.get("max_text_bytes"), reply.get("max_payload_bytes"),
                   reply.get("max_message_bytes"))

    def fits(self, announced: int) -> bool:
        """Whether a transport that takes ``announced`` bytes can take all the
        server may send."""
        return self.max_message_bytes is None or announced >= self.max_message_bytes
