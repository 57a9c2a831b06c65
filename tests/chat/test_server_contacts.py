"""Contacts and presence (PROTOCOL.md C11), on fakes and a Clock: the list
is stored and bounded, the state of each contact comes at login and every
change as it happens, only to watchers, and a nick's toggling reaches its
watchers at the churn rate, ending with the truth."""

from __future__ import annotations

from twistchat.chat import protocol as p

from .fakes import Harness

PASSWORD = {"password": "a long password"}


def _states(client) -> list[tuple[str, str, str | None, int | None]]:
    return [(e.nick, e.state, e.away, e.last_seen) for e in client.events(p.ContactEvent)]


def test_watch_tells_the_state_now_and_every_change_after(h: Harness):
    h.login("bob", **PASSWORD).ok("quit")
    left_at = h.server.now_ms()
    alice = h.login("alice")
    reply = alice.ok("watch", nick="BOB")
    assert dict(reply.result) == {"nick": "bob", "state": "offline", "away": None,
                                  "last_seen": left_at}
    h.clock.advance(3)
    bob = h.login("bob", **PASSWORD)
    assert _states(alice) == [("bob", "online", None, None)]
    bob.ok("away", message="lunch")
    bob.ok("away")
    assert _states(alice) == [("bob", "away", "lunch", None), ("bob", "online", None, None)]
    bob.connection.peer_vanishes()
    assert _states(alice) == [("bob", "offline", None, h.server.now_ms())]


def test_the_state_of_every_contact_comes_at_login(h: Harness):
    for nick in ("bob", "carol"):
        h.login(nick, **PASSWORD)
    h.server.online["carol"].session.connection.close()  # carol leaves
    alice = h.login("alice", **PASSWORD)
    alice.ok("watch", nick="carol")
    alice.ok("watch", nick="bob")
    alice.ok("quit")
    again = h.connect()
    login = again.ok("login", nick="alice", **PASSWORD)
    assert login["contacts"] == 2
    assert [(n, s) for n, s, _, _ in _states(again)] == [("bob", "online"), ("carol", "offline")]
    listing = again.ok("contacts")
    assert [(c["nick"], c["state"]) for c in listing["contacts"]] == [("bob", "online"),
                                                                       ("carol", "offline")]
    assert listing["more"] is False and listing["contacts"][1]["last_seen"] is not None


def test_only_watchers_hear_and_unwatch_stops_it(h: Harness):
    alice, dave = h.login("alice"), h.login("dave")
    h.login("bob", **PASSWORD).ok("quit")
    alice.ok("watch", nick="bob")
    alice.ok("unwatch", nick="bob")
    assert alice.ok("unwatch", nick="bob")["nick"] == "bob"  # not there: answered the same
    h.login("bob", **PASSWORD)
    assert _states(alice) == [] and _states(dave) == []
    assert alice.ok("contacts")["contacts"] == []


def test_the_list_is_bounded_and_only_registered_nicks_are_watched():
    h = Harness(max_contacts=2)
    for nick in ("bob", "carol", "dave"):
        h.login(nick)
    alice = h.login("alice")
    assert alice.error("watch", nick="nobody") == "NO_SUCH_NICK"
    alice.ok("watch", nick="bob")
    alice.ok("watch", nick="bob")  # watched already: no second slot
    alice.ok("watch", nick="carol")
    assert alice.error("watch", nick="dave") == "TOO_MANY_CONTACTS"
    alice.ok("unwatch", nick="bob")
    alice.ok("watch", nick="dave")
    assert sorted(h.store.contacts["alice"]) == ["carol", "dave"]


def test_a_toggling_nick_reaches_its_watchers_at_the_churn_rate_and_ends_told_the_truth():
    h = Harness(churn_rate=0.5, churn_burst=2)
    watchers = [h.login(f"w{i}") for i in range(5)]
    h.login("mallory", **PASSWORD).ok("quit")
    for watcher in watchers:
        watcher.ok("watch", nick="mallory")
    for _ in range(10):  # ten logins and ten logouts in one second
        h.login("mallory", **PASSWORD).connection.peer_vanishes()
    for watcher in watchers:
        assert len(_states(watcher)) == 2  # the burst, not twenty
    h.advance(30, step=5)  # reaper ticks: the held state goes out when a token comes
    for watcher in watchers:
        assert [state for _, state, _, _ in _states(watcher)] == ["offline"]
    h.login("mallory", **PASSWORD)
    h.advance(10, step=5)
    assert [s for _, s, _, _ in _states(watchers[0])] == ["online"]


def test_the_list_survives_a_restart_of_the_server():
    from twistchat.chat.server import ChatServer

    h = Harness()
    h.login("bob", **PASSWORD)
    alice = h.login("alice", **PASSWORD)
    alice.ok("watch", nick="bob")
    h.server.shutdown()
    h.server = ChatServer(h.store, h.clock, h.config)
    h.server.start()
    again = h.connect()
    assert again.ok("login", nick="alice", **PASSWORD)["contacts"] == 1
    assert [(n, s) for n, s, _, _ in _states(again)] == [("bob", "offline")]
    h.login("bob", **PASSWORD)
    assert [(n, s) for n, s, _, _ in _states(again)] == [("bob", "online")]


def test_a_renamed_contact_goes_offline_under_its_old_nick(h: Harness):
    bob = h.login("bob", **PASSWORD)
    alice = h.login("alice")
    alice.ok("watch", nick="bob")
    bob.ok("nick", nick="robert")
    assert [(n, s) for n, s, _, _ in _states(alice)] == [("bob", "offline")]


def test_the_contact_list_pages_to_what_the_clients_transport_takes():
    h = Harness(max_contacts=40)
    nicks = [f"friend{n:02}" for n in range(30)]
    for nick in nicks:
        h.login(nick).ok("away", message="x" * 200)
    alice = h.login("alice", max_message_size=2000)
    for nick in nicks:
        alice.ok("watch", nick=nick)
    listed, after, pages = [], None, 0
    while True:
        reply = alice.ok("contacts", **({} if after is None else {"after": after}))
        pages += 1
        listed += [c["nick"] for c in reply["contacts"]]
        if not reply["more"]:
            break
        after = listed[-1]
    assert listed == nicks and pages > 1
