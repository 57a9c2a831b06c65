"""A node that stops heartbeating, and Redis away: members of a dead node
leave the rooms of the others; what needs Redis is answered UNAVAILABLE,
within the timeout, never left waiting."""

from __future__ import annotations

from twisted.internet.defer import Deferred, fail

from twistchat.chat import protocol as p
from twistchat.chat.protocol import ErrorCode
from twistchat.chat.server.cluster_liveness import NODE_LOST

from twistchat.store.base import StoreUnavailable

from .network import Network

HEARTBEAT = 5.0


def test_a_node_that_stops_heartbeating_has_its_members_removed_by_the_others():
    net = Network(3, node_heartbeat=HEARTBEAT)
    alice, bob, carol = net.room_of("#tea", (0, "alice"), (1, "bob"), (2, "carol"))
    alice.ok("watch", nick="bob")
    alice.drain()
    dead = net.nodes[1].server
    dead.cluster._heartbeat.stop()  # kill -9: it says nothing more, hears nothing more
    dead.broker.stop()
    net.advance(4 * HEARTBEAT)
    quits = alice.events(p.QuitEvent)
    assert [(q.nick, q.reason, q.timeout) for q in quits] == [("bob", NODE_LOST, True)]
    assert [q.nick for q in carol.events(p.QuitEvent)] == ["bob"]  # once, though two nodes noticed
    assert alice.ok("who", room="#tea").result["count"] == 2
    assert alice.ok("dm", to="bob", text="there?").result["online"] is False


def test_requests_that_need_redis_are_answered_unavailable_while_it_is_away():
    net = Network(2)
    alice, bob = net.room_of("#tea", (0, "alice"), (1, "bob"))
    net.hub.unreachable = True
    assert alice.error("say", room="#tea", text="anyone?") == ErrorCode.UNAVAILABLE
    assert alice.error("dm", to="bob", text="psst") == ErrorCode.UNAVAILABLE
    carol = net.nodes[0].connect()
    assert carol.error("login", nick="carol") == ErrorCode.UNAVAILABLE
    assert "carol" not in net.nodes[0].server.online
    net.hub.unreachable = False
    alice.ok("say", room="#tea", text="back")
    assert [m.text for m in bob.events(p.MessageEvent)] == ["back"]


def test_a_store_that_never_answers_is_unavailable_after_the_timeout():
    net = Network(2, redis_timeout=2.0)
    alice, bob = net.room_of("#tea", (0, "alice"), (1, "bob"))
    net.store.append_line = lambda *args: Deferred()  # Redis took the command, never answers
    alice.send_raw(p.encode(p.Say(id=50, room="#tea", text="into the void")))
    assert not [m for m in alice.messages() if getattr(m, "id", None) == 50]
    net.advance(2.0)
    [reply] = [m for m in alice.messages() if getattr(m, "id", None) == 50]
    assert reply.code == ErrorCode.UNAVAILABLE
    assert alice.ok("ping")  # the session goes on


def test_a_store_that_lost_redis_is_answered_unavailable_not_internal():
    """What RedisStore raises while its connection is down (StoreUnavailable):
    the user is told to try again, the log gets one line, no traceback."""
    net = Network(2)
    alice, bob = net.room_of("#tea", (0, "alice"), (1, "bob"))
    net.store.append_line = lambda *args, **kwargs: fail(StoreUnavailable("no connection to Redis"))
    assert alice.error("say", room="#tea", text="anyone?") == ErrorCode.UNAVAILABLE
    assert bob.events(p.MessageEvent) == []
    assert alice.ok("ping")  # the session goes on


def test_a_broker_that_never_answers_is_unavailable_after_the_timeout():
    net = Network(2, redis_timeout=2.0)
    alice = net.nodes[0].login("alice")
    net.nodes[0].server.broker.take = lambda *args: Deferred()
    alice.send_raw(p.encode(p.Dm(id=60, to="alice", text="note to self")))
    net.advance(2.0)
    [reply] = [m for m in alice.messages() if getattr(m, "id", None) == 60]
    assert reply.code == ErrorCode.UNAVAILABLE


def test_any_store_call_that_never_answers_is_unavailable_after_the_timeout():
    net = Network(2, redis_timeout=2.0)
    net.store.get_account = lambda key: Deferred()
    carol = net.nodes[0].connect()
    carol.send_raw(p.encode(p.Login(id=70, nick="carol")))
    net.advance(2.0)
    [reply] = [m for m in carol.messages() if getattr(m, "id", None) == 70]
    assert reply.code == ErrorCode.UNAVAILABLE


def test_a_node_shutting_down_tells_the_others_its_members_left():
    net = Network(2)
    alice, bob = net.room_of("#tea", (0, "alice"), (1, "bob"))
    net.nodes[1].server.shutdown()
    assert [q.nick for q in alice.events(p.QuitEvent)] == ["bob"]
    assert alice.ok("who", room="#tea").result["count"] == 1
    assert alice.ok("dm", to="bob", text="gone?").result["online"] is False


def test_a_node_taken_as_dead_that_comes_back_closes_its_sessions_so_they_log_in_again():
    from twistchat.endpoint.api import CloseCode

    net = Network(2, node_heartbeat=HEARTBEAT)
    alice, bob = net.room_of("#tea", (0, "alice"), (1, "bob"))
    stalled = net.nodes[1].server.cluster
    stalled._heartbeat.stop()  # a stall: it misses its heartbeats
    net.advance(4 * HEARTBEAT)
    assert alice.ok("who", room="#tea").result["count"] == 1  # taken as dead
    stalled._heartbeat.start(HEARTBEAT, now=True)  # and back
    assert bob.closed is not None and bob.closed[1] == CloseCode.SHUTTING_DOWN
    again = net.nodes[1].connect()
    again.ok("login", nick="bob", secret=bob.messages()[0].result["secret"])
    assert alice.ok("who", room="#tea").result["count"] == 2


def test_what_a_dead_node_committed_and_did_not_pass_on_reaches_users_on_the_other_nodes():
    """A DM it kept and answered but did not tell the recipient's node of,
    and a receipt it kept for a DM its user acknowledged but did not tell
    the sender's node of: once it is taken as dead, every node hands its
    own online users what waits for them (a way the e2e test of the
    cluster timed out waiting for receipts after its kill)."""
    net = Network(3, node_heartbeat=HEARTBEAT)
    alice = net.nodes[0].login("alice", password="a long password")
    bob = net.nodes[1].login("bob", password="a long password")
    carol = net.nodes[0].login("carol", password="a long password")
    dan = net.nodes[2].login("dan", password="a long password")
    dying = net.nodes[0].server
    dying.cluster.dm_to_holder = lambda key, dm: None  # it dies before telling another node
    dying.mailbox._elsewhere = lambda receipt: None
    sent = alice.ok("dm", to="bob", text="kept on node0").result
    assert bob.events(p.DmEvent) == []
    to_carol = dan.ok("dm", to="carol", text="acknowledged on node0").result
    assert [d.text for d in carol.events(p.DmEvent)] == ["acknowledged on node0"]
    assert dan.events(p.DeliveredEvent) == []
    dying.cluster._heartbeat.stop()
    dying.broker.stop()
    net.advance(4 * HEARTBEAT)
    assert [(d.text, d.dm_id) for d in bob.events(p.DmEvent)] == [("kept on node0", sent["dm_id"])]
    assert [r.dm_id for r in dan.events(p.DeliveredEvent)] == [to_carol["dm_id"]]
    net.advance(2 * HEARTBEAT)
    assert bob.events(p.DmEvent) == [] and dan.events(p.DeliveredEvent) == []  # once
