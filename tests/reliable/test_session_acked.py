"""Tracked messages: the layer above learns when the peer's transport has
all of a message (a DM is deleted from the mailbox, and its sender told
"delivered", only then), and never for a message the peer did not get."""

from __future__ import annotations

from twistchat.reliable.errors import CloseCode
from twistchat.reliable.events import MessageAcked, SessionClosed

from .session_pair import Pair, Peer, events, packets, server_session


def test_a_tracked_message_is_reported_once_the_peer_acks_it():
    server = server_session()
    seq = server.send_message(b"dm for bob", 1.0, track=True)
    [(datagram, _)] = server.datagrams_to_send(1.0)
    assert not [e for e in events(server) if isinstance(e, MessageAcked)]  # sent is not acked
    Peer(server).ack(packets([(datagram, None)])[0].packet_number, now=1.05)
    assert events(server) == [MessageAcked(seq)]


def test_untracked_messages_cost_no_event():
    server = server_session()
    server.send_message(b"room line", 1.0)
    [(datagram, _)] = server.datagrams_to_send(1.0)
    Peer(server).ack(packets([(datagram, None)])[0].packet_number, now=1.05)
    assert events(server) == []


def test_a_fragmented_message_is_acked_only_when_every_fragment_is():
    pair = Pair.connected()
    seq = pair.server.send_message(bytes(5000), 1.0, track=True)
    sent = pair.s2c(1.0, drop={1})  # the second fragment is lost
    assert len(sent) > 2
    pair.c2s(1.03)
    pair.c2s(1.06)
    pair.s2c(1.06)
    assert MessageAcked(seq) not in events(pair.server)
    assert pair.server.acked_below == seq  # the cumulative mark waits for the fragment too
    for step in range(1, 40):  # let loss recovery resend the fragment
        now = 1.06 + step * 0.05
        pair.server.handle_timer(max(now, pair.server.get_timer() or now))
        pair.s2c(now)
        pair.c2s(now + 0.01)
        got = events(pair.server)
        if MessageAcked(seq) in got:
            break
    else:
        raise AssertionError("the message was never reported acknowledged")
    assert got.count(MessageAcked(seq)) == 1
    assert pair.server.acked_below == seq + 1


def test_a_session_that_ends_first_reports_the_message_unacked_not_acked():
    server = server_session()
    server.send_message(b"never acked", 1.0, track=True)
    server.datagrams_to_send(1.0)
    server.close(1.1, CloseCode.NORMAL, graceful=False)
    [closed] = events(server)
    assert isinstance(closed, SessionClosed) and closed.unacked == (b"never acked",)


def test_acked_below_moves_only_over_messages_acknowledged_with_every_earlier_one():
    """The cumulative mark a room's fan-out reads instead of an event per line."""
    server = server_session()
    sent = []
    for line in (b"one", b"two", b"three"):
        seq = server.send_message(line, 1.0)
        [(datagram, _)] = server.datagrams_to_send(1.0)
        sent.append((seq, packets([(datagram, None)])[0].packet_number))
    (first, pn1), (second, pn2), (third, pn3) = sent
    assert server.acked_below == first  # sent is not acknowledged
    peer = Peer(server)
    peer.ack(pn2, now=1.05)
    assert server.acked_below == first  # "two" arrived, but "one" not yet
    peer.ack(pn1, pn2, now=1.06)
    assert server.acked_below == second + 1
    peer.ack(pn1, pn2, pn3, now=1.07)
    assert server.acked_below == third + 1
    assert events(server) == []  # no event for any of them
    server.send_message(b"never acked", 1.1)
    server.close(1.2, CloseCode.NORMAL, graceful=False)
    assert server.acked_below == third + 1  # the end of the session acknowledges nothing

