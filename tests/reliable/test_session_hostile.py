"""Peers that lie and hoard (issue 12): what a session honours of a peer's
parameters, how long an ended session lingers, the SendQ, and the memory
all sessions of an endpoint may hold in reassembly together."""

from __future__ import annotations

import pytest

from twistchat.reliable.config import (
    MAX_ACK_DELAY_LIMIT_MS, MAX_CLOSING_PERIOD, MIN_KEEPALIVE_INTERVAL, SessionConfig,
    parameter_problem,
)
from twistchat.reliable.errors import CloseCode, ConnectionClosed
from twistchat.reliable.events import SessionClosed
from twistchat.reliable.reassembly import ReassemblyBudget
from twistchat.reliable.sending import SendQueueBudget
from twistchat.reliable.session import Session, State
from twistchat.reliable.handshake import server_handshake
from twistchat.wire.packets import Accept, Close, Connect, Cookie, MessageFrame, decode_packet, encode_packet

from .session_pair import (
    COOKIE, SERVER, SERVER_KEY, Pair, Peer, events, frames, packets, parameters, send_paced,
    server_session,
)


def test_an_ack_delay_of_two_to_the_fourteen_ms_or_more_is_refused():
    assert parameter_problem(parameters(max_ack_delay_ms=MAX_ACK_DELAY_LIMIT_MS - 1)) is None
    assert "max_ack_delay" in parameter_problem(parameters(max_ack_delay_ms=MAX_ACK_DELAY_LIMIT_MS))
    assert parameter_problem(parameters(max_ack_delay_ms=2**62 - 1)) is not None


def _client_at_connect() -> tuple[Pair, Connect]:
    pair = Pair()
    [(hello, _)] = pair.client.datagrams_to_send(0.0)
    client_cid = decode_packet(hello).client_cid
    assert pair.client.receive_datagram(encode_packet(Cookie(client_cid, COOKIE)), SERVER, 0.0)
    [(connect, _)] = pair.client.datagrams_to_send(0.0)
    return pair, decode_packet(connect)


def _accept(connect: Connect, key=SERVER_KEY, **changes) -> bytes:
    accept, _, _ = server_handshake(connect, key, 77, bytes(16), parameters(**changes))
    return accept


def test_a_client_refuses_an_accept_with_invalid_parameters():
    pair, connect = _client_at_connect()
    assert pair.client.receive_datagram(_accept(connect, max_ack_delay_ms=2**40), SERVER, 0.01)
    [closed] = events(pair.client)
    assert isinstance(closed, SessionClosed) and closed.code is CloseCode.PROTOCOL_VIOLATION
    assert pair.client.is_closed


def test_a_forged_accept_changes_nothing_and_the_real_one_still_works():
    pair, connect = _client_at_connect()
    forged = encode_packet(Accept(connect.client_cid, bytes(200)))
    assert pair.client.receive_datagram(forged, SERVER, 0.01) is False
    assert pair.client.state is State.HANDSHAKE and pair.client.stats.unauthenticated == 1
    assert pair.client.receive_datagram(_accept(connect), SERVER, 0.02)
    assert pair.client.is_established


def test_a_server_proving_another_key_than_the_pinned_one_is_refused():
    pair = Pair()
    pair.client = Session.client(now=0.0, server_address=SERVER, expected_server_key=bytes(32))
    pair.handshake(0.0)
    [closed] = events(pair.client)
    assert closed.code is CloseCode.SERVER_KEY_MISMATCH and pair.client.is_closed


def test_sizes_the_peer_announces_are_clamped_to_our_own():
    ours = SessionConfig(max_message_size=70_000, receive_window=500_000)
    server = server_session(config=ours, client_parameters=parameters(
        max_message_size=16 * 1024 * 1024, receive_window=2**40))
    assert server.peer_parameters.max_message_size == 70_000
    assert server.peer_parameters.receive_window == 500_000


def test_a_server_cannot_make_its_clients_beat_faster_than_a_second():
    pair = Pair(server_config=SessionConfig(keepalive_interval=0.001))
    pair.handshake(0.0)
    assert pair.client.keepalive_interval == MIN_KEEPALIVE_INTERVAL


def test_an_inflated_ack_delay_cannot_stretch_the_draining_period():
    server = server_session(client_parameters=parameters(max_ack_delay_ms=MAX_ACK_DELAY_LIMIT_MS - 1))
    Peer(server).send(Close(0, "bye"), now=1.0)
    assert server.state is State.DRAINING
    assert server.get_timer() <= 1.0 + MAX_CLOSING_PERIOD
    server.handle_timer(1.0 + MAX_CLOSING_PERIOD)
    assert server.is_closed


def test_past_the_send_queue_bound_the_session_is_closed_with_a_clear_code():
    server = server_session(config=SessionConfig(max_send_queue=10_000))
    for _ in range(9):
        server.send_message(bytes(1000), 1.0)  # 9,000 queued, none acknowledged
    with pytest.raises(ConnectionClosed):
        server.send_message(bytes(1001), 1.1)
    [closed] = events(server)
    assert closed.code is CloseCode.SEND_QUEUE_EXCEEDED and len(closed.unacked) == 9
    assert frames(server.datagrams_to_send(1.1), Close) == [Close(int(CloseCode.SEND_QUEUE_EXCEEDED),
                                                                   closed.reason)]


def test_acknowledged_bytes_leave_the_send_queue():
    server = server_session(config=SessionConfig(max_send_queue=10_000))
    peer = Peer(server)
    for round_ in range(30):  # 30 x 5,000 bytes through a 10,000-byte SendQ
        for _ in range(5):
            server.send_message(bytes(1000), 1.0 + round_)
        sent = send_paced(server, 1.0 + round_)
        peer.ack(*(p.packet_number for p in packets(sent)), now=1.0 + round_ + 0.01)
    assert server.is_established and server.pending_bytes() == 0


def test_sessions_share_one_send_queue_budget_and_a_hoarder_is_the_one_closed():
    """Issue 12: a SendQ per session times many sessions is no bound."""
    budget = SendQueueBudget(total=40_000)
    hoarder, *others = (server_session(send_budget=budget) for _ in range(4))
    for session in others:
        session.send_message(bytes(5_000), 1.0)
    for _ in range(25):  # 25,000 more: past the budget
        hoarder.send_message(bytes(1_000), 1.0)
    assert (budget.used, budget.holders) == (40_000, 4)
    with pytest.raises(ConnectionClosed):
        hoarder.send_message(bytes(1_000), 1.1)  # over the budget and over its share (10,000)
    [closed] = events(hoarder)
    assert closed.code is CloseCode.SEND_QUEUE_EXCEEDED and "share" in closed.reason
    assert (budget.used, budget.holders) == (15_000, 3)  # given back at close
    for session in others:  # under their share: they go on
        session.send_message(bytes(1_000), 1.2)
        assert session.is_established


def test_acknowledged_and_closed_sessions_give_the_send_budget_back():
    budget = SendQueueBudget(total=1_000_000)
    server = server_session(send_budget=budget)
    server.send_message(bytes(1000), 1.0)
    Peer(server).ack(*(p.packet_number for p in packets(server.datagrams_to_send(1.0))), now=1.01)
    assert (budget.used, budget.holders) == (0, 0)
    server.send_message(bytes(500), 1.1)
    server.close(1.2, graceful=False)
    assert (budget.used, budget.holders) == (0, 0)


def _fragments(session: Session, count: int, now: float) -> None:
    """``count`` 1,000-byte fragments of one never-completed 60 kB message."""
    peer = Peer(session)
    for k in range(count):
        peer.send(MessageFrame(0, bytes(1000), 1000 * k, 60_000), now=now)


def test_sessions_share_one_reassembly_budget_and_give_it_back():
    budget = ReassemblyBudget(total=5_000)
    a, b = (server_session(reassembly_budget=budget) for _ in range(2))
    _fragments(a, 3, now=0.1)
    assert a.is_established and 3_000 < budget.used < 5_000
    _fragments(b, 2, now=0.1)  # well within b's own 1 MiB window, but the endpoint is full
    [closed] = events(b)
    assert closed.code is CloseCode.SERVER_BUSY
    assert a.is_established
    a.close(0.2, graceful=False)
    assert budget.used == 0  # everything given back when the sessions ended
