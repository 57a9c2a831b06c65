"""``ChatClient.mode(room, limit=N)``: the room's member cap, end to end on
the simulator."""

from __future__ import annotations

import pytest

from twistchat.client import ChatError

from .harness import World


def test_the_operator_caps_a_room_and_a_join_past_it_fails_room_full():
    world = World()
    alice, alice_sees, bob, bob_sees = world.pair_in_room()
    reply = world.wait(alice.mode("#tea", limit=2))
    assert reply["limit"] == 2
    world.run(1)
    assert ("presence", "mode", "alice") in bob_sees.log
    carol, _ = world.client("carol")
    world.wait(carol.connect())
    with pytest.raises(ChatError) as refused:
        world.wait(carol.join("#tea"))
    assert refused.value.code == "ROOM_FULL"
    world.wait(alice.mode("#tea", limit=0))
    assert world.wait(carol.join("#tea"))["limit"] is None
