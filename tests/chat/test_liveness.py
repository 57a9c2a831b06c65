"""Transport keepalives keep an idle client on the server; silence does not."""

from __future__ import annotations

from twistchat.chat import protocol as p

from .fakes import Harness


def test_transport_keepalives_keep_an_idle_client_in_its_rooms():
    h = Harness()
    alice, bob = h.login("alice"), h.login("bob")
    for client in (alice, bob):
        client.ok("join", room="#idle")
    bob.drain()
    # alice sends no requests for ten minutes, but her transport keeps alive.
    for _ in range(40):
        alice.connection.last_receive_time = h.clock.seconds()
        h.advance(15)
    assert alice.closed is None
    assert bob.events(p.QuitEvent) == []


def test_a_client_silent_on_the_transport_is_reaped_and_its_rooms_told():
    h = Harness()
    alice, bob = h.login("alice"), h.login("bob")
    for client in (alice, bob):
        client.ok("join", room="#idle")
    bob.drain()
    alice.connection.last_receive_time = h.clock.seconds()
    for _ in range(int(h.config.idle_timeout + 2 * h.config.reap_interval)):
        bob.connection.last_receive_time = h.clock.seconds()  # bob's keepalives flow
        h.advance(1)
    assert alice.closed is not None and bob.closed is None
    (quit_event,) = bob.events(p.QuitEvent)
    assert quit_event.nick == "alice" and quit_event.timeout


def _silent_until_reaped(h: Harness, alice, bob, seconds: int) -> float | None:
    """Advance second by second, bob alive, alice silent: when alice was reaped."""
    start = h.clock.seconds()
    alice.connection.last_receive_time = start
    for _ in range(seconds):
        bob.connection.last_receive_time = h.clock.seconds()
        h.advance(1)
        if alice.closed is not None:
            return h.clock.seconds() - start
    return None


def test_the_sweep_interval_sets_how_late_an_idle_session_is_reaped():
    """--sweep SECONDS: the reaper runs that often, so a silent session goes
    at most one sweep after its idle timeout."""
    reaped = {}
    for sweep in (1.0, 20.0):
        h = Harness(reap_interval=sweep)
        alice, bob = h.login("alice"), h.login("bob")
        reaped_after = _silent_until_reaped(h, alice, bob, int(h.config.idle_timeout + 2 * sweep))
        assert reaped_after is not None
        assert h.config.idle_timeout < reaped_after <= h.config.idle_timeout + sweep + 1
        reaped[sweep] = reaped_after
    assert h.server.reaper.interval == 20.0
    assert reaped[1.0] < reaped[20.0]
