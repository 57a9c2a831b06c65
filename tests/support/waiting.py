"""Waiting on the real reactor (pytest-twisted's) in the tests that use
real sockets and processes, always bounded in time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer, reactor, task

TIMEOUT = 10
"""Seconds any one wait may take before the test fails."""
POLL = 0.05


def within(d: defer.Deferred, timeout: float = TIMEOUT) -> defer.Deferred:
    """``d``, failed with TimeoutError if it has not fired in ``timeout`` seconds."""
    return d.addTimeout(timeout, reactor)


@defer.inlineCallbacks
def until(condition: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    """Let the reactor run until ``condition()`` (bounded by ``timeout``)."""
    for _ in range(int(timeout / POLL)):
        if condition():
            return
        yield task.deferLater(reactor, POLL, lambda: None)
    raise AssertionError("timed out waiting")
