"""Transport parameters agreed in CONNECT/ACCEPT: the idle timeout is the
smaller of the two, the client keeps alive at the server's interval, and
the peer's max_message_size caps what may be sent."""

from __future__ import annotations

import pytest

from twistchat.reliable.errors import CloseCode, MessageTooLarge
from twistchat.reliable.events import SessionClosed
from twistchat.reliable.session import SessionConfig
from twistchat.wire.packets import Ping

from .session_pair import Pair, events, frames, parameters, seqs, server_session


@pytest.mark.parametrize(("ours", "theirs"), [(30.0, 20.0), (20.0, 30.0)])
def test_server_idle_timeout_is_the_smaller_of_ours_and_the_clients(ours, theirs):
    theirs_ms = int(theirs * 1000)
    server = server_session(config=SessionConfig(idle_timeout=ours),
                            client_parameters=parameters(idle_timeout_ms=theirs_ms))
    assert server.idle_timeout == 20.0


@pytest.mark.parametrize(("client", "server"), [(30.0, 20.0), (20.0, 30.0)])
def test_both_sides_agree_on_the_smaller_idle_timeout(client, server):
    pair = Pair.connected(client_config=SessionConfig(idle_timeout=client),
                          server_config=SessionConfig(idle_timeout=server))
    assert pair.client.idle_timeout == pair.server.idle_timeout == 20.0


def test_an_idle_timeout_of_zero_from_the_peer_leaves_ours():
    server = server_session(config=SessionConfig(idle_timeout=30.0),
                            client_parameters=parameters(idle_timeout_ms=0))
    assert server.idle_timeout == 30.0


def test_silence_for_the_agreed_idle_timeout_closes_the_session():
    server = server_session(config=SessionConfig(idle_timeout=60.0),
                            client_parameters=parameters(idle_timeout_ms=20_000))
    assert server.get_timer() == 20.0
    server.handle_timer(19.9)
    assert not server.has_ended
    server.handle_timer(20.0)
    assert server.is_closed and server.datagrams_to_send(20.0) == []
    [closed] = events(server)
    assert isinstance(closed, SessionClosed) and closed.code is CloseCode.IDLE_TIMEOUT


def test_the_client_keeps_alive_at_the_servers_interval():
    pair = Pair.connected(client_config=SessionConfig(keepalive_interval=15.0),
                          server_config=SessionConfig(keepalive_interval=4.0))
    assert pair.client.keepalive_interval == 4.0
    assert pair.server.keepalive_interval is None  # only the client keeps the NAT open
    due = pair.client.get_timer()
    assert 4.0 <= due < 4.0 * 1.2
    pair.client.handle_timer(due)
    assert frames(pair.c2s(due)) == [Ping()]


def test_messages_over_the_peers_max_message_size_are_refused():
    server = server_session(client_parameters=parameters(max_message_size=100))
    assert server.send_message(b"x" * 100, 1.0) == 0
    with pytest.raises(MessageTooLarge):
        server.send_message(b"x" * 101, 1.0)
    assert server.send_message(b"z", 1.0) == 1  # the refused one took no sequence number
    assert seqs(server.datagrams_to_send(1.0)) == [0, 1]


def test_the_client_learns_the_servers_max_message_size_from_accept():
    pair = Pair.connected(server_config=SessionConfig(max_message_size=500))
    pair.client.send_message(b"y" * 500, 0.1)
    with pytest.raises(MessageTooLarge):
        pair.client.send_message(b"y" * 501, 0.1)
