"""Transfer requests (PROTOCOL.md C14): open to a nick or a room, pieces in
order, the end, a cancel.  The state and the bounds are ``transfers``;
these check who may send what to whom, then hand over."""

from __future__ import annotations

from twistchat.chat import protocol as p
from twistchat.chat.protocol import ChatProtocolError, ErrorCode, fold_nick
from twistchat.chat.server.core import Handler, ServerCore
from twistchat.chat.server.user import User


async def open_transfer(server: ServerCore, user: User, request: p.TransferOpen) -> None:
    transfers, config = server.transfers, server.config
    if (request.to is None) == (request.room is None):
        raise ChatProtocolError(ErrorCode.BAD_FIELD, "give exactly one of to and room")
    if not request.name:
        raise ChatProtocolError(ErrorCode.BAD_FIELD, "name missing")
    if request.size > config.max_transfer_bytes:
        raise ChatProtocolError(ErrorCode.TOO_LARGE,
                                f"{request.size} bytes, limit {config.max_transfer_bytes}")
    if transfers.busy_sending(user):
        raise ChatProtocolError(ErrorCode.TOO_MANY_TRANSFERS,
                                f"you are sending {config.max_transfers_per_user} already")
    skipped: list[str] = []
    if request.room is not None:
        room = server.room_of(user, request.room)
        others = [member for member in room.members.values() if member is not user]
        recipients = [member for member in others if not transfers.busy_receiving(member)]
        skipped = [member.nick for member in others if transfers.busy_receiving(member)]
        if not recipients:
            raise ChatProtocolError(ErrorCode.NOT_ONLINE if not others else ErrorCode.TOO_MANY_TRANSFERS,
                                    "nobody else in the room can take it now")
        target = {"room": room.name}
        room_name, to_nick = room.name, None
    else:
        recipient = server.online.get(fold_nick(request.to))
        if recipient is None:
            raise ChatProtocolError(ErrorCode.NOT_ONLINE)
        if transfers.busy_receiving(recipient):
            raise ChatProtocolError(ErrorCode.TOO_MANY_TRANSFERS,
                                    f"{recipient.nick} is receiving as many as one may")
        recipients = [recipient]
        target = {"to": recipient.nick}
        room_name, to_nick = None, recipient.nick
    if not transfers.room_for(len(recipients)):
        raise ChatProtocolError(ErrorCode.TOO_MANY_TRANSFERS,
                                "the server is relaying all it may hold; try again later")
    relay = transfers.open(user, request, recipients, room_name, to_nick)
    user.session.reply(request, transfer=relay.id, **target, name=request.name, size=request.size,
                       recipients=len(recipients), skipped=skipped,
                       piece_bytes=config.max_payload_bytes, window=config.transfer_window)


async def piece(server: ServerCore, user: User, request: p.Piece) -> None:
    """Relayed now; answered (by ``transfers``) once every recipient has it."""
    server.transfers.piece(server.transfers.find(user, request.transfer), request)


async def end_transfer(server: ServerCore, user: User, request: p.TransferEnd) -> None:
    server.transfers.end(server.transfers.find(user, request.transfer), request)


async def cancel_transfer(server: ServerCore, user: User, request: p.TransferCancel) -> None:
    """From the sender: the transfer ends for everyone. From a recipient: it
    declines the rest (its client cannot save it), the others go on."""
    transfers = server.transfers
    relay = transfers.relays.get(request.transfer)
    outbound = relay.recipients.get(user.key) if relay is not None else None
    if outbound is not None and outbound.user is user:
        transfers.recipient_lost(relay, user, f"declined: {request.reason or 'no reason given'}")
    else:
        relay = transfers.find(user, request.transfer)
        transfers.fail(relay, ErrorCode.CANCELLED, request.reason or "cancelled by the sender")
    user.session.reply(request, transfer=relay.id)


HANDLERS: dict[type, Handler] = {
    p.TransferOpen: open_transfer, p.Piece: piece, p.TransferEnd: end_transfer,
    p.TransferCancel: cancel_transfer,
}
