"""Nothing is shown twice: a DM the server hands over again (its mailbox kept
it because the hand-over was never confirmed) reaches the observer once."""

from __future__ import annotations

import pytest

from twistchat.chat import protocol as p

from .scripted import logged_in, run

STORED = p.DmEvent(nick="alice", to="bob", text="while you were out", dm_id=7, ts=1_700_000_000,
                   stored=True)
LIVE = p.DmEvent(nick="alice", to="bob", text="welcome back", dm_id=8, ts=1_700_000_060)


@pytest.mark.parametrize("lost_link_between", [False, True], ids=["same session", "after a reconnect"])
def test_a_dm_handed_over_twice_is_shown_once(lost_link_between: bool) -> None:
    clock, server, bob, observer = logged_in("bob")
    server.push(STORED)
    if lost_link_between:
        server.drop()            # before the mailbox learnt the DM arrived
        run(clock, 60)           # bob backs off, reconnects, logs in again
        assert bob.connected and len(server.connections) == 2
        assert ("reconnected",) in observer.log
    server.push(STORED)          # the mailbox hands it over again
    server.push(LIVE)            # and what is new still comes through
    assert observer.of("dm") == [("dm", "alice", "while you were out", True),
                                 ("dm", "alice", "welcome back", False)]
