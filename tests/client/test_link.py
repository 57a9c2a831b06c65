"""The client's one state (``LinkState``): the table, the back-off, and the
client walking through it against a scripted server, in virtual time."""

from __future__ import annotations

import random

import pytest
from twisted.internet.task import Clock

from twistchat.client import ChatClient, Disconnected, LinkState
from twistchat.client.link import (
    RECONNECT_DELAYS, RECONNECT_JITTER, TRANSITIONS, LinkEvent, LinkLifecycle, LinkStateError,
)

from .harness import Recording
from .scripted import ScriptedServer


def test_every_state_has_a_row_and_an_unlisted_event_is_a_bug() -> None:
    assert set(TRANSITIONS) == set(LinkState)
    for state in LinkState:
        for event in LinkEvent:
            lifecycle = LinkLifecycle(random.Random(1))
            lifecycle.state = state
            if event in TRANSITIONS[state]:
                assert lifecycle.fire(event) is TRANSITIONS[state][event]
            else:
                with pytest.raises(LinkStateError):
                    lifecycle.fire(event)
                assert lifecycle.state is state


def test_back_off_grows_to_its_cap_and_starts_over_once_logged_in() -> None:
    lifecycle = LinkLifecycle(random.Random(1))
    for state in (LinkEvent.CONNECT, LinkEvent.LOGGED_IN, LinkEvent.LINK_LOST):
        lifecycle.fire(state)
    delays = [lifecycle.next_delay() for _ in range(len(RECONNECT_DELAYS) + 2)]
    expected = list(RECONNECT_DELAYS) + [RECONNECT_DELAYS[-1]] * 2
    for delay, base in zip(delays, expected):
        assert base * (1 - RECONNECT_JITTER) <= delay < base * (1 + RECONNECT_JITTER)
    lifecycle.fire(LinkEvent.LOGGED_IN)
    assert lifecycle.attempt == 0


def run(clock: Clock, seconds: float) -> None:
    clock.pump([0.05] * int(seconds / 0.05))


def client(**kwargs) -> tuple[Clock, ScriptedServer, ChatClient, Recording]:
    clock = Clock()
    server = ScriptedServer(clock)
    observer = Recording()
    chat = ChatClient(clock, server, server.address, "bob", observer, rng=random.Random(1), **kwargs)
    return clock, server, chat, observer


def failure_of(deferred) -> BaseException:
    failures = []
    deferred.addErrback(failures.append)
    assert failures, "the Deferred did not fail"
    return failures[0].value


def test_connecting_ready_reconnecting_ready() -> None:
    clock, server, bob, observer = client()
    assert bob.link_state is LinkState.IDLE and not bob.connected
    bob.connect()
    assert bob.link_state is LinkState.CONNECTING and bob.connected and not bob.ready
    run(clock, 1)
    assert bob.link_state is LinkState.READY and bob.ready
    server.drop()
    assert bob.link_state is LinkState.RECONNECTING and not bob.connected
    held = bob.msg("alice", "typed while away")
    assert not held.called            # held, not failed
    run(clock, 5)
    assert bob.link_state is LinkState.READY and observer.of("reconnected")
    assert held.called
    assert isinstance(failure_of(bob.connect()), LinkStateError)  # one session at a time


def test_without_reconnecting_a_loss_is_the_end_until_connect_again() -> None:
    clock, server, bob, observer = client(reconnect=False)
    bob.connect()
    run(clock, 1)
    server.drop()
    assert bob.link_state is LinkState.IDLE
    assert observer.of("disconnected") == [
        ("disconnected", "the server forgot this session (it restarted)", False)]
    assert isinstance(failure_of(bob.say("#tea", "hi")), Disconnected)
    bob.connect()
    run(clock, 1)
    assert bob.link_state is LinkState.READY


def test_stop_when_ready_leaves_then_closes_and_says_so() -> None:
    clock, server, bob, observer = client()
    bob.connect()
    run(clock, 1)
    bob.stop()
    assert bob.link_state is LinkState.LEAVING
    run(clock, 1)
    assert bob.link_state is LinkState.CLOSED and not bob.connected
    assert observer.of("disconnected") == [("disconnected", "bye", False)]
    run(clock, 120)
    assert len(server.connections) == 1     # never retried
    assert isinstance(failure_of(bob.say("#tea", "hi")), Disconnected)


def test_quit_while_backing_off_fails_what_was_held_and_stays_closed() -> None:
    clock, server, bob, observer = client()
    bob.connect()
    run(clock, 1)
    server.drop()
    held = bob.msg("alice", "never sent")
    ended = bob.quit()
    assert ended.called and bob.link_state is LinkState.CLOSED
    assert isinstance(failure_of(held), Disconnected)
    run(clock, 120)
    assert len(server.connections) == 1
