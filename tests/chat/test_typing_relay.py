"""Typing notices on the server (PROTOCOL.md C11): relayed unreliably to
the room's other members or the DM's recipient; anything else dropped and
counted, never answered."""

from __future__ import annotations

from twistchat.chat import protocol as p

from .fakes import Harness


def typing_seen(client) -> list[p.TypingEvent]:
    return [p.decode_typing_event(data) for data in client.connection.unreliable]


def type_to(client, to: str) -> None:
    client.protocol.unreliable_received(p.encode(p.TypingNotice(to=to)))


def test_a_notice_to_a_room_reaches_the_other_members_unreliably_and_is_not_answered():
    h = Harness()
    alice, bob, carol = h.login("alice"), h.login("bob"), h.login("carol")
    for client in (alice, bob):
        client.ok("join", room="#tea")
    sent_before = len(alice.connection.sent)
    type_to(alice, "#TEA")
    assert typing_seen(bob) == [p.TypingEvent(nick="alice", to="#tea")]
    assert typing_seen(alice) == [] and typing_seen(carol) == []
    assert len(alice.connection.sent) == sent_before  # no reply, nothing reliable
    assert h.server.typing.counters.relayed == 1


def test_a_notice_to_a_nick_reaches_only_that_nick():
    h = Harness()
    alice, bob, carol = h.login("alice"), h.login("bob"), h.login("carol")
    type_to(alice, "Bob")
    assert typing_seen(bob) == [p.TypingEvent(nick="alice", to="bob")]
    assert typing_seen(carol) == []


def test_notices_past_the_rate_are_dropped_and_counted_per_session():
    h = Harness(typing_rate=0.5, typing_burst=2)
    alice, bob = h.login("alice"), h.login("bob")
    for _ in range(5):
        type_to(alice, "bob")
    assert len(typing_seen(bob)) == 2
    relay = h.server.typing
    assert relay.counters.rate_limited == 3
    assert relay.dropped_by_session[alice.protocol] == 3
    h.advance(2)
    type_to(alice, "bob")
    assert len(typing_seen(bob)) == 3


def test_bad_notices_and_notices_to_nowhere_are_dropped_and_counted():
    h = Harness()
    alice, bob = h.login("alice"), h.login("bob")
    stranger = h.connect()
    stranger.protocol.unreliable_received(p.encode(p.TypingNotice(to="bob")))
    for junk in (b"", b"\xff\xfe", b"{}", b'{"t":"typing"}', b'{"t":"typing","to":"no such!"}',
                 b'{"t":"say","to":"bob"}', b"x" * 5000, b'{"t":"typing","to":"bob"}\npayload'):
        alice.protocol.unreliable_received(junk)
    type_to(alice, "#nowhere")          # not a member
    type_to(alice, "carol")             # nobody online by that nick
    counters = h.server.typing.counters
    assert typing_seen(bob) == []
    assert (counters.not_logged_in, counters.malformed, counters.no_target) == (1, 8, 2)
    assert alice.closed is None and all(isinstance(m, p.Message) for m in alice.messages())
    assert [m for m in alice.messages() if isinstance(m, p.ErrorReply)] == []
