"""
Contacts and presence (PROTOCOL.md C11), as IRCv3 MONITOR: each user keeps
a list of nicks on the server (stored, at most ``max_contacts``); the
server tells the user each contact's state at login, and every change as
it happens: online, away (and back), offline with when it was last seen.

Privacy, as MONITOR: anyone may watch any registered nick, and learns no
more than a shared room would show (online, the away message, when the
last session ended); the watched are not told who watches them.

Only users who watch hear of a change, and a nick's changes reach its
watchers at most at the churn rate (``churn_rate``/``churn_burst``, one
bucket per watched nick, whatever its sessions): a nick that logs in and
out faster than that is heard of at that rate, and its latest state is
sent when a token comes (at the next reaper tick), so watchers always end
up told the truth and an attacker's toggling is not multiplied by its
watchers.  Who watches whom is kept in memory for online watchers only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from twisted.logger import Logger

from twistchat.chat.protocol import ContactEvent, encode
from twistchat.chat.server.user import User
from twistchat.endpoint.ratelimit import KeyedBuckets, Rate
from twistchat.store.social import ContactEntry

ONLINE, AWAY, OFFLINE = "online", "away", "offline"


def contact_fields(nick: str, online: User | None, last_seen: int | None) -> dict[str, Any]:
    """One contact as the ``contact`` event, the ``watch`` reply and the
    ``contacts`` list carry it."""
    if online is not None:
        return {"nick": online.nick, "state": AWAY if online.away else ONLINE,
                "away": online.away, "last_seen": None}
    return {"nick": nick, "state": OFFLINE, "away": None, "last_seen": last_seen}


class ContactBook:
    log = Logger()

    def __init__(self, online: Mapping[str, User], now: Callable[[], float], rate: Rate,
                 publish: Callable[[str, ContactEvent], None] | None = None) -> None:
        self._online = online
        self._publish = publish
        """On a network of nodes: every change of a nick on this node goes to
        the other nodes too, for their watchers (docs/CLUSTER.md)."""
        self._now = now
        self.watchers: dict[str, set[User]] = {}
        """Watched folded nick to the online users who watch it."""
        self.watching: dict[User, set[str]] = {}
        """Online user to the folded nicks it watches."""
        self._notices = KeyedBuckets(rate)
        """Changes told per watched nick: the churn rate."""
        self.held: dict[str, ContactEvent] = {}
        """Watched nick to its latest change not told yet (over its bucket)."""

    def entry(self, contact: ContactEntry,
              elsewhere: Mapping[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        """``elsewhere``: contacts online on other nodes of a network, as fields."""
        online = self._online.get(contact.key)
        if online is None and elsewhere and contact.key in elsewhere:
            return elsewhere[contact.key]
        return contact_fields(contact.nick, online, contact.last_seen)

    # ---- who watches whom

    def logged_in(self, user: User, contacts: list[ContactEntry],
                  elsewhere: Mapping[str, dict[str, Any]] | None = None) -> None:
        """``user`` is online with this list: tell it each contact's state."""
        for contact in contacts:
            self.add(user, contact.key)
        for contact in contacts:
            user.send(ContactEvent(**self.entry(contact, elsewhere)))

    def add(self, user: User, key: str) -> None:
        self.watching.setdefault(user, set()).add(key)
        self.watchers.setdefault(key, set()).add(user)

    def remove(self, user: User, key: str) -> None:
        self.watching.get(user, set()).discard(key)
        watchers = self.watchers.get(key)
        if watchers is not None:
            watchers.discard(user)
            if not watchers:
                del self.watchers[key]

    # ---- changes

    def online(self, user: User) -> None:
        """``user`` logged in, came back or went away."""
        self._changed(user.key, ContactEvent(**contact_fields(user.nick, user, None)))

    def departed(self, user: User, was_online: bool, now_ms: int) -> None:
        """``user``'s session ended: it watches no one until its next login,
        and if it was the nick's online session its watchers hear so."""
        if was_online:
            self._changed(user.key, ContactEvent(nick=user.nick, state=OFFLINE, last_seen=now_ms))
        for key in self.watching.pop(user, set()):
            watchers = self.watchers.get(key, set())
            watchers.discard(user)
            if not watchers:
                self.watchers.pop(key, None)

    def renamed(self, old_key: str, old_nick: str, user: User, now_ms: int) -> None:
        """The old nick is gone for those who watch it; the new one is online."""
        self._changed(old_key, ContactEvent(nick=old_nick, state=OFFLINE, last_seen=now_ms))
        self.online(user)

    def _changed(self, key: str, event: ContactEvent) -> None:
        if self._publish is not None:
            self._publish(key, event)
        self.changed(key, event)

    def changed(self, key: str, event: ContactEvent) -> None:
        """A change of ``key`` (on this node, or heard from another), for
        this node's watchers, at the churn rate."""
        if key not in self.watchers:
            self.held.pop(key, None)
            return
        if key in self.held or not self._notices.take(key, self._now()):
            self.held[key] = event  # told when a token comes: the latest state only
            return
        self._tell(key, event)

    def tick(self) -> None:
        """The reaper's tick: tell what was held back, if its bucket allows."""
        now = self._now()
        for key, event in list(self.held.items()):
            if self._notices.take(key, now):
                del self.held[key]
                self._tell(key, event)

    def _tell(self, key: str, event: ContactEvent) -> None:
        data = encode(event)
        for watcher in list(self.watchers.get(key, ())):
            watcher.send_encoded(data)
