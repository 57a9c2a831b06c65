"""
Where a ``ChatClient`` stands with its server: one state, the events that
move it, and every transition written once (as h11's ``_state.py`` does).

    first login     IDLE -CONNECT-> CONNECTING -LOGGED_IN-> READY
    keep trying     CONNECTING -LINK_LOST-> CONNECTING (``keep_trying``: it backs off, tries again)
    lost, back      READY -LINK_LOST-> RECONNECTING -LOGGED_IN-> READY
    giving up       CONNECTING or RECONNECTING -GIVE_UP-> IDLE
    leaving         READY -STOP-> LEAVING -LINK_LOST-> CLOSED
                    (STOP in a state not logged in: CLOSED)

What each state means for a request the application makes: READY and
LEAVING send it, RECONNECTING holds it until logged in again (CONNECTING
too, with ``keep_trying``), every other state fails it with ``Disconnected``.
Only RECONNECTING retries (and CONNECTING, with ``keep_trying``, until the
first login); LEAVING and CLOSED never will (quit, stop, a refused
credential, a newer login).

Every change of state is told to ``on_change(old, new)`` (the client passes
it to ``ChatObserver.link_state_changed``).

An event a state does not list is a bug in the client, not a network
condition: ``LinkStateError``. Events that leave a state as it is are
listed too, so the table says where each one is expected.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable

from twistchat.endpoint.api import CloseCode, CloseReason

RECONNECT_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
"""Seconds before each reconnection attempt; the last repeats."""
RECONNECT_JITTER = 0.2
"""Each delay is scaled by [1 - j, 1 + j), so a restarted server is not hit
by every client in the same instant."""


class LinkState(enum.Enum):
    IDLE = "idle"
    """No session, none being opened: before ``connect()``, after a connect
    that failed, or after a loss with reconnecting turned off."""
    CONNECTING = "connecting"
    """The first session: opening, logging in, joining."""
    READY = "ready"
    """Logged in, rooms re-joined."""
    RECONNECTING = "reconnecting"
    """The session was lost once READY: backing off, or logging in again."""
    LEAVING = "leaving"
    """Logged in, but the end of this session is final (quit, stop, replaced)."""
    CLOSED = "closed"
    """Not logged in and never retrying; a session may still be ending."""


class LinkEvent(enum.Enum):
    CONNECT = "connect() called"
    LOGGED_IN = "logged in, rooms re-joined"
    LINK_LOST = "the session ended"
    GIVE_UP = "an attempt failed and no other will follow"
    STOP = "quit, stop, a refused credential or a newer login: no more reconnects"


S, E = LinkState, LinkEvent
TRANSITIONS: dict[LinkState, dict[LinkEvent, LinkState]] = {
    S.IDLE: {
        E.CONNECT: S.CONNECTING,
        E.LINK_LOST: S.IDLE,          # a session left open by a refused first login
        E.STOP: S.CLOSED,
    },
    S.CONNECTING: {
        E.LOGGED_IN: S.READY,
        E.LINK_LOST: S.CONNECTING,  # the attempt fails on its own, then GIVE_UP
        E.GIVE_UP: S.IDLE,
        E.STOP: S.CLOSED,
    },
    S.READY: {E.LINK_LOST: S.RECONNECTING, E.STOP: S.LEAVING},
    S.RECONNECTING: {
        E.LOGGED_IN: S.READY,
        E.LINK_LOST: S.RECONNECTING,  # lost while logging in again: back off again
        E.GIVE_UP: S.IDLE,            # reconnecting is off, or a password is needed
        E.STOP: S.CLOSED,
    },
    S.LEAVING: {E.LINK_LOST: S.CLOSED, E.STOP: S.LEAVING},
    S.CLOSED: {
        E.CONNECT: S.CLOSED,          # allowed, and fails: a session opened once ended is closed unused
        E.LOGGED_IN: S.LEAVING,       # a login already under way when quit() came
        E.LINK_LOST: S.CLOSED,
        E.GIVE_UP: S.CLOSED,
        E.STOP: S.CLOSED,
    },
}
del S, E

LOGGED_IN = frozenset({LinkState.READY, LinkState.LEAVING})
FINAL = frozenset({LinkState.LEAVING, LinkState.CLOSED})


class LinkStateError(Exception):
    """An event the current state does not allow: a bug in the client."""


class LinkLifecycle:
    """The state, and the back-off of the reconnection attempts it makes."""

    def __init__(self, rng: random.Random, keep_trying: bool = False,
                 on_change: Callable[[LinkState, LinkState], None] | None = None) -> None:
        self.state = LinkState.IDLE
        self.attempt = 0
        """Rounds of reconnection attempts since the last login: picks the next delay."""
        self.keep_trying = keep_trying
        """A first connect that fails is tried again (with the back-off) until
        it logs in or the client is stopped; requests meanwhile are held."""
        self._rng = rng
        self._on_change = on_change

    def fire(self, event: LinkEvent) -> LinkState:
        old = self.state
        try:
            self.state = TRANSITIONS[self.state][event]
        except KeyError:
            raise LinkStateError(f"{event.name} ({event.value}) in state {self.state.name}") from None
        if self.state is LinkState.READY:
            self.attempt = 0
        if self.state is not old and self._on_change is not None:
            self._on_change(old, self.state)
        return self.state

    @property
    def logged_in(self) -> bool:
        """Requests go out at once."""
        return self.state in LOGGED_IN

    @property
    def holds_requests(self) -> bool:
        """Requests wait for the next login instead of failing."""
        return self.state is LinkState.RECONNECTING or (
            self.keep_trying and self.state is LinkState.CONNECTING)

    @property
    def final(self) -> bool:
        """No reconnection will be tried after the current session."""
        return self.state in FINAL

    def next_delay(self, round_begins: bool = True) -> float:
        """Seconds to wait before the next attempt: the back-off (counted)
        before a round of the server list (``servers.py``), none between
        the servers of one round."""
        if not round_begins:
            return 0.0
        base = RECONNECT_DELAYS[min(self.attempt, len(RECONNECT_DELAYS) - 1)]
        self.attempt += 1
        return base * (1 + RECONNECT_JITTER * (2 * self._rng.random() - 1))


CLOSE_TEXTS = {
    CloseCode.PEER_UNRESPONSIVE: "the server stopped answering",
    CloseCode.IDLE_TIMEOUT: "nothing heard from the server",
    CloseCode.SHUTTING_DOWN: "the server is shutting down",
    CloseCode.RESET: "the server forgot this session (it restarted)",
    CloseCode.REPLACED: "logged in from another session",
}


def describe(reason: CloseReason) -> str:
    """Why the session ended, for a person."""
    text = CLOSE_TEXTS.get(reason.code, reason.message or reason.code.name.lower())
    if reason.message and reason.code in CLOSE_TEXTS and reason.message not in text:
        text = f"{text}: {reason.message}"
    return text
