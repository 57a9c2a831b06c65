"""Rooms, messages, history, operator actions, limits, reaping, flood control."""

from __future__ import annotations

import pytest

from twistchat.chat import protocol as p
from twistchat.endpoint.api import CloseCode

from .fakes import Harness

HOUR = 3600


def _pair(h: Harness, room: str = "#tea"):
    alice, bob = h.login("alice"), h.login("bob")
    alice.ok("join", room=room)
    bob.ok("join", room=room)
    alice.drain(); bob.drain()
    return alice, bob


def test_room_message_reaches_others_and_echo_matches(h: Harness):
    alice, bob = _pair(h)
    carol = h.login("carol")
    carol.ok("join", room="#other")
    echo = alice.ok("say", room="#TEA", text="hello")
    [copy] = bob.events(p.MessageEvent)
    assert (copy.room, copy.nick, copy.text) == ("#tea", "alice", "hello")
    assert (copy.msg_id, copy.ts) == (echo["msg_id"], echo["ts"])
    assert echo["ts"] == int(h.clock.seconds() * 1000)
    assert alice.events(p.MessageEvent) == []
    assert carol.events(p.MessageEvent) == []


def test_join_replays_history_and_since_catches_up():
    h = Harness(history_size=3)
    alice = h.login("alice")
    alice.ok("join", room="#tea")
    ids = [alice.ok("say", room="#tea", text=f"m{i}")["msg_id"] for i in range(5)]
    assert ids == sorted(ids)
    bob = h.connect()
    bob_secret = bob.ok("login", nick="bob")["secret"]
    joined = bob.ok("join", room="#tea")
    assert [m["text"] for m in joined["history"]] == ["m2", "m3", "m4"]
    assert joined["history"][0]["nick"] == "alice" and joined["history"][0]["msg_id"] == ids[2]
    # bob drops, misses two messages, comes back and catches up from his last seen id
    bob.connection.peer_vanishes()
    alice.ok("say", room="#tea", text="m5")
    alice.ok("say", room="#tea", text="m6")
    back = h.connect()
    back.ok("login", nick="bob", secret=bob_secret)
    assert back.error("join", room="#tea") == "ALREADY_IN_ROOM"  # back in it at login (C12)
    caught = back.ok("history", room="#tea", since=ids[4])
    assert [m["text"] for m in caught["history"]] == ["m5", "m6"]
    assert [m["text"] for m in back.ok("history", room="#tea", since=ids[4], limit=1)["history"]] == ["m6"]
    assert back.error("history", room="#elsewhere") == "NOT_IN_ROOM"


def test_presence_join_part_quit_away_are_announced(h: Harness):
    alice, bob = _pair(h)
    carol = h.login("carol")
    carol.ok("join", room="#tea")
    assert [e.nick for e in alice.events(p.JoinEvent)] == ["carol"]
    assert [e.nick for e in carol.events(p.JoinEvent)] == ["carol"]
    bob.ok("away", message="lunch")
    assert [(e.nick, e.message) for e in alice.events(p.AwayEvent)] == [("bob", "lunch")]
    assert {"nick": "bob", "away": "lunch", "op": False} in alice.ok("who", room="#tea")["members"]
    bob.ok("away")
    assert [e.message for e in alice.events(p.AwayEvent)] == [None]
    carol.ok("part", room="#tea", reason="bye")
    assert [(e.nick, e.reason) for e in alice.events(p.PartEvent)] == [("carol", "bye")]
    bob.ok("quit", reason="gone home")
    [quit_event] = alice.events(p.QuitEvent)
    assert (quit_event.nick, quit_event.reason, quit_event.timeout) == ("bob", "gone home", False)
    assert bob.closed[1] == CloseCode.NORMAL
    assert [m["nick"] for m in alice.ok("who", room="#tea")["members"]] == ["alice"]


def test_transport_loss_is_announced_as_quit(h: Harness):
    alice, bob = _pair(h)
    bob.connection.peer_vanishes(message="peer unresponsive")
    [event] = alice.events(p.QuitEvent)
    assert event.nick == "bob" and event.reason == "peer unresponsive"
    assert "bob" not in h.server.online


def test_idle_clients_are_reaped_after_virtual_time_and_rooms_told(h: Harness):
    alice, bob = _pair(h)
    for _ in range(12):  # alice keeps pinging for two virtual minutes; bob is silent
        h.advance(10)
        alice.ok("ping")
    assert bob.closed is not None and bob.closed[1] == CloseCode.IDLE_TIMEOUT
    [event] = alice.events(p.QuitEvent)
    assert (event.nick, event.reason, event.timeout) == ("bob", "timed out", True)
    assert alice.closed is None
    h.advance(3 * HOUR, step=5)
    assert alice.closed is not None
    assert not h.server.sessions and not h.server.online


def test_unreliable_traffic_counts_as_liveness(h: Harness):
    alice = h.login("alice")
    for _ in range(20):
        h.advance(10)
        alice.protocol.unreliable_received(b"typing")
    assert alice.closed is None


def test_empty_rooms_are_reaped_after_ttl_unless_worth_keeping():
    h = Harness(room_ttl=300, kept_room_ttl=2 * HOUR, idle_timeout=10 * HOUR)
    alice = h.login("alice")
    alice.ok("join", room="#plain")
    alice.ok("say", room="#plain", text="x")
    alice.ok("join", room="#kept")
    alice.ok("topic", room="#kept", topic="worth keeping")
    alice.ok("part", room="#plain")
    alice.ok("part", room="#kept")
    h.advance(299, step=5)
    assert h.server.rooms.get("#plain") is not None
    h.advance(10, step=5)
    assert h.server.rooms.get("#plain") is None and "#plain" not in h.store.history
    assert h.server.rooms.get("#kept") is not None and "#kept" in h.store.rooms
    h.advance(2 * HOUR, step=5)
    assert h.server.rooms.get("#kept") is None and "#kept" not in h.store.rooms


def test_rejoining_in_time_saves_a_room():
    h = Harness(idle_timeout=10 * HOUR)
    alice = h.login("alice")
    alice.ok("join", room="#tea")
    alice.ok("part", room="#tea")
    h.advance(200, step=5)
    alice.ok("join", room="#tea")
    h.advance(1000, step=5)
    alice.ok("ping")
    assert h.server.rooms.get("#tea") is not None


def test_private_groups_have_random_ids_and_are_hidden(h: Harness):
    alice, bob = h.login("alice"), h.login("bob")
    created = alice.ok("create")
    group = created["room"]
    assert p.is_group_id(group) and created["op"] == "alice"
    assert bob.error("join", room="ABCDEFGH") == "NO_SUCH_ROOM"
    assert bob.ok("rooms")["rooms"] == []
    bob.ok("join", room=group)
    assert [r["room"] for r in bob.ok("rooms")["rooms"]] == [group]
    alice.ok("join", room="#public")
    assert {r["room"]: r["joined"] for r in bob.ok("rooms")["rooms"]} == {"#public": False, group: True}


def test_topic_with_setter_and_time(h: Harness):
    alice, bob = _pair(h)
    assert bob.error("topic", room="#tea", topic="mine") == "NOT_OPERATOR"
    set_reply = alice.ok("topic", room="#tea", topic="Earl Grey")
    assert (set_reply["topic"], set_reply["nick"]) == ("Earl Grey", "alice")
    [event] = bob.events(p.TopicEvent)
    assert (event.topic, event.nick, event.ts) == ("Earl Grey", "alice", set_reply["ts"])
    assert bob.ok("topic", room="#tea")["topic"] == "Earl Grey"
    carol = h.login("carol")
    joined = carol.ok("join", room="#tea")
    assert (joined["topic"], joined["topic_by"]) == ("Earl Grey", "alice")


def test_operator_kick_and_ban(h: Harness):
    alice, bob = _pair(h)
    assert bob.error("kick", room="#tea", nick="alice") == "NOT_OPERATOR"
    assert alice.error("kick", room="#tea", nick="alice") == "NOT_OPERATOR"
    assert alice.error("kick", room="#tea", nick="nobody") == "NOT_IN_ROOM"
    alice.ok("kick", room="#tea", nick="bob", reason="behave")
    [kick] = bob.events(p.KickEvent)
    assert (kick.nick, kick.by, kick.reason, kick.banned) == ("bob", "alice", "behave", False)
    assert bob.error("say", room="#tea", text="hey") == "NOT_IN_ROOM"
    bob.ok("join", room="#tea")  # a kick is not a ban
    assert alice.ok("ban", room="#tea", nick="BOB")["bans"] == ["BOB"]
    assert bob.events(p.KickEvent)[0].banned is True
    assert bob.error("join", room="#tea") == "BANNED"
    assert alice.ok("unban", room="#tea", nick="bob")["bans"] == []
    bob.ok("join", room="#tea")


def test_invite_only_and_invitations(h: Harness):
    alice, bob = _pair(h)
    carol = h.login("carol")
    assert bob.error("mode", room="#tea", invite_only=True) == "NOT_OPERATOR"
    alice.ok("mode", room="#tea", invite_only=True)
    assert bob.events(p.ModeEvent)[0].invite_only is True
    assert carol.error("join", room="#tea") == "INVITE_ONLY"
    assert alice.error("invite", room="#tea", nick="nobody") == "NO_SUCH_NICK"
    alice.ok("invite", room="#tea", nick="carol")
    assert carol.events(p.InvitedEvent) == [p.InvitedEvent(room="#tea", by="alice")]
    carol.ok("join", room="#tea")
    carol.ok("part", room="#tea")
    assert carol.error("join", room="#tea") == "INVITE_ONLY"  # invitation used up


def test_join_key(h: Harness):
    alice, bob = _pair(h)
    carol = h.login("carol")
    reply = alice.ok("mode", room="#tea", key="s3cret")
    assert reply["has_key"] is True
    assert carol.error("join", room="#tea") == "BAD_KEY"
    assert carol.error("join", room="#tea", key="wrong") == "BAD_KEY"
    assert carol.ok("join", room="#tea", key="s3cret")["has_key"] is True
    alice.ok("mode", room="#tea", key="")
    dave = h.login("dave")
    dave.ok("join", room="#tea")


def test_operator_hand_over(h: Harness):
    alice, bob = _pair(h)
    assert alice.error("op", room="#tea", nick="carol") == "NOT_IN_ROOM"
    assert alice.ok("op", room="#tea", nick="bob")["op"] == "bob"
    assert bob.events(p.OpEvent) == [p.OpEvent(room="#tea", nick="bob", by="alice")]
    assert alice.error("kick", room="#tea", nick="bob") == "NOT_OPERATOR"
    bob.ok("kick", room="#tea", nick="alice")
    members = {m["nick"]: m["op"] for m in bob.ok("who", room="#tea")["members"]}
    assert members == {"bob": True}


def test_operator_state_survives_a_restart_of_the_server():
    from twistchat.chat.server import ChatServer

    h = Harness()
    alice = h.login("alice", password="a long password")
    alice.ok("join", room="#tea")
    alice.ok("topic", room="#tea", topic="kept")
    alice.ok("ban", room="#tea", nick="troll")
    h.server.shutdown()
    server = ChatServer(h.store, h.clock, h.config)
    server.start()
    h.server = server
    troll = h.login("troll")
    assert troll.error("join", room="#tea") == "BANNED"
    alice = h.connect()
    alice.ok("login", nick="alice", password="a long password")
    [rejoined] = alice.events(p.RejoinedEvent)  # her membership outlived the server (C12)
    assert rejoined.topic == "kept" and rejoined.op == "alice"


@pytest.mark.parametrize("limit, setup, expected", [
    ("max_members_per_room", "full", "ROOM_FULL"),
    ("max_rooms_per_client", "many", "TOO_MANY_ROOMS"),
    ("max_rooms_created", "created", "TOO_MANY_CREATED"),
])
def test_room_limits(limit, setup, expected):
    h = Harness(**{limit: 2})
    alice = h.login("alice")
    if setup == "full":
        alice.ok("join", room="#tea")
        h.login("bob").ok("join", room="#tea")
        assert h.login("carol").error("join", room="#tea") == expected
    elif setup == "many":
        alice.ok("join", room="#a")
        alice.ok("create")
        assert alice.error("join", room="#c") == expected
        assert alice.error("create") == expected
    else:
        alice.ok("join", room="#a")
        alice.ok("create")
        assert alice.error("join", room="#c") == expected
        assert alice.error("create") == expected
        h.login("bob").ok("join", room="#b")
        alice.ok("join", room="#b")  # joining someone else's room is fine


def test_already_in_room(h: Harness):
    alice = h.login("alice")
    alice.ok("join", room="#tea")
    assert alice.error("join", room="#TEA") == "ALREADY_IN_ROOM"


def test_flood_control_refuses_only_the_flooder():
    h = Harness(rate=5, burst=10)
    alice, bob = _pair(h)
    h.clock.advance(2)  # buckets full again after login and join
    codes = [alice.request("say", room="#tea", text=f"{i}") for i in range(30)]
    refused = [r for r in codes if isinstance(r, p.ErrorReply)]
    assert len(refused) == 20 and {r.code for r in refused} == {"RATE_LIMITED"}
    assert len(bob.events(p.MessageEvent)) == 10
    assert bob.ok("say", room="#tea", text="unaffected")
    h.clock.advance(1)
    assert all(isinstance(alice.request("ping"), p.Ok) for _ in range(5))
    assert alice.error("ping") == "RATE_LIMITED"


def test_shutdown_tells_everyone_and_closes_gracefully(h: Harness):
    alice, bob = _pair(h)
    stranger = h.connect()
    d = h.server.shutdown()
    assert d.called
    for client in (alice, bob, stranger):
        assert client.events(p.ShutdownEvent)
        assert client.closed[1] == CloseCode.SHUTTING_DOWN and client.closed[2] is True
    assert not h.server.reaper.running


def test_members_timing_out_together_are_each_announced_once_to_those_left():
    """A client host or a network lost at once: thirty members of a room
    stop answering, and the server's timer comes late (a busy reactor), so
    their sessions all end in one batch. Each of the five left hears each of
    them quit, once, as timed out; the ended sessions among the recipients
    are passed over without a word (a line for each drop made a 2 s stall
    of a room of 1,000's teardown)."""
    from twisted.logger import globalLogPublisher

    from tests.client.harness import World

    world = World(server_config={"registration_rate": 1e9, "registration_burst": 10**9})
    clients = [world.client(f"m{i}") for i in range(35)]
    for client, _ in clients:
        world.wait(client.connect())
        world.wait(client.join("#tea"))
    world.run(5.0)
    leaving, staying = clients[:30], clients[30:]
    for client, seen in staying:
        seen.log.clear()
    for client, _ in leaving:
        world.network.isolate(client.endpoint.transport.getHost(), world.clock.seconds(), float("inf"))
    idle_timeout = next(iter(world.server_endpoint.sessions.values())).session.idle_timeout
    world.run(idle_timeout / 2)
    batches: list[int] = []
    queue = world.server_endpoint._timers
    fire = queue._fire
    queue._fire = lambda due: (batches.append(len(due)), fire(due))
    logged: list[dict] = []
    globalLogPublisher.addObserver(logged.append)
    try:
        world.clock.advance(idle_timeout * 0.6)  # past every leaver's deadline, in one step
        world.run(10.0)
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert max(batches) >= 30  # they did end together
    for _, seen in staying:
        assert sorted(nick for _, kind, nick in seen.of("presence") if kind == "quit") == \
            sorted(f"m{i}" for i in range(30))
    assert len(world.server.online) == 5
    assert not [e for e in logged if "dropped a message" in e.get("log_format", "")]
