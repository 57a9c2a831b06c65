"""The client library against a real server on the simulator (issue 14):
a client restarted while its room talked is put back in the room by its
login and shows every missed line once, in order, then live lines; its
state file keeps what it saw, so a line the server sends again is not
shown again; a part survives a reconnect; contacts are told at login and
as they change."""

from __future__ import annotations

from twistchat.client import ClientState

from .harness import SERVER, World


def _lines(seen) -> list[tuple[str, bool]]:
    return [(entry[3], entry[4]) for entry in seen.of("message")]


def _state(tmp_path, nick: str) -> ClientState:
    return ClientState.load(tmp_path, nick, *SERVER)


def _alice_and_bob_in_tea(tmp_path):
    """alice, and bob with a state file, both logged in and in #tea."""
    world = World()
    alice, _ = world.client("alice")
    bob, _ = world.client("bob", state=_state(tmp_path, "bob"))
    for client in (alice, bob):
        world.wait(client.connect())
        world.wait(client.join("#tea"))
    return world, alice, bob


def test_a_restarted_client_is_back_in_its_room_with_every_missed_line_once_in_order(tmp_path):
    world, alice, bob = _alice_and_bob_in_tea(tmp_path)
    world.wait(alice.say("#tea", "before"))
    world.run(1)
    bob.stop()  # the process dies: no quit; its state file was saved as the session ended
    for n in range(5):
        world.wait(alice.say("#tea", f"missed {n}"))
    again, again_sees = world.client("bob", state=_state(tmp_path, "bob"))
    reply = world.wait(again.connect())
    assert reply["rooms"] == 1 and list(again.rooms.values()) == ["#tea"]
    world.wait(alice.say("#tea", "live"))
    world.run(1)
    assert _lines(again_sees) == [(f"missed {n}", True) for n in range(5)] + [("live", False)]
    [rejoined] = again_sees.of("rejoined")
    assert rejoined[1:] == ("#tea", 5, 0)
    world.wait(again.say("#tea", "back"))  # a member again without a join


def test_lines_seen_in_an_earlier_run_are_not_shown_again_when_the_server_sends_them_again(tmp_path):
    world, alice, bob = _alice_and_bob_in_tea(tmp_path)
    for n in range(3):
        world.wait(alice.say("#tea", f"seen {n}"))
    world.run(1)
    world.wait(bob.quit())
    # the server's marks lag (as after a crash between two reaper ticks)
    world.store.memberships["bob"]["#tea"] = world.store.memberships["bob"]["#tea"].__class__(
        "bob", "#tea", "#tea", 0, 0)
    world.wait(alice.say("#tea", "new"))
    again, again_sees = world.client("bob", state=_state(tmp_path, "bob"))
    world.wait(again.connect())
    world.run(1)
    assert _lines(again_sees) == [("new", True)]


def test_a_client_stopped_the_moment_lines_were_replayed_does_not_show_them_again_next_run(tmp_path):
    """``stop()`` saves what was seen there and then: a program that exits
    as it stops (Ctrl-C, a login given up on) had no reactor turn for the
    save that closing the session makes, and the server's marks may lag."""
    world, alice, bob = _alice_and_bob_in_tea(tmp_path)
    world.wait(bob.quit())
    for n in range(3):
        world.wait(alice.say("#tea", f"missed {n}"))
    first, first_sees = world.client("bob", state=_state(tmp_path, "bob"))
    world.wait(first.connect())
    world.run(1)
    assert _lines(first_sees) == [(f"missed {n}", True) for n in range(3)]
    first.stop()
    again_state = _state(tmp_path, "bob")  # the next run starts at once
    world.run(1)
    world.store.memberships["bob"]["#tea"] = world.store.memberships["bob"]["#tea"].__class__(
        "bob", "#tea", "#tea", 0, 0)  # as after a crash between two reaper ticks
    again, again_sees = world.client("bob", state=again_state)
    world.wait(again.connect())
    world.run(1)
    assert _lines(again_sees) == []


def test_what_a_client_had_read_when_it_stopped_is_shown_once_and_saved_before_stop_returns(tmp_path):
    """A DM read off the socket but not yet handed over when ``stop()`` is
    called: ``stop`` hands it over and saves, there and then. Its ack goes
    out with the CLOSE; if the server never gets it (killed, or the ack
    lost) it replays the DM to the next run, which must know it saw it."""
    world = World()
    bob, bob_sees = world.client("bob", state=_state(tmp_path, "bob"))
    alice, _ = world.client("alice")
    for client in (alice, bob):
        world.wait(client.connect())
    world.run(1)
    read = bob.endpoint.datagramReceived
    seen_at_stop, saved_at_stop = [], []

    def read_then_stop(datagram, address):
        """The program stops in the turn that read the DM, before its flush."""
        read(datagram, address)
        bob.endpoint.datagramReceived = read
        seen_at_stop.extend(bob_sees.of("dm"))
        bob.stop()
        saved_at_stop.append(len(_state(tmp_path, "bob").dm_ids))
    bob.endpoint.datagramReceived = read_then_stop
    world.wait(alice.msg("bob", "read but not handed over"))
    assert seen_at_stop == [] and saved_at_stop == [1]
    assert bob_sees.of("dm") == [("dm", "alice", "read but not handed over", False)]


def test_a_part_survives_a_server_restart_and_quit_does_not_end_membership():
    world = World()
    bob, bob_sees = world.client("bob")
    world.wait(bob.connect())
    world.wait(bob.join("#tea"))
    world.wait(bob.join("#cake"))
    world.wait(bob.part("#cake"))
    world.kill_server()
    world.start_server()
    world.run(60)
    assert bob.ready and list(bob.rooms.values()) == ["#tea"]
    assert [entry[1] for entry in bob_sees.of("rejoined")] == ["#tea"]
    world.wait(bob.quit())
    again, again_sees = world.client("bob", state=bob.state)
    world.wait(again.connect())
    assert list(again.rooms.values()) == ["#tea"]


def test_contacts_are_told_at_login_and_as_they_change():
    world = World()
    carol, _ = world.client("carol")
    world.wait(carol.connect())
    world.wait(carol.quit())
    alice, alice_sees = world.client("alice")
    world.wait(alice.connect())
    watched = world.wait(alice.watch("carol"))
    assert watched["state"] == "offline" and watched["last_seen"]
    carol, _ = world.client("carol", state=carol.state)
    world.wait(carol.connect())
    world.wait(carol.away("lunch"))
    world.run(1)
    assert [e[1:] for e in alice_sees.of("contact")] == [("carol", "online"), ("carol", "away")]
    assert alice.contact_list.state("carol") == "away"
    listing = world.wait(alice.contacts())
    assert [(c["nick"], c["state"]) for c in listing["contacts"]] == [("carol", "away")]
    world.wait(carol.quit())
    world.run(1)
    assert alice.contact_list.state("carol") == "offline"
    world.wait(alice.unwatch("carol"))
    assert world.wait(alice.contacts())["contacts"] == []


def test_a_dm_a_crash_of_the_server_sends_again_is_not_shown_again_by_the_next_run(tmp_path):
    world = World()
    alice, _ = world.client("alice")
    bob, bob_sees = world.client("bob", state=_state(tmp_path, "bob"))
    for client in (alice, bob):
        world.wait(client.connect())
    dm_id = world.wait(alice.msg("bob", "psst"))["dm_id"]
    world.run(1)
    assert [e[2] for e in bob_sees.of("dm")] == ["psst"]
    assert "bob" not in world.store.mailboxes  # acknowledged and deleted...
    world.wait(bob.quit())
    from twistchat.store.base import StoredDm
    world.store.mailboxes["bob"] = [StoredDm(dm_id, "bob", "bob", "alice", "psst", 1, "alice")]
    again, again_sees = world.client("bob", state=_state(tmp_path, "bob"))  # ...a crash undid it
    assert world.wait(again.connect())["mailbox"] == 1
    world.run(1)
    assert again_sees.of("dm") == []


def test_a_room_parted_from_another_client_is_not_re_joined_by_this_one():
    world = World()
    bob, bob_sees = world.client("bob")
    world.wait(bob.connect())
    world.wait(bob.join("#tea"))
    world.wait(bob.join("#cake"))
    world.kill_server()
    # meanwhile, bob parts #cake from elsewhere: the server's store says so
    world.store.memberships["bob"].pop("#cake")
    world.start_server()
    world.run(60)
    assert bob.ready and list(bob.rooms.values()) == ["#tea"]
    assert ("presence", "part", "bob") in bob_sees.log
