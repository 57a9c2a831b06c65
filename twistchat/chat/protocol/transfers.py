"""The messages of a transfer (PROTOCOL.md C14): a file of up to
``max_transfer_bytes`` sent to a nick or a room in pieces of at most
``max_payload_bytes``, so the transport's message cap stays its unit and
not the user's limit.  The sender opens (``transfer``), sends pieces in
order (``piece``, each answered once every recipient's transport has it),
ends (``transfer_end``, with size and sha256) or cancels; the server relays
each as an event of the same name, and ``transfer_failed`` tells either
side it is over."""

from __future__ import annotations

import re
from typing import ClassVar

import attrs

from twistchat.chat.protocol.schema import Event, Kind, Request, payload_field, request, server_message, wire_field

SHA256_HEX = re.compile(r"[0-9a-f]{64}\Z")
"""How a transfer's digest travels: 64 lower-case hex digits."""


@request
@attrs.frozen
class TransferOpen(Request):
    """Offer ``size`` bytes named ``name`` to the nick ``to`` or every other
    member of ``room`` (exactly one of the two)."""

    TYPE: ClassVar[str] = "transfer"
    id: int = wire_field(Kind.REQUEST_ID)
    name: str = wire_field(Kind.LINE)
    size: int = wire_field(Kind.UINT)
    to: str | None = wire_field(Kind.NICK, optional=True)
    room: str | None = wire_field(Kind.ROOM, optional=True)


@request
@attrs.frozen
class Piece(Request):
    """The bytes of an open transfer from ``offset`` on; pieces come in order."""

    TYPE: ClassVar[str] = "piece"
    HAS_PAYLOAD: ClassVar[bool] = True
    PACED: ClassVar[bool] = True
    id: int = wire_field(Kind.REQUEST_ID)
    transfer: int = wire_field(Kind.UINT)
    offset: int = wire_field(Kind.UINT)
    payload: bytes = payload_field()


@request
@attrs.frozen
class TransferEnd(Request):
    """Every piece was sent: the whole is ``size`` bytes with this ``sha256``."""

    TYPE: ClassVar[str] = "transfer_end"
    id: int = wire_field(Kind.REQUEST_ID)
    transfer: int = wire_field(Kind.UINT)
    size: int = wire_field(Kind.UINT)
    sha256: str = wire_field(Kind.LINE)


@request
@attrs.frozen
class TransferCancel(Request):
    TYPE: ClassVar[str] = "transfer_cancel"
    id: int = wire_field(Kind.REQUEST_ID)
    transfer: int = wire_field(Kind.UINT)
    reason: str | None = wire_field(Kind.LINE, optional=True)


@server_message
@attrs.frozen
class TransferEvent(Event):
    """``nick`` offers ``size`` bytes named ``name`` (to ``room`` if set)."""

    TYPE: ClassVar[str] = "transfer"
    transfer: int = wire_field(Kind.UINT)
    nick: str = wire_field(Kind.NICK)
    name: str = wire_field(Kind.LINE)
    size: int = wire_field(Kind.UINT)
    room: str | None = wire_field(Kind.ROOM, optional=True)


@server_message
@attrs.frozen
class PieceEvent(Event):
    TYPE: ClassVar[str] = "piece"
    HAS_PAYLOAD: ClassVar[bool] = True
    transfer: int = wire_field(Kind.UINT)
    offset: int = wire_field(Kind.UINT)
    payload: bytes = payload_field()


@server_message
@attrs.frozen
class TransferEndEvent(Event):
    TYPE: ClassVar[str] = "transfer_end"
    transfer: int = wire_field(Kind.UINT)
    size: int = wire_field(Kind.UINT)
    sha256: str = wire_field(Kind.LINE)


@server_message
@attrs.frozen
class TransferFailedEvent(Event):
    """The transfer is over unfinished (``code``: C9); with ``nick``, sent to
    the sender of a room transfer: only that recipient will not get it."""

    TYPE: ClassVar[str] = "transfer_failed"
    transfer: int = wire_field(Kind.UINT)
    code: str = wire_field(Kind.CODE)
    message: str = wire_field(Kind.ANY, default="")
    nick: str | None = wire_field(Kind.NICK, optional=True)


TRANSFER_EVENTS = (TransferEvent, PieceEvent, TransferEndEvent, TransferFailedEvent)
