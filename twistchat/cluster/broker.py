"""
The ``Broker``: what one twistd node tells the others of its network
(docs/CLUSTER.md).  It carries opaque bytes and small records and knows
nothing of the chat protocol:

- **room channels**: ``publish_room`` to every node subscribed to a room,
  received in publish order (each node subscribes to the rooms it has
  members in);
- **node channels**: ``publish_node`` to one node (a DM or a receipt for a
  user logged in there, "your session was replaced");
- **everyone**: ``publish_all`` (presence changes for watchers anywhere);
- **logins**: ``claim_login`` atomically makes this session the nick's one
  login, network-wide, and says who held it before (newest login wins);
- **rosters**: who is in a room on which node (``roster_add``/``remove``);
- **buckets**: ``take`` spends a token of a per-user bucket shared by all
  nodes, so flood control holds per user, not per node;
- **liveness**: ``heartbeat`` keeps this node alive for a TTL; ``dead_nodes``
  lists nodes whose TTL ran out, ``drop_node`` takes away (once, atomically)
  what they held.

``LocalBroker`` keeps all of it in a ``LocalHub`` in this process, with
Deferreds that have already fired: one node on its own (the default, no hub
given: ``shared`` is False and the chat server keeps its single-node path)
or several nodes of one test on one hub, which then behave as nodes on one
Redis do.  ``RedisBroker`` (``redis_broker.py``) is the same on Redis.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import attrs
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

RoomHandler = Callable[[str, bytes], None]
"""``on_room(room_key, data)``: a room channel's message, in publish order."""
NodeHandler = Callable[[bytes], None]
"""``on_node(data)``: a message on this node's own channel (or to everyone)."""
GapHandler = Callable[[list[str]], None]
"""``on_gap(room_keys)``: messages of these rooms may have been missed (the
subscription was lost and is back); the listener refills from history."""

HEARTBEATS_TO_EXPIRY = 3
"""A node's liveness key lives this many heartbeats (CLUSTER.md "Presence")."""


class BrokerUnavailable(Exception):
    """The broker (Redis) did not answer in time, or is not connected."""


@attrs.frozen
class LoginHolder:
    """Who holds a nick's login: a node and a session there."""

    node_id: str
    session_token: str


@attrs.frozen
class RosterEntry:
    """One member of a room: the node it is on and the listener's record of it."""

    node_id: str
    data: bytes


NodeRemains = Mapping[str, Mapping[str, bytes]]
"""What a dead node held: room key to {member key: record}."""


class Broker(Protocol):
    node_id: str
    shared: bool
    """Other nodes may listen: the chat server routes through the broker."""

    def start(self, on_room: RoomHandler, on_node: NodeHandler, on_gap: GapHandler) -> Deferred[None]: ...
    def stop(self) -> Deferred[None]: ...
    def room_channel(self, room_key: str) -> str:
        """The channel a room's messages go on (a store's ``append_line`` publishes there too)."""
    def roster_key(self, room_key: str) -> str:
        """Where a room's roster is kept: a store's ``drop_room`` checks it is empty
        (on Redis, the hash's key; on a ``LocalHub``, its key in ``rosters``)."""
    def publish_room(self, room_key: str, data: bytes) -> Deferred[int]:
        """How many nodes it reached (those subscribed to the room then)."""
    def subscribe_room(self, room_key: str) -> Deferred[None]: ...
    def unsubscribe_room(self, room_key: str) -> Deferred[None]: ...
    def publish_node(self, node_id: str, data: bytes) -> Deferred[None]: ...
    def publish_all(self, data: bytes) -> Deferred[None]: ...
    def claim_login(self, nick_key: str, node_id: str, session_token: str) -> Deferred[LoginHolder | None]:
        """Make (node_id, session_token) the nick's login; the previous holder, if any."""
    def release_login(self, nick_key: str, node_id: str, session_token: str) -> Deferred[bool]:
        """End the nick's login if (node_id, session_token) still holds it."""
    def login_holder(self, nick_key: str) -> Deferred[LoginHolder | None]: ...
    def roster_add(self, room_key: str, member_key: str, data: bytes) -> Deferred[None]: ...
    def roster_remove(self, room_key: str, member_key: str) -> Deferred[None]: ...
    def roster(self, room_key: str) -> Deferred[dict[str, RosterEntry]]: ...
    def roster_sizes(self, room_keys: list[str]) -> Deferred[dict[str, int]]:
        """Each room's members on every node, in one call (a listing of every room)."""
    def take(self, bucket_key: str, rate: float, burst: float) -> Deferred[bool]:
        """Spend one token of the shared bucket; False if it is empty."""
    def heartbeat(self, interval: float) -> Deferred[bool]:
        """This node is alive for ``HEARTBEATS_TO_EXPIRY`` x ``interval``
        seconds; False if it was not listed (its first beat, or the others
        took it as dead meanwhile and dropped what it held)."""
    def dead_nodes(self) -> Deferred[set[str]]:
        """Nodes that heartbeat once and whose liveness has expired since."""
    def drop_node(self, node_id: str) -> Deferred[NodeRemains | None]:
        """Take a dead node's rosters and logins away; what it held (None
        for every caller but the first, and if it is alive after all)."""


def bounded(d: Deferred[Any], clock: IReactorTime, seconds: float) -> Deferred[Any]:
    """``d``'s result, or BrokerUnavailable after ``seconds``: nothing that
    needs Redis is left waiting (a client reconnecting queues commands
    without an end)."""
    if d.called:
        return d
    out: Deferred[Any] = Deferred()

    def expire() -> None:
        out.errback(BrokerUnavailable(f"no answer within {seconds:g} s"))

    timer = clock.callLater(seconds, expire)

    def done(result: Any) -> None:
        if not timer.active():
            return None  # answered too late: already reported as unavailable
        timer.cancel()
        if isinstance(result, Failure):
            out.errback(result)
        else:
            out.callback(result)
        return None
    d.addBoth(done)
    return out


class Bounded:
    """Every call of ``target`` that returns a Deferred, ``bounded``: what a
    node of a network asks of the store it shares (Redis) is answered, or
    fails with BrokerUnavailable, within ``seconds``."""

    def __init__(self, target: Any, clock: IReactorTime, seconds: float) -> None:
        self._target, self._clock, self._seconds = target, clock, seconds

    @property
    def target(self) -> Any:
        """What the calls go to."""
        return self._target

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            if isinstance(result, Deferred):
                return bounded(result, self._clock, self._seconds)
            return result
        return call


@attrs.define
class _Bucket:
    tokens: float
    updated: float


class LocalHub:
    """The shared state of the nodes of one process (what Redis holds for a network)."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.subscribers: dict[str, dict[str, RoomHandler]] = {}
        """Room key to {node id: its handler}."""
        self.nodes: dict[str, NodeHandler] = {}
        self.gaps: dict[str, GapHandler] = {}
        self.logins: dict[str, LoginHolder] = {}
        self.rosters: dict[str, dict[str, RosterEntry]] = {}
        self.buckets: dict[str, _Bucket] = {}
        self.alive_until: dict[str, float] = {}
        self.unreachable = False
        """Tests: every call fails as an unreachable Redis's would."""

    def publish(self, room_key: str, data: bytes) -> int:
        """To every node subscribed to the room; how many."""
        handlers = list(self.subscribers.get(room_key, {}).values())
        for handler in handlers:
            handler(room_key, data)
        return len(handlers)


def _through_the_hub(method: Callable[..., Any]) -> Callable[..., Deferred[Any]]:
    """A ``LocalBroker`` call: answered at once, or (the hub made
    unreachable, as Redis away) failed with BrokerUnavailable, changing nothing."""
    @functools.wraps(method)
    def call(self: LocalBroker, *args: Any) -> Deferred[Any]:
        if self.hub.unreachable:
            return fail(BrokerUnavailable("the hub is unreachable"))
        return succeed(method(self, *args))
    return call


class LocalBroker:
    """A ``Broker`` in this process: every call has answered when it returns."""

    log = Logger()

    def __init__(self, clock: IReactorTime, node_id: str = "local", hub: LocalHub | None = None) -> None:
        self.shared = hub is not None
        self.hub = hub if hub is not None else LocalHub(clock)
        self.node_id = node_id
        self._on_room: RoomHandler | None = None
        self.rooms: set[str] = set()
        """Rooms this node is subscribed to."""

    def start(self, on_room: RoomHandler, on_node: NodeHandler, on_gap: GapHandler) -> Deferred[None]:
        self._on_room = on_room
        self.hub.nodes[self.node_id] = on_node
        self.hub.gaps[self.node_id] = on_gap
        return succeed(None)

    def stop(self) -> Deferred[None]:
        """This node leaves: it hears nothing more (its liveness runs out by itself)."""
        self.hub.nodes.pop(self.node_id, None)
        self.hub.gaps.pop(self.node_id, None)
        for room_key in self.rooms:
            self.hub.subscribers.get(room_key, {}).pop(self.node_id, None)
        self.rooms.clear()
        return succeed(None)

    def room_channel(self, room_key: str) -> str:
        return room_key

    def roster_key(self, room_key: str) -> str:
        return room_key

    @_through_the_hub
    def publish_room(self, room_key: str, data: bytes) -> int:
        return self.hub.publish(room_key, data)

    @_through_the_hub
    def subscribe_room(self, room_key: str) -> None:
        assert self._on_room is not None, "start the broker first"
        self.rooms.add(room_key)
        self.hub.subscribers.setdefault(room_key, {})[self.node_id] = self._on_room
        return None

    @_through_the_hub
    def unsubscribe_room(self, room_key: str) -> None:
        self.rooms.discard(room_key)
        nodes = self.hub.subscribers.get(room_key, {})
        nodes.pop(self.node_id, None)
        if not nodes:
            self.hub.subscribers.pop(room_key, None)
        return None

    @_through_the_hub
    def publish_node(self, node_id: str, data: bytes) -> None:
        handler = self.hub.nodes.get(node_id)
        if handler is not None:
            handler(data)
        return None

    @_through_the_hub
    def publish_all(self, data: bytes) -> None:
        for handler in list(self.hub.nodes.values()):
            handler(data)
        return None

    @_through_the_hub
    def claim_login(self, nick_key: str, node_id: str, session_token: str) -> LoginHolder | None:
        previous = self.hub.logins.get(nick_key)
        self.hub.logins[nick_key] = LoginHolder(node_id, session_token)
        return previous

    @_through_the_hub
    def release_login(self, nick_key: str, node_id: str, session_token: str) -> bool:
        mine = self.hub.logins.get(nick_key) == LoginHolder(node_id, session_token)
        if mine:
            del self.hub.logins[nick_key]
        return mine

    @_through_the_hub
    def login_holder(self, nick_key: str) -> LoginHolder | None:
        return self.hub.logins.get(nick_key)

    @_through_the_hub
    def roster_add(self, room_key: str, member_key: str, data: bytes) -> None:
        self.hub.rosters.setdefault(room_key, {})[member_key] = RosterEntry(self.node_id, data)
        return None

    @_through_the_hub
    def roster_remove(self, room_key: str, member_key: str) -> None:
        roster = self.hub.rosters.get(room_key, {})
        roster.pop(member_key, None)
        if not roster:
            self.hub.rosters.pop(room_key, None)
        return None

    @_through_the_hub
    def roster(self, room_key: str) -> dict[str, RosterEntry]:
        return dict(self.hub.rosters.get(room_key, {}))

    @_through_the_hub
    def roster_sizes(self, room_keys: list[str]) -> dict[str, int]:
        return {key: len(self.hub.rosters.get(key, {})) for key in room_keys}

    @_through_the_hub
    def take(self, bucket_key: str, rate: float, burst: float) -> bool:
        now = self.hub.clock.seconds()
        bucket = self.hub.buckets.setdefault(bucket_key, _Bucket(burst, now))
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    @_through_the_hub
    def heartbeat(self, interval: float) -> bool:
        listed = self.node_id in self.hub.alive_until
        self.hub.alive_until[self.node_id] = self.hub.clock.seconds() + HEARTBEATS_TO_EXPIRY * interval
        return listed

    @_through_the_hub
    def dead_nodes(self) -> set[str]:
        now = self.hub.clock.seconds()
        return {node for node, until in self.hub.alive_until.items() if until <= now}

    @_through_the_hub
    def drop_node(self, node_id: str) -> NodeRemains | None:
        until = self.hub.alive_until.get(node_id)
        if until is None or until > self.hub.clock.seconds():
            return None  # dropped already, or alive after all
        del self.hub.alive_until[node_id]
        remains: dict[str, dict[str, bytes]] = {}
        for room_key, roster in list(self.hub.rosters.items()):
            for member_key, entry in list(roster.items()):
                if entry.node_id == node_id:
                    remains.setdefault(room_key, {})[member_key] = entry.data
                    del roster[member_key]
            if not roster:
                del self.hub.rosters[room_key]
        for nick_key, holder in list(self.hub.logins.items()):
            if holder.node_id == node_id:
                del self.hub.logins[nick_key]
        return remains

    def report_gap(self) -> None:
        """Tests: as RedisBroker after its subscription came back."""
        handler = self.hub.gaps.get(self.node_id)
        if handler is not None:
            handler(sorted(self.rooms))


_tokens = itertools.count(1)


def session_token() -> str:
    """A token unique to one session within this node's life."""
    return str(next(_tokens))
