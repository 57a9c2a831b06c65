"""Transport keepalives keep an idle client on the server; silence does not."""

from __future__ import annotations

from twistchat.chat import protocol as p
from twistchat.chat.server.session import ClientSession

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


def count_last_heard_reads(monkeypatch) -> list:
    """Every read of ``ClientSession.last_heard`` from now on, in a list."""
    reads = []
    last_heard = ClientSession.last_heard

    def counted(session):
        reads.append(session)
        return last_heard.fget(session)
    monkeypatch.setattr(ClientSession, "last_heard", property(counted))
    return reads


def test_the_reaper_drops_exactly_the_silent_users_and_looks_at_only_those_due(monkeypatch):
    """Among 300 users, the 3 silent ones are reaped on the first tick past
    their idle timeout and nobody else ever is; a tick reads the liveness of
    the users whose deadline it reached, not of all 300 (issue 16)."""
    h = Harness()
    clients = [h.login(f"user{n}") for n in range(300)]
    silent = {clients[n].protocol for n in (7, 150, 299)}
    start = h.clock.seconds()
    for client in clients:
        client.connection.last_receive_time = start
    reads = count_last_heard_reads(monkeypatch)
    reaped_at = {}
    for second in range(int(3 * h.config.idle_timeout)):
        now = h.clock.seconds()
        for client in clients:
            if client.protocol not in silent:
                client.connection.last_receive_time = now  # keepalives flow
            elif client.closed is not None and client.protocol not in reaped_at:
                reaped_at[client.protocol] = now - start
        h.advance(1)
    assert set(reaped_at) == silent
    assert all(client.closed is None for client in clients if client.protocol not in silent)
    for after in reaped_at.values():
        assert h.config.idle_timeout < after <= h.config.idle_timeout + h.config.reap_interval + 1
    ticks = int(3 * h.config.idle_timeout / h.config.reap_interval)
    assert len(reads) < 300 * ticks / 4  # a walk would read all 300 on every tick


def _looks_while_idle(monkeypatch, transport_timeout: float | None) -> int:
    """Reads of ``last_heard`` for 100 users kept alive by their transports'
    keepalives (every 27 s) over ten idle timeouts."""
    h = Harness()
    clients = [h.login(f"user{n}") for n in range(100)]
    reads = count_last_heard_reads(monkeypatch)
    if transport_timeout is not None:
        for client in clients:
            client.connection.idle_timeout = transport_timeout
    for second in range(int(10 * h.config.idle_timeout)):
        if second % 27 == 0:
            for client in clients:
                client.connection.last_receive_time = h.clock.seconds()
        h.advance(1)
    assert all(client.closed is None for client in clients)
    return len(reads)


def test_a_transport_that_ends_silent_sessions_itself_is_looked_at_half_as_often(monkeypatch):
    """The transport ends a session silent for its idle timeout itself (and
    the user departs, timed out): where that is no later than the chat
    server's, the reaper is a backstop and looks one idle timeout later."""
    idle_timeout = Harness().config.idle_timeout
    alone = _looks_while_idle(monkeypatch, None)
    backstop = _looks_while_idle(monkeypatch, idle_timeout)
    assert backstop <= alone / 2
    assert _looks_while_idle(monkeypatch, idle_timeout + 1) == alone  # a laxer transport: no


def test_the_backstop_reaps_a_silent_user_whose_transport_never_ended_it():
    h = Harness()
    alice, bob = h.login("alice"), h.login("bob")
    for client in (alice, bob):
        client.connection.idle_timeout = h.config.idle_timeout  # says so, then never does
        client.ok("join", room="#idle")
    bob.drain()
    limit = 2 * h.config.idle_timeout + h.config.reap_interval + 1
    reaped_after = _silent_until_reaped(h, alice, bob, int(limit) + 5)
    assert reaped_after is not None and reaped_after <= limit
    (quit_event,) = bob.events(p.QuitEvent)
    assert quit_event.nick == "alice" and quit_event.timeout
