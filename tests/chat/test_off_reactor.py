"""scrypt never runs on the reactor thread of a real reactor."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from twisted.internet.interfaces import IReactorThreads
from twisted.internet.task import Clock
from zope.interface import implementer

from twistchat.chat.server import ChatServer
from twistchat.chat.server import identities
from twistchat.chat.server.core import BACKGROUND_NICE, in_background
from twistchat.store.memory import MemoryStore


class RecordingPool:
    def __init__(self) -> None:
        self.jobs: list = []

    def callInThreadWithCallback(self, on_result, function, *args, **kwargs):
        self.jobs.append((on_result, function, args))

    def run_all(self) -> None:
        for on_result, function, args in self.jobs:
            on_result(True, function(*args))
        self.jobs.clear()


@implementer(IReactorThreads)
class ThreadedClock(Clock):
    def __init__(self) -> None:
        super().__init__()
        self.pool = RecordingPool()

    def getThreadPool(self):
        return self.pool

    def callFromThread(self, function, *args, **kwargs):
        function(*args, **kwargs)


def test_credential_hashing_goes_to_the_thread_pool():
    clock = ThreadedClock()
    server = ChatServer(MemoryStore(), clock)
    hashed = server.off_reactor(identities.hash_credential, "secret", 2, 1, 1)
    assert not hashed.called                       # nothing ran on the reactor thread
    (_, function, args), = clock.pool.jobs
    assert function is in_background and args[0] is identities.hash_credential
    clock.pool.run_all()
    assert identities.verify_credential("secret", hashed.result)


def test_without_threads_it_runs_inline():
    server = ChatServer(MemoryStore(), Clock())
    assert server.off_reactor(lambda: 42).result == 42


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="nice is per thread on Linux only")
def test_pool_threads_run_credential_work_below_the_reactor_threads_priority():
    def nice_here() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    before = nice_here()
    seen: list[int] = []
    worker = threading.Thread(target=lambda: seen.extend([in_background(nice_here), in_background(nice_here)]))
    worker.start()
    worker.join()
    assert seen == [min(19, before + BACKGROUND_NICE)] * 2  # lowered once, not again per job
    assert nice_here() == before  # the reactor's thread keeps its own
