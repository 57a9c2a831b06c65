"""
What becomes of a request whose session ended before its answer came.

The server may or may not have done it. A request the server never received
(the transport says it was never acknowledged) is simply sent again after
the next login. For one that may have arrived, the kind of request decides
(PROTOCOL.md C2, "Resending safely"):

* ``say``, ``dm`` and ``data`` carry an idempotency key (``idem``): sent
  again with the same key, a request the server already did is answered
  with its first answer, not done twice. So they are always resent, and
  their Deferred fires with the real answer.
* Requests scoped to the session (``join``, ``who``, ``history``, reads)
  or that set a state to a value (``away``, ``mode``, ``ban``, ...) are safe
  to do again in the new session, which starts with no rooms.
* ``part`` is sent again: the server keeps memberships across sessions
  (PROTOCOL.md C12), and a part of a room the nick has left already is
  taken as done (``NOT_IN_ROOM`` is what it wanted). ``watch`` and
  ``unwatch`` set a state, ``contacts`` reads: done again too.
* The rest change something lasting that a repeat would change again or
  refuse confusingly (``create`` a second group, ``nick``, ``set_password``,
  ``kick`` a member who came back, ``op`` once no longer operator): they
  fail with ``Disconnected``, "it may or may not have been done".
* ``login`` and the re-joins belong to the attempt that was lost; ``quit``
  ends the session anyway. Neither is resent.
"""

from __future__ import annotations

import enum
import secrets
from typing import Any

import attrs

from twisted.internet import defer

from twistchat.chat import protocol as p
from twistchat.client.observer import Disconnected
from twistchat.endpoint.api import INTERACTIVE_LANE, CloseReason


class AnswerLost(enum.Enum):
    RESEND = "send again after the next login"
    DONE = "the new session already is as the request wanted"
    FAIL = "fail with Disconnected"


KEYED = (p.Say, p.Dm, p.Data)
"""Requests that carry ``idem``, so that a resend is answered, not repeated."""

SAFE_TO_REDO = (p.Join, p.Who, p.History, p.Topic, p.Rooms, p.Away, p.Ping,
                p.Mode, p.Ban, p.Unban, p.Invite, p.Part, p.Watch, p.Unwatch, p.Contacts)

DONE_BY_RECONNECTING: tuple[type, ...] = ()
"""None since memberships outlive sessions (issue 14): kept for the rule."""


def after_lost_answer(request_type: type) -> AnswerLost:
    if issubclass(request_type, KEYED + SAFE_TO_REDO):
        return AnswerLost.RESEND
    if issubclass(request_type, DONE_BY_RECONNECTING):
        return AnswerLost.DONE
    return AnswerLost.FAIL


IDEM_BYTES = 16


def new_idem() -> str:
    """An idempotency key unique among the nick's requests without any
    bookkeeping: 128 random bits (32 hex digits), so two clients of one nick,
    or two runs of one, never pick the same key."""
    return secrets.token_hex(IDEM_BYTES)


@attrs.define(eq=False)
class OutgoingRequest:
    """One request of the application's (or of reconnecting), from the call
    to its answer, through as many sessions as it takes."""

    cls: type
    fields: dict[str, Any]
    """Including its ``idem``: a resend carries the same key."""
    deferred: defer.Deferred = attrs.Factory(defer.Deferred)
    internal: bool = False
    """Part of (re)connecting (login, re-join, away again): never held over."""
    lane: int = INTERACTIVE_LANE
    """The transport lane it goes on (a transfer's pieces: the bulk lane)."""
    data: bytes = b""
    """As last sent: how the transport names it among the unacknowledged."""

    @property
    def may_wait(self) -> bool:
        """Whether it may wait for the next session instead of failing."""
        return not self.internal and self.cls is not p.Quit


class Outbox:
    """Requests sent and not answered yet, by request id, and requests held
    for the next login, in the order they were made."""

    def __init__(self) -> None:
        self.sent: dict[int, OutgoingRequest] = {}
        self.held: list[OutgoingRequest] = []

    def answered(self, request_id: int | None) -> OutgoingRequest | None:
        return self.sent.pop(request_id, None) if request_id is not None else None

    def release(self) -> list[OutgoingRequest]:
        """The held requests, to send now."""
        held, self.held = self.held, []
        return held

    def fail_held(self, reason: str) -> None:
        held, self.held = self.held, []
        for request in held:
            request.deferred.errback(Disconnected(reason))

    def session_lost(self, reason: CloseReason, will_retry: bool) -> None:
        """Hold, settle or fail every request the lost session left unanswered."""
        never_arrived = set(reason.unacked)
        sent, self.sent = self.sent, {}
        for request in sent.values():
            outcome = AnswerLost.FAIL
            if will_retry and request.may_wait:
                outcome = after_lost_answer(request.cls)
                if outcome is AnswerLost.FAIL and request.data in never_arrived:
                    outcome = AnswerLost.RESEND  # the server never had it: nothing to repeat
            if outcome is AnswerLost.RESEND:
                self.held.append(request)
            elif outcome is AnswerLost.DONE:
                request.deferred.callback({"room": request.fields["room"]})
            else:
                request.deferred.errback(Disconnected(
                    f"{reason.message or reason.code.name}: no answer (it may or may not "
                    "have been done)"))
