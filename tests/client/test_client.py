"""The client library against the real server and transport, in virtual time."""

from __future__ import annotations

import pytest

from twistchat.client import CLIENT_MAX_MESSAGE_SIZE, ChatError, ClientState, Disconnected, PasswordRequired

from .harness import World


def test_actions_fire_with_the_servers_reply_or_its_typed_error():
    world = World()
    alice, _ = world.client("alice")
    reply = world.wait(alice.connect())
    assert reply["nick"] == "alice" and reply["registered"]
    joined = world.wait(alice.join("#tea"))
    assert joined["room"] == "#tea" and joined["op"] == "alice"
    said = world.wait(alice.say("#tea", "hello"))
    assert said["msg_id"] > 0 and said["ts"] > 0
    with pytest.raises(ChatError) as error:
        world.wait(alice.say("#coffee", "not a member"))
    assert error.value.code == "NOT_IN_ROOM"
    with pytest.raises(ChatError) as error:
        world.wait(alice.msg("nobody", "hi"))
    assert error.value.code == "NO_SUCH_NICK"


def test_room_chat_and_presence_reach_the_observer():
    world = World()
    alice, alice_sees, bob, bob_sees = world.pair_in_room()
    world.wait(alice.say("#tea", "one"))
    world.wait(alice.say("#tea", "two"))
    world.run(1)
    assert [e for e in bob_sees.of("message")] == [
        ("message", "#tea", "alice", "one", False), ("message", "#tea", "alice", "two", False)]
    assert ("presence", "join", "bob") in alice_sees.log


def test_history_is_replayed_on_join():
    world = World()
    alice, _ = world.client("alice")
    world.wait(alice.connect())
    world.wait(alice.join("#tea"))
    for text in ("a", "b"):
        world.wait(alice.say("#tea", text))
    bob, bob_sees = world.client("bob")
    world.wait(bob.connect())
    world.wait(bob.join("#tea"))
    assert bob_sees.of("message") == [("message", "#tea", "alice", "a", True),
                                      ("message", "#tea", "alice", "b", True)]


def test_dm_to_offline_user_is_stored_then_delivered_with_notice(tmp_path):
    world = World()
    bob, _ = world.client("bob", state=ClientState.load(tmp_path, "bob", "h", 1))
    world.wait(bob.connect())
    world.wait(bob.quit())
    alice, alice_sees = world.client("alice")
    world.wait(alice.connect())
    assert world.wait(alice.msg("bob", "while you were out"))["status"] == "stored"
    # bob comes back with a fresh process: the state directory has his secret.
    bob, bob_sees = world.client("bob", state=ClientState.load(tmp_path, "bob", "h", 1))
    reply = world.wait(bob.connect())
    assert not reply["registered"]
    world.run(1)
    assert bob_sees.of("dm") == [("dm", "alice", "while you were out", True)]
    assert [entry[1] for entry in alice_sees.of("delivered")] == ["bob"]


def test_credential_round_trip_through_the_state_directory(tmp_path):
    world = World()
    first, _ = world.client("carol", state=ClientState.load(tmp_path, "carol", "h", 1))
    world.wait(first.connect())
    saved = ClientState.load(tmp_path, "carol", "h", 1)
    assert saved.secret and not saved.password_required
    world.wait(first.quit())
    # Without the state file the nick is not ours.
    thief, _ = world.client("carol")
    with pytest.raises(ChatError) as error:
        world.wait(thief.connect())
    assert error.value.code == "BAD_CREDENTIAL"
    # With a password set, the state remembers that one is needed.
    again, _ = world.client("carol", state=ClientState.load(tmp_path, "carol", "h", 1))
    world.wait(again.connect())
    world.wait(again.register("a long enough password"))
    world.wait(again.quit())
    saved = ClientState.load(tmp_path, "carol", "h", 1)
    assert saved.secret is None and saved.password_required
    forgetful, _ = world.client("carol", state=saved)
    with pytest.raises(PasswordRequired):
        world.wait(forgetful.connect())
    remembered, _ = world.client("carol", state=saved, password="a long enough password")
    assert world.wait(remembered.connect())["nick"] == "carol"


def test_server_restart_costs_a_notice_and_nothing_else():
    world = World()
    alice, alice_sees, bob, _ = world.pair_in_room()
    world.wait(bob.say("#tea", "before"))
    world.kill_server()
    world.run(1)
    world.start_server()            # same store: the data survived
    world.run(60)                   # both notice, back off, reconnect, re-join
    assert alice.connected and bob.connected
    assert ("reconnected",) in alice_sees.log
    disconnects = alice_sees.of("disconnected")
    assert disconnects and all(retry for _, _, retry in disconnects)
    world.wait(bob.say("#tea", "after"))
    world.run(1)
    texts = [(text, replay) for _, _, _, text, replay in alice_sees.of("message")]
    assert texts == [("before", False), ("after", False)]  # nothing twice, nothing lost


def test_messages_said_while_disconnected_are_caught_up_from_history():
    world = World()
    alice, alice_sees, bob, _ = world.pair_in_room()
    world.wait(bob.say("#tea", "seen live"))
    now = world.clock.seconds()
    world.network.isolate(alice.endpoint.transport.address, now, now + 70)
    world.run(50)                      # alice's link is down; bob talks on
    world.wait(bob.say("#tea", "you missed this"))
    world.run(60)                      # alice is back: re-joined, caught up
    assert alice.connected
    assert [(text, replay) for _, _, _, text, replay in alice_sees.of("message")] == [
        ("seen live", False), ("you missed this", True)]


def test_requests_while_disconnected_fail_clearly():
    world = World()
    alice, _ = world.client("alice")
    with pytest.raises(Disconnected):
        world.wait(alice.say("#tea", "hi"))


def test_unreachable_server_fails_the_connect_with_a_clear_error():
    world = World()
    world.kill_server()
    alice, _ = world.client("alice")
    with pytest.raises(Disconnected) as error:
        world.wait(alice.connect(), limit=20)
    assert "cannot reach" in str(error.value)


def test_a_line_said_while_the_server_restarts_is_sent_after_the_reconnect():
    world = World()
    alice, _, bob, bob_sees = world.pair_in_room()
    world.kill_server()
    world.run(50)                       # alice has noticed and is retrying (a keepalive
    #                                     25-30 s on went unacknowledged for 15 s)
    assert not alice.connected
    said = alice.say("#tea", "typed during the outage")
    world.start_server()
    reply = world.wait(said, limit=60)
    assert reply["msg_id"] > 0
    world.run(1)
    texts = [text for _, _, _, text, _ in bob_sees.of("message")]
    assert texts.count("typed during the outage") == 1


def test_requests_the_server_never_received_are_sent_again_not_lost():
    world = World()
    alice, _, bob, bob_sees = world.pair_in_room()
    world.kill_server()
    said = alice.say("#tea", "in flight when the server died")  # never acknowledged
    world.run(30)
    world.start_server()
    world.wait(said, limit=60)
    world.run(60)                       # bob is back too (live or from history)
    texts = [text for _, _, _, text, _ in bob_sees.of("message")]
    assert texts.count("in flight when the server died") == 1


def test_a_link_lost_during_re_login_leads_to_one_retry_loop_not_two():
    world = World()
    alice, alice_sees, bob, _ = world.pair_in_room()
    world.kill_server()
    world.run(20)                        # alice noticed; her retries find nobody
    world.start_server()
    world.server.shutting_down = True    # ... then the server dies mid-login:
    original = world.server.build_protocol

    def dying_session():
        session = original()
        world.clock.callLater(0.001, lambda: session.connection.close(
            "", graceful=False) if session.connection else None)
        return session
    world.server.build_protocol = dying_session
    world.run(5)
    world.server.build_protocol = original
    world.server.shutting_down = False
    world.run(60)
    assert alice.connected
    # One retry loop: one reconnect, one session per client on the server.
    assert alice_sees.of("reconnected") == [("reconnected",)]
    assert len(world.server.sessions) == 2


def test_the_client_announces_room_for_the_largest_message_the_server_may_send():
    world = World()
    alice, alice_sees, bob, _ = world.pair_in_room()
    received = []
    alice.observer.data = lambda event: received.append((event.nick, len(event.payload)))
    limits = alice.limits
    assert limits.max_message_bytes and limits.fits(CLIENT_MAX_MESSAGE_SIZE)
    # The server takes the client at its word, up to its own cap (RFC 9000 §18.2 style).
    assert all(session.peer_max_message_size >= limits.max_message_bytes
               for session in world.server.sessions)
    reply = world.wait(bob.send_data("alice", b"x" * limits.max_payload_bytes))
    assert reply["to"] == "alice"      # ok only once alice's transport has it all
    assert received == [("bob", limits.max_payload_bytes)]
