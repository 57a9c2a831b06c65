"""A room whose members are on several nodes: one order for everyone, each
line once, listings that count every node's members."""

from __future__ import annotations

import random

import pytest

from twistchat.chat import protocol as p
from twistchat.chat.protocol import ErrorCode, fold_room

from .network import Network


def _lines(client) -> list[int]:
    return [m.msg_id for m in client.events(p.MessageEvent)]


@pytest.mark.parametrize("nodes", [2, 3])
def test_concurrent_says_from_every_node_reach_every_member_once_in_one_order(nodes):
    net = Network(nodes)
    placed = [(i % nodes, f"user{i}") for i in range(2 * nodes)]
    clients = net.room_of("#tea", *placed)
    ids = iter(range(1000, 2000))
    sent = []
    shuffle = random.Random(3).shuffle
    for round in range(3):
        net.store.hold()  # every client's say races to the store
        for client in clients:
            rid = next(ids)
            client.send_raw(p.encode(p.Say(id=rid, room="#tea", text=f"r{round} {rid}")))
            sent.append((client, rid))
        order = list(range(len(clients)))
        shuffle(order)
        net.store.commit(order)

    own: dict[int, set[int]] = {}
    for client, rid in sent:
        [reply] = [m for m in client.messages() if isinstance(m, p.Ok) and m.id == rid]
        own.setdefault(id(client), set()).add(reply.result["msg_id"])
    every = sorted(set().union(*own.values()))
    assert len(every) == len(sent)
    for client in clients:
        heard = _lines(client)
        assert heard == sorted(heard), "lines out of id order"
        assert len(heard) == len(set(heard)), "a line twice"
        assert sorted(set(heard) | own[id(client)]) == every  # each line, its own in replies
        assert not set(heard) & own[id(client)]


def test_joins_parts_and_topics_are_heard_on_every_node():
    net = Network(2)
    alice, bob = net.room_of("#tea", (0, "alice"), (1, "bob"))
    carol = net.nodes[1].login("carol")
    carol.ok("join", room="#tea")
    assert [e.nick for e in alice.events(p.JoinEvent)] == ["carol"]
    alice.ok("topic", room="#tea", topic="scones")
    assert [e.topic for e in bob.events(p.TopicEvent)] == ["scones"]
    assert carol.ok("topic", room="#tea").result["topic"] == "scones"
    assert bob.error("topic", room="#tea", topic="mine") == ErrorCode.NOT_OPERATOR
    carol.ok("part", room="#tea", reason="bye")
    assert [(e.nick, e.reason) for e in alice.events(p.PartEvent)] == [("carol", "bye")]
    assert [e.nick for e in carol.events(p.PartEvent)] == ["carol"]


def test_who_and_member_counts_span_nodes():
    net = Network(2)
    alice, bob = net.room_of("#tea", (0, "alice"), (1, "bob"))
    bob.ok("away", message="tea break")
    who = alice.ok("who", room="#tea").result
    assert who["count"] == 2
    assert [(m["nick"], m["away"], m["op"]) for m in who["members"]] == [
        ("alice", None, True), ("bob", "tea break", False)]
    carol = net.nodes[1].login("carol")
    joined = carol.ok("join", room="#tea").result
    assert joined["member_count"] == 3
    assert {m["nick"] for m in joined["members"]} == {"alice", "bob", "carol"}
    assert joined["op"] == "alice"
    bob.ok("quit")
    assert alice.ok("who", room="#tea").result["count"] == 2


def test_an_operator_kicks_a_member_on_another_node():
    net = Network(2)
    alice, bob, carol = net.room_of("#tea", (0, "alice"), (1, "bob"), (1, "carol"))
    alice.ok("kick", room="#tea", nick="bob", reason="rude")
    assert [(e.nick, e.by) for e in bob.events(p.KickEvent)] == [("bob", "alice")]
    assert [e.nick for e in carol.events(p.KickEvent)] == ["bob"]
    assert bob.error("say", room="#tea", text="still here?") == ErrorCode.NOT_IN_ROOM
    assert alice.ok("who", room="#tea").result["count"] == 2


def test_lines_missed_while_the_subscription_was_away_are_refilled_once():
    net = Network(2)
    alice, bob = net.room_of("#tea", (0, "alice"), (1, "bob"))
    alice.ok("say", room="#tea", text="one")
    handler = net.hub.subscribers["#tea"].pop("node1")  # node1's subscription drops
    alice.ok("say", room="#tea", text="two")
    alice.ok("say", room="#tea", text="three")
    net.hub.subscribers["#tea"]["node1"] = handler
    net.nodes[1].server.broker.report_gap()
    alice.ok("say", room="#tea", text="four")
    assert [m.text for m in bob.events(p.MessageEvent)] == ["one", "two", "three", "four"]


def test_a_session_that_ends_while_its_join_waits_for_the_network_is_not_left_in_the_room():
    from twisted.internet.defer import Deferred

    net = Network(2)
    alice, = net.room_of("#tea", (0, "alice"))
    bob = net.nodes[1].login("bob")
    broker = net.nodes[1].server.broker
    answer: Deferred = Deferred()
    real_add = broker.roster_add
    broker.roster_add = lambda *args: answer  # the network is slow to answer
    bob.send_raw(p.encode(p.Join(id=80, room="#tea")))
    bob.connection.peer_vanishes()
    broker.roster_add = real_add
    real_add("#tea", "bob", b'{"nick":"bob","away":null,"room":"#tea"}')
    answer.callback(None)
    assert alice.ok("who", room="#tea").result["count"] == 1
    assert "bob" not in net.nodes[1].server.rooms.get("#tea").members


def test_a_kept_room_restored_at_login_misses_no_line_said_during_the_replay_read():
    from twisted.internet.defer import Deferred

    net = Network(2)
    alice, bob = net.room_of("#tea", (0, "alice"), (1, "bob"))
    bob.ok("quit")
    alice.ok("say", room="#tea", text="while away")
    real_missed = net.store.inner.get_missed
    held: list = []

    def slow_missed(*args):  # the read is answered after a line was said meanwhile
        d: Deferred = Deferred()
        held.append((real_missed(*args), d))
        return d
    net.store.get_missed = slow_missed
    again = net.nodes[1].connect()
    again.send_raw(p.encode(p.Login(id=1, nick="bob", secret=bob.messages()[0].result["secret"])))
    net.store.get_missed = real_missed
    carol = net.nodes[0].login("carol")
    carol.ok("join", room="#tea")
    carol.ok("say", room="#tea", text="during the read")
    answer, d = held.pop()
    d.callback(answer.result)
    alice.ok("say", room="#tea", text="after")
    assert [m.text for m in again.events(p.MessageEvent)] == ["while away", "during the read", "after"]


def test_the_room_list_shows_the_networks_rooms_with_every_nodes_members():
    net = Network(2)
    net.room_of("#tea", (0, "alice"), (0, "carol"))
    bob = net.nodes[1].login("bob")
    listed = bob.ok("rooms").result["rooms"]
    assert [(r["room"], r["members"], r["joined"]) for r in listed] == [("#tea", 2, False)]
    bob.ok("join", room="#tea")
    listed = bob.ok("rooms").result["rooms"]
    assert [(r["room"], r["members"], r["joined"]) for r in listed] == [("#tea", 3, True)]


def test_the_room_list_reads_every_rooms_member_count_in_one_broker_call():
    net = Network(2)
    for n, room in enumerate(["#a", "#b", "#c", "#d"]):
        net.room_of(room, (n % 2, f"user{n}"), ((n + 1) % 2, f"other{n}"))
    bob = net.nodes[1].login("bob")
    broker = net.nodes[1].server.cluster.broker
    calls = []
    for name in ("roster", "roster_sizes"):
        real = getattr(broker, name)
        setattr(broker, name, lambda *args, real=real, name=name: calls.append(name) or real(*args))
    listed = bob.ok("rooms").result["rooms"]
    assert [(r["room"], r["members"]) for r in listed] == [(room, 2) for room in ["#a", "#b", "#c", "#d"]]
    assert calls == ["roster_sizes"]


def test_rejoined_at_login_counts_the_members_on_every_node():
    net = Network(2)
    alice, bob = net.room_of("#tea", (0, "alice"), (1, "bob"))
    secret = bob.messages()[0].result["secret"]
    bob.ok("quit")
    again = net.nodes[1].connect()
    again.ok("login", nick="bob", secret=secret)
    [rejoined] = again.events(p.RejoinedEvent)
    assert rejoined.member_count == 2
    assert {m["nick"] for m in rejoined.members} == {"alice", "bob"}


def _answer(client, rid: int):
    [reply] = [m for m in client.messages() if isinstance(m, p.Ok | p.ErrorReply) and m.id == rid]
    return reply


def test_two_nodes_opening_one_new_room_at_once_agree_on_one_operator():
    net = Network(2)
    alice, bob = net.nodes[0].login("alice"), net.nodes[1].login("bob")
    net.store.pause()  # both joins reach the shared store before either is answered
    alice.send_raw(p.encode(p.Join(id=50, room="#new")))
    bob.send_raw(p.encode(p.Join(id=50, room="#New")))
    net.store.run_queued()
    ops = {_answer(alice, 50).result["op"], _answer(bob, 50).result["op"]}
    assert len(ops) == 1
    [op] = ops
    assert [net.nodes[n].server.rooms.get("#new").op_nick for n in (0, 1)] == [op, op]
    assert net.store.load_rooms().result["#new"]["op_nick"] == op
    assert {m["nick"]: m["op"] for m in alice.ok("who", room="#new").result["members"]} == {
        "alice": op == "alice", "bob": op == "bob"}
    other = bob if op == "alice" else alice
    assert other.error("topic", room="#new", topic="mine") == ErrorCode.NOT_OPERATOR


def test_a_group_id_taken_on_another_node_is_not_handed_out_again():
    net = Network(2)  # the nodes' generators are seeded alike: they draw the same ids
    alice, bob = net.nodes[0].login("alice"), net.nodes[1].login("bob")
    first = alice.ok("create").result
    second = bob.ok("create").result
    assert first["room"] != second["room"]
    assert (first["op"], second["op"]) == ("alice", "bob")
    kept = net.store.load_rooms().result
    assert (kept[fold_room(first["room"])]["op_key"], kept[fold_room(second["room"])]["op_key"]) == \
        ("alice", "bob")


def test_joining_a_room_another_node_has_open_costs_one_store_step_and_keeps_its_operator():
    net = Network(2)
    alice, = net.room_of("#tea", (0, "alice"))
    bob = net.nodes[1].login("bob")
    net.store.pause()
    bob.send_raw(p.encode(p.Join(id=60, room="#tea")))
    assert len(net.store.queued) == 1  # no more than before atomic creation (load_rooms then)
    net.store.run_queued()
    assert _answer(bob, 60).result["op"] == "alice"
