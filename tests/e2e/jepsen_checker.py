"""
The checker of the kill -9 test (``tests/e2e/jepsen.py``), in the manner of
Jepsen: a history of what every sender was told and what every recipient's
``ChatObserver`` showed, judged after the run, never against the clock.

What the history holds:

* ``Op``: one ``say`` (kind ``line``) or ``dm``, with what its sender was
  told: ``ok`` (and the reply: ``msg_id``, or ``dm_id`` and ``status``),
  ``error`` with the server's code, or ``none`` (no answer: Disconnected,
  or still waiting when the run ended). Every text is unique in a run, so a
  text names its operation.
* ``Shown``: one room line or DM an observer was handed (live, or from
  history or the mailbox).
* ``Notice``: one claim that a DM reached its recipient: a ``delivered``
  event, or a ``dm`` reply whose ``status`` is ``"delivered"``.

What must hold (PROTOCOL.md C2, C5, C10; design.md, "Promises that must hold"):

* lost: a line whose sender got ``ok`` is shown to every other member of its
  room, and a DM whose sender got ``ok`` is shown by its recipient.
* duplicated: no observer shows one line or one DM twice (whatever ids it
  came with: the client de-duplicates, the count is what the user saw).
* phantom: nothing is shown that nobody sent, or as sent by somebody else,
  to somebody else, in another room, or to a non-member.
* refused but shown: a request answered with an error code was not done
  (``INTERNAL`` excepted: "nothing was acknowledged" leaves it open).
* id reuse: no ``msg_id`` (or ``dm_id``) names two different lines (DMs), in
  replies or in what was shown.
* id mismatch: a sender told ``msg_id``/``dm_id`` X for a message whose
  recipients were handed it as Y: the message exists twice.
* false delivered: every "delivered" names a DM of that sender that its
  recipient showed with that ``dm_id``.
* unanswered: a ``say`` or ``dm`` is answered, ok or error, however often
  the server died meanwhile (C2: the server answers every request; the
  client resends, with its ``idem``, every request whose answer it never
  saw). Only one still outstanding when its sender quit, with the client
  reconnecting or on a session the server was killed under, may end
  without an answer (``abandoned``).
* integrity: the database passes ``PRAGMA integrity_check`` after each kill.

Lines and DMs with no answer may be shown or not, but at most once.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

import attrs

from twistchat.chat.protocol import fold_nick, fold_room

INDETERMINATE_CODES = frozenset({"INTERNAL"})
"""Error codes after which the request may have been done all the same."""

KINDS = ("lost", "duplicated", "phantom", "refused but shown", "id reuse", "id mismatch",
         "false delivered", "unanswered", "integrity")


@attrs.define
class Op:
    index: int
    kind: str
    """``line`` (a ``say``) or ``dm``."""
    sender: str
    target: str
    """The room (lines) or the recipient's nick (DMs), as the sender wrote it."""
    text: str
    sent_at: float
    outcome: str = "pending"
    """``ok``, ``error``, ``none``; ``pending`` while waiting."""
    code: str | None = None
    """The error code, or why no answer came."""
    reply: dict[str, Any] | None = None
    answered_at: float | None = None
    abandoned: bool = False
    """Its sender quit (logged out) before the answer came, while the client
    was reconnecting or with a kill since its session began: it may go unanswered."""
    kills_before: int = 0
    """Kills of the server before it was made."""

    @property
    def id(self) -> int | None:
        if self.reply is None:
            return None
        return self.reply.get("msg_id" if self.kind == "line" else "dm_id")

    def describe(self) -> str:
        told = {"ok": f"ok, {'msg_id' if self.kind == 'line' else 'dm_id'} {self.id}",
                "error": f"error {self.code}", "none": f"no answer ({self.code})",
                "pending": "no answer yet"}[self.outcome]
        where = f"in {self.target}" if self.kind == "line" else f"to {self.target}"
        return f"{self.kind} {self.text!r} from {self.sender} {where} (op {self.index}, told: {told})"


@attrs.frozen
class Shown:
    observer: str
    kind: str
    sender: str
    target: str
    """The room (lines) or the recipient (``to`` of the DM event)."""
    text: str
    id: int
    replay: bool
    """From history (lines) or the mailbox (``stored`` DMs)."""
    at: float


@attrs.frozen
class Notice:
    observer: str
    """The DM's sender, who was told."""
    dm_id: int
    to: str
    at: float
    source: str
    """``event`` (a ``delivered`` event) or ``reply`` (a dm reply saying "delivered")."""


@attrs.frozen
class Violation:
    kind: str
    at: float
    text: str


@attrs.define
class Outcome:
    """The checker's verdict and its figures."""

    violations: list[Violation]
    counts: Counter
    figures: dict[str, Any]

    @property
    def first(self) -> Violation | None:
        return min(self.violations, key=lambda v: v.at) if self.violations else None


def _fold_target(kind: str, target: str) -> str:
    return fold_room(target) if kind == "line" else fold_nick(target)


def check(ops: Iterable[Op], shown: Iterable[Shown], notices: Iterable[Notice],
          members: dict[str, Iterable[str]], integrity: Iterable[tuple[int, str]] = ()) -> Outcome:
    """Judge a finished history. ``members``: each room to the nicks that
    belong to it for the whole run; ``integrity``: (cycle, result of
    ``PRAGMA integrity_check``) for each kill."""
    ops = sorted(ops, key=lambda op: op.index)
    shown = sorted(shown, key=lambda s: s.at)
    notices = sorted(notices, key=lambda n: n.at)
    room_members = {fold_room(room): {fold_nick(m) for m in nicks} for room, nicks in members.items()}
    by_text = {op.text: op for op in ops}
    violations: list[Violation] = []

    def violation(kind: str, at: float, text: str) -> None:
        violations.append(Violation(kind, at, text))

    # What was shown: is it something that was sent, to this observer, once?
    times_shown: Counter = Counter()
    shown_as: dict[tuple[str, str], list[Shown]] = defaultdict(list)
    for s in shown:
        observer = fold_nick(s.observer)
        op = by_text.get(s.text)
        if op is None:
            violation("phantom", s.at, f"{s.observer} was shown a {s.kind} nobody sent: {s.text!r} "
                      f"from {s.sender} ({s.kind} id {s.id})")
            continue
        if (op.kind != s.kind or fold_nick(op.sender) != fold_nick(s.sender)
                or _fold_target(op.kind, op.target) != _fold_target(s.kind, s.target)):
            violation("phantom", s.at, f"{s.observer} was shown {s.kind} {s.text!r} from {s.sender} "
                      f"to {s.target}, but it is the {op.describe()}")
            continue
        if op.kind == "line" and observer not in room_members.get(fold_room(op.target), ()):
            violation("phantom", s.at, f"{s.observer}, not a member of {op.target}, was shown the "
                      f"{op.describe()}")
            continue
        if op.kind == "dm" and observer != fold_nick(op.target):
            violation("phantom", s.at, f"{s.observer} was shown the {op.describe()}")
            continue
        if op.outcome == "error" and op.code not in INDETERMINATE_CODES:
            violation("refused but shown", s.at, f"{s.observer} was shown the {op.describe()}")
        times_shown[observer, s.text] += 1
        shown_as[observer, s.text].append(s)
        if times_shown[observer, s.text] == 2:
            first = shown_as[observer, s.text][0]
            violation("duplicated", s.at, f"{s.observer} was shown the {op.describe()} twice: "
                      f"id {first.id} ({'replay' if first.replay else 'live'}) and id {s.id} "
                      f"({'replay' if s.replay else 'live'})")

    # What senders were told "ok": was it shown to everyone it was for?
    checked = {"line": 0, "dm": 0}
    for op in ops:
        if op.outcome != "ok":
            continue
        at = op.answered_at if op.answered_at is not None else op.sent_at
        if op.kind == "line":
            audience = sorted(room_members.get(fold_room(op.target), set()) - {fold_nick(op.sender)})
        else:
            audience = [fold_nick(op.target)]
        for member in audience:
            checked[op.kind] += 1
            if times_shown[member, op.text] == 0:
                violation("lost", at, f"{member} never saw the {op.describe()}")
        # The sender's own line may come back from history (its echo was
        # lost with a session), but once at most: counted above.

    # Ids: one id, one message; and the id a sender was told is the message's.
    ids: dict[tuple[str, int], dict[str, float]] = defaultdict(dict)
    for op in ops:
        if op.outcome == "ok" and op.id is not None:
            ids[op.kind, op.id].setdefault(op.text, op.answered_at or op.sent_at)
    for s in shown:
        ids[s.kind, s.id].setdefault(s.text, s.at)
    for (kind, ident), texts in sorted(ids.items()):
        if len(texts) > 1:
            ordered = sorted(texts.items(), key=lambda item: item[1])
            names = "; ".join(f"{by_text[t].describe() if t in by_text else repr(t)}" for t, _ in ordered)
            violation("id reuse", ordered[1][1],
                      f"{'msg_id' if kind == 'line' else 'dm_id'} {ident} was given to "
                      f"{len(texts)} different {kind}s: {names}")
    shown_by_text: dict[str, list[Shown]] = defaultdict(list)
    for seen in shown_as.values():
        shown_by_text[seen[0].text].extend(seen)
    for op in ops:
        if op.outcome != "ok" or op.id is None:
            continue
        for s in shown_by_text.get(op.text, ()):
            if s.id != op.id:
                violation("id mismatch", s.at, f"{s.observer} was handed the {op.describe()} "
                          f"under id {s.id}")

    # "delivered": said only of a DM its recipient showed, under that id.
    dm_shown_by: dict[tuple[str, int], set[str]] = defaultdict(set)
    for s in shown:
        if s.kind == "dm":
            dm_shown_by[fold_nick(s.observer), s.id].add(s.text)
    for n in notices:
        texts = dm_shown_by.get((fold_nick(n.to), n.dm_id), set())
        mine = [t for t in texts if t in by_text and fold_nick(by_text[t].sender) == fold_nick(n.observer)]
        if not mine:
            what = (f"a DM from {n.observer}" if not texts
                    else f"only {', '.join(repr(t) for t in sorted(texts))} (not {n.observer}'s)")
            said = "a delivered event" if n.source == "event" else "a dm reply with status delivered"
            violation("false delivered", n.at, f"{n.observer} was told ({said}) that dm_id {n.dm_id} "
                      f"reached {n.to}, but {n.to} never showed {what} under dm_id {n.dm_id}")

    for op in ops:
        if op.outcome in ("none", "pending") and not op.abandoned:
            violation("unanswered", op.sent_at, f"the {op.describe()}; {op.sender} did not quit while "
                      "reconnecting and the server was not killed while that session lived: the server "
                      "answers every request, and the client resends what a lost session left unanswered")

    for cycle, result in integrity:
        if result != "ok":
            violation("integrity", float(cycle), f"after kill {cycle}: integrity_check says {result}")

    counts = Counter(v.kind for v in violations)
    outcomes = Counter((op.kind, op.outcome) for op in ops)
    delivered_dms = {(fold_nick(n.observer), n.dm_id) for n in notices}
    ok_dms = [op for op in ops if op.kind == "dm" and op.outcome == "ok"]
    figures = {
        "lines sent": outcomes["line", "ok"] + outcomes["line", "error"] + outcomes["line", "none"]
        + outcomes["line", "pending"],
        "lines ok": outcomes["line", "ok"],
        "lines refused": outcomes["line", "error"],
        "lines unanswered": outcomes["line", "none"] + outcomes["line", "pending"],
        "line deliveries checked": checked["line"],
        "dms sent": sum(outcomes["dm", o] for o in ("ok", "error", "none", "pending")),
        "dms ok": outcomes["dm", "ok"],
        "dms ok stored": sum(1 for op in ok_dms if (op.reply or {}).get("status") == "stored"),
        "dms refused": outcomes["dm", "error"],
        "dms unanswered": outcomes["dm", "none"] + outcomes["dm", "pending"],
        "dm deliveries checked": checked["dm"],
        "dms shown from the mailbox": sum(1 for s in shown if s.kind == "dm" and s.replay),
        "lines shown from history": sum(1 for s in shown if s.kind == "line" and s.replay),
        "delivered notices": len(notices),
        "dms ok never said delivered": sum(1 for op in ok_dms
                                           if (fold_nick(op.sender), op.id) not in delivered_dms),
        "refusal codes": dict(Counter(op.code for op in ops if op.outcome == "error")),
        "no-answer reasons": dict(Counter(op.code for op in ops if op.outcome in ("none", "pending"))),
        "abandoned by a quit": sum(1 for op in ops if op.abandoned and op.outcome in ("none", "pending")),
    }
    return Outcome(violations, counts, figures)
