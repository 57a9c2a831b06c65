"""How events look: one line each, time first."""

from __future__ import annotations

import time

import pytest

from twistchat.chat import protocol as p
from twistchat.cli import render

TS = 1_700_000_000_000
HHMM = time.strftime("%H:%M", time.localtime(TS / 1000))
NOW = TS / 1000


def test_room_message_and_action():
    event = p.MessageEvent(room="#tea", nick="bob", text="hi", msg_id=1, ts=TS)
    assert render.message(event) == f"{HHMM} [#tea] <bob> hi"
    assert render.message(event, replay=True) == f"{HHMM} [#tea] <bob> hi (history)"
    action = p.MessageEvent(room="#tea", nick="bob", text="/me waves", msg_id=2, ts=TS)
    assert render.message(action) == f"{HHMM} [#tea] * bob waves"


def test_direct_messages_and_delivery_notices():
    dm = p.DmEvent(nick="alice", to="bob", text="psst", dm_id=5, ts=TS, stored=True)
    assert render.direct(dm) == f"{HHMM} [dm] <alice> psst (sent while you were away)"
    offline = render.own_direct("bob", "psst", {"status": "stored", "online": False, "ts": TS})
    assert offline.splitlines() == [f"{HHMM} [dm to bob] psst",
                                    f"{HHMM} -!- bob is offline: stored for offline delivery"]
    online = render.own_direct("bob", "hi", {"status": "stored", "online": True, "ts": TS})
    assert online == f"{HHMM} [dm to bob] hi"
    notice = render.delivered(p.DeliveredEvent(dm_id=5, to="bob", ts=TS), now=NOW)
    assert notice == f"{HHMM} -!- bob received your message of {HHMM} (delivered)"


@pytest.mark.parametrize("event, text", [
    (p.JoinEvent(room="#tea", nick="bob"), "bob joined #tea"),
    (p.PartEvent(room="#tea", nick="bob", reason="bye"), "bob left #tea (bye)"),
    (p.QuitEvent(room="#tea", nick="bob", timeout=True), "bob quit (timed out)"),
    (p.KickEvent(room="#tea", nick="bob", by="alice", banned=True), "bob was banned from #tea by alice"),
    (p.NickEvent(room="#tea", old="bob", new="rob"), "bob is now known as rob"),
    (p.AwayEvent(room="#tea", nick="bob", message="lunch"), "bob is away (lunch)"),
    (p.AwayEvent(room="#tea", nick="bob", message=None), "bob is back"),
    (p.TopicEvent(room="#tea", topic="oolong", nick="alice", ts=TS), "alice set the topic of #tea: oolong"),
    (p.OpEvent(room="#tea", nick="bob", by="alice"), "alice made bob operator of #tea"),
])
def test_presence_lines(event, text):
    assert render.presence(event, now=NOW) == f"{HHMM} -!- {text}"


def test_errors_show_the_servers_code():
    assert render.error("ROOM_FULL", "room is full", now=NOW) == f"{HHMM} !!! ROOM_FULL: room is full"


def test_join_reply_shows_room_topic_and_members():
    lines = render.reply("join", ("#tea",), {
        "room": "#tea", "topic": "oolong", "topic_by": "alice",
        "members": [{"nick": "alice", "op": True, "away": None},
                    {"nick": "bob", "op": False, "away": "lunch"}]}, now=NOW)
    assert lines == [f"{HHMM} -!- now talking in #tea",
                     f"{HHMM} -!- topic: oolong (set by alice)",
                     f"{HHMM} -!- members: @alice, bob (away)"]


def test_a_big_rooms_join_shows_its_first_members_and_how_many_more():
    lines = render.reply("join", ("#big",), {
        "room": "#big", "topic": None, "member_count": 1000,
        "members": [{"nick": "alice", "op": True, "away": None},
                    {"nick": "bob", "op": False, "away": None}]}, now=NOW)
    assert lines[-1] == f"{HHMM} -!- members: @alice, bob, and 998 more (1000 in all: /who lists them)"
    who = render.reply("who", ("#big",), {"room": "#big", "count": 2, "members": [
        {"nick": "alice", "op": True, "away": None}, {"nick": "bob", "op": False, "away": None}]},
        now=NOW)
    assert who == [f"{HHMM} -!- #big: @alice, bob"]


def test_a_rooms_modes_show_its_member_cap():
    event = p.ModeEvent(room="#tea", nick="alice", invite_only=False, has_key=True, limit=5)
    assert render.presence(event, now=NOW) == (
        f"{HHMM} -!- alice made #tea open, key required, at most 5 members (modes: +k +l 5)")
    lines = render.reply("join", ("#tea",), {
        "room": "#tea", "topic": None, "invite_only": True, "has_key": False, "limit": 5,
        "member_count": 1, "members": [{"nick": "alice", "op": True, "away": None}]}, now=NOW)
    assert lines == [f"{HHMM} -!- now talking in #tea", f"{HHMM} -!- modes: +i +l 5",
                     f"{HHMM} -!- members: @alice"]
