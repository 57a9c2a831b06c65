"""Replies bounded by bytes and paged (issue 12, PROTOCOL.md C6 "Paging"):
no reply exceeds what the peer's transport takes or what the server
announced, every listing pages to its end, and what cannot be sent at all
is answered with REPLY_TOO_LARGE under the request's id."""

from __future__ import annotations

from typing import Any

import attrs

from twistchat.chat import protocol as p
from twistchat.chat.server import ServerConfig

from .fakes import FakeClient, Harness

WORST_LINE = '"' * 4096
"""4,096 bytes of text that JSON escapes to 8,192."""
_NO_THROTTLE = {"rate": 1e9, "burst": 10**9, "churn_rate": 1e9, "churn_burst": 10**9,
                "registration_rate": 1e9, "registration_burst": 10**9}
UNLIMITED = {name: value for name, value in _NO_THROTTLE.items()
             if name in attrs.fields_dict(ServerConfig)}
"""One test client plays many users from one address without being throttled
(whichever of these throttles this server has)."""


def replies(client: FakeClient) -> list[bytes]:
    return [data for data in client.connection.sent if data.startswith(b'{"t":"ok"')
            or data.startswith(b'{"t":"error"')]


def page_through(client: FakeClient, kind: str, field: str, cursor: str, key: str,
                 **fields: Any) -> list[p.Ok]:
    """Ask for ``kind`` until the server says no more remain; every page."""
    pages = [client.ok(kind, **fields)]
    while pages[-1]["more"]:
        assert pages[-1][field], "a page that says more remain carries something"
        pages.append(client.ok(kind, **{**fields, cursor: pages[-1][field][-1][key]}))
    return pages


def said(h: Harness, nick: str, room: str, count: int, text: str = WORST_LINE) -> tuple[FakeClient, list[int]]:
    client = h.login(nick)
    client.ok("join", room=room)
    return client, [client.ok("say", room=room, text=text)["msg_id"] for _ in range(count)]


def test_eight_lines_of_quotes_no_longer_silence_join_and_history():
    h = Harness(**UNLIMITED)
    _, ids = said(h, "alice", "#q", 8)
    bob = h.login("bob")
    joined = bob.ok("join", room="#q")
    budget = h.config.max_message_bytes
    assert len(replies(bob)[-1]) <= budget
    newest = [line["msg_id"] for line in joined["history"]]
    assert newest and newest == ids[-len(newest):] and len(newest) < 8  # the newest that fit
    assert joined["history_more"] is True
    pages = page_through(bob, "history", "history", "since", "msg_id", room="#q")
    assert len(pages) > 1
    assert [line["msg_id"] for page in pages for line in page["history"]] == ids  # once each, in order
    assert all(len(data) <= budget for data in replies(bob))


def test_ordinary_long_lines_page_too_and_the_peer_cap_is_honoured():
    h = Harness(**UNLIMITED)
    _, ids = said(h, "alice", "#long", 100, text="a fairly ordinary long line " * 25)
    bob = h.login("bob", max_message_size=8000)
    joined = bob.ok("join", room="#long")
    assert joined["history_more"] and 0 < len(joined["history"]) < 100
    pages = page_through(bob, "history", "history", "since", "msg_id", room="#long", since=ids[9])
    assert [line["msg_id"] for page in pages for line in page["history"]] == ids[10:]
    assert max(len(data) for data in replies(bob)) <= 8000


def test_a_history_limit_is_still_the_newest_lines_and_pages_by_what_is_left():
    h = Harness(**UNLIMITED)
    alice, ids = said(h, "alice", "#tea", 12)
    first = alice.ok("history", room="#tea", limit=10)
    got = [line["msg_id"] for line in first["history"]]
    assert first["more"] and got == ids[2:2 + len(got)]
    rest = alice.ok("history", room="#tea", since=got[-1], limit=10 - len(got))
    assert [line["msg_id"] for line in rest["history"]] == ids[2 + len(got):]


def test_sixty_rooms_with_long_topics_page():
    h = Harness(max_rooms_created=60, max_rooms_per_client=60, **UNLIMITED)
    alice = h.login("alice")
    names = [f"#a-room-with-a-rather-long-name-{n:02d}" for n in range(60)]
    for name in names:
        alice.ok("join", room=name)
        alice.ok("topic", room=name, topic='"' * 512)
    bob = h.login("bob")
    pages = page_through(bob, "rooms", "rooms", "after", "room")
    assert len(pages) > 1
    assert [r["room"] for page in pages for r in page["rooms"]] == names
    assert all(r["members"] == 1 and not r["joined"] for page in pages for r in page["rooms"])
    assert all(len(data) <= h.config.max_message_bytes for data in replies(bob))


def test_a_room_of_a_thousand_fills_with_join_replies_of_bounded_size():
    h = Harness(max_members_per_room=1001, **UNLIMITED)
    sizes = []
    clients = []
    for n in range(1000):
        client = h.login(f"user{n:04d}")
        joined = client.ok("join", room="#big")
        assert joined["member_count"] == n + 1
        assert len(joined["members"]) == min(n + 1, p.JOIN_MEMBERS)
        sizes.append(len(replies(client)[-1]))
        clients.append(client)
    full = sizes[p.JOIN_MEMBERS:]
    assert max(full) - min(full) <= 2  # the 1,000th join costs the 21st's bytes (but a digit)
    assert max(sizes) < 2000           # so filling the room costs linear bytes in replies
    # the join's members are the first who page's first; all come through paged who, each once
    assert joined["members"] == clients[0].ok("who", room="#big")["members"][:p.JOIN_MEMBERS]
    lister = h.login("lister", max_message_size=10_000)
    lister.ok("join", room="#big")
    pages = page_through(lister, "who", "members", "after", "nick", room="#big")
    assert len(pages) > 1 and all(page["count"] == 1001 for page in pages)
    listed = [m["nick"] for page in pages for m in page["members"]]
    assert listed == ["lister"] + [f"user{n:04d}" for n in range(1000)]
    assert max(len(data) for data in replies(lister)) <= 10_000


def test_who_pages_in_nick_order_and_a_member_who_stays_is_listed_once():
    h = Harness(**UNLIMITED)
    alice = h.login("alice", max_message_size=600)
    alice.ok("join", room="#tea")
    others = []
    for nick in ("Zed", "bob", "carol", "dave", "erin", "frank"):
        other = h.login(nick)
        other.ok("join", room="#tea")
        other.ok("away", message="x" * 100)
        others.append(other)
    first = alice.ok("who", room="#tea")
    assert first["more"] and first["count"] == 7
    others[0].ok("part", room="#tea")           # Zed leaves while alice pages
    pages = [first] + page_through(alice, "who", "members", "after", "nick", room="#tea",
                                   after=first["members"][-1]["nick"])
    listed = [m["nick"] for page in pages for m in page["members"]]
    assert listed == ["alice", "bob", "carol", "dave", "erin", "frank"]
    assert max(len(data) for data in replies(alice)) <= 600


def test_an_entry_too_big_for_any_page_is_an_error_under_the_request_id():
    h = Harness(**UNLIMITED)
    alice, ids = said(h, "alice", "#tea", 1)
    small = h.login("small", max_message_size=2000)  # takes less than one line
    joined = small.ok("join", room="#tea")       # joining still works: no line fits
    assert joined["history"] == [] and joined["history_more"] is True
    small.send_raw(p.encode(p.History(id=4242, room="#tea")))
    reply = small.messages()[-1]
    assert isinstance(reply, p.ErrorReply) and reply.id == 4242 and reply.code == "REPLY_TOO_LARGE"
    # the next line fits again: since skips the one that cannot be sent
    said_short = alice.ok("say", room="#tea", text="short")["msg_id"]
    after = small.ok("history", room="#tea", since=ids[0])
    assert [line["msg_id"] for line in after["history"]] == [said_short] and not after["more"]


def test_a_join_whose_bare_reply_cannot_fit_is_refused_and_changes_nothing():
    h = Harness(**UNLIMITED)
    alice = h.login("alice")
    alice.ok("join", room="#tea")
    alice.ok("topic", room="#tea", topic='"' * 512)
    tiny = h.login("tiny", max_message_size=700)
    assert tiny.error("join", room="#tea") == "REPLY_TOO_LARGE"
    assert [m["nick"] for m in alice.ok("who", room="#tea")["members"]] == ["alice"]
    assert tiny.error("say", room="#tea", text="x") == "NOT_IN_ROOM"


def test_any_reply_the_peer_cannot_take_is_answered_reply_too_large():
    h = Harness(**UNLIMITED)
    alice = h.login("alice")
    alice.ok("join", room="#tea")
    for n in range(40):
        alice.ok("ban", room="#tea", nick=f"{'b' * 28}{n:04d}")
    alice.connection.peer_max_message_size = 1000       # the ban list no longer fits
    alice.send_raw(p.encode(p.Ban(id=777, room="#tea", nick="onemore")))
    reply = alice.messages()[-1]
    assert isinstance(reply, p.ErrorReply) and (reply.id, reply.code) == (777, "REPLY_TOO_LARGE")


def test_the_announced_size_covers_a_one_entry_page_whatever_the_limits():
    for limits in (p.Limits(), p.Limits(max_text_bytes=100_000, max_payload_bytes=1000)):
        budget = p.max_server_message_bytes(limits)
        assert budget >= p.max_event_bytes(limits)
        line = p.hist(p.MAX_REQUEST_ID, "n" * p.NICK_MAX_LENGTH, '"' * limits.max_text_bytes,
                      p.MAX_REQUEST_ID)
        room = "#" + "r" * p.ROOM_NAME_MAX_LENGTH
        reply = p.pages.page(budget, p.MAX_REQUEST_ID, {"room": room}, "history", [line], "a line")
        assert reply["history"] == [line] and reply["more"] is False
