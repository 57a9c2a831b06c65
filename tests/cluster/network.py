"""Nodes of one network in one process: ChatServers on one Clock, sharing
one LocalHub (what Redis is to real nodes) and one MemoryStore, with
doubles of the Redis store's own steps (``append_line``, the creator's
count of ``create_room``, ``drop_room``), and fake clients (tests/chat/fakes.py)."""

from __future__ import annotations

import json
from typing import Any

import attrs
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock

from chat.fakes import FakeClient, Harness
from twistchat.cluster.broker import LocalBroker, LocalHub
from twistchat.store.base import HistoryEntry, IdemRecord, TooManyCreated
from twistchat.store.memory import MemoryStore


class LineStore:
    """A MemoryStore with ``append_line`` as RedisStore's script does it: in
    one step the line takes the next id of the one counter, is kept with its
    idem (whose answer gains the id) and is published on ``channel``.  With
    ``hold()``, lines wait until ``commit(order)``, as lines of several
    nodes racing to Redis do; the order they commit in is the order ids and
    channel deliveries follow."""

    def __init__(self, hub: LocalHub) -> None:
        self.inner = MemoryStore()
        self.hub = hub
        self.held: list[tuple[tuple[Any, ...], Deferred[Any]]] | None = None
        self.queued: list[tuple[str, tuple[Any, ...], dict[str, Any], Deferred[Any]]] | None = None
        self.creators: dict[str, str] = {}
        """Room key to the nick key it is counted for, as RedisStore's
        ``tc:s:room-creator`` (with ``tc:s:created:<nick>``, its inverse)."""

    def _method(self, name: str) -> Any:
        """Redis's own steps are done here (``_redis_<name>``), the rest by the MemoryStore."""
        own = getattr(type(self), f"_redis_{name}", None)
        return own.__get__(self) if own is not None else getattr(self.inner, name)

    def __getattr__(self, name: str) -> Any:
        method = self._method(name)
        if self.queued is None or not callable(method):
            return method

        def queue(*args: Any, **kwargs: Any) -> Deferred[Any]:
            d: Deferred[Any] = Deferred()
            self.queued.append((name, args, kwargs, d))
            return d
        return queue

    def created_by(self, nick_key: str) -> set[str]:
        return {room for room, creator in self.creators.items() if creator == nick_key}

    def _redis_create_room(self, key: str, state: Any, created_limit: int | None = None) -> Deferred[Any]:
        """RedisStore's ``CREATE_ROOM``: counted for its creator, refused at the limit."""
        if key not in self.inner.rooms:
            creator = state["creator_key"]
            if created_limit is not None and len(self.created_by(creator)) >= created_limit:
                return fail(TooManyCreated(creator))
            self.creators[key] = creator
        return self.inner.create_room(key, state)

    def _redis_delete_room(self, key: str) -> Deferred[None]:
        self.creators.pop(key, None)
        return self.inner.delete_room(key)

    def _redis_rename_account(self, old_key: str, account: Any) -> Deferred[None]:
        for room, creator in list(self.creators.items()):
            if creator == old_key:
                self.creators[room] = account.key
        return self.inner.rename_account(old_key, account)

    def _redis_drop_room(self, key: str, roster_key: str, channel: str | None = None,
                         record: bytes = b"") -> Deferred[bool]:
        """RedisStore's ``DROP_ROOM``: gone only if no roster entry nor kept membership names it."""
        if self.hub.rosters.get(roster_key) or any(
                key in rooms for rooms in self.inner.memberships.values()):
            return succeed(False)
        self.creators.pop(key, None)
        self.inner.rooms.pop(key, None)
        self.inner.delete_history(key)
        if channel:
            self.hub.publish(channel, record)
        return succeed(True)

    def pause(self) -> None:
        """From now on every call but ``append_line`` waits for ``run_queued``:
        the calls of several nodes in flight at once, as on one Redis."""
        self.queued = []

    def run_queued(self) -> None:
        """Run the waiting calls in the order they came (each one's effect
        when it runs, as Redis does), those they lead to as well, then stop queueing."""
        queued = self.queued or []
        while queued:
            name, args, kwargs, d = queued.pop(0)
            self._method(name)(*args, **kwargs).chainDeferred(d)
        self.queued = None

    def append_line(self, room_key: str, nick: str, text: str, ts: int, keep: int,
                    idem: IdemRecord | None, channel: str) -> Deferred[Any]:
        args = (room_key, nick, text, ts, keep, idem, channel)
        if self.held is None:
            return succeed(self._append(*args))
        d: Deferred[Any] = Deferred()
        self.held.append((args, d))
        return d

    def _append(self, room_key: str, nick: str, text: str, ts: int, keep: int,
                idem: IdemRecord | None, channel: str) -> tuple[HistoryEntry | None, Any]:
        if idem is not None:
            known = self.inner._known(idem.nick_key, idem.idem)
            if known is not None:
                return None, known
        msg_id = self.inner._last_id = self.inner._last_id + 1
        entry = HistoryEntry(room=room_key, msg_id=msg_id, nick=nick, text=text, ts=ts)
        if idem is not None:
            idem = attrs.evolve(idem, answer={**idem.answer, "msg_id": msg_id})
        self.inner.append_history(entry, keep, idem)
        self.hub.publish(channel, json.dumps({"room": room_key, "msg_id": msg_id, "nick": nick,
                                              "text": text, "ts": ts}).encode())
        return entry, None

    def hold(self) -> None:
        self.held = []

    def commit(self, order: list[int] | None = None) -> None:
        """Run the held lines (in ``order``, indexes into them), then stop holding."""
        held, self.held = self.held or [], None
        for i in (range(len(held)) if order is None else order):
            args, d = held[i]
            d.callback(self._append(*args))


class Network:
    def __init__(self, nodes: int = 2, **config: Any) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.hub = LocalHub(self.clock)
        self.store = LineStore(self.hub)
        self.nodes = [Harness(store=self.store, clock=self.clock,
                              broker=LocalBroker(self.clock, f"node{i}", self.hub), **config)
                      for i in range(nodes)]

    def advance(self, seconds: float, step: float = 1.0) -> None:
        while seconds > 0:
            self.clock.advance(min(step, seconds))
            seconds -= step

    def room_of(self, room: str, *placed: tuple[int, str]) -> list[FakeClient]:
        """Each (node, nick) logged in on that node and joined to ``room`` in
        that order; their events so far drained."""
        clients = [self.nodes[node].login(nick) for node, nick in placed]
        for client in clients:
            client.ok("join", room=room)
        for client in clients:
            client.drain()
        return clients
