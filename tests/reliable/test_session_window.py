"""A small receive window for strangers (issue 12): a server announces just
enough for one largest message until the application vouches for the peer
(its user logged in); then a WINDOW frame, sent until acknowledged, grows
it to the full window."""

from __future__ import annotations

from twistchat.reliable.config import SessionConfig, stranger_window
from twistchat.reliable.events import MessageReceived, SessionClosed
from twistchat.reliable.reassembly import flow_charge
from twistchat.wire.packets import Window

from .session_pair import Pair, events, frames

FULL = 1024 * 1024
SMALL = stranger_window(64 * 1024)
SERVER = SessionConfig(receive_window=FULL, initial_receive_window=SMALL)


def test_a_stranger_is_offered_only_the_small_window():
    pair = Pair.connected(server_config=SERVER)
    assert pair.client.peer_parameters.receive_window == SMALL
    # Yet the largest message still fits in it, whole.
    pair.client.send_message(bytes(64 * 1024), 1.0)
    for step in range(20):
        pair.c2s(1.0 + step * 0.01)
        pair.s2c(1.0 + step * 0.01)
    assert MessageReceived(bytes(64 * 1024)) in events(pair.server)
    assert flow_charge(64 * 1024, 61) <= SMALL


def test_vouching_grows_the_window_and_the_frame_is_sent_until_acknowledged():
    pair = Pair.connected(server_config=SERVER)
    pair.server.open_receive_window(1.0)
    first = pair.s2c(1.0, drop=True)  # lost
    assert frames(first, Window) == [Window(FULL)]
    assert pair.client.peer_parameters.receive_window == SMALL
    assert frames(pair.s2c(1.0), Window) == []  # once in flight, not in every packet
    now = 1.0
    while pair.client.peer_parameters.receive_window == SMALL and now < 5.0:
        now += 0.01
        if pair.server.get_timer() <= now:  # loss recovery sends it again
            pair.server.handle_timer(now)
        pair.s2c(now)
    assert pair.client.peer_parameters.receive_window == FULL
    pair.c2s(now + 0.03)  # the client's ack retires it
    pair.server.send_message(b"after", now + 0.04)
    assert frames(pair.s2c(now + 0.04), Window) == []


def test_an_honest_sender_keeps_within_the_small_window():
    pair = Pair.connected(server_config=SERVER)
    for _ in range(3):
        pair.client.send_message(bytes(60 * 1024), 1.0)
    got, _ = exchange_until(pair, 1.0, until=10.0, messages=3)
    assert len(got) == 3  # one at a time, as the window allows, none refused


def exchange_until(pair, now: float, until: float, messages: int) -> tuple[list, float]:
    """Both ways, 10 ms steps, timers run, until the server has received
    ``messages`` messages or ``until``; no session may close meanwhile."""
    got: list = []
    while len(got) < messages and now < until:
        now += 0.01
        for session in (pair.client, pair.server):
            if session.get_timer() <= now:
                session.handle_timer(now)
        pair.c2s(now)
        pair.s2c(now)
        got += [e for e in events(pair.server) if isinstance(e, MessageReceived)]
        assert not any(isinstance(e, SessionClosed) for e in events(pair.client))
    return got, now


def test_a_message_larger_than_the_small_window_waits_for_it_to_grow():
    """What a server offers before login may be smaller than its largest
    message: the sender holds such a message back (overrunning the window
    would be a protocol violation) until a WINDOW frame grows the window."""
    login_sized = stranger_window(6 * 1024)
    pair = Pair.connected(server_config=SessionConfig(receive_window=FULL,
                                                      initial_receive_window=login_sized))
    pair.client.send_message(bytes(60 * 1024), 1.0)
    now = 1.0
    for _ in range(50):
        now += 0.01
        assert pair.c2s(now) == []
        pair.s2c(now)
    assert pair.server.stats.packets_received == 0
    pair.server.open_receive_window(now)
    got, _ = exchange_until(pair, now, until=5.0, messages=1)
    assert got == [MessageReceived(bytes(60 * 1024))]
    assert not any(isinstance(e, SessionClosed) for e in events(pair.server))
