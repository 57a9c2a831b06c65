"""``max_rooms_created`` holds per user, not per node: the count of rooms a
user created that the network still has lives in the shared store and is
checked in the step that creates (docs/CLUSTER.md, "Opening a room")."""

from __future__ import annotations

from twistchat.chat import protocol as p
from twistchat.chat.protocol import ErrorCode

from .network import Network

QUOTA = 2
PASSWORD = "a long password"


def _network() -> Network:
    return Network(2, max_rooms_created=QUOTA, max_rooms_per_client=10)


def test_rooms_created_on_one_node_count_on_another():
    net = _network()
    net.nodes[1].login("bob").ok("join", room="#bobs")
    alice = net.nodes[0].login("alice", password=PASSWORD)
    alice.ok("join", room="#one")
    alice.ok("create")
    assert len(net.store.created_by("alice")) == QUOTA
    alice.ok("quit")
    again = net.nodes[1].login("alice", password=PASSWORD)
    assert again.error("join", room="#three") == ErrorCode.TOO_MANY_CREATED
    assert again.error("create") == ErrorCode.TOO_MANY_CREATED
    again.ok("join", room="#bobs")  # a room the network has is joined, not created
    assert "#three" not in net.store.inner.rooms


def test_the_quota_is_the_users_not_everyones():
    net = _network()
    alice, bob = net.nodes[0].login("alice"), net.nodes[1].login("bob")
    alice.ok("join", room="#one")
    alice.ok("join", room="#two")
    bob.ok("join", room="#three")
    bob.ok("join", room="#four")
    assert bob.error("join", room="#five") == ErrorCode.TOO_MANY_CREATED
    assert net.store.created_by("alice") == {"#one", "#two"}
    assert net.store.created_by("bob") == {"#three", "#four"}


def test_creations_racing_to_the_store_cannot_exceed_the_quota():
    """Several creations are in flight at once, so none sees the others'
    effect before it is checked: the check is in the step that creates."""
    net = _network()
    alice = net.nodes[0].login("alice")
    alice.ok("join", room="#one")
    net.store.pause()
    rids = [1001, 1002, 1003]
    alice.send_raw(p.encode(p.Join(id=rids[0], room="#two")))
    alice.send_raw(p.encode(p.Join(id=rids[1], room="#three")))
    alice.send_raw(p.encode(p.Create(id=rids[2])))
    net.store.run_queued()
    replies = {m.id: m for m in alice.messages() if isinstance(m, p.Ok | p.ErrorReply) and m.id in rids}
    assert len(replies) == 3
    assert sum(isinstance(m, p.Ok) for m in replies.values()) == QUOTA - 1
    assert sorted(m.code for m in replies.values() if isinstance(m, p.ErrorReply)) == \
        [ErrorCode.TOO_MANY_CREATED] * 2
    assert len(net.store.created_by("alice")) == QUOTA


def test_a_rename_takes_the_count_with_the_user():
    net = _network()
    alice = net.nodes[0].login("alice", password=PASSWORD)
    alice.ok("join", room="#one")
    alice.ok("join", room="#two")
    alice.ok("nick", nick="alicia")
    assert net.store.created_by("alicia") == {"#one", "#two"}
    assert alice.error("join", room="#three") == ErrorCode.TOO_MANY_CREATED
    newcomer = net.nodes[1].login("alice")  # the old nick counts nothing now
    newcomer.ok("join", room="#three")


def test_a_created_room_the_network_dropped_no_longer_counts():
    ttl = 10.0
    net = Network(2, max_rooms_created=1, room_ttl=ttl, reap_interval=1.0, idle_timeout=3600.0)
    alice = net.nodes[0].login("alice", password=PASSWORD)
    alice.ok("join", room="#one")
    alice.ok("part", room="#one")
    alice.ok("quit")
    again = net.nodes[1].login("alice", password=PASSWORD)
    assert again.error("join", room="#two") == ErrorCode.TOO_MANY_CREATED
    net.advance(ttl + 2)  # node 0 reaps #one: nobody is in it anywhere, it is dropped
    assert net.store.created_by("alice") == set()
    again.ok("join", room="#two")
