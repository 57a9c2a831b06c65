"""A request whose answer died with the server is resent after the reconnect
with the same idempotency key: the Deferred fires with the real answer and
the line (or DM) exists once (PROTOCOL.md C2, "Resending safely")."""

from __future__ import annotations

import pytest

from twistchat.chat import protocol as p

from .harness import World

AFTER_ACK = 0.5
"""Seconds the doomed server lives on mute: its transport acknowledges the
request, so the client knows it arrived, and only the answer is lost."""


def said(message) -> bool:
    return isinstance(message, p.Ok) and "msg_id" in message.result


def dm_answered(message) -> bool:
    return isinstance(message, p.Ok) and "dm_id" in message.result


def restart_after(world: World, seconds: float) -> None:
    world.run(seconds)
    assert not world.server_alive
    world.start_server()            # same store: what was committed survived


def history_texts(world: World, room: str = "#tea") -> list[str]:
    return [entry.text for entry in world.store.history.get(room, [])]


@pytest.mark.parametrize("after", [0.0, AFTER_ACK], ids=["unacknowledged", "acknowledged"])
def test_a_say_whose_answer_died_with_the_server_is_posted_once(after: float) -> None:
    world = World()
    alice, _, bob, bob_sees = world.pair_in_room()
    world.kill_server_before(said, after=after)
    saying = alice.say("#tea", "committed, then the server died")
    restart_after(world, 5)
    reply = world.wait(saying, limit=90)
    assert reply["room"] == "#tea" and reply["msg_id"] > 0
    assert history_texts(world).count("committed, then the server died") == 1
    world.run(60)                   # bob is back too: live or from history, once
    texts = [text for _, _, _, text, _ in bob_sees.of("message")]
    assert texts.count("committed, then the server died") == 1


@pytest.mark.parametrize("after", [0.0, AFTER_ACK], ids=["unacknowledged", "acknowledged"])
def test_a_dm_whose_answer_died_with_the_server_is_stored_once(after: float) -> None:
    world = World()
    alice, _ = world.client("alice")
    carol, carol_sees = world.client("carol")
    for client in (alice, carol):
        world.wait(client.connect())
    world.wait(carol.quit())        # carol is offline: the DM waits in her mailbox
    world.kill_server_before(dm_answered, after=after)
    sending = alice.msg("carol", "stored, then the server died")
    restart_after(world, 5)
    reply = world.wait(sending, limit=90)
    assert reply["to"] == "carol" and reply["dm_id"] > 0
    stored = [dm.text for box in world.store.mailboxes.values() for dm in box]
    assert stored.count("stored, then the server died") == 1


def test_lines_in_flight_across_a_kill_keep_their_order_and_are_posted_once() -> None:
    world = World()
    alice, _, bob, _ = world.pair_in_room()
    world.kill_server_before(said, after=AFTER_ACK)
    lines = [f"line {n}" for n in range(10)]
    sayings = [alice.say("#tea", line) for line in lines]
    restart_after(world, 5)
    for saying in sayings:
        world.wait(saying, limit=90)
    assert history_texts(world)[-10:] == lines
    assert sorted(set(history_texts(world))) == sorted(history_texts(world))
