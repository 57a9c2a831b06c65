"""A room's member cap set by its operator (``/mode +l N``), within the
server's members per room."""

from __future__ import annotations

from twistchat.chat import protocol as p

from .fakes import Harness


def test_a_join_past_the_operators_cap_is_refused_room_full():
    h = Harness()
    alice, bob = h.room_of("#tea", "alice", "bob")
    reply = alice.ok("mode", room="#tea", limit=2)
    assert reply["limit"] == 2
    assert bob.events(p.ModeEvent) == [p.ModeEvent(room="#tea", nick="alice", invite_only=False,
                                                   has_key=False, limit=2)]
    carol = h.login("carol")
    reply = carol.request("join", room="#tea")
    assert isinstance(reply, p.ErrorReply) and reply.code == "ROOM_FULL"
    assert "2 members" in reply.message
    bob.ok("part", room="#tea")
    assert carol.ok("join", room="#tea")["limit"] == 2  # room again: shown in the join reply
    alice.ok("mode", room="#tea", limit=0)               # -l: no cap of its own
    assert alice.events(p.ModeEvent)[-1].limit is None
    assert h.login("dave").ok("join", room="#tea")["limit"] is None


def test_only_the_operator_sets_it_and_never_past_the_servers_cap():
    h = Harness(max_members_per_room=5)
    alice, bob = h.room_of("#tea", "alice", "bob")
    assert bob.error("mode", room="#tea", limit=1) == "NOT_OPERATOR"
    reply = alice.request("mode", room="#tea", limit=6)
    assert isinstance(reply, p.ErrorReply) and reply.code == "BAD_FIELD"
    assert "5 members per room" in reply.message
    assert alice.ok("mode", room="#tea", limit=5)["limit"] == 5
    assert alice.error("mode", room="#tea", limit=-1) == "BAD_FIELD"


def test_a_cap_below_the_members_present_keeps_them_and_refuses_newcomers():
    h = Harness()
    alice, bob = h.room_of("#tea", "alice", "bob")
    alice.ok("mode", room="#tea", limit=1)
    bob.ok("say", room="#tea", text="still here")
    assert h.login("carol").error("join", room="#tea") == "ROOM_FULL"


def test_the_cap_is_kept_with_the_room_across_a_restart():
    h = Harness()
    alice, bob = h.room_of("#tea", "alice", "bob")
    alice.ok("mode", room="#tea", limit=3)
    alice.ok("part", room="#tea"), bob.ok("part", room="#tea")
    h.server.stop()
    again = Harness(store=h.store)
    assert again.login("carol").ok("join", room="#tea")["limit"] == 3
