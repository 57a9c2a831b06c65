"""Issue 13: a packet that is not this session's, whatever it carries, is
dropped, counted and changes nothing; a RESET needs the session's token."""

from __future__ import annotations

import attrs
import pytest

from twistchat.reliable.errors import CloseCode
from twistchat.reliable.events import SessionClosed
from twistchat.reliable.protection import reset_token
from twistchat.wire.packets import Ack, Close, PathResponse, Ping, Reset, encode_frames, encode_packet

from .session_pair import (
    CLIENT, NEW_CLIENT, RESET_SECRET, SERVER, SERVER_CID, Pair, Peer, events, sealed, server_session,
)

FORGED_FRAMES = {
    "ack": (Ack(((0, 5),)),),
    "close": (Close(0, "bye"),),
    "path-response": (PathResponse(b"12345678"),),
}


@pytest.mark.parametrize("kind", list(FORGED_FRAMES))
def test_a_packet_sealed_with_another_sessions_key_changes_nothing(kind):
    victim, other = server_session(), server_session()
    Peer(victim).send(Ping(), now=1.0)
    victim.send_message(b"queued", 1.0)
    before = (attrs.evolve(victim.stats), victim.get_timer(), victim.state, victim.peer_address)
    forged = sealed(other, 7, encode_frames(FORGED_FRAMES[kind]))  # right cid, wrong key
    assert victim.receive_datagram(forged, NEW_CLIENT, 1.01) is False
    stats, timer, state, address = before
    stats.unauthenticated += 1
    assert (victim.stats, victim.get_timer(), victim.state, victim.peer_address) == \
        (stats, timer, state, address)
    assert events(victim) == []


def test_a_replayed_packet_opens_but_changes_nothing():
    server = server_session()
    datagram = Peer(server).send(Ping(), now=1.0)
    stats = attrs.evolve(server.stats)
    assert server.receive_datagram(datagram, CLIENT, 1.01)
    assert server.stats.duplicate_packets == stats.duplicate_packets + 1
    assert events(server) == []


def test_a_reset_without_the_token_is_dropped_and_with_it_ends_the_session():
    pair = Pair.connected()
    forged = encode_packet(Reset(SERVER_CID, bytes(16)))
    assert pair.client.receive_datagram(forged, SERVER, 1.0) is False
    assert pair.client.is_established and pair.client.stats.unauthenticated == 1
    real = encode_packet(Reset(SERVER_CID, reset_token(RESET_SECRET, SERVER_CID)))
    assert pair.client.receive_datagram(real, SERVER, 1.1)
    [closed] = events(pair.client)
    assert isinstance(closed, SessionClosed) and closed.code is CloseCode.RESET
