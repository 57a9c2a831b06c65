"""Catch-up after a reconnect shows every room line once, in order, even
when live lines arrive while the re-join's history is on its way (they used
to move the "last seen" mark first, and the older history was skipped)."""

from __future__ import annotations

from twisted.internet import defer

from twistchat.chat import protocol as p
from twistchat.client import ClientState
from twistchat.client.catchup import RoomCatchUp
from twistchat.client.seen import RecentIds

from .harness import World
from .scripted import logged_in, run

TS = 1_700_000_000_000


def line(msg_id: int, room: str = "#tea") -> p.MessageEvent:
    return p.MessageEvent(room=room, nick="alice", text=f"line {msg_id}", msg_id=msg_id, ts=TS + msg_id)


def hist(*ids: int) -> list[dict]:
    return [{"msg_id": i, "nick": "alice", "text": f"line {i}", "ts": TS + i} for i in ids]


def ids(shown) -> list[int]:
    return [event.msg_id for event, _ in shown]


def test_live_lines_during_a_join_wait_for_its_history_and_merge_in_order() -> None:
    state = ClientState(None, last_seen={"#tea": 100})
    catchup = RoomCatchUp(state)
    catchup.begin("#TEA")
    assert catchup.live(line(109)) == [] and catchup.live(line(110)) == []
    assert state.last_seen["#tea"] == 100          # held lines move no mark
    shown = catchup.joined("#tea", hist(99, 100, 101, 102, 108, 109))
    assert ids(shown) == [101, 102, 108, 109, 110]  # nothing before the mark, nothing twice
    assert [replay for _, replay in shown] == [True, True, True, True, False]
    assert state.last_seen["#tea"] == 110
    assert ids(catchup.live(line(110))) == [] and ids(catchup.live(line(111))) == [111]


def test_other_rooms_are_not_held_and_a_failed_join_releases_what_it_held() -> None:
    catchup = RoomCatchUp(ClientState(None))
    catchup.begin("#tea")
    assert ids(catchup.live(line(5, "#cafe"))) == [5]
    catchup.live(line(6))
    assert ids(catchup.abandon("#tea")) == [6]
    assert ids(catchup.live(line(7))) == [7]


def test_our_own_line_is_never_shown_back_to_us() -> None:
    state = ClientState(None)
    catchup = RoomCatchUp(state)
    catchup.own("#tea", 3)
    assert state.last_seen["#tea"] == 3
    assert ids(catchup.joined("#tea", hist(3))) == []
    catchup.begin("#tea")
    catchup.own("#tea", 4)                          # said while older lines may still come
    assert state.last_seen["#tea"] == 3
    assert ids(catchup.joined("#tea", hist(3, 4))) == []


def test_the_seen_ids_stay_bounded() -> None:
    recent = RecentIds(capacity=3)
    assert all(recent.add(i) for i in range(10))
    assert len(recent) == 3 and 9 in recent and 6 not in recent
    assert not recent.add(9)


def test_live_lines_that_arrive_during_the_re_join_cost_no_line_of_history() -> None:
    clock, server, bob, observer = logged_in("bob")
    server.results[p.Join] = lambda request: {"room": "#tea", "history": hist(1, 2)}
    bob.join("#tea")
    run(clock, 1)
    server.drop()                                   # lines 3..10 are said while bob is away
    server.silent.add(p.Join)
    run(clock, 60)
    rejoin = server.sent(p.Join)[-1]
    for msg_id in (11, 12):                         # said during the re-join: live first
        server.push(line(msg_id))
    server.push(p.Ok(id=rejoin.id, result={"room": "#tea", "history": hist(*range(1, 12))}))
    server.push(line(13))
    run(clock, 1)
    shown = [(text, replay) for _, _, _, text, replay in observer.of("message")]
    assert [text for text, _ in shown] == [f"line {n}" for n in range(1, 14)]
    assert [replay for _, replay in shown] == [True] * 11 + [False] * 2


def slow_history_reads(world: World, seconds: float) -> None:
    """The store takes its time reading a room's history (a busy disk), so
    the room's live lines reach a re-joining member before the join reply."""
    read = world.store.get_history

    def get_history(*args, **kwargs):
        answer = defer.Deferred()
        read(*args, **kwargs).addBoth(lambda result: world.clock.callLater(seconds, answer.callback, result))
        return answer
    world.store.get_history = get_history


def test_every_line_once_in_order_while_the_room_talks_through_a_reconnect() -> None:
    world = World()
    alice, alice_sees, bob, _ = world.pair_in_room()
    slow_history_reads(world, 3.0)
    said: list[str] = []

    def talk() -> None:
        said.append(f"line {len(said)}")
        bob.say("#tea", said[-1])
        if len(said) < 90:
            world.clock.callLater(1.0, talk)
    talk()
    now = world.clock.seconds()
    world.network.isolate(alice.endpoint.transport.address, now + 5, now + 50)
    world.run(150)
    assert alice.connected and ("reconnected",) in alice_sees.log
    seen = [text for _, _, _, text, _ in alice_sees.of("message")]
    assert seen == said


# ---- join replies bounded by bytes: the older lines come by paging history

def test_a_join_reply_without_room_for_every_line_is_completed_by_paging_history() -> None:
    clock, server, bob, observer = logged_in("bob")
    bob.state.last_seen["#tea"] = 40
    server.results[p.Join] = lambda request: {"room": "#tea", "history": hist(48, 49, 50),
                                              "history_more": True}
    pages = {40: (hist(41, 42, 43, 44), True), 44: (hist(45, 46, 47, 48, 49), True)}
    server.results[p.History] = lambda request: {"room": "#tea", "history": pages[request.since][0],
                                                 "more": pages[request.since][1]}
    joined = bob.join("#tea")
    run(clock, 0.015)                              # the join reply is in, the first page asked
    server.push(line(51))                          # live meanwhile: held until caught up
    run(clock, 1)
    assert joined.called
    assert [r.since for r in server.sent(p.History)] == [40, 44]  # stops once it reaches the reply's lines
    shown = [(text, replay) for _, _, _, text, replay in observer.of("message")]
    assert [text for text, _ in shown] == [f"line {n}" for n in range(41, 52)]
    assert [replay for _, replay in shown] == [True] * 10 + [False]


def test_a_join_reply_that_reaches_the_mark_needs_no_paging() -> None:
    clock, server, bob, observer = logged_in("bob")
    bob.state.last_seen["#tea"] = 47
    server.results[p.Join] = lambda request: {"room": "#tea", "history": hist(48, 49),
                                              "history_more": True}
    bob.join("#tea")
    run(clock, 1)
    assert server.sent(p.History) == []
    assert [text for _, _, _, text, _ in observer.of("message")] == ["line 48", "line 49"]


def test_a_page_that_cannot_be_sent_shows_what_came_and_says_so() -> None:
    clock, server, bob, observer = logged_in("bob")
    server.results[p.Join] = lambda request: {"room": "#tea", "history": hist(9),
                                              "history_more": True}
    server.results[p.History] = lambda request: p.ErrorReply(
        id=request.id, code="REPLY_TOO_LARGE", message="a line alone would not fit")
    joined = bob.join("#tea")
    run(clock, 1)
    assert joined.called and joined.result["room"] == "#tea"
    assert ("error", "REPLY_TOO_LARGE") in observer.log
    assert [text for _, _, _, text, _ in observer.of("message")] == ["line 9"]
    assert ids(bob.catchup.live(line(10))) == [10]  # nothing held any more


def test_who_rooms_and_history_page_until_the_server_says_no_more() -> None:
    clock, server, bob, _ = logged_in("bob")
    nicks = [f"n{i:02d}" for i in range(7)]

    def who(request):
        rest = [n for n in nicks if request.after is None or n > request.after]
        return {"room": "#tea", "count": 7, "members": [{"nick": n, "away": None, "op": False}
                                                        for n in rest[:3]], "more": len(rest) > 3}
    server.results[p.Who] = who
    listed = bob.who("#tea")
    run(clock, 1)
    assert [m["nick"] for m in listed.result["members"]] == nicks and listed.result["count"] == 7
    assert [r.after for r in server.sent(p.Who)] == [None, "n02", "n05"]
    server.results[p.History] = lambda request: {
        "room": "#tea", "history": hist(*range(request.since + 1, min(request.since + 4, 10))),
        "more": request.since + 4 < 10}
    history = bob.history("#tea", since=0)
    run(clock, 1)
    assert [h["msg_id"] for h in history.result["history"]] == list(range(1, 10))


WORST = '"' * 4096
"""A line JSON escapes to twice its size: a few fill a message."""


def test_a_client_catches_up_across_pages_of_long_lines_after_a_reconnect() -> None:
    world = World()
    alice, alice_sees, bob, _ = world.pair_in_room()
    said: list[str] = []

    def talk() -> None:
        said.append(f"{len(said):02d}" + WORST[2:])
        bob.say("#tea", said[-1])
        if len(said) < 30:
            world.clock.callLater(1.0, talk)
    now = world.clock.seconds()
    world.network.isolate(alice.endpoint.transport.address, now, now + 50)
    talk()
    world.run(150)
    assert alice.connected and ("reconnected",) in alice_sees.log
    seen = [text for _, _, _, text, _ in alice_sees.of("message")]
    assert seen == said                            # every line once, in order
    carol, carol_sees = world.client("carol")      # a newcomer gets every kept line too
    world.wait(carol.connect())
    world.wait(carol.join("#tea"))
    assert [(text, replay) for _, _, _, text, replay in carol_sees.of("message")] == \
        [(text, True) for text in said]
