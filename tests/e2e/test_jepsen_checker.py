"""The kill -9 checker itself, on small made-up histories: a clean one
passes, and each kind of violation it promises to find is found (so the e2e
test's "0 violations" means something). And the workload is a function of
the seed. Fast: no processes, no reactor."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.e2e.jepsen import Config, make_plan  # noqa: E402
from tests.e2e.jepsen_checker import Notice, Op, Shown, check  # noqa: E402

MEMBERS = {"#a": ("ann", "bob", "cat"), "#b": ("ann", "bob")}


def line(index, sender, room, text, outcome="ok", msg_id=None, code=None):
    reply = {"room": room, "msg_id": msg_id, "ts": 1} if outcome == "ok" else None
    return Op(index, "line", sender, room, text, float(index), outcome, code, reply, index + 0.5)


def dm(index, sender, to, text, outcome="ok", dm_id=None, status="stored", code=None):
    reply = {"to": to, "dm_id": dm_id, "ts": 1, "status": status} if outcome == "ok" else None
    return Op(index, "dm", sender, to, text, float(index), outcome, code, reply, index + 0.5)


def saw_line(observer, sender, room, text, msg_id, at=10.0, replay=False):
    return Shown(observer, "line", sender, room, text, msg_id, replay, at)


def saw_dm(observer, sender, to, text, dm_id, at=10.0, stored=False):
    return Shown(observer, "dm", sender, to, text, dm_id, stored, at)


def clean():
    ops = [line(0, "ann", "#a", "L0", msg_id=1), line(1, "bob", "#b", "L1", msg_id=2),
           dm(2, "cat", "bob", "D2", dm_id=3), line(3, "cat", "#a", "L3", outcome="none", code="Disconnected")]
    ops[-1].abandoned = True  # cat quit while waiting
    shown = [saw_line("bob", "ann", "#a", "L0", 1), saw_line("cat", "ann", "#a", "L0", 1, replay=True),
             saw_line("ann", "bob", "#b", "L1", 2), saw_dm("bob", "cat", "bob", "D2", 3, stored=True),
             saw_line("ann", "cat", "#a", "L3", 4)]  # no answer, shown once: allowed
    notices = [Notice("cat", 3, "bob", 11.0, "event")]
    return ops, shown, notices


def kinds(outcome):
    return sorted(v.kind for v in outcome.violations)


def test_a_clean_history_passes():
    ops, shown, notices = clean()
    outcome = check(ops, shown, notices, MEMBERS, [(1, "ok")])
    assert outcome.violations == []
    assert outcome.figures["line deliveries checked"] == 2 + 1
    assert outcome.figures["dm deliveries checked"] == 1


def test_a_line_told_ok_but_missing_at_one_member_is_lost():
    ops, shown, notices = clean()
    shown = [s for s in shown if not (s.observer == "cat" and s.text == "L0")]
    outcome = check(ops, shown, notices, MEMBERS)
    assert kinds(outcome) == ["lost"]
    assert "cat never saw" in outcome.first.text


def test_a_dm_told_ok_but_never_shown_is_lost_and_its_delivered_is_false():
    ops, shown, notices = clean()
    shown = [s for s in shown if s.text != "D2"]
    assert kinds(check(ops, shown, notices, MEMBERS)) == ["false delivered", "lost"]


def test_shown_twice_is_duplicated_even_under_the_same_id():
    ops, shown, notices = clean()
    shown.append(saw_dm("bob", "cat", "bob", "D2", 3, at=20.0, stored=True))
    assert kinds(check(ops, shown, notices, MEMBERS)) == ["duplicated"]


def test_an_unanswered_line_shown_twice_is_duplicated():
    ops, shown, notices = clean()
    shown.append(saw_line("ann", "cat", "#a", "L3", 4, at=12.0, replay=True))
    assert kinds(check(ops, shown, notices, MEMBERS)) == ["duplicated"]


def test_phantoms_never_sent_wrong_sender_wrong_room_non_member_wrong_recipient():
    ops, shown, notices = clean()
    for bad in (saw_line("bob", "ann", "#a", "never sent", 9),
                saw_line("bob", "cat", "#a", "L0", 1),       # as from somebody else
                saw_line("bob", "ann", "#b", "L0", 1),       # in another room
                saw_line("cat", "bob", "#b", "L1", 2),       # cat is not in #b
                saw_dm("ann", "cat", "bob", "D2", 3)):       # somebody else's DM
        outcome = check(ops, shown + [bad], notices, MEMBERS)
        assert kinds(outcome) == ["phantom"], (bad, outcome.violations)


def test_a_refused_request_that_shows_up_anyway():
    ops, shown, notices = clean()
    ops.append(line(4, "bob", "#a", "L4", outcome="error", code="RATE_LIMITED"))
    shown.append(saw_line("ann", "bob", "#a", "L4", 5))
    assert kinds(check(ops, shown, notices, MEMBERS)) == ["refused but shown"]
    ops[-1].code = "INTERNAL"  # "nothing was acknowledged": it may have been done
    assert kinds(check(ops, shown, notices, MEMBERS)) == []


def test_a_request_left_without_an_answer_though_its_sender_never_quit():
    ops, shown, notices = clean()
    ops.append(dm(4, "ann", "cat", "D4", outcome="none", code="Disconnected"))
    outcome = check(ops, shown, notices, MEMBERS)
    assert kinds(outcome) == ["unanswered"]
    ops[-1].abandoned = True
    assert kinds(check(ops, shown, notices, MEMBERS)) == []


def test_one_id_for_two_messages_is_id_reuse():
    ops, shown, notices = clean()
    ops.append(dm(4, "ann", "cat", "D4", dm_id=3))
    shown.append(saw_dm("cat", "ann", "cat", "D4", 3))
    assert kinds(check(ops, shown, notices, MEMBERS)) == ["id reuse"]


def test_a_message_handed_over_under_another_id_than_its_sender_was_told():
    ops, shown, notices = clean()
    shown = [s for s in shown if not (s.observer == "bob" and s.text == "L0")]
    shown.append(saw_line("bob", "ann", "#a", "L0", 7))  # stored twice: 1 and 7
    assert kinds(check(ops, shown, notices, MEMBERS)) == ["id mismatch"]


def test_delivered_for_a_dm_the_recipient_never_showed_or_said_in_the_reply():
    ops, shown, notices = clean()
    assert kinds(check(ops, shown, notices + [Notice("cat", 99, "bob", 12.0, "event")], MEMBERS)) == [
        "false delivered"]
    assert kinds(check(ops, shown, notices + [Notice("ann", 3, "bob", 12.0, "event")], MEMBERS)) == [
        "false delivered"]  # dm_id 3 reached bob, but it was cat's
    ops.append(dm(4, "ann", "cat", "D4", dm_id=5, status="delivered"))
    assert kinds(check(ops, shown, notices + [Notice("ann", 5, "cat", 4.5, "reply")], MEMBERS)) == [
        "false delivered", "lost"]


def test_a_damaged_database_after_a_kill():
    ops, shown, notices = clean()
    assert kinds(check(ops, shown, notices, MEMBERS, [(1, "ok"), (2, "row 3 missing from index")])) == [
        "integrity"]


def test_the_first_violation_is_the_earliest():
    ops, shown, notices = clean()
    shown.append(saw_line("bob", "ann", "#a", "never sent", 9, at=30.0))
    shown.append(saw_dm("bob", "cat", "bob", "D2", 3, at=20.0))
    assert check(ops, shown, notices, MEMBERS).first.kind == "duplicated"


def test_the_workload_is_a_function_of_the_seed():
    plan = make_plan(Config(seed=7))
    assert plan == make_plan(Config(seed=7))
    assert plan != make_plan(Config(seed=8))
    assert len(plan.kills) == 4 and [k.at for k in plan.kills] == sorted(k.at for k in plan.kills)
    kinds_of_steps = {s.kind for steps in plan.steps.values() for s in steps}
    assert kinds_of_steps == {"say", "dm", "logout", "login"}
    texts = [s.text for steps in plan.steps.values() for s in steps if s.text]
    assert len(texts) == len(set(texts))  # a text names its operation
    assert plan.history_size() >= max(plan.lines_per_room().values())
