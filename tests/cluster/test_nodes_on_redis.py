"""Two chat nodes on the real Redis (RedisBroker), in one process: what the
LocalHub tests show holds when the room channel, the rosters and the node
channels are Redis's and every delivery comes back asynchronously.  The
store is one MemoryStore with a double of RedisStore's ``append_line``
that publishes the line through Redis, as its script does."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred, succeed
from twisted.internet.task import Clock

from chat.fakes import FakeClient, Harness
from twistchat.chat import protocol as p
from twistchat.cluster.redis_broker import redis_broker
from twistchat.endpoint.api import CloseCode
from twistchat.store.base import HistoryEntry
from twistchat.store.memory import MemoryStore

from .real_time import until

pytestmark = pytest.mark.redis

PASSWORD = "a long password"


class RedisLineStore:
    def __init__(self, publisher) -> None:
        self.inner = MemoryStore()
        self.publisher = publisher

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def _append(self, room_key, nick, text, ts, keep, idem, channel):
        msg_id = self.inner._last_id = self.inner._last_id + 1
        entry = HistoryEntry(room=room_key, msg_id=msg_id, nick=nick, text=text, ts=ts)
        self.inner.append_history(entry, keep, None)
        await self.publisher.publish(channel, json.dumps(
            {"room": room_key, "msg_id": msg_id, "nick": nick, "text": text, "ts": ts}))
        return entry, None

    def append_line(self, *args):
        return ensureDeferred(self._append(*args))

    def create_room(self, key, state, created_limit=None):
        """No quota here: network.py's LineStore, and the RedisStore tests, show it."""
        return self.inner.create_room(key, state)

    def drop_room(self, key, roster_key, channel=None, record=b""):
        """Never dropped here (network.py's LineStore, and the RedisStore tests, show it)."""
        return succeed(False)


async def _ask(client: FakeClient, kind: str, **fields) -> p.Message:
    rid = next(client.ids)
    client.send_raw(p.encode(p.REQUESTS[kind](id=rid, **fields)))
    replies = lambda: [m for m in client.messages()  # noqa: E731
                       if isinstance(m, p.Ok | p.ErrorReply) and m.id == rid]
    await until(replies, f"the answer to {kind}")
    [reply] = replies()
    assert isinstance(reply, p.Ok), reply
    return reply


@pytest.fixture
def network(redis_url):
    import txredisapi

    publisher = pytest_twisted.blockon(txredisapi.Connection(
        "127.0.0.1", int(redis_url.rsplit(":", 1)[1].split("/")[0]), reconnect=False))
    store = RedisLineStore(publisher)
    clock = Clock()
    clock.advance(1_700_000_000)
    nodes = [Harness(store=store, clock=clock, broker=redis_broker(redis_url, reactor, name))
             for name in ("a", "b")]
    for node in nodes:
        pytest_twisted.blockon(ensureDeferred(until(
            lambda node=node: node.server.broker._subscriber is not None, "the subscriber")))
    yield nodes
    for node in nodes:
        pytest_twisted.blockon(node.server.broker.stop())
    pytest_twisted.blockon(publisher.disconnect())


async def _login(node: Harness, nick: str) -> FakeClient:
    client = node.connect()
    await _ask(client, "login", nick=nick, password=PASSWORD)
    return client


@pytest_twisted.ensureDeferred
async def test_a_room_a_dm_and_a_replaced_login_across_two_nodes_on_redis(network):
    a, b = network
    alice = await _login(a, "alice")
    bob = await _login(b, "bob")
    await _ask(alice, "join", room="#tea")
    joined = await _ask(bob, "join", room="#tea")
    assert joined.result["member_count"] == 2 and joined.result["op"] == "alice"
    await until(lambda: any(isinstance(m, p.JoinEvent) and m.nick == "bob"
                             for m in alice.messages()), "bob's join on alice's node")
    for text in ("one", "two", "three"):
        await _ask(alice, "say", room="#tea", text=text)
    heard = lambda: [m.text for m in bob.messages() if isinstance(m, p.MessageEvent)]  # noqa: E731
    await until(lambda: len(heard()) == 3, "three lines on bob's node")
    assert heard() == ["one", "two", "three"]
    assert (await _ask(alice, "who", room="#tea")).result["count"] == 2

    sent = await _ask(alice, "dm", to="bob", text="hello")
    assert sent.result["online"] is True
    await until(lambda: any(isinstance(m, p.DeliveredEvent) for m in alice.messages()),
                 "the receipt back on alice's node")
    assert [m.text for m in bob.messages() if isinstance(m, p.DmEvent)] == ["hello"]

    again = await _login(a, "bob")
    await until(lambda: bob.closed is not None, "the older session closed")
    assert bob.closed[1] == CloseCode.REPLACED
    assert any(isinstance(m, p.ReplacedEvent) for m in bob.messages())
    assert again.closed is None


@pytest_twisted.ensureDeferred
async def test_room_data_reaches_the_other_nodes_members_in_line_order_on_redis(network):
    a, b = network
    alice, carol, bob = await _login(a, "alice"), await _login(a, "carol"), await _login(b, "bob")
    for client in (alice, carol, bob):
        await _ask(client, "join", room="#cake")
    await _ask(alice, "say", room="#cake", text="before")
    sent = await _ask(alice, "data", room="#cake", payload=b"blob")
    assert (sent.result["delivered"], sent.result["missed"]) == (2, [])
    await _ask(alice, "say", room="#cake", text="after")
    heard = lambda client: [m.text if isinstance(m, p.MessageEvent) else m.payload.decode()  # noqa: E731
                            for m in client.messages() if isinstance(m, p.MessageEvent | p.DataEvent)]
    await until(lambda: len(heard(bob)) == 3 and len(heard(carol)) == 3, "both lines and the data")
    assert heard(bob) == heard(carol) == ["before", "blob", "after"]


@pytest_twisted.ensureDeferred
async def test_a_file_goes_to_a_nick_on_the_other_node_on_redis(network):
    import hashlib

    a, b = network
    alice, bob = await _login(a, "alice"), await _login(b, "bob")
    data = bytes(range(256)) * 64  # 16 KiB in four pieces
    opened = await _ask(alice, "transfer", to="bob", name="f.bin", size=len(data))
    tid = opened.result["transfer"]
    for offset in range(0, len(data), 4096):
        await _ask(alice, "piece", transfer=tid, offset=offset, payload=data[offset:offset + 4096])
    end = await _ask(alice, "transfer_end", transfer=tid, size=len(data),
                     sha256=hashlib.sha256(data).hexdigest())
    assert (end.result["delivered"], end.result["missed"]) == (1, [])
    got = b"".join(m.payload for m in bob.messages() if isinstance(m, p.PieceEvent))
    assert got == data
    assert any(isinstance(m, p.TransferEndEvent) for m in bob.messages())
