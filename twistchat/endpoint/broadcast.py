"""
One message to many sessions at once (a room line), compiled with the
transport (``twistchat/compiled.py``, issue 16): the loop over the
recipients calls each session's ``send_message`` natively.
"""

from __future__ import annotations

from twistchat.endpoint.api import INTERACTIVE_LANE, ConnectionClosed, MessageConnection, TransportError
from twistchat.endpoint.connection import Owner, SessionConnection
from twistchat.endpoint.servicing import _Handle
from twistchat.reliable.session import Session


def send_to_each(connections: list[MessageConnection | None], data: bytes,
                 lane: int = INTERACTIVE_LANE) -> list[int | None]:
    """One message to many sessions (a room line): its sequence number on
    each, None where there is no connection or its transport would not take
    it (over the peer's cap, the session ended). The endpoint's own
    connections take it in one pass: one clock read and one flush scheduled
    for all, no call per recipient through the layers (issue 16); any other
    ``MessageConnection`` through its ``send_message``. A session that has
    ended is passed over unsaid: a room's members leaving together (a
    timeout for all) each told the others, most of them ended already, and
    logging each of those drops cost more than the sends."""
    seqs: list[int | None] = []
    endpoint: Owner | None = None
    sent: list[_Handle] = []
    now = 0.0
    for connection in connections:
        try:
            if type(connection) is SessionConnection:
                if connection._endpoint is not endpoint:
                    if endpoint is not None:
                        endpoint.mark_all_dirty(sent)
                        sent = []
                    endpoint = connection._endpoint
                    now = endpoint.now()
                handle = connection._handle
                session: Session = handle.session
                seqs.append(session.send_message(data, now, False, lane))
                sent.append(handle)
            elif connection is None:
                seqs.append(None)
            else:
                seqs.append(connection.send_message(data, lane=lane))
        except ConnectionClosed:
            seqs.append(None)  # ended, or closing once flushed: expected, unsaid
        except TransportError as error:
            SessionConnection.log.debug("dropped a message to {peer}: {error}",
                                        peer=getattr(connection, "peer_address", None), error=error)
            seqs.append(None)
    if endpoint is not None:
        endpoint.mark_all_dirty(sent)
    return seqs
