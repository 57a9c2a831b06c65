"""A ``MessageConnection`` that is not a session's (a test fake, a wrapper):
it records what it is sent, or refuses it as an ended session would."""

from __future__ import annotations

from twistchat.endpoint.api import ConnectionClosed


class Recording:
    def __init__(self, refuse: bool = False) -> None:
        self.sent: list[bytes] = []
        self.refuse = refuse

    def send_message(self, data: bytes, on_acked=None, lane: int = 0) -> int:
        """Its sequence number: 0 for the first message, then 1, 2..."""
        if self.refuse:
            raise ConnectionClosed("gone")
        self.sent.append(data)
        return len(self.sent) - 1
