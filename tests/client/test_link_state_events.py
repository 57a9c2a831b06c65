"""The library's connection state as an application sees it: one
``link_state`` to ask at any time, an event on every change, a first
connect that keeps trying (``keep_trying``), and duplicates made visible."""

from __future__ import annotations

import random

import pytest
from twisted.internet.task import Clock

from twistchat.chat import protocol as p
from twistchat.client import ChatClient, Disconnected, LinkState

from .harness import Recording, World
from .scripted import ScriptedServer, logged_in, run


class StateRecording(Recording):
    def link_state_changed(self, old, new):
        self.log.append(("state", old, new))

    def duplicate_dropped(self, event):
        self.log.append(("duplicate", event.TYPE, event.dm_id))


def states(observer) -> list[LinkState]:
    return [entry[2] for entry in observer.of("state")]


def client_with_states(world: World, nick: str, **kwargs):
    client, _ = world.client(nick, **kwargs)
    observer = StateRecording()
    client.observer = observer
    return client, observer


S = LinkState


def test_every_change_of_state_is_an_event_and_the_state_can_be_asked_any_time():
    world = World()
    alice, seen = client_with_states(world, "alice")
    assert alice.link_state is S.IDLE
    world.wait(alice.connect())
    assert alice.link_state is S.READY
    world.kill_server()
    world.run(50)                            # a keepalive (25-30 s on) goes unacknowledged for 15 s
    assert alice.link_state is S.RECONNECTING
    world.start_server()
    world.run(60)
    assert alice.link_state is S.READY
    world.wait(alice.quit())
    assert alice.link_state is S.CLOSED
    assert states(seen) == [S.CONNECTING, S.READY, S.RECONNECTING, S.READY, S.LEAVING, S.CLOSED]
    olds = [entry[1] for entry in seen.of("state")]
    assert olds == [S.IDLE] + states(seen)[:-1]


def test_without_keep_trying_a_server_down_at_the_first_connect_fails_it():
    world = World()
    world.kill_server()
    alice, seen = client_with_states(world, "alice")
    with pytest.raises(Disconnected):
        world.wait(alice.connect())
    assert alice.link_state is S.IDLE


def test_keep_trying_connects_once_the_server_is_up_and_sends_what_was_asked_meanwhile():
    world = World()
    world.kill_server()
    alice, seen = client_with_states(world, "alice", keep_trying=True)
    connected = alice.connect()
    joined = alice.join("#tea")             # held, not failed
    world.run(40)
    assert not connected.called and alice.link_state is S.CONNECTING
    tries = seen.of("disconnected")
    assert len(tries) >= 2 and all(retrying for _, _, retrying in tries)
    assert "cannot reach" in tries[0][1]
    world.start_server()
    reply = world.wait(connected, limit=60)
    assert reply["nick"] == "alice"
    assert world.wait(joined)["room"] == "#tea"
    assert alice.link_state is S.READY
    assert states(seen) == [S.CONNECTING, S.READY]


def test_keep_trying_ends_with_stop_and_the_connect_fails():
    world = World()
    world.kill_server()
    alice, seen = client_with_states(world, "alice", keep_trying=True)
    connected = alice.connect()
    held = alice.say("#tea", "never sent")
    world.run(15)
    alice.stop()
    tries = len(seen.of("disconnected"))
    with pytest.raises(Disconnected):
        world.wait(connected)
    with pytest.raises(Disconnected):
        world.wait(held)
    assert alice.link_state is S.CLOSED
    world.start_server()
    world.run(60)                            # and no attempt after it
    assert len(seen.of("disconnected")) == tries and not alice.connected


def test_a_dm_dropped_as_a_duplicate_is_counted_and_told():
    clock, server, bob, observer = logged_in("bob")
    seen = StateRecording()
    bob.observer = seen
    dm = p.DmEvent(nick="alice", to="bob", text="hi", dm_id=7, ts=1, stored=True)
    server.push(dm)
    server.push(dm)
    server.push(p.DeliveredEvent(dm_id=9, to="carol", ts=1))
    server.push(p.DeliveredEvent(dm_id=9, to="carol", ts=1))
    assert len(seen.of("dm")) == 1
    assert seen.of("duplicate") == [("duplicate", "dm", 7), ("duplicate", "delivered", 9)]
    assert (bob.counters.duplicate_dms, bob.counters.duplicate_deliveries) == (1, 1)
    assert bob.status().counters.duplicate_dms == 1
    bob._link.unreliable_received(b"not a typing notice")
    assert bob.counters.unreadable_unreliable == 1 and seen.of("typing") == []


def test_keep_trying_retries_a_login_refused_for_now_on_a_new_session():
    clock = Clock()
    server = ScriptedServer(clock)
    refusals = iter([p.ErrorReply(code="SHUTTING_DOWN", message="restarting")])

    def login(request):
        refusal = next(refusals, None)
        if refusal is None:
            return {"nick": request.nick, "registered": False}
        return p.ErrorReply(id=request.id, code=refusal.code, message=refusal.message)
    server.results[p.Login] = login
    seen = StateRecording()
    client = ChatClient(clock, server, server.address, "bob", seen, rng=random.Random(1),
                        keep_trying=True)
    connected = client.connect()
    run(clock, 5)
    assert connected.called and client.link_state is S.READY
    assert len(server.connections) == 2 and not server.connections[0].open
    assert "SHUTTING_DOWN" in seen.of("disconnected")[0][1]


@pytest.mark.parametrize("end", ["quit", "stop"])
def test_ending_the_client_while_a_reconnect_attempt_is_opening_its_session_ends_that_attempt(end):
    """The attempt's handshake was on its way when the user quit: if it
    completes later, that session is closed unused, never logged in (it
    would show the user's rooms and DMs to a client that has quit, and take
    them from the next one)."""
    world = World()
    alice, seen = client_with_states(world, "alice")
    world.wait(alice.connect())
    world.kill_server()
    world.network.run(until=world.clock.seconds() + 120, stop=lambda: (
        alice.link_state is S.RECONNECTING and alice._retry_call is None))
    assert alice.link_state is S.RECONNECTING and not alice.connected
    getattr(alice, end)()
    world.start_server()
    world.run(60)
    assert alice.link_state is S.CLOSED and not alice.connected
    assert "alice" not in world.server.online
