"""Ending a session (RFC 9000 §10.2): CLOSE, the closing and draining
periods of three PTOs, graceful close, give-up when acks stop coming."""

from __future__ import annotations

import pytest

from twistchat.reliable.config import MAX_CLOSING_PERIOD
from twistchat.reliable.errors import CloseCode, ConnectionClosed
from twistchat.reliable.events import MessageReceived, SessionClosed
from twistchat.reliable.session import SessionConfig, State
from twistchat.wire.packets import Close

from .session_pair import Pair, events, frames, seqs


def test_close_sends_close_and_the_peer_drains_in_silence():
    pair = Pair.connected()
    pair.client.close(1.0, CloseCode.NORMAL, "bye", graceful=False)
    assert pair.client.state is State.CLOSING and pair.client.has_ended
    assert events(pair.client) == [SessionClosed(CloseCode.NORMAL, "bye", False, ())]
    assert frames(pair.c2s(1.0)) == [Close(CloseCode.NORMAL, "bye")]
    assert pair.server.state is State.DRAINING and pair.server.has_ended
    assert events(pair.server) == [SessionClosed(CloseCode.NORMAL, "bye", True, ())]
    with pytest.raises(ConnectionClosed):
        pair.server.send_message(b"too late", 1.1)
    pair.server.handle_timer(1.1)
    assert pair.server.datagrams_to_send(1.1) == []


def test_a_closing_session_answers_every_packet_with_close_and_nothing_else():
    pair = Pair.connected()
    pair.client.close(1.0, CloseCode.SHUTTING_DOWN, graceful=False)
    pair.c2s(1.0, drop=True)  # the CLOSE is lost
    for now in (1.1, 1.2):
        pair.server.send_message(b"are you there?", now)
        pair.s2c(now)
        assert frames(pair.client.datagrams_to_send(now)) == [Close(CloseCode.SHUTTING_DOWN)]
    assert pair.client.datagrams_to_send(1.3) == []  # only in answer to a packet
    assert events(pair.client) == [SessionClosed(CloseCode.SHUTTING_DOWN, "", False, ())]


def test_closing_and_draining_both_end_after_three_ptos_or_the_cap():
    pair = Pair.connected()
    pair.client.close(1.0, graceful=False)
    pair.c2s(1.0)
    for session in (pair.client, pair.server):
        deadline = 1.0 + min(3 * session.rtt.probe_timeout(0.025), MAX_CLOSING_PERIOD)
        assert session.get_timer() == pytest.approx(deadline)
        session.handle_timer(deadline - 0.001)
        assert not session.is_closed
        session.handle_timer(deadline)
        assert session.is_closed and session.get_timer() is None
        assert session.datagrams_to_send(deadline) == []


def test_a_graceful_close_waits_until_everything_is_acked():
    pair = Pair.connected()
    pair.client.send_message(b"last words", 1.0)
    pair.client.close(1.0, graceful=True)
    with pytest.raises(ConnectionClosed):
        pair.client.send_message(b"more", 1.0)
    out = pair.c2s(1.0)
    assert seqs(out) == [0] and frames(out, Close) == []
    assert pair.client.is_established and events(pair.server) == [MessageReceived(b"last words")]
    pair.s2c(1.025)  # the server's delayed ack
    assert pair.client.state is State.CLOSING
    assert frames(pair.c2s(1.03)) == [Close(CloseCode.NORMAL)]
    assert pair.server.state is State.DRAINING


def test_a_hard_close_reports_the_messages_never_acked():
    pair = Pair.connected()
    pair.client.send_message(b"one", 1.0)
    pair.c2s(1.0, drop=True)
    pair.client.send_message(b"two", 1.0)  # never even sent
    pair.client.close(1.0, graceful=False)
    [closed] = events(pair.client)
    assert closed.unacked == (b"one", b"two")


def test_with_no_acks_the_sender_gives_up_and_reports_what_was_not_acked():
    pair = Pair.connected(client_config=SessionConfig(give_up_timeout=5.0))
    pair.client.send_message(b"unheard", 1.0)
    now = 1.0
    while not pair.client.has_ended:
        pair.c2s(now, drop=True)
        now = pair.client.get_timer()
        pair.client.handle_timer(now)
    assert now == pytest.approx(1.0 + 5.0)
    [closed] = events(pair.client)
    assert closed.code is CloseCode.PEER_UNRESPONSIVE and not closed.by_peer
    assert closed.unacked == (b"unheard",)
    assert pair.client.is_closed and pair.client.datagrams_to_send(now) == []


def test_closing_during_the_handshake_ends_at_once():
    client = Pair().client
    client.datagrams_to_send(0.0)
    client.close(0.1)
    assert client.is_closed and client.datagrams_to_send(0.1) == []
    [closed] = events(client)
    assert closed.code is CloseCode.NORMAL
