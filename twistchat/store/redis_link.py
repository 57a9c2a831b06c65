"""
The one connection a ``RedisStore`` talks through: txredisapi's protocol on
the node's own reactor, reconnected by txredisapi with a short back-off.

* **One connection, so writes commit in the order issued**: Redis answers a
  connection's commands in order, and ``flush`` is a PING behind them.
* **Never left waiting**: until the first connection is made a command
  waits for it at most ``CONNECT_TIMEOUT``; after that, while the
  connection is down, a command fails at once with ``StoreUnavailable``,
  and a reply that takes longer than ``REPLY_TIMEOUT`` drops the connection
  (txredisapi's reply timeout) and fails likewise.
* **An outage is logged once when it starts and once when it ends**, not per
  request.
* **Lazy**: nothing connects before the first command, since twistd forks
  into the background after building the service.
"""

from __future__ import annotations

from typing import Any

import txredisapi
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import HostnameEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure

from twistchat.store.base import StoreUnavailable
from twistchat.store.redis_address import RedisAddress
from twistchat.store.redis_scripts import Script

CONNECT_TIMEOUT = 5.0
"""Seconds the first command waits for the first connection."""
REPLY_TIMEOUT = 10.0
"""Seconds a reply may take before the connection is taken as dead."""
RECONNECT_FIRST_DELAY = 0.2
"""Seconds before the first reconnection attempt (then growing by e)..."""
RECONNECT_MAX_DELAY = 2.0
"""...up to this: a node is back within about this long after Redis is."""


class _Factory(txredisapi.RedisFactory):
    """txredisapi's pool of one, telling the link when its connection comes and goes."""

    initialDelay = RECONNECT_FIRST_DELAY
    maxDelay = RECONNECT_MAX_DELAY

    def __init__(self, link: RedisLink, address: RedisAddress, reply_timeout: float) -> None:
        super().__init__(address.url, address.db, 1, isLazy=True, password=address.password,
                         replyTimeout=reply_timeout, convertNumbers=False)
        self._link = link

    def addConnection(self, conn: Any) -> None:
        super().addConnection(conn)
        if conn in self.pool:
            self._link._connection_made(conn)

    def delConnection(self, conn: Any) -> None:
        super().delConnection(conn)
        self._link._connection_lost(conn)


class RedisLink:
    log = Logger()

    def __init__(self, reactor: Any, address: RedisAddress, connect_timeout: float = CONNECT_TIMEOUT,
                 reply_timeout: float = REPLY_TIMEOUT) -> None:
        self._reactor = reactor
        self.address = address
        self._connect_timeout = connect_timeout
        self._reply_timeout = reply_timeout
        self._factory: _Factory | None = None
        self._protocol: Any = None
        self._ever_connected = False
        self._outage_logged = False
        self._waiting: list[Deferred[None]] = []
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
        if self._factory is None:
            self._factory = _Factory(self, self.address, self._reply_timeout)
            self._factory.startConnecting(HostnameEndpoint(
                self._reactor, self.address.host, self.address.port, timeout=self._connect_timeout))
        d: Deferred[None] = Deferred()
        self._waiting = [*(w for w in self._waiting if not w.called), d]
        return d.addTimeout(self._connect_timeout, self._reactor, onTimeoutCancel=self._never_came)

    def _never_came(self, result: Any, timeout: float) -> Any:
        raise StoreUnavailable(f"cannot reach Redis at {self.address.url} within {timeout:g} s")

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

    def _connection_made(self, protocol: Any) -> None:
        self._protocol = protocol
        self._ever_connected = True
        if self._outage_logged:
            self._outage_logged = False
            self.log.info("the store is back: Redis at {url}", url=self.address.url)
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            if not d.called:
                d.callback(None)

    def _connection_lost(self, protocol: Any) -> None:
        if protocol is not self._protocol:
            return
        self._protocol = None
        if not self.closed and not self._outage_logged:
            self._outage_logged = True
            self.log.warn("lost the store: Redis at {url}; requests that need it get UNAVAILABLE "
                          "until it is back", url=self.address.url)

    def close(self) -> Deferred[None]:
        """Stop reconnecting and close the connection (idempotent)."""
        if self.closed:
            return succeed(None)
        self.closed = True
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            if not d.called:
                d.errback(StoreUnavailable("the store was closed"))
        if self._factory is None:
            return succeed(None)
        return self._factory.disconnect().addCallback(lambda _: None)
