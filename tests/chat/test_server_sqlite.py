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
