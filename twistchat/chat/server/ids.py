"""
Ids that are never handed out twice, across any restart (PROTOCOL.md C5).

``msg_id`` and ``dm_id`` come from one sequence.  Its high-water mark lives
in the store and is raised a block at a time (``store.reserve_ids``); an id
is handed out only from a block whose reservation has committed, so after a
crash at any instant new ids start above every id given before (the unused
rest of a block is a gap).  The next block is reserved while half of the
current one is left, so ``say`` and ``dm`` rarely wait for the store.
"""

from __future__ import annotations

from collections import deque

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from twistchat.store.base import ChatStore

ID_BLOCK = 1000
"""Ids reserved per store write."""
RESERVE_AHEAD = ID_BLOCK // 2
"""Reserve the next block when this few ids of the current one are left."""


class IdAllocator:
    log = Logger()

    def __init__(self, store: ChatStore, block: int = ID_BLOCK, ahead: int = RESERVE_AHEAD) -> None:
        self._store = store
        self._block = block
        self._ahead = ahead
        self._blocks: deque[tuple[int, int]] = deque()
        """Reserved and committed ranges ``[first, last]`` not yet used up, in order."""
        self._left = 0
        """How many ids ``_blocks`` holds (kept, not summed at every id)."""
        self._reserving = False
        self._waiting: deque[Deferred[int]] = deque()
        """Callers waiting for a block, served in the order they asked."""

    def ready(self) -> int | None:
        """The next id if it can be had at once (a committed block has one
        left and nobody waits for one), else None: then ``next_id``. A say
        takes its id here without a Deferred to await (issue 16)."""
        if not self._waiting and self._blocks:
            return self._take()
        return None

    def next_id(self) -> Deferred[int]:
        """The next id: at once while a committed block has one left, else
        once the next reservation commits (fails if the store does)."""
        if not self._waiting and self._blocks:
            return succeed(self._take())
        d: Deferred[int] = Deferred()
        self._waiting.append(d)
        self._reserve()
        return d

    def prepare(self) -> Deferred[None]:
        """Reserve the first block at server start, so the first request does
        not wait and a broken store shows at once (costs one id: a gap)."""
        return self.next_id().addCallback(lambda _: None)

    def _take(self) -> int:
        first, last = self._blocks[0]
        if first == last:
            self._blocks.popleft()
        else:
            self._blocks[0] = (first + 1, last)
        self._left -= 1
        if self._left <= self._ahead:
            self._reserve()
        return first

    def _reserve(self) -> None:
        if self._reserving:
            return
        self._reserving = True
        self._store.reserve_ids(self._block).addCallbacks(self._reserved, self._failed)

    def _reserved(self, mark: int) -> None:
        self._reserving = False
        self._blocks.append((mark - self._block + 1, mark))
        self._left += self._block
        while self._waiting and self._blocks:
            self._waiting.popleft().callback(self._take())
        if self._waiting:
            self._reserve()

    def _failed(self, failure: Failure) -> None:
        self._reserving = False
        self.log.failure("could not reserve ids", failure)
        waiting, self._waiting = self._waiting, deque()
        for d in waiting:
            d.errback(failure)
