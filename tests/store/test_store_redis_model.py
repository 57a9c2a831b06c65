"""The Redis store does what the SQLite store does, on long random runs of
every write the server makes (renames and expiry among them): each answer,
each refusal and, every so often, everything either store can be asked is
the same.  Then Redis's own bookkeeping (the counts a quota reads, the
indexes a rename or an expiry follows) agrees with what it counts."""

from __future__ import annotations

import random
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from twistchat.store import open_store
from twistchat.store import redis_keys as keys
from twistchat.store.base import Account, HistoryEntry, IdemRecord, StoredDm
from twistchat.store.social import MarkUpdate
from twistchat.store.sqlite import SQLiteStore
from twistchat.store.workers import InlineWorker

from support.waiting import within

pytestmark = pytest.mark.redis
NICKS = ["ann", "bob", "cy", "dee"]
ROOMS = ["#a", "#b"]
IDEMS = [f"k{n}" for n in range(6)]
STEPS = 300
SNAPSHOT_EVERY = 50


class Run:
    """One random run: the next operation, the same for both stores."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.next_id = 0
        self.dm_ids: list[int] = []
        self.said: dict[str, list[int]] = {room: [] for room in ROOMS}

    def fresh_id(self) -> int:
        self.next_id += self.rng.randint(1, 3)
        return self.next_id

    def idem(self, answer: dict[str, Any]) -> IdemRecord | None:
        if self.rng.random() < 0.5:
            return None
        return IdemRecord(self.rng.choice(NICKS), self.rng.choice(IDEMS), answer, self.rng.randint(0, 100))

    def operation(self) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        r = self.rng
        nick, other, room = r.choice(NICKS), r.choice(NICKS), r.choice(ROOMS)
        kind = r.choice(["account", "account", "touch", "rename", "expire", "reserve", "idem",
                         "purge", "say", "say", "say", "dm", "dm", "dm", "ack", "ack",
                         "unreceipt", "watch", "unwatch", "join", "part", "mark", "room", "unroom"])
        if kind == "account":
            return "put_account", (Account(nick, nick.upper(), "c", r.random() < 0.5, 1, r.randint(0, 100)),), {}
        if kind == "touch":
            return "touch_account", (nick, r.randint(0, 100)), {}
        if kind == "rename":
            return "rename_account", (nick, Account(other, other.title(), "c2", r.random() < 0.5, 2,
                                                    r.randint(0, 100))), {}
        if kind == "expire":
            password = r.choice([None, r.randint(0, 100)])
            return "delete_expired_accounts", (r.randint(0, 100), set(r.sample(NICKS, 2)), password), {}
        if kind == "reserve":
            self.next_id += 10
            return "reserve_ids", (10,), {}
        if kind == "idem":
            return "put_idem", (IdemRecord(nick, r.choice(IDEMS), {"n": r.randint(0, 9)}, r.randint(0, 100)),), {}
        if kind == "purge":
            return "delete_idem_before", (r.randint(0, 100),), {}
        if kind == "say":
            msg_id = self.fresh_id()
            self.said[room].append(msg_id)
            return "append_history", (HistoryEntry(room, msg_id, nick, f"t{msg_id}", msg_id), r.randint(1, 4),
                                      self.idem({"room": room, "msg_id": msg_id})), {}
        if kind == "dm":
            dm_id = self.fresh_id()
            self.dm_ids.append(dm_id)
            quota = {k: r.choice([None, r.randint(0, 4)]) for k in ("capacity", "per_sender", "total")}
            return "store_dm", (StoredDm(dm_id, other, other.title(), nick.title(), "x", dm_id, nick),), \
                {**quota, "idem": self.idem({"dm_id": dm_id})}
        if kind == "ack":
            return "dm_acknowledged", (r.choice(self.dm_ids or [0]),), {}
        if kind == "unreceipt":
            return "delete_receipt", (r.choice(self.dm_ids or [0]),), {}
        if kind == "watch":
            return "watch", (nick, other, r.randint(1, 3)), {}
        if kind == "unwatch":
            return "unwatch", (nick, other), {}
        if kind == "join":
            return "keep_membership", (nick, room, room.upper()), {}
        if kind == "part":
            return "drop_membership", (nick, room), {}
        if kind == "mark":
            # as the server does: at a line of that room (kept or trimmed since), or past them all
            msg_id = r.choice([*self.said[room], self.next_id + 1])
            return "advance_marks", ([MarkUpdate(nick, room, msg_id)],), {}
        if kind == "room":
            return "put_room", (room, {"topic": r.choice(["", "tea", "café"]), "bans": {nick: 1}}), {}
        return "delete_room", (room,), {}


async def outcome(store: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        result = await getattr(store, name)(*args, **kwargs)
    except Exception as refused:  # a typed refusal is an answer too
        return type(refused).__name__
    return sorted(result) if name == "delete_expired_accounts" else result


async def everything(store: Any) -> dict[str, Any]:
    """All a store can be asked about the run's nicks and rooms."""
    seen: dict[str, Any] = {"last_id": await store.last_id(), "dms": await store.stored_dm_count(),
                            "rooms": await store.load_rooms(), "members": await store.membership_rooms()}
    for nick in NICKS:
        seen[nick] = (await store.get_account(nick), await store.get_mailbox(nick),
                      await store.mailbox_count(nick), await store.get_receipts(nick),
                      [await store.get_idem(nick, idem) for idem in IDEMS],
                      await store.get_contacts(nick), await store.get_memberships(nick))
    for room in ROOMS:
        seen[room] = (await store.get_history(room, None, 10), await store.get_missed(room, 0, 0, 2))
    return seen


async def bookkeeping(store: Any) -> None:
    """Redis's counts and indexes agree with what they count."""
    command = store.link.command
    total = 0
    for nick in NICKS:
        box = await command("ZRANGE", keys.MAILBOX + nick, 0, -1)
        total += len(box)
        senders = [await command("HGET", keys.DM + dm_id, "sender_key") for dm_id in box]
        counted = await command("HGETALL", keys.MAILBOX_SENDERS + nick)
        assert dict(zip(counted[::2], map(int, counted[1::2]))) == \
            {s: senders.count(s) for s in set(senders)}
        for dm_id, sender in zip(box, senders):
            assert await command("SISMEMBER", keys.SENT + sender, dm_id) == 1
        for dm_id in await command("ZRANGE", keys.RECEIPTS + nick, 0, -1):
            assert await command("HGET", keys.RECEIPT + dm_id, "sender_key") == nick
        has_password = await command("HGET", keys.ACCOUNT + nick, "has_password")
        indexed = [await command("ZSCORE", index, nick) for index in (keys.SEEN_UNCLAIMED, keys.SEEN_PASSWORD)]
        assert [seen is not None for seen in indexed] == \
            {None: [False, False], "0": [True, False], "1": [False, True]}[has_password]
        kept = await command("HKEYS", keys.IDEM + nick)
        assert sorted(await command("ZRANGE", keys.IDEM_ORDER + nick, 0, -1)) == sorted(kept)
    assert total == int(await command("GET", keys.DM_COUNT) or 0)
    assert await command("ZCARD", keys.IDEM_AGE) == sum(
        [await command("HLEN", keys.IDEM + nick) for nick in NICKS])


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest_twisted.ensureDeferred
async def test_redis_answers_as_sqlite_does_on_a_long_random_run(redis_url, seed):
    sqlite = SQLiteStore(Clock(), ":memory:", worker=InlineWorker())
    redis = open_store(reactor, "", redis=redis_url)
    run = Run(seed)
    try:
        for step in range(1, STEPS + 1):
            name, args, kwargs = run.operation()
            expected = await outcome(sqlite, name, args, kwargs)
            assert await within(Deferred.fromCoroutine(outcome(redis, name, args, kwargs))) == expected, (step, name, args, kwargs)
            if step % SNAPSHOT_EVERY == 0:
                found, wanted = await within(Deferred.fromCoroutine(everything(redis))), await everything(sqlite)
                for key in wanted:
                    assert found[key] == wanted[key], (step, key)
        await within(Deferred.fromCoroutine(bookkeeping(redis)))
    finally:
        await sqlite.close()
        await within(redis.close())
