"""Direct messages, the offline mailbox, binary relay, and coverage of every error code."""

from __future__ import annotations

from twistchat.chat import protocol as p
from twistchat.chat.protocol import ErrorCode

from .test_server_transfers import TRANSFER_CODES, reach as reach_transfer_code
from .fakes import Harness, SlowStore


def test_dm_to_online_nick_is_stored_then_delivered(h: Harness):
    alice, bob = h.login("alice"), h.login("Bob")
    reply = alice.ok("dm", to="bob", text="hi bob")
    assert (reply["status"], reply["online"], reply["to"]) == ("stored", True, "Bob")
    [dm] = bob.events(p.DmEvent)
    assert (dm.nick, dm.to, dm.text, dm.dm_id, dm.ts, dm.stored) == (
        "alice", "Bob", "hi bob", reply["dm_id"], reply["ts"], False)
    [notice] = alice.events(p.DeliveredEvent)  # the fake transport acknowledged at once
    assert (notice.dm_id, notice.to, notice.ts) == (reply["dm_id"], "Bob", reply["ts"])
    assert h.store.mailboxes == {} and h.store.receipts == {}


def test_offline_dms_are_stored_replayed_in_order_and_senders_notified(h: Harness):
    bob_secret = h.connect().ok("login", nick="bob")["secret"]
    h.server.online["bob"].session.connection.close("bye")
    alice, carol = h.login("alice"), h.login("carol")
    sent = []
    for sender, text in ((alice, "one"), (carol, "two"), (alice, "three")):
        reply = sender.ok("dm", to="BOB", text=text)
        assert reply["status"] == "stored"
        sent.append((sender, reply["dm_id"], reply["ts"]))
        h.clock.advance(10)
    carol.ok("quit")  # an offline sender gets no notice, and nothing breaks
    bob = h.connect()
    login = bob.ok("login", nick="bob", secret=bob_secret)
    assert login["mailbox"] == 3
    dms = bob.events(p.DmEvent)
    assert [(d.nick, d.text, d.stored) for d in dms] == [
        ("alice", "one", True), ("carol", "two", True), ("alice", "three", True)]
    assert [(d.dm_id, d.ts) for d in dms] == [(dm_id, ts) for _, dm_id, ts in sent]
    # the login reply comes before the replayed DMs
    messages = bob.messages()
    assert isinstance(messages[0], p.Ok) and isinstance(messages[1], p.DmEvent)
    notices = alice.events(p.DeliveredEvent)
    assert [(n.dm_id, n.to) for n in notices] == [(sent[0][1], "bob"), (sent[2][1], "bob")]
    assert notices[0].ts == sent[0][2]
    assert h.store.mailboxes == {}
    # a second login replays nothing again
    bob.ok("quit")
    again = h.connect()
    assert again.ok("login", nick="bob", secret=bob_secret)["mailbox"] == 0
    assert again.events(p.DmEvent) == []


def test_stored_ack_waits_for_the_store_commit():
    from twistchat.store.memory import MemoryStore
    store = SlowStore(MemoryStore())
    h = Harness(store=store)
    h.connect().ok("login", nick="bob", password="a long password")
    h.server.online["bob"].session.connection.close("bye")
    alice = h.login("alice")
    alice.send_raw(p.encode(p.Dm(id=50, to="bob", text="later")))
    assert [m for m in alice.messages() if isinstance(m, p.Ok) and m.id == 50] == []
    assert store.pending
    store.commit()
    [ok] = [m for m in alice.messages() if isinstance(m, p.Ok) and m.id == 50]
    assert ok["status"] == "stored"


def test_mailbox_capacity():
    h = Harness(mailbox_size=2)
    h.connect().ok("login", nick="bob", password="a long password")
    h.server.online["bob"].session.connection.close("bye")
    alice = h.login("alice")
    alice.ok("dm", to="bob", text="1")
    alice.ok("dm", to="bob", text="2")
    assert alice.error("dm", to="bob", text="3") == "MAILBOX_FULL"


def test_dm_to_unknown_nick(h: Harness):
    assert h.login("alice").error("dm", to="nobody", text="hi") == "NO_SUCH_NICK"


def test_binary_relay_to_online_nick_only(h: Harness):
    alice, bob = h.login("alice"), h.login("bob")
    blob = bytes(range(256)) + b"\n\n"
    assert alice.ok("data", to="bob", payload=blob)["to"] == "bob"
    [event] = bob.events(p.DataEvent)
    assert (event.nick, event.payload) == ("alice", blob)
    bob.ok("quit")
    assert alice.error("data", to="bob", payload=b"x") == "NOT_ONLINE"
    big = Harness(max_payload_bytes=8)
    carol = big.login("carol")
    assert carol.error("data", to="carol", payload=b"123456789") == "TOO_LARGE"


def test_text_limit_is_configurable_and_counts_utf8_bytes():
    h = Harness(max_text_bytes=10)
    alice = h.login("alice")
    alice.ok("join", room="#a")
    alice.ok("say", room="#a", text="0123456789")
    assert alice.error("say", room="#a", text="ééééé" + "x") == "TOO_LARGE"
    assert alice.ok("ping")


def test_no_message_text_in_logs_at_default_level(h: Harness):
    from twisted.logger import LogLevel, globalLogPublisher
    seen = []

    def observer(event):
        if event["log_level"] >= LogLevel.info:
            from twisted.logger import formatEvent
            seen.append(formatEvent(event))
    globalLogPublisher.addObserver(observer)
    try:
        alice, bob = h.login("alice"), h.login("bob")
        alice.ok("join", room="#tea")
        alice.ok("say", room="#tea", text="SECRET-TEXT-1")
        alice.ok("dm", to="bob", text="SECRET-TEXT-2")
        bob.ok("quit")
        alice.ok("dm", to="bob", text="SECRET-TEXT-3")
    finally:
        globalLogPublisher.removeObserver(observer)
    assert seen and not any("SECRET-TEXT" in line for line in seen)


# ---- one test that every code in the vocabulary is reachable as documented

def _reach(code: ErrorCode) -> str:
    """Provoke ``code`` through the public protocol and return what came back."""
    h = Harness(max_members_per_room=1, max_rooms_per_client=1, max_rooms_created=1,
                mailbox_size=0, rate=1, burst=3, max_contacts=1)
    c = h.connect()
    simple = {
        ErrorCode.BAD_MESSAGE: lambda: c.send_raw(b'{"id":1}'),
        ErrorCode.UNKNOWN_TYPE: lambda: c.send_raw(b'{"t":"fly","id":1}'),
        ErrorCode.BAD_FIELD: lambda: c.send_raw(b'{"t":"login","id":1,"nick":7}'),  # wrong type
        ErrorCode.TOO_LARGE: lambda: c.send_raw(b'{"t":"away","id":1,"message":"' + b"x" * 600 + b'"}'),
        ErrorCode.BAD_NICK: lambda: c.send_raw(b'{"t":"login","id":1,"nick":"-x"}'),
        ErrorCode.BAD_ROOM: lambda: c.send_raw(b'{"t":"join","id":1,"room":"tea"}'),
        ErrorCode.NOT_LOGGED_IN: lambda: c.send_raw(b'{"t":"rooms","id":1}'),
        ErrorCode.WEAK_PASSWORD: lambda: c.send_raw(b'{"t":"login","id":1,"nick":"x","password":"1"}'),
    }
    if code in TRANSFER_CODES:
        return reach_transfer_code(code)
    if code in simple:
        simple[code]()
        return c.messages()[-1].code
    if code is ErrorCode.SHUTTING_DOWN:
        from twisted.internet.defer import Deferred
        h.store.flush = Deferred  # a store still writing: sessions stay open meanwhile
        h.server.shutdown()
        c.send_raw(p.encode(p.Ping(id=1)))
        return [m for m in c.messages() if isinstance(m, p.ErrorReply)][-1].code
    owner = h.connect()
    owner.ok("login", nick="owner", password="a long password")
    owner.ok("join", room="#room")
    c.ok("login", nick="guest")
    h.clock.advance(10)
    actions = {
        ErrorCode.ALREADY_LOGGED_IN: lambda: c.error("login", nick="guest"),
        ErrorCode.BAD_CREDENTIAL: lambda: h.connect().error("login", nick="owner"),
        ErrorCode.NICK_TAKEN: lambda: c.error("nick", nick="OWNER"),
        ErrorCode.NO_SUCH_NICK: lambda: c.error("dm", to="nobody", text="x"),
        ErrorCode.NOT_ONLINE: lambda: (owner.ok("quit"), c.error("data", to="owner", payload=b""))[1],
        ErrorCode.NOT_DELIVERED: lambda: _not_delivered(owner, c),
        ErrorCode.MAILBOX_FULL: lambda: (owner.ok("quit"), c.error("dm", to="owner", text="x"))[1],
        ErrorCode.MAILBOX_QUOTA: lambda: _dm_over_quota(mailbox_per_sender=1),
        ErrorCode.STORE_FULL: lambda: _dm_over_quota(max_stored_dms=1),
        ErrorCode.NO_SUCH_ROOM: lambda: c.error("join", room="ABCDEFGH"),
        ErrorCode.NOT_IN_ROOM: lambda: c.error("who", room="#room"),
        ErrorCode.ALREADY_IN_ROOM: lambda: owner.error("join", room="#room"),
        ErrorCode.ROOM_FULL: lambda: c.error("join", room="#room"),
        ErrorCode.TOO_MANY_ROOMS: lambda: owner.error("join", room="#other"),
        ErrorCode.TOO_MANY_CREATED: lambda: (owner.ok("part", room="#room"), owner.error("create"))[1],
        ErrorCode.BANNED: lambda: (owner.ok("ban", room="#room", nick="guest"), c.error("join", room="#room"))[1],
        ErrorCode.INVITE_ONLY: lambda: (owner.ok("mode", room="#room", invite_only=True),
                                        c.error("join", room="#room"))[1],
        ErrorCode.BAD_KEY: lambda: (owner.ok("mode", room="#room", key="k"), c.error("join", room="#room"))[1],
        ErrorCode.NOT_OPERATOR: lambda: owner.error("kick", room="#room", nick="owner"),
        ErrorCode.RATE_LIMITED: lambda: [c.request("ping") for _ in range(5)][-1].code,
        ErrorCode.REPLY_TOO_LARGE: lambda: _reply_too_large(owner),
        ErrorCode.INTERNAL: lambda: _internal(h, c),
        ErrorCode.UNAVAILABLE: _unavailable,
        ErrorCode.TOO_MANY_CONTACTS: lambda: c.ok("watch", nick="owner") and c.error(
            "watch", nick="guest"),
    }
    return actions[code]()


def _not_delivered(owner, c) -> str:
    owner.connection.hold_acks()
    c.send_raw(p.encode(p.Data(id=99, to="owner", payload=b"x")))
    owner.connection.peer_vanishes()
    return [m for m in c.messages() if isinstance(m, p.ErrorReply) and m.id == 99][-1].code


def _reply_too_large(owner) -> str:
    owner.ok("say", room="#room", text="x" * 1000)
    owner.connection.peer_max_message_size = 600  # takes less than the one line
    return owner.error("history", room="#room")


def _dm_over_quota(**quota) -> str:
    h = Harness(**quota)
    h.login("owner").ok("quit")
    sender = h.login("sender")
    sender.ok("dm", to="owner", text="one")
    return sender.error("dm", to="owner", text="two")


def _unavailable() -> str:
    """A node of a network whose Redis is away (docs/CLUSTER.md)."""
    from twisted.internet.task import Clock

    from twistchat.cluster import LocalBroker, LocalHub

    clock = Clock()
    hub = LocalHub(clock)
    hub.unreachable = True
    return Harness(broker=LocalBroker(clock, "node", hub)).connect().error("login", nick="x")


def _internal(h: Harness, c) -> str:
    def broken(*args):
        raise OSError("disk on fire")
    h.store.get_history = broken
    return c.error("join", room="#fresh")


def test_every_error_code_is_reachable():
    for code in ErrorCode:
        assert _reach(code) == code, code
