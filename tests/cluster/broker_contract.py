"""What every Broker promises, written once and run on LocalBroker (one
process, Clock) and on RedisBroker (the real Redis): so nodes on a LocalHub
behave as nodes on one Redis do, and the chat tests on the hub mean
something for real nodes.  Each check takes two brokers of one network
(nodes "a" and "b") and ``sleep(seconds)``, awaitable."""

from __future__ import annotations

from twisted.internet import defer

from twistchat.cluster.broker import LoginHolder


async def claims_chain_every_holder(a, b, sleep) -> None:
    """Each claim sees the holder before it: none lost, none seen twice."""
    claims = [(a if i % 2 else b).claim_login("alice", "a" if i % 2 else "b", str(i))
              for i in range(20)]
    previous = await defer.gatherResults(claims)
    holder = await a.login_holder("alice")
    assert previous.count(None) == 1
    assert len({p for p in previous if p is not None} | {holder}) == 20
    assert not await a.release_login("alice", "b", "not-the-holder")
    assert await a.release_login("alice", holder.node_id, holder.session_token)
    assert await a.login_holder("alice") is None


async def one_bucket_for_every_node(a, b, sleep) -> None:
    results = await defer.gatherResults([(a if i % 2 else b).take("say:alice", 0.001, 5)
                                         for i in range(12)])
    assert results.count(True) == 5
    assert await a.take("say:bob", 0.001, 5)
    assert not await b.take("say:alice", 0.001, 5)


async def a_silent_node_is_dropped_once(a, b, sleep) -> None:
    assert not await a.heartbeat(0.1)  # its first: not listed before
    assert await a.heartbeat(0.1)
    await b.heartbeat(10)
    await b.roster_add("#tea", "bob", b'{"nick":"Bob"}')
    await a.roster_add("#tea", "ann", b'{"nick":"Ann"}')
    await b.claim_login("bob", "b", "1")
    await a.claim_login("ann", "a", "7")
    assert await b.drop_node("a") is None  # still alive: nothing taken
    await sleep(0.5)
    assert await b.dead_nodes() == {"a"}
    assert await b.drop_node("a") == {"#tea": {"ann": b'{"nick":"Ann"}'}}
    assert await b.drop_node("a") is None  # dropped once, by one caller
    assert set(await b.roster("#tea")) == {"bob"}
    assert await b.login_holder("ann") is None
    assert await b.login_holder("bob") == LoginHolder("b", "1")
    assert await b.dead_nodes() == set()
    assert not await a.heartbeat(10)  # back, and told it was taken as dead
    assert await a.heartbeat(10)


async def roster_sizes_count_every_nodes_members(a, b, sleep) -> None:
    await a.roster_add("#tea", "ann", b"{}")
    await b.roster_add("#tea", "bob", b"{}")
    await b.roster_add("#cake", "bob", b"{}")
    await a.roster_add("#cake", "ann", b"{}")
    await a.roster_remove("#cake", "ann")
    assert await b.roster_sizes(["#tea", "#cake", "#none"]) == {"#tea": 2, "#cake": 1, "#none": 0}
    assert await a.roster_sizes([]) == {}


CHECKS = [claims_chain_every_holder, one_bucket_for_every_node, a_silent_node_is_dropped_once,
          roster_sizes_count_every_nodes_members]
