"""
Path validation (RFC 9000 §8.2, §9): a server session's packet from a new
address means the client moved (NAT rebinding), or someone replays its
packets from elsewhere. The packet is processed, but nothing is sent there
except a small PATH_CHALLENGE, and never more bytes than the address sent
us (anti-amplification); the session moves only once the address echoes the
challenge in a PATH_RESPONSE. Answering the peer's own challenges is here
too.
"""

from __future__ import annotations

import random
from typing import Final

import attr

from twistchat.wire.packets import PATH_DATA_SIZE, PathResponse

PATH_RESPONSE_SIZE: Final = 1 + PATH_DATA_SIZE


@attr.s(auto_attribs=True, slots=True, eq=False)  # native to mypyc (twistchat/compiled.py)
class _CandidatePath:
    address: tuple
    challenge: bytes
    bytes_received: int = 0
    bytes_sent: int = 0
    challenge_sent_at: float | None = None


class PathValidator:
    __slots__ = (
        "_candidate", "_is_client", "has_candidate", "responses", "_rng"
    )
    # One per session: no per-instance dict (issue 16, idle sessions).

    def __init__(self, is_client: bool, rng: random.Random) -> None:
        self._is_client = is_client
        self._rng = rng
        self._candidate: _CandidatePath | None = None
        self.has_candidate = False
        """A new address of the peer's is being validated (read for every datagram sent)."""
        self.responses: list[bytes] = []
        """PATH_RESPONSEs owed, oldest first (rare and few: a list, 56
        bytes empty, not a deque, 760)."""

    def accept_from_new_address(self, address: tuple, size: int) -> bool:
        """May a packet from ``address`` (not the peer's) be processed?
        Only a server follows a moving peer."""
        if self._is_client:
            return False
        candidate = self._candidate
        if candidate is None or candidate.address != address:
            candidate = self._candidate = _CandidatePath(
                address, self._rng.getrandbits(8 * PATH_DATA_SIZE).to_bytes(PATH_DATA_SIZE, "big"))
            self.has_candidate = True
        candidate.bytes_received += size
        return True

    def challenge_due(self, now: float, probe_timeout: float) -> tuple[bytes, tuple] | None:
        """(challenge data, address) if a PATH_CHALLENGE should go out now."""
        candidate = self._candidate
        if candidate is None:
            return None
        if candidate.challenge_sent_at is not None and \
                now < candidate.challenge_sent_at + probe_timeout:
            return None
        return candidate.challenge, candidate.address

    def may_send_challenge(self, size: int, now: float) -> bool:
        """Charge a challenge datagram of ``size`` bytes to the candidate, if
        the anti-amplification limit allows it."""
        candidate = self._candidate
        assert candidate is not None  # only asked once challenge_due gave one
        if candidate.bytes_sent + size > candidate.bytes_received:
            return False
        candidate.bytes_sent += size
        candidate.challenge_sent_at = now
        return True

    def on_response(self, data: bytes, address: tuple) -> bool:
        """True if this PATH_RESPONSE validates the candidate at ``address``."""
        candidate = self._candidate
        if candidate is None or candidate.address != address or data != candidate.challenge:
            return False
        self._candidate = None
        self.has_candidate = False
        return True

    def on_challenge(self, data: bytes) -> None:
        self.responses.append(data)

    def add_responses(self, frames: list, room: int) -> int:
        while self.responses and room >= PATH_RESPONSE_SIZE:
            frames.append(PathResponse(self.responses.pop(0)))
            room -= PATH_RESPONSE_SIZE
        return room
