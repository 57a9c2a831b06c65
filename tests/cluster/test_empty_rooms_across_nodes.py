"""A room nobody is in on any node, and that no kept membership names, is
dropped from the network when a node reaps it, as one node drops a reaped
room: its state and history go, every node's copy goes, and the next joiner
is its operator (docs/CLUSTER.md, "Empty rooms")."""

from __future__ import annotations

from twisted.internet.defer import Deferred

from twistchat.chat import protocol as p

from .network import Network

TTL = 10.0
PASSWORD = "a long password"


def _network() -> Network:
    return Network(2, room_ttl=TTL, kept_room_ttl=2 * TTL, reap_interval=1.0, idle_timeout=3600.0)


def _kept(net: Network, room: str) -> bool:
    return room in net.store.inner.rooms


def test_a_room_everyone_left_on_every_node_is_dropped_and_its_next_joiner_is_operator():
    net = _network()
    alice, bob = net.room_of("#tea", (0, "alice"), (1, "bob"))
    alice.ok("topic", room="#tea", topic="scones")  # kept for kept_room_ttl
    alice.ok("say", room="#tea", text="hello")
    alice.ok("part", room="#tea")
    net.advance(TTL / 2)
    bob.ok("part", room="#tea")
    net.advance(2 * TTL + 2)  # node 0 reaps first and drops it; node 1 drops its copy
    assert not _kept(net, "#tea")
    assert net.store.inner.history.get("#tea") in (None, [])
    assert all("#tea" not in node.server.rooms.rooms for node in net.nodes)
    carol = net.nodes[1].login("carol")
    joined = carol.ok("join", room="#tea").result
    assert (joined["op"], joined["topic"], joined["history"]) == ("carol", None, [])
    dave = net.nodes[0].login("dave")
    assert dave.ok("join", room="#tea").result["op"] == "carol"


def test_a_room_with_a_member_on_another_node_is_not_dropped():
    net = _network()
    alice, bob = net.room_of("#tea", (0, "alice"), (1, "bob"))
    alice.ok("topic", room="#tea", topic="scones")
    alice.ok("part", room="#tea")
    net.advance(3 * TTL)
    assert "#tea" not in net.nodes[0].server.rooms.rooms  # reaped there...
    assert _kept(net, "#tea")  # ...but the network has it
    carol = net.nodes[0].login("carol")
    joined = carol.ok("join", room="#tea").result
    assert (joined["op"], joined["topic"], joined["member_count"]) == ("alice", "scones", 2)


def test_a_room_a_kept_membership_names_is_not_dropped():
    """Alice's session ended without a part: she comes back to the room
    (issue 14), so node 1, which never knew her, may not drop it."""
    net = _network()
    alice = net.nodes[0].login("alice", password=PASSWORD)
    bob = net.nodes[1].login("bob")
    alice.ok("join", room="#tea")
    bob.ok("join", room="#tea")
    alice.ok("topic", room="#tea", topic="scones")
    alice.ok("quit")
    bob.ok("part", room="#tea")
    net.advance(3 * TTL)
    assert "#tea" not in net.nodes[1].server.rooms.rooms  # reaped on node 1
    assert _kept(net, "#tea")
    back = net.nodes[1].login("alice", password=PASSWORD)
    assert back.ok("topic", room="#tea").result["topic"] == "scones"
    carol = net.nodes[1].login("carol")
    assert carol.ok("join", room="#tea").result["op"] == "alice"


def test_a_join_on_its_way_into_the_roster_keeps_a_room_another_node_drops():
    """Node 0 drops the room while node 1's join of it has not reached the
    roster yet: node 1 keeps its copy and the room's state again."""
    net = _network()
    alice, bob = net.room_of("#tea", (0, "alice"), (1, "bob"))
    alice.ok("part", room="#tea")
    net.advance(TTL / 2)
    bob.ok("part", room="#tea")  # node 1 has the room open, empty
    broker = net.nodes[1].server.cluster.broker
    real_add, held = broker.roster_add, []

    def slow_add(*args):
        d = Deferred()
        held.append((args, d))
        return d
    broker.roster_add = slow_add
    carol = net.nodes[1].login("carol")
    carol.send_raw(p.encode(p.Join(id=77, room="#tea")))
    net.advance(TTL / 2 + 2)  # node 0 reaps and drops: the roster is empty
    assert "#tea" in net.nodes[1].server.rooms.rooms
    broker.roster_add = real_add
    [(args, d)] = held
    real_add(*args).chainDeferred(d)
    [reply] = [m for m in carol.messages() if isinstance(m, p.Ok) and m.id == 77]
    assert reply.result["member_count"] == 1
    assert _kept(net, "#tea")
    net.advance(3 * TTL)
    assert _kept(net, "#tea")  # carol is in it
    dave = net.nodes[0].login("dave")
    assert dave.ok("join", room="#tea").result["member_count"] == 2
