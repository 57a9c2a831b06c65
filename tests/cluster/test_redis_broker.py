"""RedisBroker against the real redis-server (tests/support/redis_server.py):
what the chat layer relies on from it, on real sockets, bounded in time."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

from twistchat.cluster.broker import BrokerUnavailable
from twistchat.cluster.redis_broker import RedisBroker, redis_broker
from twistchat.store import open_store

from .broker_contract import CHECKS
from .real_time import WAIT, until

pytestmark = pytest.mark.redis




def _listener():
    heard = {"room": [], "node": [], "gaps": []}
    return heard, (lambda room, data: heard["room"].append((room, data)),
                   heard["node"].append, heard["gaps"].append)


async def _started(url: str, node_id: str):
    broker = redis_broker(url, reactor, node_id)
    heard, handlers = _listener()
    await broker.start(*handlers)
    await until(lambda: broker._subscriber is not None, "the subscriber connection")
    return broker, heard


@pytest.fixture
def brokers():
    started = []
    yield started
    for broker in started:
        pytest_twisted.blockon(broker.stop())


@pytest_twisted.ensureDeferred
async def test_room_messages_reach_every_subscriber_in_publish_order(redis_url, brokers):
    a, heard_a = await _started(redis_url, "a")
    b, heard_b = await _started(redis_url, "b")
    brokers += [a, b]
    await defer.gatherResults([a.subscribe_room("#tea"), b.subscribe_room("#tea")])
    sent = [f"line {i}".encode() for i in range(50)]
    await defer.gatherResults([(a if i % 2 else b).publish_room("#tea", data)
                               for i, data in enumerate(sent)])
    await until(lambda: len(heard_a["room"]) == 50 and len(heard_b["room"]) == 50, "50 lines")
    order = [d for _, d in heard_a["room"]]
    # One order for every subscriber: Redis's, each publisher's own kept.
    assert order == [d for _, d in heard_b["room"]] and sorted(order) == sorted(sent)
    assert [d for d in order if d in sent[1::2]] == sent[1::2]
    assert [d for d in order if d in sent[0::2]] == sent[0::2]
    assert await b.publish_room("#tea", b"to both") == 2  # the nodes it reached
    await until(lambda: len(heard_a["room"]) == 51 and len(heard_b["room"]) == 51, "one more")
    await b.unsubscribe_room("#tea")
    assert await a.publish_room("#tea", b"after") == 1
    await a.publish_node("b", b"to b")
    await until(lambda: heard_b["node"], "the node message")
    assert heard_b["node"] == [b"to b"] and len(heard_b["room"]) == 51
    assert heard_a["room"][-1] == ("#tea", b"after")


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest_twisted.ensureDeferred
async def test_the_broker_contract(redis_url, brokers, check):
    a, _ = await _started(redis_url, "a")
    b, _ = await _started(redis_url, "b")
    brokers += [a, b]
    await check(a, b, lambda seconds: task.deferLater(reactor, seconds, lambda: None))


@pytest_twisted.ensureDeferred
async def test_a_lost_subscription_comes_back_and_reports_the_gap(redis_url, brokers):
    a, heard_a = await _started(redis_url, "a")
    b, _ = await _started(redis_url, "b")
    brokers += [a, b]
    a._factory.initialDelay = 0.05
    await a.subscribe_room("#tea")
    await a.subscribe_room("#cake")
    a._subscriber.transport.abortConnection()
    await until(lambda: a._subscriber is None, "the loss")
    await b.publish_room("#tea", b"missed")
    await until(lambda: heard_a["gaps"], "the gap report")
    assert heard_a["gaps"] == [["#cake", "#tea"]]
    await task.deferLater(reactor, 0.1, lambda: None)  # the SUBSCRIBE went first
    await b.publish_room("#tea", b"live again")
    await until(lambda: heard_a["room"], "a line after the gap")
    assert heard_a["room"] == [("#tea", b"live again")]


@pytest_twisted.ensureDeferred
async def test_calls_fail_as_unavailable_within_the_timeout_when_redis_is_gone(brokers):
    from support.redis_server import free_tcp_port

    broker = RedisBroker(reactor, "127.0.0.1", free_tcp_port(), "a", timeout=0.2)
    heard, handlers = _listener()
    await broker.start(*handlers)
    brokers.append(broker)
    started = reactor.seconds()
    with pytest.raises(BrokerUnavailable):
        await broker.take("say:alice", 1, 1)
    assert reactor.seconds() - started < WAIT


def test_the_url_names_host_port_and_database():
    broker = redis_broker("redis://10.0.0.5:6380/2", reactor, "n1")
    assert (broker._host, broker._port, broker._dbid) == ("10.0.0.5", 6380, 2)
    with pytest.raises(ValueError):
        redis_broker("http://x", reactor, "n1")


def test_a_node_of_a_network_gets_its_broker_from_the_url_and_its_config():
    from twistchat.chat.server import ServerConfig
    from twistchat.chat.server.service import cluster_broker

    config = ServerConfig(node_name="east-1", redis_timeout=0.5)
    broker = cluster_broker("redis://127.0.0.1:7000/3", reactor, config)
    assert (broker.node_id, broker.timeout, broker._port, broker._dbid) == ("east-1", 0.5, 7000, 3)


@pytest_twisted.ensureDeferred
async def test_a_message_the_listener_fails_on_does_not_stop_the_next(redis_url, brokers):
    a, _ = await _started(redis_url, "a")
    b, _ = await _started(redis_url, "b")
    brokers += [a, b]
    heard = []

    def picky(room: str, data: bytes) -> None:
        if data == b"bad":
            raise ValueError("cannot read that")
        heard.append(data)
    a._on_room = picky
    await a.subscribe_room("#tea")
    await b.publish_room("#tea", b"bad")
    await b.publish_room("#tea", b"good")
    await until(lambda: heard, "the next message")
    assert heard == [b"good"]


@pytest_twisted.ensureDeferred
async def test_the_store_drops_a_room_only_once_the_brokers_roster_of_it_is_empty(redis_url, brokers):
    """``roster_key`` names the hash ``roster_add`` writes, which the
    store's ``drop_room`` script checks; its record reaches the room's subscribers."""
    a, heard_a = await _started(redis_url, "a")
    b, _ = await _started(redis_url, "b")
    brokers += [a, b]
    store = open_store(reactor, "", redis=redis_url)
    try:
        await store.create_room("#tea", {"name": "#tea", "creator_key": "alice"})
        await a.subscribe_room("#tea")
        await b.roster_add("#tea", "bob", b"record")
        assert not await store.drop_room("#tea", b.roster_key("#tea"), b.room_channel("#tea"), b"gone")
        await b.roster_remove("#tea", "bob")
        assert await store.drop_room("#tea", b.roster_key("#tea"), b.room_channel("#tea"), b"gone")
        await until(lambda: heard_a["room"], "the dropped record")
        assert heard_a["room"] == [("#tea", b"gone")]
        assert "#tea" not in await store.load_rooms()
    finally:
        await store.close()
