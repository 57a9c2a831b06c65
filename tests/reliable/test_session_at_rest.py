"""An idle session's AEAD contexts and empty queues (issue 16): dropped
once a keepalive is answered with nothing of ours in flight, built again
by the next packet either way, so what goes through is unchanged."""

from __future__ import annotations

import tracemalloc

from twistchat.reliable.events import MessageReceived

from .session_pair import Pair, events

KEEPALIVE_DUE = 31.0  # past the default 25 s interval and its jitter (x1.2)


def settled_pair() -> Pair:
    pair = Pair.connected()
    pair.client.send_message(b"hello", 1.0)
    pair.c2s(1.0)
    pair.s2c(1.1)  # the server's ack
    pair.server.send_message(b"welcome", 1.2)
    pair.s2c(1.2)
    pair.c2s(1.3)  # the client's ack: nothing in flight either way
    events(pair.client), events(pair.server)
    return pair


def test_an_answered_keepalive_leaves_the_server_session_at_rest_and_the_next_packets_go_through():
    pair = settled_pair()
    assert not pair.server.protection.at_rest
    pair.client.handle_timer(KEEPALIVE_DUE)
    pair.c2s(KEEPALIVE_DUE)  # PING alone
    assert pair.s2c(KEEPALIVE_DUE)  # its ACK, sealed before the contexts went
    assert pair.server.protection.at_rest
    pair.server.send_message(b"a line while you were idle", KEEPALIVE_DUE + 1)
    pair.s2c(KEEPALIVE_DUE + 1)
    assert [e.data for e in events(pair.client) if isinstance(e, MessageReceived)] == [
        b"a line while you were idle"]
    pair.client.send_message(b"thanks", KEEPALIVE_DUE + 2)
    pair.c2s(KEEPALIVE_DUE + 2)
    assert [e.data for e in events(pair.server) if isinstance(e, MessageReceived)] == [b"thanks"]
    assert not pair.server.protection.at_rest


def test_a_keepalive_while_our_data_waits_for_an_ack_keeps_the_contexts():
    pair = settled_pair()
    pair.server.send_message(b"unacknowledged", KEEPALIVE_DUE - 1)
    pair.s2c(KEEPALIVE_DUE - 1, drop=True)  # lost: it stays in flight
    pair.client.handle_timer(KEEPALIVE_DUE)
    assert pair.c2s(KEEPALIVE_DUE)  # PING alone
    pair.s2c(KEEPALIVE_DUE)
    assert not pair.server.protection.at_rest


GIVEN_BACK_AT_REST = 1500
"""Bytes a server session at rest holds less than while busy, at least:
two empty deques (760 bytes each) and the tables of emptied dicts."""


def test_a_session_at_rest_gives_back_its_empty_queues_and_then_sends_and_receives_as_before():
    tracemalloc.start()  # before the session is made: its frees count only then
    try:
        pair = settled_pair()
        pair.client.handle_timer(KEEPALIVE_DUE)
        pair.c2s(KEEPALIVE_DUE)
        before, _ = tracemalloc.get_traced_memory()
        pair.s2c(KEEPALIVE_DUE)  # the ACK; then the session rests
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert before - after >= GIVEN_BACK_AT_REST
    for n in range(3):  # and everything works again, both ways, in order
        pair.server.send_message(b"line %d" % n, KEEPALIVE_DUE + 1 + n, track=True)
        pair.s2c(KEEPALIVE_DUE + 1 + n)
        pair.c2s(KEEPALIVE_DUE + 1.05 + n)
    assert [e.data for e in events(pair.client) if isinstance(e, MessageReceived)] == [
        b"line 0", b"line 1", b"line 2"]
    assert [type(e).__name__ for e in events(pair.server)] == ["MessageAcked"] * 3
