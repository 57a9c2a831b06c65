"""
Where the SQLite store's queries run.  The store hands each query to a
worker and gets a Deferred back; queries run one at a time, in the order
issued, so writes commit in order.

* ``ThreadWorker``: one dedicated thread, so the reactor never waits on disk
  (what a server uses).
* ``InlineWorker``: runs each query at once in the caller, so the Deferred
  has fired on return: deterministic tests with no thread and no reactor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

T = TypeVar("T")


class Worker(Protocol):
    @property
    def started(self) -> bool: ...

    def start(self) -> None: ...

    def submit(self, work: Callable[..., T], *args: Any) -> Deferred[T]:
        """Run ``work(*args)`` after everything submitted before it."""

    def stop(self) -> None:
        """Finish what was submitted, then release the worker (idempotent)."""


class ThreadWorker:
    """A ThreadPool of exactly one thread; results come back on the reactor thread."""

    def __init__(self, reactor: Any, name: str) -> None:
        self._reactor = reactor
        self._pool = ThreadPool(minthreads=1, maxthreads=1, name=name)

    @property
    def started(self) -> bool:
        return bool(self._pool.started)

    def start(self) -> None:
        self._pool.start()

    def submit(self, work: Callable[..., T], *args: Any) -> Deferred[T]:
        return deferToThreadPool(self._reactor, self._pool, work, *args)

    def stop(self) -> None:
        if self._pool.started:
            self._pool.stop()


class InlineWorker:
    """Runs each query in the caller.  Never on a server: it would block the
    reactor on every fsync."""

    def __init__(self) -> None:
        self.started = False

    def start(self) -> None:
        self.started = True

    def submit(self, work: Callable[..., T], *args: Any) -> Deferred[T]:
        return maybeDeferred(work, *args)

    def stop(self) -> None:
        self.started = False
