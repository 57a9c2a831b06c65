"""A malformed or forged datagram: ``receive_datagram`` says False and nothing changes."""

from __future__ import annotations

import attrs
import pytest

from twistchat.reliable.events import MessageReceived
from twistchat.wire.packets import MessageFrame, Ping, encode_frames

from .session_pair import CLIENT, Peer, events, sealed, seqs, server_session

HELLO = encode_frames((MessageFrame(0, b"hello"),))
TWO_FRAMES = encode_frames((MessageFrame(0, b"hello"), Ping()))


def _flip(datagram: bytes, index: int) -> bytes:
    return datagram[:index] + bytes((datagram[index] ^ 0x40,)) + datagram[index + 1:]


BAD = {
    "empty": lambda s: b"",
    "version": lambda s: b"\xff" * 40,
    "header": lambda s: sealed(s, 5, HELLO)[:6],  # cut inside the connection id
    "length": lambda s: sealed(s, 5, TWO_FRAMES[:-3]),  # authentic, but a frame runs past the end
    "frame-type": lambda s: sealed(s, 5, b"\x7f" + HELLO[1:]),  # authentic, unknown frame type
    # authentic, a NEXT_MESSAGE (0x14) with no message frame before it to follow
    "next-message-first": lambda s: sealed(s, 5, b"\x14" + HELLO[2:]),
    "next-message-after-ping": lambda s: sealed(s, 5, encode_frames((Ping(),)) + b"\x14" + HELLO[2:]),
    "flipped-header": lambda s: _flip(sealed(s, 5, HELLO), 9),  # the packet number changed
    "flipped-body": lambda s: _flip(sealed(s, 5, HELLO), 11),
    "flipped-tag": lambda s: _flip(sealed(s, 5, HELLO), -1),
    "truncated-tag": lambda s: sealed(s, 5, HELLO)[:-1],
}


@pytest.mark.parametrize("kind", list(BAD))
def test_a_malformed_datagram_is_refused_and_changes_nothing(kind):
    server = server_session()
    datagram = BAD[kind](server)
    peer = Peer(server)
    peer.send(Ping(), now=1.0)
    server.send_message(b"queued", 1.0)
    stats, timer, state = attrs.evolve(server.stats), server.get_timer(), server.state
    assert server.receive_datagram(datagram, CLIENT, 1.01) is False
    if kind.startswith(("flipped", "truncated")):
        stats.unauthenticated += 1  # counted as forged, and nothing else moved
    assert server.stats == stats and server.get_timer() == timer and server.state is state
    assert events(server) == []
    # and it goes on as if the datagram had never come
    assert server.receive_datagram(sealed(server, 5, HELLO), CLIENT, 1.02) is True
    assert events(server) == [MessageReceived(b"hello")]
    assert seqs(server.datagrams_to_send(1.02)) == [0]
