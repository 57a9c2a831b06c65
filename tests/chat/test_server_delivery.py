"""What a reply means (PROTOCOL.md C10), on fakes whose acks the test holds
back and releases: data is ok only once the recipient's transport has it,
and the announced limits are the real ones, from the longest nick and room."""

from __future__ import annotations

from twistchat.chat import protocol as p
from twistchat.store.memory import MemoryStore

from .fakes import Harness, SlowStore

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
    assert alice.ok("ping")  # the wait holds up no later request
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


# ---- a DM's life: stored, sent, deleted on ack, then "delivered"

def _offline(h: Harness, nick: str) -> str:
    """Register ``nick`` password-less and leave; returns its secret."""
    secret = h.connect().ok("login", nick=nick)["secret"]
    h.server.online[nick.lower()].session.connection.close("bye")
    return secret


def test_a_dm_to_an_online_recipient_is_deleted_on_ack_not_on_send(h: Harness):
    alice, bob = h.login("alice"), h.login("bob")
    bob.connection.hold_acks()
    reply = alice.ok("dm", to="bob", text="are you there?")
    assert (reply["status"], reply["online"]) == ("stored", True)
    assert [d.dm_id for d in bob.events(p.DmEvent)] == [reply["dm_id"]]
    assert [d.dm_id for d in h.store.mailboxes["bob"]] == [reply["dm_id"]]  # sent, still kept
    assert alice.events(p.DeliveredEvent) == []                              # not announced yet
    bob.connection.release_acks()
    assert h.store.mailboxes == {}
    [notice] = alice.events(p.DeliveredEvent)
    assert notice.dm_id == reply["dm_id"]


def test_a_session_lost_with_unacknowledged_dms_keeps_them_for_the_next_login(h: Harness):
    secret = _offline(h, "bob")
    bob = h.connect()
    bob.ok("login", nick="bob", secret=secret)
    bob.connection.hold_acks()
    alice = h.login("alice")
    sent = [alice.ok("dm", to="bob", text=f"line {n}")["dm_id"] for n in range(3)]
    bob.connection.release_acks(1)  # the first arrived, then the link died
    bob.connection.peer_vanishes()
    assert len(bob.connection.closed) == 3
    again = h.connect()
    assert again.ok("login", nick="bob", secret=secret)["mailbox"] == 2
    assert [(d.dm_id, d.stored) for d in again.events(p.DmEvent)] == [(sent[1], True), (sent[2], True)]
    assert h.store.mailboxes == {}
    assert [n.dm_id for n in alice.events(p.DeliveredEvent)] == sent


def test_a_replay_that_is_not_acknowledged_is_replayed_again(h: Harness):
    secret = _offline(h, "bob")
    alice = h.login("alice")
    sent = [alice.ok("dm", to="bob", text=f"stored {n}")["dm_id"] for n in range(3)]
    for attempt in range(2):  # replayed, never acknowledged, twice
        bob = h.connect()
        bob.connection.hold_acks()
        assert bob.ok("login", nick="bob", secret=secret)["mailbox"] == 3
        assert [d.dm_id for d in bob.events(p.DmEvent)] == sent
        bob.connection.peer_vanishes()
        assert len(h.store.mailboxes["bob"]) == 3
    assert alice.events(p.DeliveredEvent) == []
    bob = h.connect()
    bob.connection.hold_acks()
    bob.ok("login", nick="bob", secret=secret)
    bob.connection.release_acks(2)  # login reply and the first DM: deleted one by one
    assert [d.dm_id for d in h.store.mailboxes["bob"]] == sent[1:]
    assert [n.dm_id for n in alice.events(p.DeliveredEvent)] == sent[:1]


def test_a_receipt_for_an_offline_sender_is_kept_and_sent_after_its_login(h: Harness):
    bob = h.login("bob")
    bob.connection.hold_acks()
    alice = h.connect()
    alice_secret = alice.ok("login", nick="alice")["secret"]
    reply = alice.ok("dm", to="bob", text="bye for now")
    alice.ok("quit")
    bob.connection.release_acks()
    assert h.store.mailboxes == {} and list(h.store.receipts) == [reply["dm_id"]]
    again = h.connect()
    again.connection.hold_acks()
    again.ok("login", nick="alice", secret=alice_secret)
    [notice] = again.events(p.DeliveredEvent)
    assert (notice.dm_id, notice.to, notice.ts) == (reply["dm_id"], "bob", reply["ts"])
    assert list(h.store.receipts) == [reply["dm_id"]]  # until alice's transport has it
    again.connection.release_acks()
    assert h.store.receipts == {}


def test_a_dm_to_an_offline_nick_is_stored_and_says_so(h: Harness):
    _offline(h, "bob")
    reply = h.login("alice").ok("dm", to="bob", text="later")
    assert (reply["status"], reply["online"]) == ("stored", False)


def test_a_dm_too_large_for_the_recipients_transport_is_refused_before_any_ok():
    h = Harness()
    alice, bob = h.login("alice"), h.login("bob", max_message_size=500)
    assert alice.error("dm", to="bob", text="x" * 500) == "TOO_LARGE"
    assert h.store.mailboxes == {} and bob.events(p.DmEvent) == []
    assert alice.ok("dm", to="bob", text="short")


def test_a_text_at_the_announced_limit_arrives_from_the_longest_nick_and_room():
    h = Harness()
    sender, bob = h.login(LONGEST_NICK), h.login("bob")
    limit = h.config.max_text_bytes
    text = '"\\\n' * (limit // 3) + "é" * ((limit % 3) // 2) + "x" * (limit % 3 % 2)
    assert len(text.encode()) == limit
    sender.ok("dm", to="bob", text=text)
    assert [d.text for d in bob.events(p.DmEvent)] == [text]
    assert sender.error("dm", to="bob", text=text + "x") == "TOO_LARGE"
    for member in (sender, bob):
        member.ok("join", room=LONGEST_ROOM)
    bob.drain()
    sender.ok("say", room=LONGEST_ROOM, text=text)
    assert [(m.room, m.nick, m.text) for m in bob.events(p.MessageEvent)] == [(LONGEST_ROOM, LONGEST_NICK, text)]
    assert sender.error("say", room=LONGEST_ROOM, text=text + "x") == "TOO_LARGE"
    assert max(len(data) for data in bob.connection.sent) <= h.config.max_message_bytes


# ---- idem: a resend is answered, not repeated

def _fields(reply: p.Message) -> dict:
    assert isinstance(reply, p.Ok), reply
    return dict(reply.result)


PASSWORD = {"password": "a long password"}


def test_a_resent_say_is_answered_with_the_first_answer_and_not_said_again(h: Harness):
    alice, bob = h.login("alice", **PASSWORD), h.login("bob")
    for member in (alice, bob):
        member.ok("join", room="#tea")
    bob.drain()
    first = _fields(alice.request("say", room="#tea", text="once", idem="k-1"))
    h.clock.advance(5)
    assert _fields(alice.request("say", room="#tea", text="once", idem="k-1")) == first
    assert [m.msg_id for m in bob.events(p.MessageEvent)] == [first["msg_id"]]
    assert [e.msg_id for e in h.store.history["#tea"]] == [first["msg_id"]]
    # after a reconnect, and out of the room since: still the first answer
    alice.connection.peer_vanishes()
    again = h.login("alice", **PASSWORD)
    again.ok("part", room="#tea")
    assert _fields(again.request("say", room="#tea", text="once", idem="k-1")) == first
    assert again.error("say", room="#tea", text="new", idem="k-2") == "NOT_IN_ROOM"
    # another key is another line
    again.ok("join", room="#tea")
    assert again.ok("say", room="#tea", text="once", idem="k-3")["msg_id"] > first["msg_id"]


def test_a_resent_dm_is_answered_with_the_first_answer_and_stored_once(h: Harness):
    _offline(h, "bob")
    alice = h.login("alice")
    first = _fields(alice.request("dm", to="bob", text="once", idem="dm-1"))
    assert _fields(alice.request("dm", to="bob", text="once", idem="dm-1")) == first
    assert [d.dm_id for d in h.store.mailboxes["bob"]] == [first["dm_id"]]
    assert alice.ok("dm", to="bob", text="once")["dm_id"] != first["dm_id"]  # no key: done again


def test_a_resent_data_is_answered_and_not_relayed_again(h: Harness):
    alice, bob = h.login("alice"), h.login("bob")
    first = _fields(alice.request("data", to="bob", payload=b"blob", idem="d1"))
    assert _fields(alice.request("data", to="bob", payload=b"blob", idem="d1")) == first
    assert len(bob.events(p.DataEvent)) == 1
    bob.ok("quit")  # the first answer stands even with the recipient gone
    assert _fields(alice.request("data", to="bob", payload=b"blob", idem="d1")) == first
    # a payload never acknowledged was never answered ok: its resend is tried again
    carol = h.login("carol", **PASSWORD)
    carol.connection.hold_acks()
    alice.send_raw(p.encode(p.Data(id=90, to="carol", payload=b"x", idem="d2")))
    carol.connection.peer_vanishes()
    carol = h.login("carol", **PASSWORD)
    assert alice.ok("data", to="carol", payload=b"x", idem="d2")
    assert len(carol.events(p.DataEvent)) == 1


def _in_tea_with_a_slow_history():
    """alice and bob in #tea, on a store whose history writes wait for ``commit()``."""
    store = SlowStore(MemoryStore(), held=("append_history",))
    h = Harness(store=store)
    alice, bob = h.login("alice"), h.login("bob")
    for member in (alice, bob):
        member.ok("join", room="#tea")
    bob.drain()
    return store, alice, bob


def test_a_say_reaches_the_room_only_once_committed():
    store, alice, bob = _in_tea_with_a_slow_history()
    alice.send_raw(p.encode(p.Say(id=50, room="#tea", text="wait for it", idem="x")))
    assert bob.events(p.MessageEvent) == [] and _reply(alice, 50) == []
    store.commit()
    assert [m.text for m in bob.events(p.MessageEvent)] == ["wait for it"]
    assert isinstance(_reply(alice, 50)[0], p.Ok)


def test_a_quit_waits_for_the_answers_of_the_requests_before_it():
    """A say is answered once committed, and the session's later requests
    do not wait for that; a quit does, or the session closed on the way and
    the sender never heard that its line was kept (PROTOCOL.md C2)."""
    store, alice, bob = _in_tea_with_a_slow_history()
    alice.send_raw(p.encode(p.Say(id=60, room="#tea", text="last words", idem="s")))
    alice.send_raw(p.encode(p.Quit(id=62, reason="bye")))
    assert alice.closed is None and _reply(alice, 62) == []
    store.commit()
    answers = [m for m in alice.messages() if isinstance(m, p.Ok | p.ErrorReply)]
    assert [(type(m), m.id) for m in answers[-2:]] == [(p.Ok, 60), (p.Ok, 62)]
    assert alice.closed is not None
    assert [m.text for m in bob.events(p.MessageEvent)] == ["last words"]


def test_racing_dms_never_overfill_a_mailbox():
    """The store sees the writes only later, as a worker thread would: the
    capacity must be checked with each insert, not before it."""
    store = SlowStore(MemoryStore())
    h = Harness(store=store, mailbox_size=5)
    _offline(h, "bob")
    senders = [h.login(f"s{n}") for n in range(10)]
    for n, sender in enumerate(senders):
        sender.send_raw(p.encode(p.Dm(id=100 + n, to="bob", text="hi")))
    assert len(store.pending) == 10
    store.commit()
    answers = [_reply(sender, 100 + n)[0] for n, sender in enumerate(senders)]
    assert sum(isinstance(a, p.Ok) for a in answers) == 5
    assert sorted(a.code for a in answers if isinstance(a, p.ErrorReply)) == ["MAILBOX_FULL"] * 5
    assert len(h.store.mailboxes["bob"]) == 5


def test_a_request_waiting_on_the_store_is_resumed_and_holds_the_next_until_answered():
    """Most requests finish in their first step, with no Deferred (issue 16);
    one that waits (a DM's commit) is resumed where it waited once the store
    answers, and the session's next request runs only after it."""
    store = SlowStore(MemoryStore())
    h = Harness(store=store)
    _offline(h, "bob")
    alice = h.login("alice")
    alice.send_raw(p.encode(p.Dm(id=70, to="bob", text="later")))
    alice.send_raw(p.encode(p.Ping(id=71)))
    assert _reply(alice, 70) == [] and _reply(alice, 71) == []
    store.commit()
    answers = [m for m in alice.messages() if isinstance(m, p.Ok | p.ErrorReply)]
    assert [(type(m), m.id) for m in answers[-2:]] == [(p.Ok, 70), (p.Ok, 71)]
    assert answers[-2]["status"] == "stored"


def test_max_pending_requests_is_the_configured_one():
    store = SlowStore(MemoryStore())
    h = Harness(store=store, max_pending_requests=3, rate=1000, burst=1000)
    _offline(h, "bob")
    alice = h.login("alice")
    for rid in range(1, 6):  # one being done (waiting on the store), three waiting, one too many
        alice.send_raw(p.encode(p.Dm(id=rid, to="bob", text="x")))
    assert [m.id for m in alice.messages() if isinstance(m, p.ErrorReply)] == [5]
    assert alice.messages()[-1].code == "RATE_LIMITED"


def test_ids_are_fresh_from_a_block_reserved_ahead():
    h = Harness(rate=10_000, burst=10_000)
    from twistchat.chat.server.ids import ID_BLOCK
    alice = h.login("alice")
    alice.ok("join", room="#tea")
    reserved = h.store._last_id
    ids = [alice.ok("say", room="#tea", text="x")["msg_id"] for _ in range(ID_BLOCK)]
    assert ids == sorted(set(ids)) and max(ids) <= h.store._last_id
    assert h.store._last_id > reserved  # the next block was reserved before it was needed


def test_the_next_block_of_ids_is_reserved_when_half_the_current_one_is_left():
    """``ready`` and ``next_id`` take from one sequence; the next block is
    asked for once ``ahead`` ids are left, not before, and not twice."""
    from twistchat.chat.server.ids import IdAllocator
    store = MemoryStore()
    reservations = []
    reserve = store.reserve_ids
    store.reserve_ids = lambda count: reservations.append(count) or reserve(count)
    ids = IdAllocator(store, block=10, ahead=4)
    first = []
    ids.next_id().addCallback(first.append)
    taken = first + [ids.ready() for _ in range(4)] + [ids.next_id().result]
    assert taken == [1, 2, 3, 4, 5, 6] and reservations == [10, 10]  # 4 left after the 6th
    taken += [ids.ready() for _ in range(14)]
    assert taken == list(range(1, 21)) and reservations == [10, 10, 10]
    assert ids.ready() == 21


def test_a_data_resent_while_the_first_is_on_its_way_waits_for_it(h: Harness):
    alice, bob = h.login("alice", **PASSWORD), h.login("bob")
    bob.connection.hold_acks()
    alice.send_raw(p.encode(p.Data(id=1, to="bob", payload=b"x", idem="same")))
    alice.connection.peer_vanishes()  # the sender's link dies; the relay is still waiting
    again = h.login("alice", **PASSWORD)
    again.send_raw(p.encode(p.Data(id=2, to="bob", payload=b"x", idem="same")))
    assert len(bob.events(p.DataEvent)) == 1 and _reply(again, 2) == []
    bob.connection.release_acks()
    [ok] = _reply(again, 2)
    assert isinstance(ok, p.Ok) and ok["to"] == "bob"
    assert bob.events(p.DataEvent) == []


# ---- a full mailbox replayed within the SendQ

PACED = dict(max_send_queue=64 * 1024, dm_rate=1000.0, dm_burst=1000, mailbox_per_sender=1000,
             rate=1000.0, burst=1000)
"""A SendQ small enough that 40 DMs of 2 KiB are over it: the replay budget
(a quarter of it) is 16 KiB."""


def _held_dm_bytes(client) -> int:
    return sum(len(data) for data, _, _ in client.connection.held if b'"dm"' in data)


def test_a_mailbox_larger_than_the_sendq_is_replayed_a_budget_at_a_time():
    h = Harness(**PACED)
    secret = _offline(h, "bob")
    alice = h.login("alice")
    sent = [alice.ok("dm", to="bob", text=f"{n:04d}" + "x" * 2048)["dm_id"] for n in range(40)]
    bob = h.connect()
    bob.connection.hold_acks()
    assert bob.ok("login", nick="bob", secret=secret)["mailbox"] == 40
    budget = h.config.max_send_queue // 4
    seen: list[int] = []
    rounds = 0
    while len(seen) < len(sent):
        batch = [d.dm_id for d in bob.events(p.DmEvent)]
        assert batch, "the replay stalled"
        assert _held_dm_bytes(bob) <= budget + 2200  # one DM may start a budget
        seen += batch
        rounds += 1
        bob.connection.release_acks()
    assert seen == sent  # each once, in order
    assert rounds >= 4
    assert bob.connection.closed is None
    assert h.store.mailboxes == {}


def test_a_dm_arriving_during_a_replay_comes_after_the_older_stored_ones():
    h = Harness(**PACED)
    secret = _offline(h, "bob")
    alice = h.login("alice")
    stored = [alice.ok("dm", to="bob", text="y" * 2048)["dm_id"] for _ in range(20)]
    bob = h.connect()
    bob.connection.hold_acks()
    bob.ok("login", nick="bob", secret=secret)
    first = [d.dm_id for d in bob.events(p.DmEvent)]
    assert first == stored[:len(first)] and len(first) < len(stored)
    live = alice.ok("dm", to="bob", text="sent while the replay runs")
    assert live["online"] is True
    assert bob.events(p.DmEvent) == []  # not ahead of the older ones
    shown = first
    while (batch := [d.dm_id for d in bob.events(p.DmEvent)]) or bob.connection.held:
        shown += batch
        bob.connection.release_acks()
    assert shown == stored + [live["dm_id"]]
