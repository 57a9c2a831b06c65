"""
``RedisBroker``: the ``Broker`` on one Redis server shared by every node of
a network (docs/CLUSTER.md).  Two connections: one for commands (every
atomic step is one Lua script, so racing nodes cannot interleave inside
it), one subscribed to this node's channels.  Every key and channel starts
with ``tc:b:`` and is named once, below.

Redis pub/sub delivers a channel's messages in the order Redis executed the
``PUBLISH``es, to every subscriber; it keeps nothing for a subscriber that
is away.  So when the subscriber connection comes back (txredisapi
reconnects by itself), the broker subscribes again to every channel and
reports the gap (``on_gap`` with the rooms it was in): the listener refills
room lines from history by ``msg_id``.

The scripts compute a few key names from their arguments (the roster and
login keys of another node): fine on one Redis server, not on Redis Cluster.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import txredisapi
from twisted.internet.defer import Deferred, fail, gatherResults, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from twistchat.cluster.broker import (
    HEARTBEATS_TO_EXPIRY, BrokerUnavailable, GapHandler, LoginHolder, NodeHandler, NodeRemains,
    RoomHandler, RosterEntry, bounded,
)

PREFIX = "tc:b:"
SEPARATOR = "\t"
"""Between a node id and what follows it in one value (node ids have no tab)."""
DEFAULT_PORT = 6379
DEFAULT_TIMEOUT = 2.0
"""Seconds a call may wait for Redis before it counts as unavailable."""


def room_channel(room_key: str) -> str:
    return f"{PREFIX}room:{room_key}"


def node_channel(node_id: str) -> str:
    return f"{PREFIX}node:{node_id}"


ALL_CHANNEL = f"{PREFIX}all"
NODES = f"{PREFIX}nodes"
"""Set: every node that heartbeat and was not dropped yet."""


def online_key(nick_key: str) -> str:
    return f"{PREFIX}online:{nick_key}"


def roster_key(room_key: str) -> str:
    """Hash: member key to ``node<TAB>record``."""
    return f"{PREFIX}roster:{room_key}"


def alive_key(node_id: str) -> str:
    return f"{PREFIX}alive:{node_id}"


def node_rooms_key(node_id: str) -> str:
    """Set: rooms whose roster may hold members of this node."""
    return f"{PREFIX}rooms-of:{node_id}"


def node_nicks_key(node_id: str) -> str:
    """Set: nicks whose login this node may hold."""
    return f"{PREFIX}nicks-of:{node_id}"


def bucket_key(name: str) -> str:
    return f"{PREFIX}bucket:{name}"


CLAIM_LOGIN = """
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1] .. ARGV[4] .. ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
return old
"""
"""KEYS: online key, this node's nicks; ARGV: node, token, nick, separator."""

RELEASE_LOGIN = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[2])
  return 1
end
return 0
"""

ROSTER_ADD = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
"""

ROSTER_SIZES = """
local sizes = {}
for i, key in ipairs(KEYS) do sizes[i] = redis.call('HLEN', key) end
return sizes
"""

TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(b[1]) or burst
local updated = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local ok = 0
if tokens >= 1 then
  tokens = tokens - 1
  ok = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'updated', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return ok
"""
"""A token bucket on Redis's own clock (the nodes' clocks may differ); it
expires once full again, so idle users cost nothing."""

HEARTBEAT = """
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
return redis.call('SADD', KEYS[2], ARGV[2])
"""
"""Returns 0 if the node was listed already."""

DEAD_NODES = """
local dead = {}
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. node) == 0 then table.insert(dead, node) end
end
return dead
"""

DROP_NODE = """
local node, sep = ARGV[1], ARGV[2]
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('SREM', KEYS[1], node) == 0 then
  return false
end
local mine = node .. sep
local out = {}
for _, room in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local roster = ARGV[3] .. room
  local fields = redis.call('HGETALL', roster)
  for i = 1, #fields, 2 do
    local value = fields[i + 1]
    if string.sub(value, 1, #mine) == mine then
      redis.call('HDEL', roster, fields[i])
      table.insert(out, room)
      table.insert(out, fields[i])
      table.insert(out, string.sub(value, #mine + 1))
    end
  end
end
for _, nick in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  local login = ARGV[4] .. nick
  local value = redis.call('GET', login)
  if value and string.sub(value, 1, #mine) == mine then redis.call('DEL', login) end
end
redis.call('DEL', KEYS[3], KEYS[4])
return out
"""
"""Once, by whichever node calls first, and only if the node is still
dead: its roster entries (returned as room, member, record triples) and its
logins go; nil for every other call."""


def _split(value: str) -> tuple[str, str]:
    node, _, rest = value.partition(SEPARATOR)
    return node, rest


class _Subscriber(txredisapi.SubscriberProtocol):
    log = Logger()

    def messageReceived(self, pattern: Any, channel: str, message: str) -> None:
        try:
            self.factory.broker.received(channel, message)
        except Exception:  # never into txredisapi's parser: the next message must still come
            self.log.failure("a message on {channel} could not be handled", channel=channel)


class _SubscriberFactory(txredisapi.SubscriberFactory):
    protocol = _Subscriber

    def __init__(self, broker: RedisBroker) -> None:
        super().__init__()
        self.convertNumbers = False
        self.broker = broker

    def addConnection(self, conn: Any) -> None:
        super().addConnection(conn)
        if conn.connected:
            self.broker.subscriber_connected(conn)
            conn.whenDisconnected().addCallback(lambda _: self.broker.subscriber_lost())


class RedisBroker:
    log = Logger()

    def __init__(self, clock: IReactorTime, host: str, port: int, node_id: str, dbid: int = 0,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.shared = True
        self.node_id = node_id
        self.clock = clock
        self.timeout = timeout
        self._host, self._port, self._dbid = host, port, dbid
        self._commands: Any = None
        self._factory: _SubscriberFactory | None = None
        self._subscriber: Any = None
        self._channels: set[str] = set()
        """Every channel this node wants (subscribed again after a reconnect)."""
        self._connected_before = False
        self._stopped = False
        self._on_room: RoomHandler | None = None
        self._on_node: NodeHandler | None = None
        self._on_gap: GapHandler | None = None

    # ---- connections

    def start(self, on_room: RoomHandler, on_node: NodeHandler, on_gap: GapHandler) -> Deferred[None]:
        self._on_room, self._on_node, self._on_gap = on_room, on_node, on_gap
        self._channels.update((node_channel(self.node_id), ALL_CHANNEL))
        self._commands = txredisapi.lazyConnection(
            self._host, self._port, dbid=self._dbid, reconnect=True, convertNumbers=False,
            replyTimeout=self.timeout)
        self._factory = _SubscriberFactory(self)
        self._factory.startConnecting(txredisapi._makeEndpoint(self._host, self._port,
                                                               connectTimeout=self.timeout))
        return succeed(None)

    def stop(self) -> Deferred[None]:
        ds = []
        if self._factory is not None:
            ds.append(self._factory.disconnect())
        if self._commands is not None:
            ds.append(self._commands.disconnect())
        self._factory = self._commands = self._subscriber = None
        self._stopped = True
        return gatherResults(ds, consumeErrors=True).addCallback(lambda _: None)

    def subscriber_connected(self, conn: Any) -> None:
        self._subscriber = conn
        if self._channels:
            conn.subscribe(sorted(self._channels)).addErrback(
                lambda f: self.log.failure("subscribing again failed", f))
        if self._connected_before:
            self.log.info("Redis subscription back: refilling {count} rooms",
                          count=len(self._rooms()))
            if self._on_gap is not None:
                self._on_gap(self._rooms())
        self._connected_before = True

    def subscriber_lost(self) -> None:
        self._subscriber = None
        if not self._stopped:
            self.log.warn("lost the Redis subscription; reconnecting")

    def _rooms(self) -> list[str]:
        prefix = room_channel("")
        return sorted(c[len(prefix):] for c in self._channels if c.startswith(prefix))

    def received(self, channel: str | bytes, message: str | bytes) -> None:
        """A message on one of this node's channels (txredisapi decoded what is UTF-8)."""
        if isinstance(channel, bytes):
            channel = channel.decode(errors="replace")
        data = message.encode() if isinstance(message, str) else message
        room_prefix = room_channel("")
        if channel.startswith(room_prefix):
            if self._on_room is not None:
                self._on_room(channel[len(room_prefix):], data)
        elif self._on_node is not None:
            self._on_node(data)

    def _call(self, method: str, *args: Any) -> Deferred[Any]:
        if self._commands is None:
            return _failed()
        try:
            d = getattr(self._commands, method)(*args)
        except txredisapi.ConnectionError as e:
            return _failed(str(e))
        return bounded(d, self.clock, self.timeout).addErrback(_unavailable)

    def _script(self, script: str, keys: list[str], args: list[Any]) -> Deferred[Any]:
        return self._call("eval", script, keys, [str(a) for a in args])

    # ---- channels

    def room_channel(self, room_key: str) -> str:
        return room_channel(room_key)

    def roster_key(self, room_key: str) -> str:
        return roster_key(room_key)

    def publish_room(self, room_key: str, data: bytes) -> Deferred[int]:
        """PUBLISH's answer: the subscribers it reached, one connection per node."""
        return self._call("publish", room_channel(room_key), data).addCallback(int)

    def publish_node(self, node_id: str, data: bytes) -> Deferred[None]:
        return self._call("publish", node_channel(node_id), data).addCallback(lambda _: None)

    def publish_all(self, data: bytes) -> Deferred[None]:
        return self._call("publish", ALL_CHANNEL, data).addCallback(lambda _: None)

    def subscribe_room(self, room_key: str) -> Deferred[None]:
        channel = room_channel(room_key)
        self._channels.add(channel)
        return self._subscribe_now("subscribe", channel)

    def unsubscribe_room(self, room_key: str) -> Deferred[None]:
        channel = room_channel(room_key)
        self._channels.discard(channel)
        return self._subscribe_now("unsubscribe", channel)

    def _subscribe_now(self, method: str, channel: str) -> Deferred[None]:
        """On the live subscriber connection; without one, when it is back."""
        if self._subscriber is None:
            return succeed(None)
        try:
            d = getattr(self._subscriber, method)(channel)
        except txredisapi.ConnectionError:
            return succeed(None)
        return bounded(d, self.clock, self.timeout).addCallbacks(lambda _: None, _unavailable)

    # ---- logins

    def claim_login(self, nick_key: str, node_id: str, session_token: str) -> Deferred[LoginHolder | None]:
        d = self._script(CLAIM_LOGIN, [online_key(nick_key), node_nicks_key(node_id)],
                         [node_id, session_token, nick_key, SEPARATOR])
        return d.addCallback(lambda old: None if old is None else LoginHolder(*_split(old)))

    def release_login(self, nick_key: str, node_id: str, session_token: str) -> Deferred[bool]:
        d = self._script(RELEASE_LOGIN, [online_key(nick_key), node_nicks_key(node_id)],
                         [node_id + SEPARATOR + session_token, nick_key])
        return d.addCallback(lambda released: released == 1)

    def login_holder(self, nick_key: str) -> Deferred[LoginHolder | None]:
        return self._call("get", online_key(nick_key)).addCallback(
            lambda value: None if value is None else LoginHolder(*_split(value)))

    # ---- rosters

    def roster_add(self, room_key: str, member_key: str, data: bytes) -> Deferred[None]:
        return self._script(ROSTER_ADD, [roster_key(room_key), node_rooms_key(self.node_id)],
                            [member_key, self.node_id + SEPARATOR + data.decode(), room_key]
                            ).addCallback(lambda _: None)

    def roster_remove(self, room_key: str, member_key: str) -> Deferred[None]:
        return self._call("hdel", roster_key(room_key), member_key).addCallback(lambda _: None)

    def roster(self, room_key: str) -> Deferred[dict[str, RosterEntry]]:
        def entries(fields: dict[str, str]) -> dict[str, RosterEntry]:
            out = {}
            for member, value in fields.items():
                node, data = _split(value)
                out[member] = RosterEntry(node, data.encode())
            return out
        return self._call("hgetall", roster_key(room_key)).addCallback(entries)

    def roster_sizes(self, room_keys: list[str]) -> Deferred[dict[str, int]]:
        """One script's ``HLEN`` of every roster: one round trip, not one a room."""
        if not room_keys:
            return succeed({})
        return self._script(ROSTER_SIZES, [roster_key(key) for key in room_keys], []).addCallback(
            lambda sizes: {key: int(size) for key, size in zip(room_keys, sizes)})

    # ---- buckets and liveness

    def take(self, bucket_name: str, rate: float, burst: float) -> Deferred[bool]:
        return self._script(TAKE, [bucket_key(bucket_name)], [rate, burst]).addCallback(
            lambda ok: int(ok) == 1)

    def heartbeat(self, interval: float) -> Deferred[bool]:
        ttl_ms = int(HEARTBEATS_TO_EXPIRY * interval * 1000)
        return self._script(HEARTBEAT, [alive_key(self.node_id), NODES],
                            [ttl_ms, self.node_id]).addCallback(lambda added: int(added) == 0)

    def dead_nodes(self) -> Deferred[set[str]]:
        return self._script(DEAD_NODES, [NODES], [alive_key("")]).addCallback(set)

    def drop_node(self, node_id: str) -> Deferred[NodeRemains | None]:
        def remains(flat: list[str] | None) -> NodeRemains | None:
            if flat is None:
                return None  # not dropped by this call
            out: dict[str, dict[str, bytes]] = {}
            for i in range(0, len(flat), 3):
                out.setdefault(flat[i], {})[flat[i + 1]] = flat[i + 2].encode()
            return out
        return self._script(
            DROP_NODE, [NODES, alive_key(node_id), node_rooms_key(node_id), node_nicks_key(node_id)],
            [node_id, SEPARATOR, roster_key(""), online_key("")]).addCallback(remains)


def _failed(why: str = "not connected to Redis") -> Deferred[Any]:
    return fail(BrokerUnavailable(why))


def _unavailable(failure: Any) -> Any:
    """Redis's own connection errors, as the broker's one error."""
    if failure.check(txredisapi.ConnectionError):
        raise BrokerUnavailable(str(failure.value))
    return failure


def redis_broker(url: str, clock: IReactorTime, node_id: str,
                 timeout: float = DEFAULT_TIMEOUT) -> RedisBroker:
    """The broker for ``--redis redis://HOST[:PORT][/DB]``."""
    parsed = urlparse(url)
    if parsed.scheme != "redis" or not parsed.hostname:
        raise ValueError(f"not a redis://HOST[:PORT][/DB] URL: {url!r}")
    path = parsed.path.strip("/")
    return RedisBroker(clock, parsed.hostname, parsed.port or DEFAULT_PORT, node_id,
                       dbid=int(path) if path else 0, timeout=timeout)
