"""The exception every refusal travels as, from the decoder or a server
handler up to the one place that turns it into an ``error`` reply."""

from __future__ import annotations

from twistchat.chat.protocol.codes import ErrorCode
from twistchat.chat.protocol.server_messages import ErrorReply


class ChatProtocolError(Exception):
    """A protocol-level refusal: carries a machine code, human text and, when the
    offending message got far enough to show it, the request id to answer."""

    def __init__(self, code: ErrorCode, message: str | None = None,
                 request_id: int | None = None) -> None:
        self.code = ErrorCode(code)
        self.message = message if message is not None else self.code.text
        self.request_id = request_id
        super().__init__(f"{self.code}: {self.message}")

    def to_reply(self) -> ErrorReply:
        return ErrorReply(id=self.request_id, code=str(self.code), message=self.message)
