"""LocalBroker keeps the Broker's promises (broker_contract.py), on a Clock."""

from __future__ import annotations

import pytest
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from twistchat.cluster.broker import BrokerUnavailable, LocalBroker, LocalHub

from .broker_contract import CHECKS


def _pair():
    clock = Clock()
    hub = LocalHub(clock)
    a, b = LocalBroker(clock, "a", hub), LocalBroker(clock, "b", hub)
    for broker in (a, b):
        broker.start(lambda room, data: None, lambda data: None, lambda rooms: None)
    return clock, a, b


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_the_broker_contract(check):
    clock, a, b = _pair()

    def sleep(seconds: float):
        clock.advance(seconds)
        return succeed(None)
    done = Deferred.fromCoroutine(check(a, b, sleep))
    assert done.called
    failed: list = []
    done.addErrback(failed.append)  # (reading done.result gave the Failure, never raised it)
    if failed:
        failed[0].raiseException()


def test_room_messages_reach_subscribed_nodes_only_in_publish_order():
    clock, a, b = _pair()
    heard = {"a": [], "b": []}
    a.start(lambda room, data: heard["a"].append(data), lambda data: None, lambda rooms: None)
    b.start(lambda room, data: heard["b"].append(data), lambda data: None, lambda rooms: None)
    a.subscribe_room("#tea")
    b.subscribe_room("#tea")
    for i in range(5):
        (a if i % 2 else b).publish_room("#tea", b"%d" % i)
    b.unsubscribe_room("#tea")
    assert a.publish_room("#tea", b"after").result == 1  # the nodes it reached
    assert a.publish_room("#nobody", b"lost").result == 0
    assert heard["a"] == [b"0", b"1", b"2", b"3", b"4", b"after"]
    assert heard["b"] == [b"0", b"1", b"2", b"3", b"4"]


def test_an_unreachable_hub_fails_every_call_and_changes_nothing():
    clock, a, b = _pair()
    a.hub.unreachable = True
    failures = []
    a.claim_login("alice", "a", "1").addErrback(lambda f: failures.append(f.check(BrokerUnavailable)))
    a.take("say:alice", 1, 1).addErrback(lambda f: failures.append(f.check(BrokerUnavailable)))
    assert failures == [BrokerUnavailable, BrokerUnavailable]
    a.hub.unreachable = False
    assert b.login_holder("alice").result is None
