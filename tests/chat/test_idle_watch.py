"""``IdleWatch``: the reaper's index of users by idle deadline (issue 16).
A key is taken on the first tick its filed deadline's bucket has begun, and
only then: the reaper's work is the users due, not every user."""

from __future__ import annotations

from twistchat.chat.server.idle_watch import IdleWatch

TICK = 5.0


def test_a_key_is_taken_on_the_first_tick_at_or_after_its_deadline_and_not_before():
    watch: IdleWatch[str] = IdleWatch(TICK)
    watch.file("alice", 1003.0)
    assert watch.take_due(995.0) == []
    assert watch.take_due(1000.0) == ["alice"]  # its bucket has begun: due within a tick
    assert "alice" not in watch and len(watch) == 0


def test_filed_again_it_moves_and_keys_come_oldest_bucket_first():
    watch: IdleWatch[str] = IdleWatch(TICK)
    for key, deadline in [("carol", 1012.0), ("alice", 1001.0), ("bob", 1006.0)]:
        watch.file(key, deadline)
    watch.file("alice", 1040.0)  # heard from: later
    assert watch.take_due(1014.0) == ["bob", "carol"]
    assert watch.take_due(1039.0) == []
    assert watch.take_due(1040.0) == ["alice"]


def test_a_discarded_key_is_never_taken():
    watch: IdleWatch[str] = IdleWatch(TICK)
    watch.file("alice", 1001.0)
    watch.file("bob", 1002.0)
    watch.discard("alice")
    watch.discard("nobody")
    assert watch.take_due(2000.0) == ["bob"]


def test_a_tick_takes_only_the_keys_due_among_many():
    watch: IdleWatch[int] = IdleWatch(TICK)
    for n in range(10_000):
        watch.file(n, 1000.0 + n)  # one due every second
    assert len(watch.take_due(1010.0)) == 15  # deadlines 1000-1014: this tick's bucket and those before
    assert len(watch) == 10_000 - 15
