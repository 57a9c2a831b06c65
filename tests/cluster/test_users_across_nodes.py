"""Users on different nodes of one network: DMs and their receipts, the
newest login winning, presence, and flood control per user."""

from __future__ import annotations

from twistchat.chat import protocol as p
from twistchat.chat.protocol import ErrorCode
from twistchat.endpoint.api import CloseCode

from .network import Network

PASSWORD = "a long password"


def test_a_dm_to_a_user_on_another_node_arrives_and_its_receipt_comes_back():
    net = Network(2)
    alice = net.nodes[0].login("alice", password=PASSWORD)
    bob = net.nodes[1].login("bob", password=PASSWORD)
    sent = alice.ok("dm", to="bob", text="hi bob").result
    assert sent["online"] is True and sent["status"] == "stored"
    [dm] = bob.events(p.DmEvent)
    assert (dm.nick, dm.text, dm.dm_id, dm.stored) == ("alice", "hi bob", sent["dm_id"], False)
    [receipt] = alice.events(p.DeliveredEvent)
    assert (receipt.dm_id, receipt.to) == (sent["dm_id"], "bob")
    assert net.store.get_mailbox("bob").result == []  # deleted on bob's ack


def test_a_dm_waits_until_its_recipient_logs_in_on_any_node():
    net = Network(2)
    net.nodes[1].login("bob", password=PASSWORD).ok("quit")
    alice = net.nodes[0].login("alice", password=PASSWORD)
    carol = net.nodes[1].login("carol", password=PASSWORD)
    assert alice.ok("dm", to="bob", text="from a").result["online"] is False
    assert carol.ok("dm", to="bob", text="from b").result["online"] is False
    assert not alice.events(p.DeliveredEvent)
    bob = net.nodes[0].connect()
    assert bob.ok("login", nick="bob", password=PASSWORD).result["mailbox"] == 2
    assert [(d.text, d.stored) for d in bob.events(p.DmEvent)] == [("from a", True), ("from b", True)]
    assert len(alice.events(p.DeliveredEvent)) == 1
    assert len(carol.events(p.DeliveredEvent)) == 1  # routed to carol's node


def test_an_unacknowledged_dm_stays_for_the_next_login():
    net = Network(2)
    alice = net.nodes[0].login("alice", password=PASSWORD)
    bob = net.nodes[1].login("bob", password=PASSWORD)
    bob.connection.hold_acks()
    alice.ok("dm", to="bob", text="lost on the way")
    bob.connection.peer_vanishes()
    assert not alice.events(p.DeliveredEvent)
    again = net.nodes[0].connect()
    again.ok("login", nick="bob", password=PASSWORD)
    assert [d.text for d in again.events(p.DmEvent)] == ["lost on the way"]
    assert len(alice.events(p.DeliveredEvent)) == 1


def test_the_newest_login_on_another_node_replaces_the_older_session():
    net = Network(2)
    old = net.nodes[0].login("alice", password=PASSWORD)
    bob = net.nodes[0].login("bob", password=PASSWORD)
    old.ok("join", room="#tea")
    bob.ok("join", room="#tea")
    bob.drain()
    new = net.nodes[1].login("alice", password=PASSWORD)
    assert old.events(p.ReplacedEvent)
    assert old.closed is not None and old.closed[1] == CloseCode.REPLACED
    assert [e.nick for e in bob.events(p.QuitEvent)] == ["alice"]
    assert new.ok("ping")
    sent = bob.ok("dm", to="alice", text="where are you").result
    assert sent["online"] is True
    assert [d.text for d in new.events(p.DmEvent)] == ["where are you"]
    assert "alice" in net.nodes[1].server.online and "alice" not in net.nodes[0].server.online


def test_watchers_hear_of_a_contact_on_another_node():
    net = Network(2)
    net.nodes[1].login("bob", password=PASSWORD).ok("quit")
    alice = net.nodes[0].login("alice", password=PASSWORD)
    alice.ok("watch", nick="bob")
    alice.drain()
    bob = net.nodes[1].login("bob", password=PASSWORD)
    bob.ok("away", message="lunch")
    bob.ok("quit")
    assert [e.state for e in alice.events(p.ContactEvent)] == ["online", "away", "offline"]


def test_flood_control_holds_per_user_whichever_node_it_is_on():
    net = Network(2, dm_rate=0.001, dm_burst=2)
    net.nodes[0].login("bob", password=PASSWORD)
    alice = net.nodes[0].login("alice", password=PASSWORD)
    alice.ok("dm", to="bob", text="1")
    alice.ok("dm", to="bob", text="2")
    again = net.nodes[1].login("alice", password=PASSWORD)  # a fresh session elsewhere: the same bucket
    assert again.error("dm", to="bob", text="3") == ErrorCode.RATE_LIMITED


def test_the_churn_bucket_is_the_users_on_every_node():
    net = Network(2, churn_rate=0.001, churn_burst=2)
    alice = net.nodes[0].login("alice", password=PASSWORD)
    alice.ok("away", message="1")
    alice.ok("away", message="2")
    again = net.nodes[1].login("alice", password=PASSWORD)
    assert again.error("away", message="3") == ErrorCode.RATE_LIMITED


def test_a_contact_list_shows_contacts_online_on_other_nodes():
    net = Network(2)
    bob = net.nodes[1].login("bob", password=PASSWORD)
    bob.ok("away", message="lunch")
    net.nodes[0].login("carol", password=PASSWORD)
    alice = net.nodes[0].login("alice", password=PASSWORD)
    assert alice.ok("watch", nick="bob").result["state"] == "away"
    assert alice.ok("watch", nick="carol").result["state"] == "online"
    alice.ok("quit")
    again = net.nodes[0].connect()
    again.ok("login", nick="alice", password=PASSWORD)
    assert {(e.nick, e.state, e.away) for e in again.events(p.ContactEvent)} == {
        ("bob", "away", "lunch"), ("carol", "online", None)}
    listed = again.ok("contacts").result["contacts"]
    assert [(c["nick"], c["state"]) for c in listed] == [("bob", "away"), ("carol", "online")]


def test_typing_notices_reach_room_members_and_nicks_on_other_nodes():
    net = Network(2)
    alice, bob, carol = net.room_of("#tea", (0, "alice"), (1, "bob"), (0, "carol"))
    seen = lambda client: [p.decode_typing_event(d) for d in client.connection.unreliable]  # noqa: E731
    alice.protocol.unreliable_received(p.encode(p.TypingNotice(to="#tea")))
    assert seen(bob) == [p.TypingEvent(nick="alice", to="#tea")]
    assert seen(carol) == [p.TypingEvent(nick="alice", to="#tea")]  # once, not again from the channel
    assert seen(alice) == []
    net.advance(5)
    bob.protocol.unreliable_received(p.encode(p.TypingNotice(to="alice")))
    assert seen(alice) == [p.TypingEvent(nick="bob", to="alice")]


def test_an_invitation_reaches_an_invitee_on_another_node_who_may_then_join():
    net = Network(2)
    alice, = net.room_of("#tea", (0, "alice"))
    alice.ok("mode", room="#tea", invite_only=True)
    bob = net.nodes[1].login("bob")
    assert bob.error("join", room="#tea") == ErrorCode.INVITE_ONLY
    alice.ok("invite", room="#tea", nick="bob")
    assert [(e.room, e.by) for e in bob.events(p.InvitedEvent)] == [("#tea", "alice")]
    bob.ok("join", room="#tea")


def test_data_to_a_nick_on_another_node_is_ok_once_its_transport_has_it():
    net = Network(2)
    alice = net.nodes[0].login("alice")
    bob = net.nodes[1].login("bob")
    bob.connection.hold_acks()
    alice.send_raw(p.encode(p.Data(id=90, to="bob", payload=b"\x00\xffbinary")))
    [event] = bob.events(p.DataEvent)
    assert (event.nick, event.payload) == ("alice", b"\x00\xffbinary")
    answered = lambda rid: [m for m in alice.messages() if getattr(m, "id", None) == rid]  # noqa: E731
    assert not answered(90)  # not before bob's transport has it
    bob.connection.release_acks()
    [ok] = answered(90)
    assert isinstance(ok, p.Ok) and ok.result["to"] == "bob"
    alice.send_raw(p.encode(p.Data(id=91, to="bob", payload=b"lost")))
    bob.connection.hold_acks()
    alice.send_raw(p.encode(p.Data(id=92, to="bob", payload=b"lost")))
    bob.connection.peer_vanishes()
    [lost] = answered(92)
    assert lost.code == ErrorCode.NOT_DELIVERED
    assert alice.error("data", to="nobody", payload=b"x") == ErrorCode.NOT_ONLINE


def test_data_whose_recipients_node_never_answers_is_not_delivered_after_the_idle_timeout():
    net = Network(2, keepalive_interval=5)
    alice = net.nodes[0].login("alice")
    net.nodes[1].login("bob")
    net.nodes[1].server.broker.stop()  # gone, without a word
    alice.send_raw(p.encode(p.Data(id=93, to="bob", payload=b"x")))
    net.advance(net.nodes[0].config.idle_timeout)
    [reply] = [m for m in alice.messages() if getattr(m, "id", None) == 93]
    assert reply.code == ErrorCode.NOT_DELIVERED


def test_a_user_online_on_one_node_for_longer_than_its_expiry_is_not_purged_by_another():
    day = 24 * 3600
    net = Network(2, unclaimed_expiry=2 * day, reap_interval=3600, keepalive_interval=3600,
                  node_heartbeat=3600)
    bob = net.nodes[1].login("bob")
    for _ in range(3 * 48):  # three days online, heard from every half hour
        net.advance(1800, step=1800)
        bob.ok("ping")
    assert net.store.get_account("bob").result is not None


def test_a_dm_committed_while_its_recipient_moves_off_a_dead_node_reaches_it_on_the_new_one():
    """What tests/e2e/test_cluster_e2e.py once timed out on (a DM, and so
    its receipt, never came): the sender's node looked up the recipient's
    node before the DM was kept, found the node it had left (dead, its
    login not dropped yet), and sent the DM there after the recipient's
    new login on a third node had read its mailbox without it."""
    from twisted.internet.defer import Deferred

    net = Network(3)
    bob = net.nodes[0].login("bob", password=PASSWORD)
    alice = net.nodes[1].login("alice", password=PASSWORD)
    dead = net.nodes[0].server
    dead.cluster._heartbeat.stop()  # kill -9: bob's login still names node0 for a while
    dead.broker.stop()
    real_store_dm, held = net.store.inner.store_dm, []

    def slow_store_dm(*args, **kwargs):  # the commit is answered late
        d: Deferred = Deferred()
        held.append((args, kwargs, d))
        return d
    net.store.inner.store_dm = slow_store_dm
    alice.send_raw(p.encode(p.Dm(id=60, to="bob", text="while you move")))
    net.store.inner.store_dm = real_store_dm
    again = net.nodes[2].connect()
    assert again.ok("login", nick="bob", password=PASSWORD).result["mailbox"] == 0  # not kept yet
    [(args, kwargs, d)] = held
    real_store_dm(*args, **kwargs).chainDeferred(d)
    assert [dm.text for dm in again.events(p.DmEvent)] == ["while you move"]
    assert len(alice.events(p.DeliveredEvent)) == 1


def test_a_dm_kept_by_a_node_that_died_before_handing_it_over_is_handed_over_when_resent():
    """The other way a DM (and its receipt) was lost after the kill in
    tests/e2e/test_cluster_e2e.py: its node committed it and died before
    telling the recipient's node; the client resent it (same idem) to
    another node, which answered as the first time and did nothing more."""
    net = Network(3)
    bob = net.nodes[1].login("bob", password=PASSWORD)
    alice = net.nodes[0].login("alice", password=PASSWORD)
    dying = net.nodes[0].server
    dying.cluster.dm_to_holder = lambda key, dm: None  # killed right after the commit
    alice.send_raw(p.encode(p.Dm(id=61, to="bob", text="kept, then the node died", idem="dm-61")))
    assert bob.events(p.DmEvent) == []
    moved = net.nodes[2].connect()
    moved.ok("login", nick="alice", password=PASSWORD)
    first = [m for m in alice.messages() if isinstance(m, p.Ok) and m.id == 61][0].result
    assert moved.ok("dm", to="bob", text="kept, then the node died", idem="dm-61").result == first
    assert [(dm.text, dm.dm_id) for dm in bob.events(p.DmEvent)] == [("kept, then the node died",
                                                                      first["dm_id"])]
    assert [r.dm_id for r in moved.events(p.DeliveredEvent)] == [first["dm_id"]]
    assert moved.ok("dm", to="bob", text="kept, then the node died", idem="dm-61")  # again:
    assert bob.events(p.DmEvent) == []  # delivered already, not again
