"""
What one peer may spend of the chat server (issue 12, the chat side), each
limit checked before the work it guards is done (PROTOCOL.md C4, C8):

* ``Backoff``: failures per key (a nick, a source address); after the first
  few, the key is held off for a time that doubles with each failure.
* ``LoginGuard``: logins: back-off per nick and per source address, a
  bounded number of logins of one nick checked at once (the rest refused at
  once, never queued behind each other), and registrations throttled per
  source /24 (IPv6 /64).
* ``Deadlines``: sessions that must log in in time, on one timer for all.
* ``CredentialWork``: scrypt (16 MiB, tens of ms each) a few at a time, a
  bounded queue, and a share per source, so logins at once cannot grow the
  server's memory nor one network take every worker.

A leaf of the server package: it knows keys, addresses and time, not
sessions or the store.
"""

from __future__ import annotations

import ipaddress
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import attrs
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IReactorTime

from twistchat.endpoint.ratelimit import Rate, SourceLimiter, source_prefix
from twistchat.endpoint.timers import TimerQueue

K = TypeVar("K", bound=Hashable)

MAX_KEYS = 65_536
"""Entries a table of failures or known sources keeps (least recent forgotten first)."""
KNOWN_SOURCES_PER_NICK = 8
"""Source addresses remembered per nick as ones it logged in from."""


def source_of(peer: Any) -> str:
    """Who a login comes from, for back-off: the IPv4 address, or the IPv6
    /64 (one subscriber holds a whole /64)."""
    host = peer[0] if isinstance(peer, tuple) and peer else str(peer or "")
    try:
        if ipaddress.ip_address(host.split("%", 1)[0]).version == 6:
            return source_prefix(host)
    except ValueError:
        pass
    return host


@attrs.define
class _Failures:
    count: int = 0
    until: float = 0.0
    """Held off until then (the time of the last failure while still free)."""


class Backoff:
    """Failures per key: the ``free``-th failure holds the key off for
    ``first`` seconds, and each one after for twice as long, up to
    ``longest``.  A key quiet for ``longest`` after its hold ended starts
    afresh."""

    def __init__(self, free: int, first: float, longest: float, max_keys: int = MAX_KEYS) -> None:
        self.free, self.first, self.longest = free, first, longest
        self._keys: OrderedDict[str, _Failures] = OrderedDict()
        self._max_keys = max_keys

    def held_for(self, key: str, now: float) -> float:
        """Seconds ``key`` is still held off (0: it may try)."""
        record = self._current(key, now)
        return 0.0 if record is None else max(0.0, record.until - now)

    def failed(self, key: str, now: float) -> None:
        record = self._current(key, now)
        if record is None:
            record = self._keys[key] = _Failures()
            if len(self._keys) > self._max_keys:
                self._keys.popitem(last=False)
        record.count += 1
        over = record.count - self.free
        hold = 0.0 if over < 0 else min(self.longest, self.first * 2.0 ** min(over, 64))
        record.until = now + hold

    def forget(self, key: str) -> None:
        self._keys.pop(key, None)

    def _current(self, key: str, now: float) -> _Failures | None:
        record = self._keys.get(key)
        if record is not None and now >= record.until + self.longest:
            del self._keys[key]
            return None
        if record is not None:
            self._keys.move_to_end(key)
        return record


class LoginRefused(Exception):
    """A login refused before any work: the nick or source is backing off, or
    the nick has as many logins being checked as it may."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class LoginGuard:
    """The login limits of PROTOCOL.md C4.

    A source a nick logged in from before (while this server runs) is
    *known* to it: it is not held off by the nick's back-off (only by its
    own), and its logins have a queue of their own, so neither strangers'
    wrong guesses nor their number keep the owner out."""

    def __init__(self, free: int, first: float, longest: float, queue: int,
                 registrations: Rate) -> None:
        self.nicks = Backoff(free, first, longest)
        self.sources = Backoff(free, first, longest)
        self.queue = queue
        self._checking: Counter[tuple[str, bool]] = Counter()
        """(nick, known source) to logins being checked."""
        self._known: OrderedDict[str, OrderedDict[str, None]] = OrderedDict()
        self._registrations = SourceLimiter(registrations, registrations)

    def known(self, key: str, source: str) -> bool:
        return source in self._known.get(key, ())

    @contextmanager
    def attempt(self, key: str, source: str, now: float) -> Iterator[None]:
        """Hold one of ``key``'s login places while the login is checked;
        raises LoginRefused at once if backing off or the queue is full."""
        known = self.known(key, source)
        wait = self.sources.held_for(source, now)
        if not known:
            wait = max(wait, self.nicks.held_for(key, now))
        if wait > 0:
            raise LoginRefused(f"too many failed logins; try again in {wait:.0f} s")
        place = (key, known)
        if self._checking[place] >= self.queue:
            raise LoginRefused("too many logins of this nick at once; try again")
        self._checking[place] += 1
        try:
            yield
        finally:
            self._checking[place] -= 1
            if not self._checking[place]:
                del self._checking[place]

    def failed(self, key: str, source: str, now: float) -> None:
        """A wrong credential for ``key`` from ``source``."""
        self.nicks.failed(key, now)
        self.sources.failed(source, now)

    def succeeded(self, key: str, source: str) -> None:
        """A correct login: the nick's failures are forgiven and ``source``
        becomes known to it (the source's own failures stay)."""
        self.nicks.forget(key)
        sources = self._known.setdefault(key, OrderedDict())
        self._known.move_to_end(key)
        sources[source] = None
        sources.move_to_end(source)
        while len(sources) > KNOWN_SOURCES_PER_NICK:
            sources.popitem(last=False)
        while len(self._known) > MAX_KEYS:
            self._known.popitem(last=False)

    def renamed(self, old_key: str, new_key: str) -> None:
        sources = self._known.pop(old_key, None)
        if sources is not None:
            self._known[new_key] = sources

    def may_register(self, host: str, now: float) -> bool:
        """Spend one of the registrations ``host``'s address and prefix may make."""
        return self._registrations.allow(host, now)


class Deadlines(Generic[K]):
    """Keys that expire ``timeout`` after they were added, on the endpoint's
    queue of deadlines (``TimerQueue``: one ``IDelayedCall`` for thousands
    of sessions); a key discarded early is simply forgotten."""

    def __init__(self, clock: IReactorTime, timeout: float, expire: Callable[[K], None]) -> None:
        self._clock = clock
        self.timeout = timeout
        self._expire = expire
        self._timers = TimerQueue(clock, self._fire)

    def add(self, key: K) -> None:
        self._timers.set(key, self._clock.seconds() + self.timeout)

    def discard(self, key: K) -> None:
        self._timers.discard(key)

    def __len__(self) -> int:
        return len(self._timers)

    def stop(self) -> None:
        self._timers.stop()

    def _fire(self, due: list[tuple[K, float]]) -> None:
        for key, _ in due:
            self._expire(key)


class WorkRefused(Exception):
    """Too much credential work waits already (in all, or from this source)."""


class CredentialWork:
    """At most ``workers`` credential jobs run at once, one source (an
    address) at most ``per_source`` of them; the rest wait in order of
    arrival, at most ``queue`` in all and ``per_source_waiting`` per source.
    A source at its share waits while later jobs of other sources go first,
    so one network cannot take every worker, and a NAT'ed office logging in
    at once is served in turn, not refused."""

    def __init__(self, workers: int, queue: int, per_source: int, per_source_waiting: int) -> None:
        self._workers, self._queue = workers, queue
        self._per_source, self._per_source_waiting = per_source, per_source_waiting
        self.running = 0
        self._running_by_source: Counter[str] = Counter()
        self._waiting: deque[tuple[str, Callable[[], Deferred[Any]], Deferred[Any]]] = deque()
        self._waiting_by_source: Counter[str] = Counter()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def run(self, source: str, start: Callable[[], Deferred[Any]]) -> Deferred[Any]:
        """``start()`` when a worker is free for ``source``; raises
        ``WorkRefused`` at once if the queue or the source's share of it is full."""
        if self._waiting_by_source[source] >= self._per_source_waiting:
            raise WorkRefused("too many logins from your network at once")
        if len(self._waiting) >= self._queue:
            raise WorkRefused("the server is busy checking credentials")
        done: Deferred[Any] = Deferred()
        self._waiting.append((source, start, done))
        self._waiting_by_source[source] += 1
        self._dispatch()
        return done

    def _dispatch(self) -> None:
        while self.running < self._workers:
            job = next((job for job in self._waiting
                        if self._running_by_source[job[0]] < self._per_source), None)
            if job is None:
                return
            self._waiting.remove(job)
            source, start, done = job
            _decrement(self._waiting_by_source, source)
            self.running += 1
            self._running_by_source[source] += 1
            maybeDeferred(start).addBoth(self._finished, source).chainDeferred(done)

    def _finished(self, result: Any, source: str) -> Any:
        self.running -= 1
        _decrement(self._running_by_source, source)
        self._dispatch()
        return result


def _decrement(counter: Counter[str], key: str) -> None:
    counter[key] -= 1
    if not counter[key]:
        del counter[key]
