"""What PROTOCOL.md now states about quitting and joining, checked against
the server: the close code of a normal quit, how a close reason reaches
the other members, and where a joiner's own join event comes."""

from __future__ import annotations

from twistchat.chat import protocol as p
from twistchat.endpoint.api import CloseCode

from .fakes import Harness


def test_a_quit_closes_normal_with_its_reason_and_the_members_are_told_it():
    h = Harness()
    alice, bob = h.room_of("#tea", "alice", "bob")
    alice.ok("quit", reason="off to lunch")
    assert alice.closed == ("off to lunch", CloseCode.NORMAL, True)
    assert bob.events(p.QuitEvent) == [p.QuitEvent(room="#tea", nick="alice",
                                                    reason="off to lunch", timeout=False)]
    carol = h.login("carol")
    carol.ok("join", room="#tea")
    bob.drain()
    carol.ok("quit")
    assert carol.closed == ("quit", CloseCode.NORMAL, True)
    assert bob.events(p.QuitEvent)[0].reason == "quit"


def test_a_close_from_the_client_reaches_the_members_with_its_reason_text():
    h = Harness()
    alice, bob = h.room_of("#tea", "alice", "bob")
    alice.connection.peer_vanishes(CloseCode.SHUTTING_DOWN, "bye")
    assert bob.events(p.QuitEvent)[0].reason == "bye"
    carol = h.login("carol")
    carol.ok("join", room="#tea")
    bob.drain()
    carol.connection.peer_vanishes(CloseCode.PEER_UNRESPONSIVE, "")
    assert bob.events(p.QuitEvent)[0].reason == "connection closed"


def test_the_joiner_gets_its_reply_first_then_its_own_join_and_the_others_theirs():
    h = Harness()
    alice, bob = h.login("alice"), h.login("bob")
    alice.ok("join", room="#tea")
    alice.drain()
    bob.ok("join", room="#tea")
    mine = [m for m in bob.messages() if isinstance(m, (p.Ok, p.JoinEvent))][-2:]
    assert isinstance(mine[0], p.Ok) and mine[0]["room"] == "#tea"
    assert mine[1] == p.JoinEvent(room="#tea", nick="bob")
    assert alice.events(p.JoinEvent) == [p.JoinEvent(room="#tea", nick="bob")]
