"""What a reply means (PROTOCOL.md C10), on fakes whose acks the test holds
back and releases: data is ok only once the recipient's transport has it,
and the announced limits are the real ones, from the longest nick and room."""

from __future__ import annotations

from twistchat.chat import protocol as p

from .fakes import Harness

LONGEST_NICK = "N" * p.NICK_MAX_LENGTH
LONGEST_ROOM = "#" + "r" * p.ROOM_NAME_MAX_LENGTH


def _reply(client, rid: int) -> list[p.Message]:
    return [m for m in client.messages() if isinstance(m, p.Ok | p.ErrorReply) and m.id == rid]


def test_login_announces_the_largest_message_the_server_may_send(h: Harness):
    login = h.connect().ok("login", nick="alice")
    assert login["max_message_bytes"] == h.config.max_message_bytes
    assert login["max_message_bytes"] >= login["max_payload_bytes"] + p.NICK_MAX_LENGTH


def test_data_is_ok_only_once_the_recipients_transport_acknowledged_it(h: Harness):
    alice, bob = h.login("alice"), h.login("bob")
    bob.connection.hold_acks()
    alice.send_raw(p.encode(p.Data(id=7, to="bob", payload=b"blob")))
    assert [e.payload for e in bob.events(p.DataEvent)] == [b"blob"]
    assert _reply(alice, 7) == []
    bob.connection.release_acks()
    [ok] = _reply(alice, 7)
    assert isinstance(ok, p.Ok) and ok["to"] == "bob"


def test_data_whose_recipient_session_ends_first_is_not_delivered(h: Harness):
    alice, bob = h.login("alice"), h.login("bob")
    bob.connection.hold_acks()
    alice.send_raw(p.encode(p.Data(id=7, to="bob", payload=b"blob")))
    bob.connection.peer_vanishes()
    [error] = _reply(alice, 7)
    assert isinstance(error, p.ErrorReply) and error.code == "NOT_DELIVERED"
    assert alice.ok("ping")  # the sender's session goes on


def test_a_payload_at_the_announced_limit_arrives_from_the_longest_nick(h: Harness):
    sender, bob = h.login(LONGEST_NICK), h.login("bob")
    limit = h.config.max_payload_bytes
    payload = bytes(range(256)) * (limit // 256) + b"\n" * (limit % 256)
    assert len(payload) == limit
    assert sender.ok("data", to="bob", payload=payload)["to"] == "bob"
    [event] = bob.events(p.DataEvent)
    assert (event.nick, event.payload) == (LONGEST_NICK, payload)
    assert sender.error("data", to="bob", payload=payload + b"x") == "TOO_LARGE"
    assert bob.events(p.DataEvent) == []


def test_the_largest_request_fits_the_servers_transport():
    from twistchat.chat.server.service import session_config
    h = Harness()
    config = session_config(h.config)
    request = p.encode(p.Data(id=p.MAX_REQUEST_ID, to=LONGEST_NICK, idem="k" * p.IDEM_MAX_LENGTH,
                              payload=bytes(h.config.max_payload_bytes)))
    assert len(request) <= h.config.max_request_bytes <= config.max_message_size


def test_data_too_large_for_the_recipients_transport_is_refused_before_any_ok():
    h = Harness()
    alice = h.login("alice")
    small = h.login("bob", max_message_size=1000)
    assert alice.error("data", to="bob", payload=bytes(1000)) == "TOO_LARGE"
    assert small.events(p.DataEvent) == []
    assert alice.ok("data", to="bob", payload=bytes(900))
