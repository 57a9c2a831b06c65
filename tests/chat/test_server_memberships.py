"""Membership that outlives the connection (PROTOCOL.md C12), on fakes and
a Clock: a login puts the user back in its rooms and replays what it
missed since its mark, once and in order, then live lines; the mark moves
only over lines the transport acknowledged; past the kept history a count
of lines not kept; part ends membership, quit and a lost session do not;
and the SQLite store keeps it across a crash of the server."""

from __future__ import annotations

from twistchat.chat import protocol as p
from twistchat.chat.server import ChatServer
from twistchat.store.sqlite import SQLiteStore
from twistchat.store.workers import InlineWorker
from twisted.internet.task import Clock

from .fakes import Harness

PASSWORD = {"password": "a long password"}


def _texts(client, replay: bool | None = None) -> list[str]:
    return [e.text for e in client.events(p.MessageEvent)
            if replay is None or bool(e.replay) == replay]


def _in_tea(h: Harness):
    alice, bob = h.login("alice", **PASSWORD), h.login("bob", **PASSWORD)
    for member in (alice, bob):
        member.ok("join", room="#tea")
    bob.drain()
    return alice, bob


def _back(h: Harness, nick: str = "bob"):
    client = h.connect()
    client.ok("login", nick=nick, **PASSWORD)
    return client


def test_a_login_puts_the_user_back_and_replays_what_it_missed_once_in_order(h: Harness):
    alice, bob = _in_tea(h)
    alice.ok("say", room="#tea", text="seen")
    bob.connection.peer_vanishes()  # a lost session keeps the membership
    for n in range(3):
        alice.ok("say", room="#tea", text=f"missed {n}")
    alice.drain()
    back = _back(h)
    [rejoined] = back.events(p.RejoinedEvent)
    assert (rejoined.room, rejoined.missed, rejoined.not_kept) == ("#tea", 3, 0)
    assert [m["nick"] for m in rejoined.members] == ["alice", "bob"]
    back.read = 0
    assert _texts(back, replay=True) == ["missed 0", "missed 1", "missed 2"]
    assert [e.nick for e in alice.events(p.JoinEvent)] == ["bob"]  # the room sees him back
    alice.ok("say", room="#tea", text="live")
    assert _texts(back) == ["live"]
    assert back.ok("say", room="#tea", text="i am back")  # a member again, no join needed
    assert h.login("carol").ok("join", room="#tea")["member_count"] == 3


def test_quit_keeps_the_membership_and_part_ends_it(h: Harness):
    alice, bob = _in_tea(h)
    bob.ok("join", room="#cake")
    bob.ok("part", room="#cake")
    bob.ok("quit")
    alice.ok("say", room="#tea", text="while bob was away")
    back = _back(h)
    assert back.ok("ping")  # the login's restore is done before the next request
    assert [e.room for e in back.events(p.RejoinedEvent)] == ["#tea"]
    assert back.error("say", room="#cake", text="x") == "NOT_IN_ROOM"


def test_a_new_login_elsewhere_takes_the_rooms_along(h: Harness):
    alice, bob = _in_tea(h)
    alice.ok("say", room="#tea", text="one")
    other = _back(h)  # newest login wins: the old session is replaced
    assert bob.closed is not None
    assert [e.room for e in other.events(p.RejoinedEvent)] == ["#tea"]
    assert _texts(other) == []  # "one" was acknowledged by the old session's transport


def test_the_mark_moves_only_over_lines_the_transport_acknowledged(h: Harness):
    alice, bob = _in_tea(h)
    alice.ok("say", room="#tea", text="had")
    bob.connection.hold_acks()
    alice.ok("say", room="#tea", text="sent, never acknowledged")
    alice.ok("say", room="#tea", text="acknowledged out of order")
    bob.connection.ack_held(1)  # the transport acks the later line first
    h.advance(5)  # a reaper tick writes the marks
    bob.connection.peer_vanishes()
    back = _back(h)
    assert _texts(back, replay=True) == ["sent, never acknowledged", "acknowledged out of order"]


def test_a_line_the_transport_refused_stops_the_mark_before_it(h: Harness):
    alice, bob = _in_tea(h)
    alice.ok("say", room="#tea", text="short")
    bob.connection.peer_max_message_size = 200  # "short" fits, the long line does not
    alice.ok("say", room="#tea", text="x" * 300)
    alice.ok("say", room="#tea", text="after it")
    h.advance(5)  # a reaper tick writes the marks
    bob.connection.peer_vanishes()
    back = _back(h)
    assert _texts(back, replay=True) == ["x" * 300, "after it"]


def test_lines_past_the_kept_history_are_counted_as_not_kept():
    h = Harness(history_size=3)
    alice, bob = _in_tea(h)
    bob.ok("quit")
    for n in range(5):
        alice.ok("say", room="#tea", text=f"line {n}")
    back = _back(h)
    [rejoined] = back.events(p.RejoinedEvent)
    assert (rejoined.missed, rejoined.not_kept) == (3, 2)
    back.read = 0
    assert _texts(back, replay=True) == ["line 2", "line 3", "line 4"]


def test_a_kick_or_a_ban_ends_the_membership(h: Harness):
    alice, bob = _in_tea(h)
    alice.ok("kick", room="#tea", nick="bob")
    bob.ok("quit")
    assert _back(h).events(p.RejoinedEvent) == []
    carol = h.login("carol", **PASSWORD)
    carol.ok("join", room="#tea")
    carol.ok("quit")
    alice.ok("ban", room="#tea", nick="carol")  # banned while away
    assert _back(h, "carol").events(p.RejoinedEvent) == []


def test_a_room_with_absent_members_is_not_reaped():
    h = Harness(room_ttl=10)
    alice, bob = _in_tea(h)
    alice.ok("say", room="#tea", text="kept for bob")
    alice.ok("quit")
    bob.ok("quit")
    h.advance(20, step=5)
    assert "#tea" in h.server.rooms.rooms
    back = _back(h)
    assert [e.room for e in back.events(p.RejoinedEvent)] == ["#tea"]
    back.read = 0
    assert _texts(back) == []  # bob had it
    alice = _back(h, "alice")
    [rejoined] = alice.events(p.RejoinedEvent)  # the room was kept, bob in it
    assert (rejoined.member_count, rejoined.missed) == (2, 0)


def test_after_a_crash_of_the_server_every_missed_line_comes_once_in_order(tmp_path):
    """SQLite on an inline worker: the server object is dropped without a
    shutdown (kill -9); the new one reads memberships and marks from the file."""
    path = str(tmp_path / "chat.sqlite3")
    h = Harness(store=SQLiteStore(Clock(), path, worker=InlineWorker()))
    alice, bob = _in_tea(h)
    alice.ok("say", room="#tea", text="bob had this")
    h.advance(5)  # a reaper tick: bob's mark is on disk
    bob.connection.hold_acks()
    alice.ok("say", room="#tea", text="in flight at the crash")
    h.store.close()  # the process dies: no shutdown, no flush of anything pending
    h.store = SQLiteStore(Clock(), path, worker=InlineWorker())
    h.server = ChatServer(h.store, h.clock, h.config)
    h.server.start()
    h.login("alice", **PASSWORD).ok("say", room="#tea", text="after the restart")
    back = _back(h)
    back.read = 0
    assert _texts(back) == ["in flight at the crash", "after the restart"]


def test_a_replay_larger_than_its_budget_waits_for_acks_and_keeps_order():
    """However long the missed lines, the replay never fills the SendQ: a
    budget (a quarter of it) at a time, each acknowledged before the next;
    lines said meanwhile follow in order, then live lines."""
    h = Harness(max_send_queue=20_000)
    budget = h.config.max_send_queue // 4
    alice, bob = _in_tea(h)
    bob.ok("quit")
    long_lines = [f"{n:02} " + "x" * 1000 for n in range(10)]
    for text in long_lines:
        alice.ok("say", room="#tea", text=text)
    back = h.connect()
    back.connection.hold_acks()
    back.ok("login", nick="bob", **PASSWORD)
    rounds = 0
    while back.connection.held:
        in_flight = sum(len(data) for data, _, _ in back.connection.held)
        assert in_flight <= budget + 1200  # a budget, and the login reply and rejoined
        if rounds == 0:
            alice.ok("say", room="#tea", text="said during the replay")
        back.connection.release_acks()
        rounds += 1
    assert rounds >= 3
    alice.ok("say", room="#tea", text="live")
    back.read = 0
    events = back.events(p.MessageEvent)
    assert [e.text for e in events] == long_lines + ["said during the replay", "live"]
    assert [bool(e.replay) for e in events] == [True] * 11 + [False]


def test_a_line_the_members_transport_refused_is_replayed_with_every_later_one():
    """The mark stops for good before a room line the member's transport
    would not take, however many later lines it acknowledges (more than a
    mark holds before it trims): after a login all of them come again."""
    from .fakes import CLIENT_MAX_MESSAGE_SIZE
    h = Harness(rate=10_000, burst=10_000)
    alice, bob = _in_tea(h)
    alice.ok("say", room="#tea", text="had")
    bob.connection.peer_max_message_size = 10  # his transport refuses the next line
    alice.ok("say", room="#tea", text="refused")
    bob.connection.peer_max_message_size = CLIENT_MAX_MESSAGE_SIZE
    later = [f"later {n}" for n in range(70)]
    for text in later:
        alice.ok("say", room="#tea", text=text)
    assert _texts(bob) == ["had", *later]
    h.server.memberships.flush()
    bob.connection.peer_vanishes()
    back = _back(h)
    assert _texts(back, replay=True) == ["refused", *later]


def test_the_mark_waits_for_every_line_sent_before():
    from twistchat.chat.server.marks import HAD, NEVER_ACKED, DeliveryMark

    mark = DeliveryMark(10)
    for seq, msg_id in ((5, 11), (6, 12), (HAD, 13), (7, 14)):  # 13: the member's own line
        mark.sent(seq, msg_id)
    assert not mark.advance(5) and mark.mark == 10  # nothing below transport seq 5 was a line
    assert mark.advance(7) and mark.mark == 13  # 11 and 12 acknowledged, 13 had already
    assert mark.waiting and not mark.advance(7)  # 14 (seq 7) is not acknowledged yet
    mark.sent(NEVER_ACKED, 15)  # the transport would not take it
    for msg_id in range(16, 1000):
        assert not mark.sent(msg_id, msg_id)  # nothing after it is remembered: bounded
    assert mark.advance(100) and mark.mark == 14
    assert not mark.advance(10**9) and mark.mark == 14 and not mark.waiting  # never past 15


def test_a_mark_holds_at_most_twice_what_is_unacknowledged_and_trims_rarely():
    from twistchat.chat.server.marks import TRIM_AT, DeliveryMark

    mark, acked_below, trims = DeliveryMark(), 0, 0
    for seq in range(10_000):
        if mark.sent(seq, seq + 1):  # msg_id = seq + 1
            trims += 1
            mark.advance(acked_below)
            assert mark.mark == acked_below  # every line under the mark, none past it
        acked_below = max(0, seq - 200)  # the transport stays 200 lines behind
        assert len(mark._sent) <= max(TRIM_AT, 2 * 202) + 1
    assert trims < 10_000 // 100  # amortized: not a trim per line


def test_a_room_lines_copies_go_to_all_but_the_sender_and_each_mark_keeps_its_own():
    """``deliver_copies``: the loop a fan-out runs per member (compiled)."""
    from tests.support.connections import Recording
    from twistchat.chat.server.marks import TRIM_AT, deliver_copies

    class Member:  # a user as the loop reads it: hashed by identity
        def __init__(self) -> None:
            self.session = type("ClientSession", (), {})()
            self.session.connection = Recording()

    sender, quiet, gone = Member(), Member(), Member()
    gone.session.connection.refuse = True
    marks, waiting = {}, set()
    for msg_id in (7, 8):
        assert deliver_copies([sender, quiet, gone], sender, b"line", msg_id, "#tea",
                              marks, waiting) == []
    assert sender.session.connection.sent == [] and quiet.session.connection.sent == [b"line"] * 2
    assert waiting == {sender, quiet, gone}
    own, other, refused = (marks[m]["#tea"] for m in (sender, quiet, gone))
    assert own.advance(0) and own.mark == 8  # its own lines: had, whatever its transport says
    assert other.advance(1) and other.mark == 7  # seq 0 (line 7) acknowledged, 1 not yet
    assert other.advance(2) and other.mark == 8
    assert refused.stuck and not refused.advance(10**9) and refused.mark == 0
    due = []
    for msg_id in range(9, 9 + TRIM_AT + 1):  # one line more than a mark holds untrimmed
        due += deliver_copies([sender, quiet], sender, b"line", msg_id, "#tea", marks, waiting)
    assert due == [(sender, own), (quiet, other)]  # each due its trim once, at the last line
