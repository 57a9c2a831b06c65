"""What becomes of each kind of request whose answer a lost session took
with it (client/resend.py), on a scripted server that answers on cue."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from twistchat.chat import protocol as p
from twistchat.chat.protocol.limits import IDEM_PATTERN
from twistchat.client import ChatError, Disconnected

from .scripted import ScriptedServer, logged_in, run

BACK_IN = 60
"""Virtual seconds enough to notice, back off, reconnect and log in again."""


def outcome(deferred) -> list:
    results: list = []
    deferred.addBoth(results.append)
    return results


def test_say_dm_and_data_each_carry_their_own_idempotency_key() -> None:
    clock, server, bob, _ = logged_in()
    bob.say("#tea", "one")
    bob.say("#tea", "two")
    bob.msg("alice", "psst")
    bob.send_data("alice", b"\x00\x01")
    run(clock, 1)
    keys = [r.idem for r in server.requests if isinstance(r, (p.Say, p.Dm, p.Data))]
    assert len(keys) == 4 and len(set(keys)) == 4
    assert all(IDEM_PATTERN.match(key) for key in keys)


@pytest.mark.parametrize("request_type, call", [
    (p.Say, lambda c: c.say("#tea", "hello")),
    (p.Dm, lambda c: c.msg("alice", "psst")),
    (p.Data, lambda c: c.send_data("alice", b"blob")),
])
def test_a_keyed_request_whose_answer_was_lost_is_resent_with_the_same_key(request_type, call) -> None:
    clock, server, bob, _ = logged_in()
    real_answer = {"room": "#tea", "msg_id": 5, "ts": 1} if request_type is p.Say else {"to": "alice"}
    server.results[request_type] = lambda request: real_answer
    server.silent.add(request_type)
    answer = outcome(call(bob))
    run(clock, 1)
    server.silent.clear()
    server.drop()                     # the request arrived; its answer never will
    run(clock, BACK_IN)
    first, again = server.sent(request_type)
    assert again.idem == first.idem and again.id != first.id
    assert answer == [real_answer]    # the real answer, not Disconnected


def test_a_join_in_flight_is_sent_again_and_the_room_is_then_re_joined() -> None:
    clock, server, bob, _ = logged_in()
    server.results[p.Join] = lambda request: {"room": request.room, "history": []}
    server.silent.add(p.Join)
    joining = outcome(bob.join("#tea"))
    run(clock, 1)
    server.silent.clear()
    server.drop()
    run(clock, BACK_IN)
    assert joining and joining[0]["room"] == "#tea"
    assert "#tea" in bob.rooms.values()
    server.drop()                     # and the next reconnect re-joins it itself
    run(clock, BACK_IN)
    assert [r.room for r in server.sent(p.Join)] == ["#tea", "#tea", "#tea"]


def test_a_part_in_flight_is_sent_again_and_the_room_not_re_joined() -> None:
    """Memberships outlive sessions (PROTOCOL.md C12): only a part ends one."""
    clock, server, bob, _ = logged_in()
    server.results[p.Join] = lambda request: {"room": request.room, "history": []}
    server.results[p.Part] = lambda request: {"room": request.room}
    run(clock, 1)
    bob.join("#tea")
    run(clock, 1)
    server.silent.add(p.Part)
    parting = outcome(bob.part("#tea"))
    run(clock, 1)
    server.silent.clear()
    server.drop()
    run(clock, BACK_IN)
    assert parting == [{"room": "#tea"}]
    assert len(server.sent(p.Part)) == 2 and len(server.sent(p.Join)) == 1
    assert not bob.rooms


def test_a_part_while_reconnecting_is_sent_once_logged_in_again() -> None:
    clock, server, bob, _ = logged_in()
    server.results[p.Join] = lambda request: {"room": request.room, "history": []}
    server.results[p.Part] = lambda request: {"room": request.room}
    bob.join("#tea")
    run(clock, 1)
    server.drop()
    run(clock, 0.1)
    parting = outcome(bob.part("#tea"))
    assert parting == []
    run(clock, BACK_IN)
    assert parting == [{"room": "#tea"}]
    assert len(server.sent(p.Part)) == 1 and len(server.sent(p.Join)) == 1


def test_a_part_of_a_room_left_already_is_done() -> None:
    clock, server, bob, _ = logged_in()
    server.results[p.Part] = lambda request: p.ErrorReply(id=request.id, code="NOT_IN_ROOM")
    parting = outcome(bob.part("#tea"))
    run(clock, 1)
    assert parting == [{"room": "#tea"}]


@pytest.mark.parametrize("request_type, call", [
    (p.Create, lambda c: c.create()),
    (p.Nick, lambda c: c.set_nick("robert")),
    (p.SetPassword, lambda c: c.register("a long enough password", current="the secret")),
    (p.Kick, lambda c: c.kick("#tea", "mallory")),
    (p.Op, lambda c: c.op("#tea", "alice")),
])
def test_a_lasting_unkeyed_change_whose_answer_was_lost_fails_and_is_not_repeated(
        request_type, call) -> None:
    clock, server, bob, _ = logged_in()
    server.silent.add(request_type)
    answer = outcome(call(bob))
    run(clock, 1)
    server.drop()
    run(clock, BACK_IN)
    assert len(answer) == 1 and answer[0].check(Disconnected)
    assert "may or may not" in answer[0].getErrorMessage()
    assert len(server.sent(request_type)) == 1


def test_away_is_set_again_after_a_re_login() -> None:
    clock, server, bob, _ = logged_in()
    server.results[p.Away] = lambda request: {"away": request.message}
    bob.away("lunch")
    run(clock, 1)
    assert bob.away_message == "lunch"
    server.drop()
    run(clock, BACK_IN)
    assert [r.message for r in server.sent(p.Away)] == ["lunch", "lunch"]
    bob.away()
    run(clock, 1)
    server.drop()
    run(clock, BACK_IN)
    assert [r.message for r in server.sent(p.Away)] == ["lunch", "lunch", None]


def test_a_request_refused_because_the_server_is_going_down_is_sent_after_the_restart() -> None:
    clock, server, bob, _ = logged_in()
    server.results[p.Say] = lambda request: p.ErrorReply(id=request.id, code="SHUTTING_DOWN")
    saying = outcome(bob.say("#tea", "just as it went down"))
    run(clock, 1)
    assert not saying
    del server.results[p.Say]
    server.results[p.Say] = lambda request: {"room": "#tea", "msg_id": 9, "ts": 1}
    server.drop()
    run(clock, BACK_IN)
    assert saying == [{"room": "#tea", "msg_id": 9, "ts": 1}]
    first, again = server.sent(p.Say)
    assert first.idem == again.idem


def test_quit_is_never_resent() -> None:
    clock, server, bob, _ = logged_in()
    server.silent.add(p.Quit)
    bob.quit()
    run(clock, 1)
    server.drop()
    run(clock, BACK_IN)
    assert len(server.sent(p.Quit)) == 1 and len(server.sent(p.Login)) == 1


def test_data_the_recipient_never_got_fails_with_a_typed_error() -> None:
    clock, server, bob, _ = logged_in()
    server.results[p.Data] = lambda request: p.ErrorReply(id=request.id, code="NOT_DELIVERED",
                                                           message="its session ended")
    sending = outcome(bob.send_data("alice", b"blob"))
    run(clock, 1)
    assert len(sending) == 1 and sending[0].check(ChatError)
    assert sending[0].value.code == "NOT_DELIVERED"


def test_the_limits_of_the_login_reply_are_kept() -> None:
    server = ScriptedServer(Clock())
    server.results[p.Login] = lambda request: {
        "nick": request.nick, "registered": False, "max_text_bytes": 4096,
        "max_payload_bytes": 65536, "max_message_bytes": 70000}
    _, _, bob, _ = logged_in(server=server)
    assert (bob.limits.max_text_bytes, bob.limits.max_payload_bytes,
            bob.limits.max_message_bytes) == (4096, 65536, 70000)
    assert bob.limits.fits(256 * 1024) and not bob.limits.fits(65536)
