"""The server on the real SQLite store: what was acknowledged survives a
restart of server and store.  The store runs its queries inline (an
``InlineWorker``), so the whole exchange is synchronous, in virtual time."""

from __future__ import annotations

from store.synchronous import resolved
from twisted.internet.task import Clock

from twistchat.chat import protocol as p
from twistchat.store import open_store
from twistchat.store.workers import InlineWorker

from .fakes import Harness


def _open(path: str):
    return open_store(Clock(), path, worker=InlineWorker())  # the clock is never asked


def test_acknowledged_data_survives_a_restart(tmp_path):
    path = str(tmp_path / "chat.sqlite3")
    store = _open(path)
    h = Harness(store=store)
    resolved(h.server.start())
    alice, bob = h.connect(), h.connect()
    assert isinstance(alice.request("login", nick="alice", password="a long password"), p.Ok)
    secret = bob.request("login", nick="bob")["secret"]
    alice.request("join", room="#tea")
    echo = alice.request("say", room="#tea", text="persisted")
    bob.request("quit")
    stored = alice.request("dm", to="bob", text="while you were out")
    assert stored["status"] == "stored"
    resolved(h.server.shutdown())
    resolved(store.close())

    store = _open(path)
    h2 = Harness(store=store)
    resolved(h2.server.start())
    try:
        bob = h2.connect()
        login = bob.request("login", nick="bob", secret=secret)
        assert login["mailbox"] == 1
        assert [d.text for d in bob.events(p.DmEvent)] == ["while you were out"]
        joined = bob.request("join", room="#tea")
        assert [(m["msg_id"], m["text"]) for m in joined["history"]] == [(echo["msg_id"], "persisted")]
        # ids keep increasing across the restart
        later = bob.request("say", room="#tea", text="after")
        assert later["msg_id"] > stored["dm_id"] > echo["msg_id"]
    finally:
        resolved(h2.server.shutdown())
        resolved(store.close())


def _restart(path: str):
    """A fresh server and store on the same file, as after a kill -9 (every
    acknowledged write is committed when acknowledged; nothing else is kept)."""
    store = _open(path)
    h = Harness(store=store)
    resolved(h.server.start())
    return h, store


PASSWORD = {"password": "a long password"}


def test_a_resend_after_a_restart_is_answered_with_the_first_answer(tmp_path):
    path = str(tmp_path / "chat.sqlite3")
    h, store = _restart(path)
    alice = h.connect()
    alice.ok("login", nick="alice", **PASSWORD)
    h.connect().ok("login", nick="bob", **PASSWORD)
    alice.ok("join", room="#tea")
    said = dict(alice.ok("say", room="#tea", text="once", idem="say-1").result)
    h.server.online["bob"].session.connection.close("bye")
    dm = dict(alice.ok("dm", to="bob", text="once", idem="dm-1").result)
    resolved(store.close())  # no shutdown: the server just stops

    h, store = _restart(path)
    try:
        alice = h.connect()
        alice.ok("login", nick="alice", **PASSWORD)
        assert dict(alice.ok("say", room="#tea", text="once", idem="say-1").result) == said
        assert dict(alice.ok("dm", to="bob", text="once", idem="dm-1").result) == dm
        bob = h.connect()
        assert bob.ok("login", nick="bob", **PASSWORD)["mailbox"] == 1
        joined = bob.ok("join", room="#tea")
        assert [m["msg_id"] for m in joined["history"]] == [said["msg_id"]]
    finally:
        resolved(store.close())


def test_ids_are_never_reused_across_restarts(tmp_path):
    """Even when nothing that carried them is left: DMs acknowledged and
    deleted, history trimmed away, a DM to an online user never stored long."""
    path = str(tmp_path / "chat.sqlite3")
    seen: list[int] = []
    for _ in range(3):
        store = _open(path)
        h = Harness(store=store, history_size=1)
        resolved(h.server.start())
        alice, bob = h.connect(), h.connect()
        alice.ok("login", nick="alice", **PASSWORD)
        bob.ok("login", nick="bob", **PASSWORD)
        alice.request("join", room="#tea")  # after a restart she is back in it at login
        for n in range(3):
            seen.append(alice.ok("say", room="#tea", text=f"line {n}")["msg_id"])
            seen.append(alice.ok("dm", to="bob", text=f"dm {n}")["dm_id"])
        assert resolved(store.get_mailbox("bob")) == []  # all acknowledged, deleted
        resolved(store.close())  # as kill -9 would: no shutdown
    assert len(seen) == len(set(seen)) and seen == sorted(seen)
