"""The handshake, driven on the sessions directly: HELLO -> COOKIE -> CONNECT -> ACCEPT."""

from __future__ import annotations

import pytest

from twistchat.reliable.errors import CloseCode
from twistchat.reliable.events import HandshakeCompleted, SessionClosed
from twistchat.reliable.noise import public_bytes
from twistchat.reliable.session import SessionConfig, State
from twistchat.wire.packets import (
    MIN_HELLO_SIZE, Accept, Cookie, Hello, decode_packet, encode_packet,
)

from .session_pair import COOKIE, SERVER, SERVER_CID, SERVER_KEY, Pair, events, packets


def test_hello_is_padded_then_cookie_connect_accept_establish_both():
    pair = Pair(client_config=SessionConfig(receive_window=5000))
    hello, cookie, connect, accept = pair.handshake(0.0)
    cid = pair.client.local_cid
    assert len(hello) == MIN_HELLO_SIZE == 1200
    assert decode_packet(hello) == Hello(cid)
    assert decode_packet(cookie) == Cookie(cid, COOKIE)
    connect_packet = decode_packet(connect)
    assert connect_packet.client_cid == cid and connect_packet.cookie == COOKIE
    # Noise message 1: the client's ephemeral key, then its parameters in clear.
    assert connect_packet.handshake[32:] == SessionConfig(receive_window=5000).transport_parameters().encode()
    accept_packet = decode_packet(accept)
    assert isinstance(accept_packet, Accept) and accept_packet.client_cid == cid
    # Noise message 2: nothing of the server's parameters or connection id in clear.
    assert SessionConfig().transport_parameters().encode() not in accept_packet.handshake
    assert SERVER_CID.to_bytes(8, "big") not in accept
    assert events(pair.client) == [HandshakeCompleted()]
    assert pair.client.server_key == public_bytes(SERVER_KEY)
    assert pair.client.is_established and pair.server.is_established
    assert pair.client.state is pair.server.state is State.ESTABLISHED


def test_client_is_not_established_before_accept():
    pair = Pair()
    pair.client.datagrams_to_send(0.0)
    assert pair.client.state is State.HANDSHAKE and not pair.client.is_established
    assert events(pair.client) == []


def test_lost_hello_is_sent_again_twice_after_the_initial_rtt():
    client = Pair().client
    client.datagrams_to_send(0.0)  # lost
    assert client.get_timer() == pytest.approx(0.333)
    client.handle_timer(0.33)
    assert client.datagrams_to_send(0.33) == []
    client.handle_timer(0.333)
    retry = client.datagrams_to_send(0.333)
    assert packets(retry) == [Hello(client.local_cid)] * 2
    assert all(len(d) == 1200 and to == SERVER for d, to in retry)


def test_lost_accept_a_repeated_connect_gets_a_new_accept():
    pair = Pair()
    pair.client.datagrams_to_send(0.0)
    pair.client.receive_datagram(encode_packet(Cookie(pair.client.local_cid, COOKIE)), SERVER, 0.05)
    [(connect, _)] = pair.client.datagrams_to_send(0.05)
    pair.accept(connect, 0.06, lost=True)
    # The COOKIE took 50 ms: the retry waits one PTO of that sample, not 333 ms.
    retry_at = pair.client.get_timer()
    assert retry_at == pytest.approx(0.05 + (0.05 + 4 * 0.025))
    pair.client.handle_timer(retry_at)
    assert packets(pair.c2s(retry_at)) == [decode_packet(connect)] * 2
    [accept] = packets(pair.s2c(retry_at))
    assert isinstance(accept, Accept)
    assert pair.client.is_established


def test_a_connect_again_then_the_clients_first_data_owes_no_accept():
    """The client sent CONNECT twice; the second arrives, then (same turn)
    the client's first DATA: it has ACCEPT, so none is owed any more, and
    the server forgets the bytes it kept for that (bench cluster found the
    server writing None in that order)."""
    pair = Pair()
    pair.client.datagrams_to_send(0.0)
    pair.client.receive_datagram(encode_packet(Cookie(pair.client.local_cid, COOKIE)), SERVER, 0.05)
    [(connect, _)] = pair.client.datagrams_to_send(0.05)
    pair.accept(connect, 0.06)
    assert pair.server.receive_datagram(connect, pair.client_address, 0.07)  # the retry, late
    pair.client.send_message(b"hello", 0.07)
    pair.c2s(0.07)
    out = pair.server.datagrams_to_send(0.07)
    assert all(isinstance(datagram, bytes) for datagram, _ in out)
    assert not any(isinstance(p, Accept) for p in packets(out))
    assert pair.server.receive_datagram(connect, pair.client_address, 0.08)  # later still
    assert not any(isinstance(p, Accept) for p in packets(pair.server.datagrams_to_send(0.08)))


def test_no_answer_ends_with_handshake_failed_at_handshake_timeout():
    client = Pair(client_config=SessionConfig(handshake_timeout=4.0)).client
    now = 0.0
    while client.state is State.HANDSHAKE:
        assert now < 4.0
        assert all(isinstance(p, Hello) for p in packets(client.datagrams_to_send(now)))
        now = client.get_timer()
        client.handle_timer(now)
    assert now == 4.0 and client.is_closed and client.get_timer() is None
    [closed] = events(client)
    assert isinstance(closed, SessionClosed) and closed.code is CloseCode.HANDSHAKE_FAILED
    assert not closed.by_peer

