"""The server on the real SQLite store (worker thread, real reactor): what was
acknowledged survives a restart of server and store."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from twistchat.chat import protocol as p
from twistchat.store import open_store

from .fakes import Harness


async def _reply(client, kind, **fields):
    rid = 1000 + len(client.connection.sent)
    client.send_raw(p.encode(p.REQUESTS[kind](id=rid, **fields)))
    for _ in range(500):
        replies = [m for m in client.messages() if isinstance(m, p.Ok | p.ErrorReply) and m.id == rid]
        if replies:
            return replies[0]
        await deferLater(reactor, 0.005, lambda: None)
    raise AssertionError(f"no reply to {kind}")


@pytest_twisted.ensureDeferred
async def test_acknowledged_data_survives_a_restart(tmp_path):
    path = str(tmp_path / "chat.sqlite3")
    store = open_store(reactor, path)
    h = Harness(store=store)
    await h.server.start()
    alice, bob = h.connect(), h.connect()
    assert isinstance(await _reply(alice, "login", nick="alice", password="a long password"), p.Ok)
    secret = (await _reply(bob, "login", nick="bob"))["secret"]
    await _reply(alice, "join", room="#tea")
    echo = await _reply(alice, "say", room="#tea", text="persisted")
    await _reply(bob, "quit")
    stored = await _reply(alice, "dm", to="bob", text="while you were out")
    assert stored["status"] == "stored"
    await h.server.shutdown()
    await store.close()

    store = open_store(reactor, path)
    h2 = Harness(store=store)
    await h2.server.start()
    try:
        bob = h2.connect()
        login = await _reply(bob, "login", nick="bob", secret=secret)
        assert login["mailbox"] == 1
        assert [d.text for d in bob.events(p.DmEvent)] == ["while you were out"]
        joined = await _reply(bob, "join", room="#tea")
        assert [(m["msg_id"], m["text"]) for m in joined["history"]] == [(echo["msg_id"], "persisted")]
        # ids keep increasing across the restart
        later = await _reply(bob, "say", room="#tea", text="after")
        assert later["msg_id"] > stored["dm_id"] > echo["msg_id"]
    finally:
        await h2.server.shutdown()
        await store.close()
