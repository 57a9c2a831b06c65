"""
The states of a session and the one rule for each move between them, as
h11's ``_state.py`` keeps them: the table below is the whole lifecycle, and
``Lifecycle.move`` is the only code that changes a session's state.

::

    HANDSHAKE --ACCEPTED--> ESTABLISHED --CLOSE--> CLOSING ---PERIOD_OVER--> CLOSED
        |                        |                                             ^
        |                        +--PEER_CLOSE--> DRAINING --PERIOD_OVER-------+
        +--ABANDON---------------+--ABANDON------------------------------------+

- ACCEPTED: the client's CONNECT was answered by ACCEPT (a server session
  starts ESTABLISHED: a cookie has already validated the client's address).
- CLOSE: we close (the application, a protocol violation by the peer): a
  CLOSE frame goes out and stray packets are answered with it again.
- PEER_CLOSE: a CLOSE frame arrived: we stay silent (RFC 9000 §10.2.2).
- PERIOD_OVER: the closing or draining period (three PTOs, RFC 9000 §10.2)
  has passed, so late packets of this session can no longer be mistaken
  for a new one's.
- ABANDON: there is nobody to talk to (handshake timeout, idle timeout,
  give-up, RESET, a close before the handshake finished): no closing
  period.
"""

from __future__ import annotations

import enum
from typing import Final


class State(enum.Enum):
    HANDSHAKE = "handshake"
    ESTABLISHED = "established"
    CLOSING = "closing"
    """We closed: answer stray packets with CLOSE until the period ends."""
    DRAINING = "draining"
    """The peer closed: stay silent until the period ends."""
    CLOSED = "closed"
    """Nothing left: the endpoint may forget this session."""

    # Members are singletons compared by identity, so identity's C hash is
    # as good as Enum's ``hash(self._name_)``, a Python call on every
    # ``state in SILENT`` (several per datagram: issue 16).
    __hash__ = object.__hash__


class Move(enum.Enum):
    ACCEPTED = "accepted"
    CLOSE = "close"
    PEER_CLOSE = "peer close"
    PERIOD_OVER = "period over"
    ABANDON = "abandon"


TRANSITIONS: Final[dict[State, dict[Move, State]]] = {
    State.HANDSHAKE: {Move.ACCEPTED: State.ESTABLISHED, Move.ABANDON: State.CLOSED},
    State.ESTABLISHED: {Move.CLOSE: State.CLOSING, Move.PEER_CLOSE: State.DRAINING,
                        Move.ABANDON: State.CLOSED},
    State.CLOSING: {Move.PERIOD_OVER: State.CLOSED, Move.ABANDON: State.CLOSED},
    State.DRAINING: {Move.PERIOD_OVER: State.CLOSED, Move.ABANDON: State.CLOSED},
    State.CLOSED: {},
}

ENDED: Final = frozenset({State.CLOSING, State.DRAINING, State.CLOSED})
"""Once here, the application has been told the session ended."""
SILENT: Final = frozenset({State.DRAINING, State.CLOSED})
"""Here the session sends nothing and ignores what arrives."""


class IllegalMove(Exception):
    """A move the table does not allow: a bug in the session, never the peer's doing."""


class Lifecycle:
    __slots__ = ("state",)

    def __init__(self, state: State = State.HANDSHAKE) -> None:
        self.state = state

    def move(self, move: Move) -> State:
        try:
            self.state = TRANSITIONS[self.state][move]
        except KeyError:
            raise IllegalMove(f"{move.value} in state {self.state.value}") from None
        return self.state
