"""A malformed datagram: ``receive_datagram`` says False and nothing changes."""

from __future__ import annotations

import attrs
import pytest

from twistchat.reliable.events import MessageReceived
from twistchat.wire.packets import Data, MessageFrame, Ping, encode_packet

from .session_pair import CLIENT, SERVER_CID, Peer, events, seqs, server_session

GOOD = encode_packet(Data(SERVER_CID, 5, (MessageFrame(0, b"hello"),)))
TWO_FRAMES = encode_packet(Data(SERVER_CID, 5, (MessageFrame(0, b"hello"), Ping())))


@pytest.mark.parametrize("datagram", [
    b"",
    b"\xff" * 40,  # unknown version
    GOOD[:6],  # cut inside the connection id
    TWO_FRAMES[:-3],  # the first frame's length runs past the end
    GOOD[:10] + b"\x7f" + GOOD[11:],  # an unknown frame type
], ids=["empty", "version", "header", "length", "frame-type"])
def test_a_malformed_datagram_is_refused_and_changes_nothing(datagram):
    server = server_session()
    peer = Peer(server)
    peer.send(Ping(), now=1.0)
    server.send_message(b"queued", 1.0)
    stats, timer, state = attrs.evolve(server.stats), server.get_timer(), server.state
    assert server.receive_datagram(datagram, CLIENT, 1.01) is False
    assert server.stats == stats and server.get_timer() == timer and server.state is state
    assert events(server) == []
    # and it goes on as if the datagram had never come
    assert server.receive_datagram(GOOD, CLIENT, 1.02) is True
    assert events(server) == [MessageReceived(b"hello")]
    assert seqs(server.datagrams_to_send(1.02)) == [0]
