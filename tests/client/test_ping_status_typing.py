"""``ping()``, ``status()`` and typing notices from the library, against the
real server and transport on the simulator."""

from __future__ import annotations

from twistchat.chat import protocol as p
from twistchat.client import LinkState
from twistchat.endpoint.keys import key_fingerprint

from .harness import Recording, World


class TypingRecording(Recording):
    def typing(self, event):
        self.log.append(("typing", event.nick, event.to))


def test_ping_measures_the_round_trip_to_the_server():
    world = World(rtt=0.05)
    alice, _ = world.client("alice")
    world.wait(alice.connect())
    reply = world.wait(alice.ping())
    assert 0.05 <= reply["rtt"] < 0.2
    assert reply["keepalive"] == 25 and reply["ts"] > 0
    assert alice.status().ping_rtt == reply["rtt"]


def test_status_names_the_server_its_key_the_rooms_and_what_the_transport_saw():
    world = World(rtt=0.04, loss=0.1)
    alice, _ = world.client("alice")
    before = alice.status()
    assert before.state is LinkState.IDLE and before.transport is None
    assert before.logged_in_for is None
    world.wait(alice.connect())
    world.wait(alice.join("#tea"))
    for i in range(30):
        alice.say("#tea", f"line {i}")
    world.run(0.01)
    busy = alice.status()
    assert busy.unanswered > 0 and busy.transport.unacked_messages > 0
    for i in range(60):                       # one line a packet: some are lost at 10%
        alice.say("#tea", f"more {i}")
        world.run(0.1)
    world.run(20)
    status = alice.status()
    assert status.server == "127.0.0.10:9999"
    assert status.server_key == key_fingerprint(world.server_key)
    assert status.nick == "alice" and status.rooms == ("#tea",)
    assert status.state is LinkState.READY and status.logged_in_for >= 20
    transport = status.transport
    assert transport.rtt_sampled and 0.03 < transport.smoothed_rtt < 0.5
    assert transport.packets_sent > 60 and transport.packets_lost > 0
    assert 0 < transport.loss_towards_peer < 0.5
    assert status.unanswered == 0 and transport.unacked_messages == 0


def test_typing_reaches_the_room_and_the_dm_peer_paced_and_never_held():
    world = World()
    alice, _ = world.client("alice")
    bob, _ = world.client("bob")
    bob_sees = TypingRecording()
    bob.observer = bob_sees
    assert alice.typing("#tea") is False      # not connected: nothing is held for later
    for client in (alice, bob):
        world.wait(client.connect())
        world.wait(client.join("#tea"))
    assert alice.typing("#tea") is True
    assert alice.typing("#tea") is False      # within the interval: held back
    assert alice.typing("bob") is True        # another target has its own pace
    world.run(1)
    assert bob_sees.of("typing") == [("typing", "alice", "#tea"), ("typing", "alice", "bob")]
    world.run(p.TYPING_SEND_INTERVAL)
    assert alice.typing("#tea") is True
    world.wait(alice.say("#tea", "done typing"))
    assert alice.typing("#tea") is True       # a line sent: the next keystroke tells at once
    assert alice.counters.typing_sent == 4 and alice.counters.typing_held_back == 2
