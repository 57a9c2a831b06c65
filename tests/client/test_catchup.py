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
