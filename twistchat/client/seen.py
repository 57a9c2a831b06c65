"""
Which server ids (``msg_id``, ``dm_id``) the client has already shown: the
server never hands an id out twice (PROTOCOL.md C5), so a repeat is the same
message again (a mailbox replay, a line both live and in a join's history),
and is dropped. Only the most recent ids are kept, so the set stays bounded
however long the client runs.
"""

from __future__ import annotations

from collections import OrderedDict

RECENT_IDS = 4096
"""Ids remembered per kind: four times the default mailbox size (1,000 DMs
that may all come again) and more than 20 rooms' histories of 100 lines."""


class RecentIds:
    """The last ``capacity`` ids added; the oldest is forgotten first."""

    def __init__(self, capacity: int = RECENT_IDS) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._ids: OrderedDict[int, None] = OrderedDict()

    def __contains__(self, item: int) -> bool:
        return item in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, item: int) -> bool:
        """Remember ``item``; True if it was new."""
        if item in self._ids:
            return False
        self._ids[item] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return True
