"""Waiting on the real reactor, bounded: for the tests against the real Redis."""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet import reactor, task

WAIT = 5.0
"""Seconds any one wait may take before the test fails."""


async def until(condition: Callable[[], object], what: str) -> None:
    deadline = reactor.seconds() + WAIT
    while not condition():
        if reactor.seconds() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await task.deferLater(reactor, 0.01, lambda: None)
