"""The flow window: from the oldest unacknowledged message on, a sender puts
on the wire no more than the peer's announced receive_window (each message
counted as ``flow_charge`` of it), however much the application queues."""

from __future__ import annotations

from twistchat.reliable.reassembly import flow_charge
from twistchat.reliable.session import SessionConfig

from .session_pair import Pair, Peer, packets, parameters, seqs, server_session


def small_window_server(messages: int, size: int):
    """A server session whose client announced room for ``messages`` messages of ``size``."""
    window = messages * flow_charge(size, 1)
    return server_session(client_parameters=parameters(receive_window=window))


def test_no_more_than_the_window_goes_out_before_acks():
    server = small_window_server(10, 50)
    for i in range(100):
        server.send_message(bytes([i]) * 50, 1.0)
    assert seqs(server.datagrams_to_send(1.0)) == list(range(10))
    assert server.datagrams_to_send(2.0) == []  # no more until acks come


def test_the_window_counts_from_the_oldest_unacked_message():
    server = small_window_server(5, 1000)  # one 1000-byte message per packet
    for i in range(20):
        server.send_message(bytes([i]) * 1000, 1.0)
    assert seqs(server.datagrams_to_send(1.0)) == [0, 1, 2, 3, 4]  # packets 0..4
    peer = Peer(server)
    peer.ack(1, 2, 3, 4, now=1.1)  # packet 0 lost: message 0 still holds the window
    [(resent, _)] = server.datagrams_to_send(1.1)
    assert seqs([(resent, None)]) == [0]
    peer.ack(packets([(resent, None)])[0].packet_number, now=1.2)
    assert seqs(server.datagrams_to_send(1.2)) == [5, 6, 7, 8, 9]


def test_a_message_larger_than_the_window_waits_and_holds_back_those_after_it():
    server = server_session(client_parameters=parameters(receive_window=100))
    server.send_message(b"big" * 300, 1.0)
    server.send_message(b"next", 1.0)  # in order: not before the big one
    assert server.datagrams_to_send(1.0) == []


def test_the_client_obeys_the_window_the_server_announced_in_accept():
    pair = Pair.connected(server_config=SessionConfig(receive_window=3 * flow_charge(10, 1)))
    for i in range(10):
        pair.client.send_message(bytes([i]) * 10, 0.5)
    assert seqs(pair.c2s(0.5)) == [0, 1, 2]
    assert pair.c2s(0.51) == []  # the window is full
    pair.s2c(0.525)  # the server's delayed ack
    assert seqs(pair.c2s(0.53)) == [3, 4, 5]


def test_pending_bytes_falls_as_messages_are_acked():
    server = server_session()
    server.send_message(b"a" * 10, 1.0)
    server.datagrams_to_send(1.0)
    assert server.pending_bytes() == 10  # sent, not yet acknowledged
    Peer(server).ack(0, now=1.1)
    assert server.pending_bytes() == 0


def test_pending_bytes_counts_a_queued_message_once():
    server = server_session()
    server.send_message(b"a" * 10, 1.0)
    assert server.pending_bytes() == 10
