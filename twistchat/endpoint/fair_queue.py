"""
Work waiting for its turn, served one source at a time in rotation (round
robin): a source with a backlog of hundreds delays another source's next
item by at most one item of its own. The server endpoint queues handshakes
in one when more arrive in a reactor turn than it does per turn, so an
attacker re-opening sessions by the hundred does not put a real user's
handshake behind all of them; and likewise the datagrams of sessions not
yet logged in, so a hundred strangers' requests do not put a real user's
line behind all of them.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class FairQueue(Generic[K, V]):
    def __init__(self, limit: int, per_source_limit: int | None = None) -> None:
        self.limit = limit
        self.per_source_limit = limit if per_source_limit is None else per_source_limit
        self._by_source: OrderedDict[str, OrderedDict[K, V]] = OrderedDict()
        self._source_of: dict[K, str] = {}

    def __len__(self) -> int:
        return len(self._source_of)

    def __contains__(self, key: K) -> bool:
        return key in self._source_of

    def push(self, source: str, key: K, item: V) -> bool:
        """Queue ``item`` behind ``source``'s others; False if the queue, or
        ``source``'s share of it, is full."""
        if len(self._source_of) >= self.limit:
            return False
        items = self._by_source.get(source)
        if items is None:
            items = self._by_source[source] = OrderedDict()
        elif len(items) >= self.per_source_limit:
            return False
        items[key] = item
        self._source_of[key] = source
        return True

    def pop(self) -> tuple[K, V]:
        """The oldest item of the source whose turn it is; that source goes last."""
        source, items = next(iter(self._by_source.items()))
        key, item = items.popitem(last=False)
        del self._source_of[key]
        if items:
            self._by_source.move_to_end(source)
        else:
            del self._by_source[source]
        return key, item

    def clear(self) -> None:
        self._by_source.clear()
        self._source_of.clear()
