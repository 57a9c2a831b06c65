"""What only the Redis store must show, against the real server: several
nodes (here: several connections) share one store without breaking its
promises.  A line's id is allocated with its append, so ids follow history
order and the published lines arrive in id order; racing senders never
exceed a quota; ids are never handed out twice; the store survives a lost
connection (failing fast meanwhile, logging the outage once) and says so at
once when Redis is not there at all."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
import txredisapi
from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.logger import globalLogPublisher

from support.redis_server import RedisServer, free_tcp_port
from support.waiting import until, within
from twistchat.store import open_store
from twistchat.store import redis_keys as keys
from twistchat.store.base import (
    Account,
    DmRefused,
    HistoryEntry,
    IdemRecord,
    StoredDm,
    StoreUnavailable,
    TooManyCreated,
)
from twistchat.store.redis import RedisStore

pytestmark = pytest.mark.redis
ROOM = "#tea"


@pytest.fixture
def nodes(redis_url):
    """Two stores on one Redis, as two nodes have."""
    stores = [open_store(reactor, "", redis=redis_url) for _ in range(2)]
    yield stores
    for store in stores:
        pytest_twisted.blockon(within(store.close()))


class Subscriber(txredisapi.SubscriberProtocol):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def messageReceived(self, pattern, channel, message):
        self.messages.append(message)


@defer.inlineCallbacks
def subscribed(redis_server, channel):
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", redis_server.port)
    subscriber = yield within(connectProtocol(endpoint, Subscriber()))
    yield within(subscriber.subscribe(channel))
    return subscriber


@pytest_twisted.ensureDeferred
async def test_lines_from_two_nodes_get_ids_in_history_order_and_are_published_so(
        nodes, redis_server):
    subscriber = await subscribed(redis_server, "room-channel")
    try:
        said = [nodes[n % 2].append_line(ROOM, f"nick{n % 2}", f"line {n}", 1000 + n, keep=100,
                                         channel="room-channel") for n in range(40)]
        results = await within(defer.gatherResults(said))
        await until(lambda: len(subscriber.messages) == 40)
    finally:
        subscriber.transport.loseConnection()
    assert all(known is None for _, known in results)
    ids = [entry.msg_id for entry, _ in results]
    assert len(set(ids)) == 40
    # the order lines were kept in (their number in the room) is the order of their ids
    kept = [json.loads(line) for line in await nodes[0].link.command("ZRANGE", keys.HISTORY + ROOM, 0, -1)]
    assert [line["msg_id"] for line in kept] == sorted(ids)
    assert [line["line"] for line in kept] == list(range(1, 41))
    published = [json.loads(message) for message in subscriber.messages]
    assert [record["msg_id"] for record in published] == sorted(ids)
    assert set(published[0]) == {"room", "msg_id", "nick", "text", "ts"}
    by_id = {entry.msg_id: entry for entry, _ in results}
    for record in published:
        entry = by_id[record["msg_id"]]
        assert (record["room"], record["nick"], record["text"], record["ts"]) == \
            (ROOM, entry.nick, entry.text, entry.ts)
    assert await nodes[1].get_history(ROOM, None, 100) == [by_id[i] for i in sorted(ids)]


@pytest_twisted.ensureDeferred
async def test_two_nodes_creating_one_room_at_once_agree_on_its_first_state(nodes):
    """Both creates are on the wire before either is answered: one wins,
    the other is told the winner's state (HSETNX and HGET in one script)."""
    for n in range(20):
        room = f"#race{n}"
        states = [{"name": room, "creator_key": nick, "op_key": nick} for nick in ("alice", "bob")]
        results = await within(defer.gatherResults(
            [nodes[i].create_room(room, states[i]) for i in ((0, 1) if n % 2 else (1, 0))]))
        assert sorted(created for created, _ in results) == [False, True]
        [winner] = [state for created, state in results if created]
        assert [state for _, state in results] == [winner, winner]
        assert (await nodes[n % 2].load_rooms())[room] == winner


def _founded(room, nick):
    return {"name": room, "creator_key": nick, "op_key": nick}


@pytest_twisted.ensureDeferred
async def test_two_nodes_creating_at_once_never_exceed_a_creators_limit(nodes):
    """Every create is on the wire before any is answered: the count is
    checked in the script that creates, so exactly ``limit`` rooms are kept."""
    limit = 3
    results = await within(defer.gatherResults(
        [nodes[n % 2].create_room(f"#r{n}", _founded(f"#r{n}", "alice"), created_limit=limit)
         .addCallbacks(lambda created: "created", lambda f: f.trap(TooManyCreated) and "refused")
         for n in range(8)]))
    assert sorted(results) == ["created"] * limit + ["refused"] * (8 - limit)
    created = await nodes[0].link.command("SMEMBERS", keys.CREATED + "alice")
    assert sorted(await nodes[1].load_rooms()) == sorted(created)
    # someone else's count is their own; a kept room is opened whatever the count
    assert (await nodes[0].create_room("#bob", _founded("#bob", "bob"), created_limit=1))[0]
    assert await nodes[1].create_room(created[0], _founded(created[0], "alice"), created_limit=limit) \
        == (False, _founded(created[0], "alice"))


@pytest_twisted.ensureDeferred
async def test_a_deleted_or_dropped_room_leaves_its_creators_count_and_a_rename_moves_it(nodes):
    for room in ("#a", "#b"):
        await nodes[0].create_room(room, _founded(room, "alice"), created_limit=2)
    with pytest.raises(TooManyCreated):
        await nodes[1].create_room("#c", _founded("#c", "alice"), created_limit=2)
    await nodes[1].delete_room("#a")
    await nodes[1].create_room("#c", _founded("#c", "alice"), created_limit=2)
    await nodes[0].rename_account("alice", Account("alicia", "Alicia", "x", True, 1, 2))
    assert sorted(await nodes[0].link.command("SMEMBERS", keys.CREATED + "alicia")) == ["#b", "#c"]
    with pytest.raises(TooManyCreated):
        await nodes[1].create_room("#d", _founded("#d", "alicia"), created_limit=2)
    assert await nodes[0].drop_room("#b", "no-roster")
    await nodes[1].create_room("#d", _founded("#d", "alicia"), created_limit=2)
    assert sorted(await nodes[0].link.command("SMEMBERS", keys.CREATED + "alicia")) == ["#c", "#d"]
    flat = await nodes[0].link.command("HGETALL", keys.ROOM_CREATOR)
    assert dict(zip(flat[::2], flat[1::2])) == {"#c": "alicia", "#d": "alicia"}


@pytest_twisted.ensureDeferred
async def test_a_room_is_dropped_only_when_no_roster_entry_nor_kept_membership_names_it(
        nodes, redis_server):
    roster = "tc:b:roster:" + ROOM
    await nodes[0].create_room(ROOM, _founded(ROOM, "alice"))
    await nodes[0].append_line(ROOM, "alice", "hi", 5, keep=10)
    await nodes[0].link.command("HSET", roster, "bob", "node1\trecord")
    assert not await nodes[1].drop_room(ROOM, roster)  # bob is in it, on some node
    await nodes[0].link.command("DEL", roster)
    await nodes[0].keep_membership("carol", ROOM, "#Tea")
    assert not await nodes[1].drop_room(ROOM, roster)  # carol comes back to it
    assert ROOM in await nodes[0].load_rooms()
    await nodes[0].drop_membership("carol", ROOM)
    subscriber = await subscribed(redis_server, "room-channel")
    try:
        assert await nodes[1].drop_room(ROOM, roster, "room-channel", b'{"k":"dropped"}')
        await until(lambda: subscriber.messages)
    finally:
        subscriber.transport.loseConnection()
    assert subscriber.messages == ['{"k":"dropped"}']
    assert ROOM not in await nodes[0].load_rooms()
    assert await nodes[0].get_history(ROOM, None, 10) == []
    assert await nodes[0].link.command("SMEMBERS", keys.CREATED + "alice") == []
    assert (await nodes[1].create_room(ROOM, _founded(ROOM, "bob")))[0]  # new, bob its operator


@pytest_twisted.ensureDeferred
async def test_a_resent_line_gets_its_first_answer_and_is_not_kept_twice(nodes):
    def idem(ts):
        return IdemRecord(nick_key="alice", idem="k1", answer={"room": "#Tea", "ts": ts}, ts=ts)

    entry, known = await within(nodes[0].append_line(ROOM, "Alice", "once", 70, 10, idem(70)))
    assert known is None and entry == HistoryEntry(ROOM, entry.msg_id, "Alice", "once", 70)
    first = {"room": "#Tea", "msg_id": entry.msg_id, "ts": 70}
    assert await nodes[0].get_idem("alice", "k1") == first
    again, known = await within(nodes[1].append_line(ROOM, "Alice", "once", 80, 10, idem(80), "chan"))
    assert again is None and known == first
    assert [e.text for e in await nodes[1].get_history(ROOM, None, 10)] == ["once"]
    assert await nodes[1].last_id() == entry.msg_id  # no id spent on the resend


@pytest_twisted.ensureDeferred
async def test_text_that_looks_like_a_number_or_json_comes_back_as_sent(nodes):
    texts = ["42", "-1.5e3", '{"msg_id": 1}', "smörgåsbord \u2603 \"quoted\" \\ /", "", "0x10"]
    for n, text in enumerate(texts, 1):
        await nodes[0].append_history(HistoryEntry(ROOM, n, "007", text, n), keep=100)
    await nodes[0].store_dm(StoredDm(99, "12", "12", "007", "42", 5, "007"))
    assert [(e.nick, e.text) for e in await nodes[1].get_history(ROOM, None, 100)] == \
        [("007", t) for t in texts]
    [dm] = await nodes[1].get_mailbox("12")
    assert (dm.to_nick, dm.sender, dm.text) == ("12", "007", "42")


@pytest.mark.parametrize("quota, refused_at", [({"capacity": 5}, 5), ({"per_sender": 3}, 3),
                                                ({"total": 4}, 4)])
@pytest_twisted.ensureDeferred
async def test_racing_senders_on_two_nodes_never_exceed_a_quota(nodes, quota, refused_at):
    first = await nodes[0].reserve_ids(40) - 39
    sends = [nodes[n % 2].store_dm(StoredDm(first + n, "bob", "Bob", "Eve", f"dm {n}", n, "eve"), **quota)
             for n in range(40)]
    outcomes = await within(defer.DeferredList(sends, consumeErrors=True))
    stored = [ok for ok, _ in outcomes if ok]
    refusals = [failure for ok, failure in outcomes if not ok]
    assert len(stored) == refused_at
    assert all(failure.check(DmRefused) for failure in refusals) and len(refusals) == 40 - refused_at
    assert await nodes[1].mailbox_count("bob") == refused_at
    assert await nodes[1].stored_dm_count() == refused_at


@pytest_twisted.ensureDeferred
async def test_ids_reserved_by_two_nodes_never_overlap(nodes):
    marks = await within(defer.gatherResults([nodes[n % 2].reserve_ids(100) for n in range(20)]))
    blocks = [set(range(mark - 99, mark + 1)) for mark in marks]
    assert len(set().union(*blocks)) == 2000
    entry, _ = await within(nodes[0].append_line(ROOM, "a", "x", 1, 10))
    assert entry.msg_id == 2001  # lines come from the same counter


@pytest_twisted.ensureDeferred
async def test_the_store_survives_a_lost_connection_failing_fast_meanwhile(redis_url, redis_server):
    events = []
    globalLogPublisher.addObserver(events.append)
    store = RedisStore(reactor, redis_url)
    killer = await within(txredisapi.Connection("127.0.0.1", redis_server.port, reconnect=False))
    try:
        await within(store.put_room("#tea", {"topic": "kept"}))
        await within(killer.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"))
        await until(lambda: not store.link.connected)
        for _ in range(3):  # refused at once, not left waiting for the reconnection
            with pytest.raises(StoreUnavailable):
                await store.load_rooms()
        await until(lambda: store.link.connected)
        assert await within(store.load_rooms()) == {"#tea": {"topic": "kept"}}
        await within(store.put_room("#x", {}))
    finally:
        globalLogPublisher.removeObserver(events.append)
        await within(killer.disconnect())
        await within(store.close())
    outage = [e["log_format"] for e in events if e.get("log_namespace", "").endswith("RedisLink")]
    assert len(outage) == 2 and outage[0].startswith("lost the store") \
        and outage[1].startswith("the store is back")


@pytest_twisted.ensureDeferred
async def test_a_redis_that_goes_away_for_a_while_is_logged_once_each_way(tmp_path):
    """Several reconnection attempts fail meanwhile: none of them is logged."""
    own = RedisServer(tmp_path / "redis")
    own.start()
    events = []
    store = RedisStore(reactor, own.url)
    try:
        await within(store.put_account(Account("alice", "Alice", "c", True, 1, 2)))
        globalLogPublisher.addObserver(events.append)
        own.stop()
        await until(lambda: not store.link.connected)
        await task.deferLater(reactor, 1.0, lambda: None)  # three or four attempts
        with pytest.raises(StoreUnavailable):
            await store.get_account("alice")
        own.start()  # no persistence: an empty Redis on the same port
        await until(lambda: store.link.connected)
        assert await within(store.get_account("alice")) is None
    finally:
        globalLogPublisher.removeObserver(events.append)
        await within(store.close())
        own.stop()
    said = [e.get("log_format", "") for e in events]
    assert [s for s in said if "Redis" in s] == [
        "lost the store: Redis at {url}; requests that need it get UNAVAILABLE until it is back",
        "the store is back: Redis at {url}"]
    assert not [s for s in said if "retry" in s.lower() or "connect" in s.lower()]


@pytest_twisted.ensureDeferred
async def test_a_redis_that_is_not_there_is_reported_not_waited_for():
    store = RedisStore(reactor, f"redis://127.0.0.1:{free_tcp_port()}/0", connect_timeout=0.5)
    try:
        with pytest.raises(StoreUnavailable):
            await within(store.get_account("alice"))
    finally:
        await within(store.close())


@pytest_twisted.ensureDeferred
async def test_closing_fails_what_waits_for_the_first_connection_at_once():
    store = RedisStore(reactor, f"redis://127.0.0.1:{free_tcp_port()}/0", connect_timeout=60)
    waiting = store.get_account("alice")
    await within(store.close(), timeout=5)  # well before the connect timeout
    assert waiting.called
    with pytest.raises(StoreUnavailable):
        await waiting
