"""
``User``: the person at the other end of one session, as the server sees
them.  Everything the server knows about a client lives here (identity,
away message, rooms, whether the server is done with it); the
``ClientSession`` it talks through only carries bytes and replies.
"""

from __future__ import annotations


from collections.abc import Iterable

import attrs
from twisted.internet.defer import Deferred

from twistchat.chat.protocol import Message
from twistchat.chat.server.rooms import Room
from twistchat.chat.server.session import ClientSession
from twistchat.cluster.broker import session_token
from twistchat.endpoint.api import INTERACTIVE_LANE
from twistchat.endpoint.broadcast import send_to_each
from twistchat.endpoint.ratelimit import TokenBucket


@attrs.define(eq=False)
class User:
    session: ClientSession
    key: str = ""
    """Folded nick once logged in; empty before."""
    nick: str = ""
    away: str | None = None
    rooms: dict[str, Room[User]] = attrs.Factory(dict)
    """Folded room key to the rooms this user is in."""
    _in_flight: set[tuple[str, int]] | None = None
    """Tracked notices (DMs, receipts) on their way on this session; None
    when there are none (an empty set is 216 bytes, for every idle user)."""
    departed: bool = False
    """The server is done with this user (quit, replaced, reaped, lost, shut
    down): no request of theirs runs any more."""
    churn: TokenBucket | None = None
    """The slower bucket for what fans out to rooms (away, join, part, nick)."""
    login_failures: int = 0
    """Failed logins on this session (it is closed after a few)."""
    token: str = attrs.Factory(session_token)
    """This session among the network's (the broker's login holder)."""

    def notice_on_its_way(self, token: tuple[str, int]) -> bool:
        return self._in_flight is not None and token in self._in_flight

    def notice_sent(self, token: tuple[str, int]) -> None:
        if self._in_flight is None:
            self._in_flight = set()
        self._in_flight.add(token)

    def notice_settled(self, token: tuple[str, int]) -> None:
        in_flight = self._in_flight
        if in_flight is not None:
            in_flight.discard(token)
            if not in_flight:
                self._in_flight = None

    @property
    def logged_in(self) -> bool:
        return bool(self.key)

    @property
    def peer_max_message_size(self) -> int:
        return self.session.peer_max_message_size

    def send_tracked(self, data: bytes, lane: int = INTERACTIVE_LANE) -> Deferred[None]:
        return self.session.send_tracked(data, lane)

    def send(self, message: Message, lane: int = INTERACTIVE_LANE) -> None:
        self.session.send(message, lane)

    def send_encoded(self, data: bytes, lane: int = INTERACTIVE_LANE) -> int | None:
        """Returns the transport sequence number, as ``ClientSession.send_encoded``."""
        return self.session.send_encoded(data, lane)

    @property
    def acked_below(self) -> int:
        return self.session.acked_below


def send_to_users(users: Iterable[User], data: bytes, exclude_key: str | None = None) -> None:
    """One encoded room event to every one of ``users`` but ``exclude_key``'s,
    in one pass of the transport (``send_to_each``): a thousand members
    leaving together tell the others ~500,000 times."""
    send_to_each([None if user.key == exclude_key else user.session.connection for user in users],
                 data)
