"""A minimal chat peer for server tests: the real transport, requests
written with the chat codec, replies and events collected in order."""

from __future__ import annotations

from twisted.internet import defer

from twistchat.chat import protocol as p
from twistchat.endpoint.api import MessageProtocol


class ChatPeer(MessageProtocol):
    def __init__(self) -> None:
        self.events: list = []
        self._waiting: dict[int, defer.Deferred] = {}
        self._next_id = 0
        self.lost = defer.Deferred()

    def request(self, cls, **fields) -> defer.Deferred:
        self._next_id += 1
        self.connection.send_message(p.encode(cls(id=self._next_id, **fields)))
        waiting = self._waiting[self._next_id] = defer.Deferred()
        return waiting

    def message_received(self, data: bytes) -> None:
        message = p.decode_server_message(data)
        request_id = getattr(message, "id", None)
        if isinstance(message, (p.Ok, p.ErrorReply)) and request_id in self._waiting:
            self._waiting.pop(request_id).callback(message)
        else:
            self.events.append(message)

    def connection_lost(self, reason) -> None:
        if not self.lost.called:
            self.lost.callback(reason)
