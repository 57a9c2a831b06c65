"""NAT rebinding on the server side: a packet from a new address is processed,
but the new address gets nothing but a PATH_CHALLENGE, never more bytes
than it sent, until it answers with the right PATH_RESPONSE."""

from __future__ import annotations

from twistchat.reliable.events import MessageReceived, PathMigrated
from twistchat.wire.packets import MessageFrame, PathChallenge, PathResponse, Ping

from .session_pair import CLIENT, NEW_CLIENT, Pair, Peer, events, frames, server_session


def to(address, datagrams):
    return [(d, a) for d, a in datagrams if a == address]


def test_data_from_a_new_address_is_processed_and_answered_with_a_challenge_only():
    pair = Pair.connected()
    pair.client.send_message(b"hello from the new port", 1.0)
    pair.client_address = NEW_CLIENT
    pair.c2s(1.0)
    assert events(pair.server) == [MessageReceived(b"hello from the new port")]
    out = pair.server.datagrams_to_send(1.0)
    [challenge] = frames(to(NEW_CLIENT, out))
    assert isinstance(challenge, PathChallenge) and len(to(NEW_CLIENT, out)) == 1
    assert pair.server.peer_address == CLIENT
    later = pair.server.datagrams_to_send(1.025)  # the delayed ack: to the old address
    assert frames(later) and to(NEW_CLIENT, later) == []


def test_the_right_path_response_moves_the_peer_address():
    pair = Pair.connected()
    pair.client.send_message(b"m" * 50, 1.0)
    pair.client_address = NEW_CLIENT
    pair.c2s(1.0)
    [challenge] = frames(pair.s2c(1.0), PathChallenge)  # the client receives it
    assert frames(pair.c2s(1.01), PathResponse) == [PathResponse(challenge.data)]
    assert events(pair.server)[-1] == PathMigrated(CLIENT, NEW_CLIENT)
    assert pair.server.peer_address == NEW_CLIENT
    pair.server.send_message(b"to the new port", 1.02)
    out = pair.server.datagrams_to_send(1.02)
    assert out and all(address == NEW_CLIENT for _, address in out)


def test_a_wrong_path_response_or_one_from_another_address_moves_nothing():
    server = server_session()
    peer = Peer(server)
    peer.send(MessageFrame(0, b"x" * 40), now=1.0, address=NEW_CLIENT)
    [challenge] = frames(server.datagrams_to_send(1.0), PathChallenge)
    peer.send(PathResponse(b"\x00" * 8), now=1.01, address=NEW_CLIENT)
    peer.send(PathResponse(challenge.data), now=1.01, address=CLIENT)  # not from the new address
    peer.send(PathResponse(challenge.data), now=1.01, address=("203.0.113.5", 1))
    assert server.peer_address == CLIENT
    assert not any(isinstance(e, PathMigrated) for e in events(server))


def test_the_new_address_never_gets_more_bytes_than_it_sent():
    server = server_session()
    peer = Peer(server)
    received = peer.send(Ping(), now=1.0, address=NEW_CLIENT)
    sent = to(NEW_CLIENT, server.datagrams_to_send(1.0))
    assert len(received) < 35 and sent == []  # a sealed challenge (header 10, frame 9, tag 16) is bigger
    received += peer.send(Ping(), now=1.1, address=NEW_CLIENT)
    sent = to(NEW_CLIENT, server.datagrams_to_send(1.1))
    assert frames(sent, PathChallenge) and sum(len(d) for d, _ in sent) <= len(received)
    for now in (3.0, 6.0, 9.0):  # PTOs pass: no new challenge without new bytes from there
        server.handle_timer(now)
        assert to(NEW_CLIENT, server.datagrams_to_send(now)) == []


def test_the_client_ignores_data_from_another_address():
    pair = Pair.connected()
    pair.server.send_message(b"spoofed?", 1.0)
    [(datagram, _)] = pair.server.datagrams_to_send(1.0)
    assert pair.client.receive_datagram(datagram, ("203.0.113.5", 9999), 1.0)
    assert events(pair.client) == []
    assert pair.client.stats.dropped_from_unvalidated_path == 1
