"""
The one connection a ``RedisStore`` talks through: txredisapi's protocol on
the node's own reactor, reconnected here with a short back-off.

* **One connection, so writes commit in the order issued**: Redis answers a
  connection's commands in order, and ``flush`` is a PING behind them.
* **Never left waiting**: until the first connection is made a command
  waits for it at most ``CONNECT_TIMEOUT``; after that, while the
  connection is down, a command fails at once with ``StoreUnavailable``,
  and a reply that takes longer than ``REPLY_TIMEOUT`` drops the connection
  (txredisapi's reply timeout) and fails likewise.
* **An outage is logged once when it starts and once when it ends**, not per
  request nor per attempt: the reconnecting is this module's own (not
  txredisapi's pool, whose ``ClientService`` logs every retry).
* **Lazy**: nothing connects before the first command, since twistd forks
  into the background after building the service.
"""

from __future__ import annotations

from typing import Any

import txredisapi
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure

from twistchat.store.base import StoreUnavailable
from twistchat.store.redis_address import RedisAddress
from twistchat.store.redis_scripts import Script

CONNECT_TIMEOUT = 5.0
"""Seconds the first command waits for the first connection (and one
connection attempt may take)."""
REPLY_TIMEOUT = 10.0
"""Seconds a reply may take before the connection is taken as dead."""
RECONNECT_FIRST_DELAY = 0.2
"""Seconds before the first reconnection attempt (then doubling)..."""
RECONNECT_MAX_DELAY = 2.0
"""...up to this: a node is back within about this long after Redis is."""


class _ProtocolFactory(Factory):
    """Builds txredisapi protocols on the link's reactor, and takes the two
    calls they make of a factory when Redis refuses AUTH or SELECT (the
    connection is then closed, and the link tries again later)."""

    noisy = False
    isLazy = True

    def __init__(self, link: RedisLink, reply_timeout: float) -> None:
        self._link = link
        self._reply_timeout = reply_timeout

    def buildProtocol(self, addr: Any) -> Any:
        address = self._link.address
        protocol = txredisapi.BaseRedisProtocol(
            charset="utf-8", replyTimeout=self._reply_timeout, password=address.password,
            dbid=address.db, convertNumbers=False)
        protocol.factory = self
        protocol.callLater = self._link.reactor.callLater
        return protocol

    def stopTrying(self) -> None:
        pass

    def connectionError(self, why: str) -> None:
        self._link.refused = why


class RedisLink:
    log = Logger()

    def __init__(self, reactor: Any, address: RedisAddress, connect_timeout: float = CONNECT_TIMEOUT,
                 reply_timeout: float = REPLY_TIMEOUT) -> None:
        self.reactor = reactor
        self.address = address
        self._connect_timeout = connect_timeout
        self._factory = _ProtocolFactory(self, reply_timeout)
        self._endpoint = HostnameEndpoint(reactor, address.host, address.port, timeout=connect_timeout)
        self._protocol: Any = None
        self._started = False
        self._ever_connected = False
        self._outage_logged = False
        self._failures = 0
        self._attempt: Deferred[Any] | None = None
        self._retry: Any = None
        self._waiting: list[Deferred[None]] = []
        self.refused: str | None = None
        """What Redis said when it refused AUTH or SELECT, if it did."""
        self.closed = False

    @property
    def connected(self) -> bool:
        return self._protocol is not None

    def ready(self) -> Deferred[None]:
        """Fires once connected: at once if so, after the first connection is
        made (bounded) if none was yet; StoreUnavailable during an outage."""
        if self.closed:
            raise RuntimeError("store is closed")
        if self._protocol is not None:
            return succeed(None)
        if self._ever_connected:
            return fail(StoreUnavailable(f"no connection to Redis at {self.address.url}"))
        if not self._started:
            self._started = True
            self._connect()
        d: Deferred[None] = Deferred()
        self._waiting = [*(w for w in self._waiting if not w.called), d]
        return d.addTimeout(self._connect_timeout, self.reactor, onTimeoutCancel=self._never_came)

    def _never_came(self, result: Any, timeout: float) -> Any:
        why = f": {self.refused}" if self.refused else ""
        raise StoreUnavailable(f"cannot reach Redis at {self.address.url} within {timeout:g} s{why}")

    def command(self, *args: Any) -> Deferred[Any]:
        """One Redis command's reply (strings decoded, nil as None)."""
        return self._send(lambda protocol: protocol.execute_command(*args))

    def script(self, script: Script, *args: Any) -> Deferred[Any]:
        """Run ``script`` with ``args`` as ARGV (EVALSHA, EVAL if Redis lacks it)."""
        words = [str(arg) for arg in args]
        return self._send(lambda protocol: protocol.eval(script.source, [], words))

    def _send(self, call: Any) -> Deferred[Any]:
        d = self.ready()
        d.addCallback(lambda _: self._with_protocol(call))
        d.addErrback(self._unavailable)
        return d

    def _with_protocol(self, call: Any) -> Any:
        if self._protocol is None:
            raise StoreUnavailable(f"no connection to Redis at {self.address.url}")
        return call(self._protocol)

    def _unavailable(self, failure: Failure) -> Failure:
        if failure.check(txredisapi.ConnectionError):
            raise StoreUnavailable(f"Redis at {self.address.url}: {failure.getErrorMessage()}")
        return failure

    # ---- connecting and reconnecting

    def _connect(self) -> None:
        self._retry = None
        self._attempt = self._endpoint.connect(self._factory)
        self._attempt.addCallbacks(self._transport_made, self._attempt_failed)

    def _transport_made(self, protocol: Any) -> None:
        self._attempt = None
        protocol.whenConnected().addCallback(self._connection_made)
        protocol.whenDisconnected().addCallback(self._connection_lost)

    def _attempt_failed(self, failure: Failure) -> None:
        self._attempt = None
        self._try_again()

    def _try_again(self) -> None:
        if self.closed or self._retry is not None:
            return
        delay = min(RECONNECT_FIRST_DELAY * 2 ** self._failures, RECONNECT_MAX_DELAY)
        self._failures += 1
        self._retry = self.reactor.callLater(delay, self._connect)

    def _connection_made(self, protocol: Any) -> None:
        if self.closed:
            protocol.transport.loseConnection()
            return
        self._protocol = protocol
        self._ever_connected = True
        self._failures = 0
        self.refused = None
        if self._outage_logged:
            self._outage_logged = False
            self.log.info("the store is back: Redis at {url}", url=self.address.url)
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            if not d.called:
                d.callback(None)

    def _connection_lost(self, protocol: Any) -> None:
        if protocol is self._protocol:
            self._protocol = None
            if not self.closed and not self._outage_logged:
                self._outage_logged = True
                self.log.warn("lost the store: Redis at {url}; requests that need it get "
                              "UNAVAILABLE until it is back", url=self.address.url)
        self._try_again()

    def close(self) -> Deferred[None]:
        """Stop reconnecting and close the connection (idempotent)."""
        if self.closed:
            return succeed(None)
        self.closed = True
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            if not d.called:
                d.errback(StoreUnavailable("the store was closed"))
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._attempt is not None:
            self._attempt.cancel()
        protocol, self._protocol = self._protocol, None
        if protocol is None:
            return succeed(None)
        gone = protocol.whenDisconnected().addCallback(lambda _: None)
        protocol.transport.loseConnection()
        return gone
