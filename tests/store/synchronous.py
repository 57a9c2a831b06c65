"""Running store tests without the global reactor or real time.

* ``synchronously``: an ``async def`` test whose Deferreds have all fired on
  return (MemoryStore, SQLite on an ``InlineWorker``) runs as a plain test;
  anything left waiting fails it at once instead of hanging.  Only inside
  ``waiting_on_the_reactor()`` (the Redis store's fixture: a real server
  answers over a real connection) does it hand pytest-twisted a Deferred to
  wait for on the reactor, bounded by ``REACTOR_TIMEOUT``.
* ``on_a_real_thread``: for the few tests about the worker thread itself.
  The test gets a ``WorkerResults`` as its reactor: what the worker thread
  hands back (``callFromThread``) is run on the test's thread, each wait
  bounded by ``TIMEOUT`` seconds.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import queue
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

TIMEOUT = 10.0
"""Seconds one result from the worker thread may take before the test fails."""
REACTOR_TIMEOUT = 30.0
"""Seconds a whole test may wait on the reactor (a thousand Redis round trips
on a loaded machine take a few)."""

_waiting_allowed = False


@contextlib.contextmanager
def waiting_on_the_reactor() -> Iterator[None]:
    """Within: ``synchronously`` runs the reactor until the test is done."""
    global _waiting_allowed
    _waiting_allowed = True
    try:
        yield
    finally:
        _waiting_allowed = False


def on_the_reactor(d: Deferred[Any], timeout: float = REACTOR_TIMEOUT) -> Any:
    """The result of ``d``, running pytest-twisted's reactor until it fires
    (bounded): for fixtures, which pytest-twisted runs off the reactor's greenlet."""
    import pytest_twisted
    from twisted.internet import reactor

    return pytest_twisted.blockon(d.addTimeout(timeout, reactor))


def resolved(d: Deferred[Any]) -> Any:
    """The result of a Deferred that has already fired (raising its failure)."""
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "waited on a Deferred that has not fired"
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


def synchronously(test: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> Any:
        d = Deferred.fromCoroutine(test(*args, **kwargs))
        if _waiting_allowed and not d.called:
            # pytest-twisted calls every test on the reactor's greenlet and
            # waits for a Deferred it returns
            from twisted.internet import reactor

            return d.addTimeout(REACTOR_TIMEOUT, reactor)
        return resolved(d)
    return run


class WorkerResults:
    """The reactor of a store on a real worker thread, as far as the store and
    ``deferToThreadPool`` use one (``callFromThread``)."""

    def __init__(self) -> None:
        self._calls: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]]] = queue.Queue()

    def callFromThread(self, function: Callable[..., Any], *args: Any) -> None:
        self._calls.put((function, args))

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        d = Deferred.fromCoroutine(coroutine)
        while not d.called:
            try:
                function, args = self._calls.get(timeout=TIMEOUT)
            except queue.Empty:
                raise AssertionError(f"no result from the worker thread in {TIMEOUT} s") from None
            function(*args)
        return resolved(d)


def on_a_real_thread(test: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    """Run ``async def test(reactor, ...)`` with a fresh ``WorkerResults`` as ``reactor``."""
    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> Any:
        reactor = WorkerResults()
        return reactor.run(test(reactor, *args, **kwargs))
    parameters = list(inspect.signature(test).parameters.values())[1:]
    run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return run
