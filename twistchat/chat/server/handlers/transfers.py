"""Transfer requests (PROTOCOL.md C14): open to a nick or a room, pieces in
order, the end, a cancel.  The state and the bounds are ``transfers``;
these check who may send what to whom, then hand over."""

from __future__ import annotations

from typing import Any

from twistchat.chat import protocol as p
from twistchat.chat.protocol import ChatProtocolError, ErrorCode, fold_nick
from twistchat.chat.server.core import Handler, ServerCore
from twistchat.chat.server.remote_transfers import RemoteRecipient
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
    remote: list[RemoteRecipient] = []
    if request.room is not None:
        room = server.room_of(user, request.room)
        others = [member for member in room.members.values() if member is not user]
        recipients: list[Any] = [member for member in others if not transfers.busy_receiving(member)]
        skipped = [member.nick for member in others if transfers.busy_receiving(member)]
        if server.cluster is not None:  # and the members on the other nodes, if theirs may take it
            remote, busy, full = await _ask(server, await _elsewhere_in(server, room, user))
            recipients += remote
            skipped += busy + full
        if not recipients:
            code = ErrorCode.TOO_MANY_TRANSFERS if others or skipped else ErrorCode.NOT_ONLINE
            raise ChatProtocolError(code, "nobody else in the room can take it now")
        target = {"room": room.name}
        room_name, to_nick = room.name, None
    else:
        key = fold_nick(request.to)
        recipient = server.online.get(key)
        if recipient is None and server.cluster is not None:
            holder = await server.bounded(server.cluster.holder(key))
            if holder is not None:  # online on another node: its node says if it may take it
                remote, busy, full = await _ask(server, {holder.node_id: [key]})
                if busy or full:
                    raise ChatProtocolError(ErrorCode.TOO_MANY_TRANSFERS, (
                        f"{busy[0]} is receiving as many as one may" if busy else
                        "the recipient's server is relaying all it may hold; try again later"))
                recipient = remote[0] if remote else None
        if recipient is None:
            raise ChatProtocolError(ErrorCode.NOT_ONLINE)
        if transfers.busy_receiving(recipient):
            raise ChatProtocolError(ErrorCode.TOO_MANY_TRANSFERS,
                                    f"{recipient.nick} is receiving as many as one may")
        recipients = [recipient]
        target = {"to": recipient.nick}
        room_name, to_nick = None, recipient.nick
    if user.departed or not transfers.room_for(len(recipients)) or transfers.busy_sending(user):
        if remote:
            server.cluster.transfers.forget(remote)
        if user.departed:
            return
        if transfers.busy_sending(user):  # another opened while its nodes were asked
            raise ChatProtocolError(ErrorCode.TOO_MANY_TRANSFERS,
                                    f"you are sending {config.max_transfers_per_user} already")
        raise ChatProtocolError(ErrorCode.TOO_MANY_TRANSFERS,
                                "the server is relaying all it may hold; try again later")
    relay = transfers.open(user, request, recipients, room_name, to_nick)
    if remote:
        server.cluster.transfers.opened(relay, remote)
    user.session.reply(request, transfer=relay.id, **target, name=request.name, size=request.size,
                       recipients=len(recipients), skipped=skipped,
                       piece_bytes=config.max_payload_bytes, window=config.transfer_window)


async def _elsewhere_in(server: ServerCore, room: Any, user: User) -> dict[str, list[str]]:
    """The room's members on other nodes, by node (the roster's)."""
    found: dict[str, list[str]] = {}
    for key, entry in (await server.bounded(server.broker.roster(room.key))).items():
        if entry.node_id != server.broker.node_id and key != user.key:
            found.setdefault(entry.node_id, []).append(key)
    return found


async def _ask(server: ServerCore, elsewhere: dict[str, list[str]]) -> Any:
    if not elsewhere:
        return [], [], []
    return await server.cluster.transfers.ask(elsewhere)


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
    if server.cluster is not None and outbound is None and server.cluster.transfers.cancel(
            user, request.transfer, request.reason or "no reason given"):  # from another node
        user.session.reply(request, transfer=request.transfer)
        return
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
