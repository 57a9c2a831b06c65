"""Transfers through the server (PROTOCOL.md C14) on fake connections and a
Clock: pieces relayed in order and answered only once every recipient's
transport has them, room fan-out, a peer leaving midway told to both sides,
and every bound the server keeps (window, transfers per user, memory in
total, rate, idle time)."""

from __future__ import annotations

import hashlib

import pytest

from twistchat.chat import protocol as p
from twistchat.chat.protocol import ErrorCode
from twistchat.endpoint.api import BULK_LANE, INTERACTIVE_LANE

from .fakes import Harness

DATA = bytes(range(256)) * 40  # 10 KiB


@pytest.fixture
def h() -> Harness:
    """A window of 4 bytes: pieces of a few bytes are then full-sized ones
    (every piece but the last carries at least min(1024, window) bytes)."""
    return Harness(transfer_window=4)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pieces(data: bytes, size: int = 4096) -> list[tuple[int, bytes]]:
    return [(i, data[i:i + size]) for i in range(0, len(data), size)]


def received(client) -> bytes:
    return b"".join(e.payload for e in client.events(p.PieceEvent))


def replies(client, rid_from: int = 0) -> list[p.Message]:
    return [m for m in client.messages() if isinstance(m, p.Ok | p.ErrorReply)]


def send_piece(client, transfer: int, offset: int, payload: bytes) -> int:
    rid = next(client.ids)
    client.send_raw(p.encode(p.Piece(id=rid, transfer=transfer, offset=offset, payload=payload)))
    return rid


def answer(client, rid: int) -> p.Message | None:
    found = [m for m in client.messages() if isinstance(m, p.Ok | p.ErrorReply) and m.id == rid]
    assert len(found) <= 1
    return found[0] if found else None


def test_a_file_goes_to_a_nick_in_pieces_in_order_and_ends_with_its_digest():
    h = Harness()
    alice, bob = h.login("alice"), h.login("bob")
    opened = alice.ok("transfer", to="bob", name="notes.txt", size=len(DATA))
    tid = opened["transfer"]
    assert opened["to"] == "bob" and opened["window"] == h.config.transfer_window
    [offer] = bob.events(p.TransferEvent)
    assert (offer.transfer, offer.nick, offer.name, offer.size, offer.room) == \
        (tid, "alice", "notes.txt", len(DATA), None)
    for offset, chunk in pieces(DATA):
        assert alice.ok("piece", transfer=tid, offset=offset, payload=chunk)["offset"] == offset
    end = alice.ok("transfer_end", transfer=tid, size=len(DATA), sha256=digest(DATA))
    assert (end["size"], end["delivered"], end["missed"]) == (len(DATA), 1, [])
    events = bob.messages()
    got = [e for e in events if isinstance(e, p.PieceEvent)]
    assert [e.offset for e in got] == [o for o, _ in pieces(DATA)]
    assert b"".join(e.payload for e in got) == DATA
    [ended] = [e for e in events if isinstance(e, p.TransferEndEvent)]
    assert ended.sha256 == digest(DATA) and ended.size == len(DATA)
    assert not h.server.transfers.relays and h.server.transfers.reserved == 0


def test_a_piece_is_answered_only_once_the_recipient_has_it(h: Harness):
    alice, bob = h.login("alice"), h.login("bob")
    tid = alice.ok("transfer", to="bob", name="f", size=8)["transfer"]
    bob.connection.hold_acks()
    rid = send_piece(alice, tid, 0, b"1234")
    assert answer(alice, rid) is None  # the sender waits: back-pressure
    bob.connection.release_acks()
    assert isinstance(answer(alice, rid), p.Ok)


def test_a_room_transfer_reaches_every_other_member():
    h = Harness()
    members = [h.login(nick) for nick in ("alice", "bob", "carol", "dave")]
    for member in members:
        member.ok("join", room="#tea")
        member.drain()
    alice = members[0]
    opened = alice.ok("transfer", room="#tea", name="cat.png", size=len(DATA))
    assert opened["room"] == "#tea" and opened["recipients"] == 3
    for offset, chunk in pieces(DATA):
        alice.ok("piece", transfer=opened["transfer"], offset=offset, payload=chunk)
    end = alice.ok("transfer_end", transfer=opened["transfer"], size=len(DATA), sha256=digest(DATA))
    assert end["delivered"] == 3
    for member in members[1:]:
        [offer] = member.events(p.TransferEvent)
        assert offer.room == "#tea"
        member.read = 0
        assert received(member) == DATA
    assert not alice.events(p.PieceEvent)


def test_the_recipient_leaving_midway_fails_the_transfer_for_the_sender(h: Harness):
    alice, bob = h.login("alice"), h.login("bob")
    tid = alice.ok("transfer", to="bob", name="f", size=8)["transfer"]
    bob.connection.hold_acks()
    rid = send_piece(alice, tid, 0, b"1234")
    bob.connection.peer_vanishes()
    reply = answer(alice, rid)
    assert isinstance(reply, p.ErrorReply) and reply.code == "NOT_DELIVERED"
    [failed] = alice.events(p.TransferFailedEvent)
    assert failed.transfer == tid and failed.code == "NOT_DELIVERED" and failed.nick is None
    assert alice.error("piece", transfer=tid, offset=4, payload=b"5678") == "NO_SUCH_TRANSFER"
    assert h.server.transfers.reserved == 0


def test_the_sender_leaving_midway_is_told_to_every_recipient(h: Harness):
    alice, bob, carol = h.login("alice"), h.login("bob"), h.login("carol")
    for c in (alice, bob, carol):
        c.ok("join", room="#tea")
    tid = alice.ok("transfer", room="#tea", name="f", size=8)["transfer"]
    alice.ok("piece", transfer=tid, offset=0, payload=b"1234")
    alice.connection.peer_vanishes()
    for c in (bob, carol):
        [failed] = c.events(p.TransferFailedEvent)
        assert (failed.transfer, failed.code) == (tid, "SENDER_LEFT")
    assert not h.server.transfers.relays


def test_one_member_leaving_a_room_transfer_leaves_the_rest_going(h: Harness):
    alice, bob, carol = h.login("alice"), h.login("bob"), h.login("carol")
    for c in (alice, bob, carol):
        c.ok("join", room="#tea")
    tid = alice.ok("transfer", room="#tea", name="f", size=8)["transfer"]
    alice.drain()
    carol.connection.hold_acks()
    rid = send_piece(alice, tid, 0, b"1234")
    carol.connection.peer_vanishes()
    assert isinstance(answer(alice, rid), p.Ok)  # bob has it, carol is gone
    [missed] = alice.events(p.TransferFailedEvent)
    assert (missed.code, missed.nick) == ("NOT_DELIVERED", "carol")
    alice.ok("piece", transfer=tid, offset=4, payload=b"5678")
    end = alice.ok("transfer_end", transfer=tid, size=8, sha256=digest(b"12345678"))
    assert (end["delivered"], end["missed"]) == (1, ["carol"])
    bob.read = 0
    assert received(bob) == b"12345678"


def test_pieces_out_of_order_past_the_size_or_over_the_window_are_refused_and_told():
    h = Harness(transfer_window=8)
    alice, bob = h.login("alice"), h.login("bob")
    tid = alice.ok("transfer", to="bob", name="f", size=100)["transfer"]
    assert alice.error("piece", transfer=tid, offset=4, payload=b"x") == "BAD_PIECE"
    [failed] = bob.events(p.TransferFailedEvent)
    assert failed.code == "BAD_PIECE"
    tid = alice.ok("transfer", to="bob", name="f", size=4)["transfer"]
    assert alice.error("piece", transfer=tid, offset=0, payload=b"12345") == "BAD_PIECE"
    tid = alice.ok("transfer", to="bob", name="f", size=100)["transfer"]
    bob.connection.hold_acks()
    send_piece(alice, tid, 0, b"12345678")  # the whole window, unanswered
    assert alice.error("piece", transfer=tid, offset=8, payload=b"9abcdefg") == "BAD_PIECE"
    bob.connection.release_acks()
    assert not h.server.transfers.relays


def test_a_wrong_end_fails_the_transfer(h: Harness):
    alice, bob = h.login("alice"), h.login("bob")
    tid = alice.ok("transfer", to="bob", name="f", size=8)["transfer"]
    alice.ok("piece", transfer=tid, offset=0, payload=b"1234")
    assert alice.error("transfer_end", transfer=tid, size=8, sha256=digest(b"1234")) == "BAD_PIECE"
    assert bob.events(p.TransferFailedEvent)[0].code == "BAD_PIECE"
    tid = alice.ok("transfer", to="bob", name="f", size=1)["transfer"]
    alice.ok("piece", transfer=tid, offset=0, payload=b"1")
    assert alice.error("transfer_end", transfer=tid, size=1, sha256="not hex") == "BAD_PIECE"


def test_the_size_and_the_transfers_a_user_sends_and_receives_are_bounded():
    h = Harness(max_transfer_bytes=1000, max_transfers_per_user=2)
    alice, bob, carol = h.login("alice"), h.login("bob"), h.login("carol")
    assert alice.error("transfer", to="bob", name="f", size=1001) == "TOO_LARGE"
    alice.ok("transfer", to="bob", name="f", size=10)
    alice.ok("transfer", to="carol", name="f", size=10)
    assert alice.error("transfer", to="carol", name="f", size=10) == "TOO_MANY_TRANSFERS"
    carol.ok("transfer", to="bob", name="f", size=10)  # bob now receives two
    dave = h.login("dave")
    assert dave.error("transfer", to="bob", name="f", size=10) == "TOO_MANY_TRANSFERS"
    assert dave.error("transfer", to="nobody", name="f", size=10) == "NOT_ONLINE"
    assert dave.error("transfer", name="f", size=10) == "BAD_FIELD"
    assert dave.error("transfer", to="bob", room="#tea", name="f", size=10) == "BAD_FIELD"
    assert dave.error("transfer", room="#tea", name="f", size=10) == "NOT_IN_ROOM"


def test_a_busy_member_is_skipped_from_a_room_transfer_and_named():
    h = Harness(max_transfers_per_user=1)
    alice, bob, carol, dave = (h.login(n) for n in ("alice", "bob", "carol", "dave"))
    for c in (alice, bob, carol):
        c.ok("join", room="#tea")
    dave.ok("transfer", to="carol", name="f", size=10)
    opened = alice.ok("transfer", room="#tea", name="f", size=10)
    assert (opened["recipients"], opened["skipped"]) == (1, ["carol"])


def test_the_memory_of_all_transfers_together_is_bounded():
    h = Harness(transfer_window=1000, transfer_memory=2500)
    senders = [h.login(f"s{i}") for i in range(3)]
    h.login("bob")
    senders[0].ok("transfer", to="bob", name="f", size=10)
    senders[1].ok("transfer", to="bob", name="f", size=10)
    assert senders[2].error("transfer", to="bob", name="f", size=10) == "TOO_MANY_TRANSFERS"
    senders[0].ok("quit")  # its transfer fails and gives its reservation back
    senders[2].ok("transfer", to="bob", name="f", size=10)


def test_the_rate_of_bytes_out_is_bounded_per_user_by_delaying_pieces():
    h = Harness(transfer_rate=10_000)  # bytes out per second, pieces x recipients
    members = [h.login(n) for n in ("alice", "bob", "carol")]
    for c in members:
        c.ok("join", room="#tea")
    alice = members[0]
    tid = alice.ok("transfer", room="#tea", name="f", size=20_000)["transfer"]
    first = send_piece(alice, tid, 0, bytes(5000))   # 10,000 out: the burst
    second = send_piece(alice, tid, 5000, bytes(5000))
    assert isinstance(answer(alice, first), p.Ok)
    assert answer(alice, second) is None  # waits for the rate, and so does the sender
    h.clock.advance(0.5)
    assert answer(alice, second) is None
    h.clock.advance(0.6)
    assert isinstance(answer(alice, second), p.Ok)


def test_a_short_piece_before_the_last_is_refused():
    h = Harness()
    alice, bob = h.login("alice"), h.login("bob")
    tid = alice.ok("transfer", to="bob", name="f", size=2000)["transfer"]
    assert alice.error("piece", transfer=tid, offset=0, payload=b"x" * 100) == "BAD_PIECE"
    tid = alice.ok("transfer", to="bob", name="f", size=1100)["transfer"]
    alice.ok("piece", transfer=tid, offset=0, payload=b"x" * 1024)
    alice.ok("piece", transfer=tid, offset=1024, payload=b"x" * 76)  # the last may be short


def test_pieces_are_not_counted_against_the_request_rate():
    h = Harness(rate=1, burst=3, transfer_window=4)
    alice, bob = h.login("alice"), h.login("bob")
    tid = alice.ok("transfer", to="bob", name="f", size=40)["transfer"]
    for offset in range(0, 40, 4):
        alice.ok("piece", transfer=tid, offset=offset, payload=b"abcd")


def test_a_transfer_in_which_nothing_moves_times_out():
    h = Harness(transfer_idle=20, transfer_window=4)
    alice, bob = h.login("alice"), h.login("bob")
    tid = alice.ok("transfer", to="bob", name="f", size=8)["transfer"]
    alice.ok("piece", transfer=tid, offset=0, payload=b"1234")
    h.advance(h.config.transfer_idle + h.config.reap_interval + 1)
    assert bob.events(p.TransferFailedEvent)[0].code == "TIMED_OUT"
    assert alice.events(p.TransferFailedEvent)[0].code == "TIMED_OUT"


def test_a_cancel_is_told_to_the_recipients_and_only_the_sender_may(h: Harness):
    alice, bob, eve = h.login("alice"), h.login("bob"), h.login("eve")
    tid = alice.ok("transfer", to="bob", name="f", size=8)["transfer"]
    assert eve.error("transfer_cancel", transfer=tid) == "NO_SUCH_TRANSFER"
    assert bob.error("piece", transfer=tid, offset=0, payload=b"x") == "NO_SUCH_TRANSFER"
    alice.ok("transfer_cancel", transfer=tid, reason="wrong file")
    failed = bob.events(p.TransferFailedEvent)[0]
    assert (failed.code, failed.message) == ("CANCELLED", "wrong file")


def reach(code: ErrorCode) -> str:
    """How each transfer code is provoked (for the test that every code is reachable)."""
    h = Harness(max_transfers_per_user=1, transfer_idle=20, transfer_window=4)
    alice, bob = h.login("alice"), h.login("bob")
    if code is ErrorCode.NO_SUCH_TRANSFER:
        return alice.error("piece", transfer=99, offset=0, payload=b"x")
    if code is ErrorCode.TOO_MANY_TRANSFERS:
        alice.ok("transfer", to="bob", name="f", size=1)
        return alice.error("transfer", to="bob", name="f", size=1)
    tid = alice.ok("transfer", to="bob", name="f", size=8)["transfer"]
    if code is ErrorCode.BAD_PIECE:
        return alice.error("piece", transfer=tid, offset=1, payload=b"x")
    if code is ErrorCode.SENDER_LEFT:
        alice.ok("quit")
    elif code is ErrorCode.CANCELLED:
        alice.ok("transfer_cancel", transfer=tid)
    elif code is ErrorCode.TIMED_OUT:
        h.advance(h.config.transfer_idle + h.config.reap_interval + 1)
    return bob.events(p.TransferFailedEvent)[0].code


TRANSFER_CODES = (ErrorCode.NO_SUCH_TRANSFER, ErrorCode.BAD_PIECE, ErrorCode.TOO_MANY_TRANSFERS,
                  ErrorCode.SENDER_LEFT, ErrorCode.CANCELLED, ErrorCode.TIMED_OUT)


def test_data_to_a_room_reaches_every_other_member_and_is_answered_once_they_have_it(h: Harness):
    alice, bob, carol = h.login("alice"), h.login("bob"), h.login("carol")
    for c in (alice, bob, carol):
        c.ok("join", room="#tea")
        c.drain()
    carol.connection.hold_acks()
    rid = next(alice.ids)
    alice.send_raw(p.encode(p.Data(id=rid, room="#tea", payload=b"\x00\xffbinary", idem="k1")))
    assert answer(alice, rid) is None  # carol's transport has not acknowledged it yet
    carol.connection.release_acks()
    reply = answer(alice, rid)
    assert reply.result == {"room": "#tea", "delivered": 2, "missed": []}
    for c in (bob, carol):
        [event] = c.events(p.DataEvent)
        assert (event.nick, event.room, event.payload) == ("alice", "#tea", b"\x00\xffbinary")
    assert not alice.events(p.DataEvent)
    again = alice.ok("data", room="#tea", payload=b"\x00\xffbinary", idem="k1")  # a resend
    assert again.result == reply.result and not bob.events(p.DataEvent)


def test_data_to_a_room_names_who_left_before_having_it(h: Harness):
    alice, bob, carol = h.login("alice"), h.login("bob"), h.login("carol")
    for c in (alice, bob, carol):
        c.ok("join", room="#tea")
    carol.connection.hold_acks()
    rid = next(alice.ids)
    alice.send_raw(p.encode(p.Data(id=rid, room="#tea", payload=b"x")))
    carol.connection.peer_vanishes()
    assert answer(alice, rid).result == {"room": "#tea", "delivered": 1, "missed": ["carol"]}
    assert alice.error("data", room="#coffee", payload=b"x") == "NOT_IN_ROOM"
    assert alice.error("data", payload=b"x") == "BAD_FIELD"


def test_a_member_who_takes_nothing_is_dropped_and_the_room_transfer_goes_on():
    h = Harness(transfer_idle=20, transfer_window=4)
    alice, bob, carol = h.login("alice"), h.login("bob"), h.login("carol")
    for c in (alice, bob, carol):
        c.ok("join", room="#tea")
    tid = alice.ok("transfer", room="#tea", name="f", size=8)["transfer"]
    alice.drain()
    carol.connection.hold_acks()  # carol's transport stalls; bob takes everything
    rid = send_piece(alice, tid, 0, b"1234")
    for _ in range(5):  # keepalives would keep carol's session: only the transfer stalls
        h.advance(5)
        for c in (alice, bob, carol):
            c.protocol._last_request = h.clock.seconds()
    assert isinstance(answer(alice, rid), p.Ok)
    [dropped] = alice.events(p.TransferFailedEvent)
    assert (dropped.code, dropped.nick) == ("NOT_DELIVERED", "carol")
    assert carol.events(p.TransferFailedEvent)[0].code == "TIMED_OUT"
    alice.ok("piece", transfer=tid, offset=4, payload=b"5678")
    end = alice.ok("transfer_end", transfer=tid, size=8, sha256=digest(b"12345678"))
    assert (end["delivered"], end["missed"]) == (1, ["carol"])


def test_a_recipient_may_decline_the_rest_and_the_others_go_on(h: Harness):
    alice, bob, carol = h.login("alice"), h.login("bob"), h.login("carol")
    for c in (alice, bob, carol):
        c.ok("join", room="#tea")
    tid = alice.ok("transfer", room="#tea", name="f", size=8)["transfer"]
    alice.drain()
    alice.ok("piece", transfer=tid, offset=0, payload=b"1234")
    carol.ok("transfer_cancel", transfer=tid, reason="disk full")
    [declined] = alice.events(p.TransferFailedEvent)
    assert (declined.code, declined.nick) == ("NOT_DELIVERED", "carol") and "disk full" in declined.message
    carol.drain()
    alice.ok("piece", transfer=tid, offset=4, payload=b"5678")
    assert not carol.events(p.PieceEvent)
    assert alice.ok("transfer_end", transfer=tid, size=8, sha256=digest(b"12345678"))["missed"] == ["carol"]


TRANSFER_EVENTS = (p.TransferEvent, p.PieceEvent, p.TransferEndEvent, p.TransferFailedEvent)


def by_lane(client) -> dict[int, list[type]]:
    """The kinds of message ``client`` was sent, lane by lane, in order."""
    lanes: dict[int, list[type]] = {INTERACTIVE_LANE: [], BULK_LANE: []}
    for data, lane in zip(client.connection.sent, client.connection.lanes):
        lanes[lane].append(type(p.decode_server_message(data)))
    return lanes


def test_all_a_recipient_hears_of_a_transfer_is_on_the_bulk_lane_in_order_and_nothing_else():
    """The offer, the pieces, the end and a failure share one lane, so they
    cannot overtake each other on the way (a piece before its offer would
    be dropped, a failure before the offer would leave a transfer nobody
    ends); room lines and every reply stay on the interactive lane, ahead."""
    alice, bob, carol = Harness().room_of("#tea", "alice", "bob", "carol")
    first = alice.ok("transfer", room="#tea", name="a", size=len(DATA))["transfer"]
    for offset, chunk in pieces(DATA):
        alice.ok("piece", transfer=first, offset=offset, payload=chunk)
        carol.ok("say", room="#tea", text="meanwhile")
    alice.ok("transfer_end", transfer=first, size=len(DATA), sha256=digest(DATA))
    second = alice.ok("transfer", room="#tea", name="b", size=len(DATA))["transfer"]
    alice.ok("transfer_cancel", transfer=second)
    bulk = [p.TransferEvent] + [p.PieceEvent] * len(pieces(DATA)) + [p.TransferEndEvent] \
        + [p.TransferEvent, p.TransferFailedEvent]
    assert by_lane(bob)[BULK_LANE] == bulk
    assert by_lane(carol)[BULK_LANE] == bulk
    assert p.MessageEvent in by_lane(bob)[INTERACTIVE_LANE]
    assert not set(by_lane(bob)[INTERACTIVE_LANE]) & set(TRANSFER_EVENTS)
    # The sender's answers and its own failure events pace it: the fast lane.
    assert by_lane(alice)[BULK_LANE] == []
    assert p.TransferFailedEvent in by_lane(alice)[INTERACTIVE_LANE]
