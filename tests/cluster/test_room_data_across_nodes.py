"""``data`` to a room whose members are on several nodes: each member on
every node gets it once, in the room's one order among its lines, and the
``ok`` counts every node's members (PROTOCOL.md C6, docs/CLUSTER.md)."""

from __future__ import annotations

from twistchat.chat import protocol as p

from .network import Network


def _heard(client) -> list[str]:
    """Lines and data in the order they came, as text."""
    return [m.text if isinstance(m, p.MessageEvent) else m.payload.decode()
            for m in client.events() if isinstance(m, p.MessageEvent | p.DataEvent)]


def _reply(client, rid: int):
    return [m for m in client.messages() if isinstance(m, p.Ok | p.ErrorReply) and m.id == rid]


def test_room_data_reaches_every_nodes_members_once_in_the_rooms_order_of_lines():
    net = Network(3)
    alice, bob, carol, dave = net.room_of("#tea", (0, "alice"), (1, "bob"), (2, "carol"), (1, "dave"))
    alice.ok("say", room="#tea", text="one")
    sent = bob.ok("data", room="#tea", payload=b"blob from bob").result
    carol.ok("say", room="#tea", text="two")
    dave.ok("data", room="#tea", payload=b"blob from dave")
    everything = ["one", "blob from bob", "two", "blob from dave"]
    own = {"alice": {"one"}, "bob": {"blob from bob"}, "carol": {"two"}, "dave": {"blob from dave"}}
    for nick, client in zip(("alice", "bob", "carol", "dave"), (alice, bob, carol, dave)):
        assert _heard(client) == [x for x in everything if x not in own[nick]], nick
    assert (sent["delivered"], sent["missed"]) == (3, [])
    [event] = [m for m in carol.messages() if isinstance(m, p.DataEvent) and m.nick == "bob"]
    assert event.room == "#tea"


def test_the_ok_waits_for_members_on_other_nodes_and_names_one_whose_session_ended():
    net = Network(2)
    alice, bob, carol = net.room_of("#tea", (0, "alice"), (1, "bob"), (1, "carol"))
    bob.connection.hold_acks()
    alice.send_raw(p.encode(p.Data(id=70, room="#tea", payload=b"wait")))
    assert _reply(alice, 70) == []  # carol has it, bob's transport has not said
    bob.connection.peer_vanishes()
    [ok] = _reply(alice, 70)
    assert (ok.result["delivered"], ok.result["missed"]) == (1, ["bob"])


def test_members_of_a_node_that_did_not_hear_it_are_missed():
    net = Network(2)
    alice, bob, carol = net.room_of("#tea", (0, "alice"), (0, "bob"), (1, "carol"))
    handler = net.hub.subscribers["#tea"].pop("node1")  # node1's subscription is down
    sent = alice.ok("data", room="#tea", payload=b"lost on node1").result
    assert (sent["delivered"], sent["missed"]) == (1, ["carol"])
    assert [m.payload for m in bob.events(p.DataEvent)] == [b"lost on node1"]
    assert carol.events(p.DataEvent) == []
    net.hub.subscribers["#tea"]["node1"] = handler


def test_a_node_that_never_answers_has_its_members_missed_after_the_idle_timeout():
    net = Network(2)
    alice, bob = net.room_of("#tea", (0, "alice"), (1, "bob"))
    hears = net.hub.nodes.pop("node0")  # node0 hears nothing on its own channel: no answer comes
    alice.send_raw(p.encode(p.Data(id=71, room="#tea", payload=b"hello")))
    assert [m.payload for m in bob.events(p.DataEvent)] == [b"hello"]
    net.hub.nodes["node0"] = hears
    assert _reply(alice, 71) == []
    net.advance(net.nodes[0].config.idle_timeout)
    [ok] = _reply(alice, 71)
    assert (ok.result["delivered"], ok.result["missed"]) == (0, ["bob"])


def test_a_resent_room_data_is_answered_and_not_relayed_again():
    net = Network(2)
    alice, bob = net.room_of("#tea", (0, "alice"), (1, "bob"))
    first = alice.ok("data", room="#tea", payload=b"once", idem="d1").result
    assert alice.ok("data", room="#tea", payload=b"once", idem="d1").result == first
    assert [m.payload for m in bob.events(p.DataEvent)] == [b"once"]


def test_room_data_with_the_network_unreachable_is_refused_unavailable():
    from twistchat.chat.protocol import ErrorCode

    net = Network(2)
    alice, bob = net.room_of("#tea", (0, "alice"), (1, "bob"))
    net.hub.unreachable = True
    assert alice.error("data", room="#tea", payload=b"nowhere") == ErrorCode.UNAVAILABLE
    net.hub.unreachable = False
    assert bob.events(p.DataEvent) == []


def test_a_subscriber_that_is_not_a_node_does_not_hold_up_the_ok():
    net = Network(2)
    alice, bob = net.room_of("#tea", (0, "alice"), (1, "bob"))
    net.hub.subscribers["#tea"]["monitor"] = lambda room, data: None  # counted by PUBLISH, never answers
    sent = alice.ok("data", room="#tea", payload=b"seen").result
    assert (sent["delivered"], sent["missed"]) == (1, [])
