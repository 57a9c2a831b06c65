"""
Typing notices (PROTOCOL.md C13) relayed from one user to a room's other
members or to a DM's recipient, over the unreliable channel both ways.

Best effort by design: a notice that is malformed, over the sender's rate
(``--typing-rate``, ``--typing-burst`` per session), from a user not logged
in, to a room the sender is not in or to a nick not online, is dropped and
counted, never answered. Nothing is stored or queued here; each member's
transport bounds what waits for room in its windows.
"""

from __future__ import annotations

import weakref
from typing import Any

import attrs
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from twistchat.chat.protocol import ChatProtocolError, TypingEvent, decode_typing_notice, encode
from twistchat.chat.protocol import fold_nick, fold_room, is_valid_room
from twistchat.chat.server.config import ServerConfig
from twistchat.chat.server.session import ClientSession
from twistchat.chat.server.user import User
from twistchat.endpoint.ratelimit import TokenBucket


@attrs.define
class TypingCounters:
    relayed: int = 0
    """Notices passed on (once per notice, whatever the room's size)."""
    rate_limited: int = 0
    malformed: int = 0
    not_logged_in: int = 0
    no_target: int = 0
    """To a room the sender is not in, or a nick with no session."""


class TypingRelay:
    log = Logger()

    def __init__(self, clock: IReactorTime, config: ServerConfig, online: dict[str, User],
                 network: Any = None) -> None:
        """``network``: on a network of nodes, the ``ClusterLink`` that takes
        notices to members and nicks on the other nodes."""
        self.network = network
        self.clock = clock
        self.config = config
        self.online = online
        self.counters = TypingCounters()
        self._buckets: weakref.WeakKeyDictionary[ClientSession, TokenBucket] = \
            weakref.WeakKeyDictionary()
        self.dropped_by_session: weakref.WeakKeyDictionary[ClientSession, int] = \
            weakref.WeakKeyDictionary()
        """Notices dropped as over the rate, per session (the abuser's view)."""

    def received(self, user: User, data: bytes) -> None:
        """One unreliable message from ``user``'s session."""
        c = self.counters
        if not user.logged_in or user.departed:
            c.not_logged_in += 1
            return
        try:
            notice = decode_typing_notice(data)
        except ChatProtocolError:
            c.malformed += 1
            return
        if not self._bucket(user.session).take(self.clock.seconds()):
            c.rate_limited += 1
            session = user.session
            self.dropped_by_session[session] = self.dropped_by_session.get(session, 0) + 1
            return
        if is_valid_room(notice.to):
            self._to_room(user, notice.to)
        else:
            self._to_nick(user, notice.to)

    def _bucket(self, session: ClientSession) -> TokenBucket:
        bucket = self._buckets.get(session)
        if bucket is None:
            bucket = self._buckets[session] = TokenBucket(
                rate=self.config.typing_rate, burst=self.config.typing_burst,
                updated=self.clock.seconds())
        return bucket

    def _to_room(self, user: User, name: str) -> None:
        room = user.rooms.get(fold_room(name))
        if room is None:
            self.counters.no_target += 1
            return
        data = encode(TypingEvent(nick=user.nick, to=room.name))
        for member in list(room.members.values()):
            if member is not user:
                member.session.send_unreliable(data)
        if self.network is not None:
            self.network.typing_to_room(room.key, data, user.key)
        self.counters.relayed += 1

    def _to_nick(self, user: User, nick: str) -> None:
        recipient = self.online.get(fold_nick(nick))
        if recipient is None and self.network is not None and fold_nick(nick) != user.key:
            # maybe online on another node: its node relays it, or nobody does
            self.network.typing_to_nick(fold_nick(nick), encode(TypingEvent(nick=user.nick, to=nick)))
            self.counters.relayed += 1
            return
        if recipient is None or recipient is user:
            self.counters.no_target += 1
            return
        recipient.session.send_unreliable(encode(TypingEvent(nick=user.nick, to=recipient.nick)))
        self.counters.relayed += 1
