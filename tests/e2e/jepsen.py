"""
A Jepsen-style test of what twistchat tells its users (design.md, "Promises
that must hold"; issue 11): a real ``twistd twistchat`` on a SQLite file,
the ``python -m twistchat.netem`` proxy in front of it at 10 % loss, and
several users of the client library (``ChatClient``) in this process saying
lines in two rooms and sending DMs to each other, online and offline (users
log out and in), while the server is killed with SIGKILL at seeded moments
and restarted on the same database and port. The clients reconnect by
themselves. At the end everybody logs in again and catches up; then
``jepsen_checker.check`` compares what senders were told with what the
recipients' observers showed.

Everything the workload does follows from the seed: who says what, to whom,
in which room, who logs out when and for how long, when the server is
killed (half the kills land just after a planned login, while the mailbox
is being replayed). Real processes still vary in timing; the checker judges
only the history, and time only bounds the run.

    python -m tests.e2e.jepsen --seed 7 --kills 10

prints the same summary as the e2e test (``tests/e2e/test_jepsen.py``) and
exits 1 on a violation. ``--keep DIR`` keeps the database and server logs.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
from twisted.internet import defer, task

from tests.e2e.jepsen_checker import KINDS, Notice, Op, Outcome, Shown, check
from tests.support.killable import KillableServer, Netem
from twistchat.chat.protocol import fold_room
from twistchat.client import ChatClient, ChatError, ChatObserver, ClientState, Disconnected
from twistchat.endpoint.endpoint import ClientEndpoint

SEED_ENV = "TWISTCHAT_JEPSEN_SEED"
DEFAULT_SEED = 7
HOST = "127.0.0.1"
NAMES = ("ann", "bob", "cat", "dan", "eve", "fay", "gus", "hal")
ROOMS = ("#jepsen-a", "#jepsen-b")
DEFAULT_HISTORY = 100
"""The server's default ``--history``; raised when the plan says more lines
per room, so that a line missing from a catch-up was lost, not trimmed."""
LOGIN_TIMEOUT = 30.0
LOGIN_ATTEMPT_TIMEOUT = 5.0
OP_SPACING = 0.06
"""Steps a user is late for (a slow login) go out this far apart, not all at
once: the same operations whatever the timing, within the server's 20/s."""
QUIT_TIMEOUT = 5.0
BARRIER_TIMEOUT = 5.0
ANCHOR_PATIENCE = 3.0
"""An anchored kill waits at most this long past its expected moment."""


@attrs.frozen
class Config:
    seed: int = DEFAULT_SEED
    kills: int = 4
    users: int = 4
    cycle: float = 5.0
    """Seconds of workload per kill (the run is ``(kills + 1) * cycle``)."""
    step: float = 0.3
    """Seconds between two operations of one user."""
    logout_chance: float = 0.05
    """Per step of a logged-in user."""
    loss: float = 0.10
    delay_ms: float = 5.0
    settle: float = 20.0
    """At most this long, at the end, for everybody to catch up."""
    quiet: float = 2.0
    """...and caught up means: every request answered and nothing new for this long."""

    def replay_command(self) -> str:
        return (f"python -m tests.e2e.jepsen --seed {self.seed} --kills {self.kills} "
                f"--users {self.users} --cycle {self.cycle} --step {self.step}")


# ------------------------------------------------------------------ the plan

@attrs.frozen
class Step:
    at: float
    kind: str
    """``say``, ``dm``, ``logout``, ``login``."""
    target: str = ""
    text: str = ""


@attrs.frozen
class Kill:
    at: float
    """When, in seconds of workload (for an anchored kill: when it is expected)."""
    anchor: tuple[str, int] | None = None
    """(user, n): ``delay`` seconds after that user starts its n-th planned login."""
    delay: float = 0.0


@attrs.frozen
class Plan:
    users: tuple[str, ...]
    members: dict[str, tuple[str, ...]]
    steps: dict[str, tuple[Step, ...]]
    kills: tuple[Kill, ...]
    duration: float

    def lines_per_room(self) -> Counter:
        return Counter(fold_room(s.target) for steps in self.steps.values() for s in steps
                       if s.kind == "say")

    def history_size(self) -> int:
        most = max(self.lines_per_room().values(), default=0)
        return max(DEFAULT_HISTORY, most + 20)


def make_plan(config: Config) -> Plan:
    """Who does what when, and when the server dies: all from the seed."""
    rng = random.Random(config.seed)
    users = tuple(NAMES[i] if i < len(NAMES) else f"u{i}" for i in range(config.users))
    members = {ROOMS[0]: users, ROOMS[1]: users[:max(2, len(users) - 1)]}
    rooms_of = {u: [r for r, nicks in members.items() if u in nicks] for u in users}
    duration = (config.kills + 1) * config.cycle

    # First each user's timeline: when it acts, when it is logged out.
    timeline: dict[str, list[tuple[float, str]]] = {}
    away: dict[str, list[tuple[float, float]]] = {}
    for user in users:
        moments: list[tuple[float, str]] = []
        away[user] = []
        t = rng.uniform(0, config.step)
        while t < duration:
            if rng.random() < config.logout_chance:
                back = t + rng.uniform(1.5, 4.0)
                if back < duration - 0.5:
                    moments += [(t, "logout"), (back, "login")]
                    away[user].append((t, back))
                    t = back + config.step
                    continue
            moments.append((t, "op"))
            t += config.step * rng.uniform(0.7, 1.3)
        timeline[user] = moments

    def offline_at(t: float, user: str) -> bool:
        return any(begin <= t <= end for begin, end in away[user])

    # Then what each operation is: a line in one of its rooms, or a DM,
    # half of them to somebody logged out at that moment if there is one.
    steps: dict[str, tuple[Step, ...]] = {}
    for user in users:
        mine: list[Step] = []
        for n, (t, kind) in enumerate(timeline[user], 1):
            if kind != "op":
                mine.append(Step(t, kind))
            elif rng.random() < 0.55:
                room = rng.choice(rooms_of[user])
                mine.append(Step(t, "say", room, f"line s{config.seed} {user} {n}"))
            else:
                others = [u for u in users if u != user]
                offline = [u for u in others if offline_at(t, u)]
                to = rng.choice(offline if offline and rng.random() < 0.5 else others)
                mine.append(Step(t, "dm", to, f"dm s{config.seed} {user} {n}"))
        steps[user] = tuple(mine)

    # The kills: one per cycle; half of them just after a login begins
    # (the mailbox is being replayed), the others anywhere in the cycle.
    logins = [(at, user, n) for user in users
              for n, at in enumerate(at for at, kind in timeline[user] if kind == "login")]
    kills: list[Kill] = []
    for i in range(config.kills):
        low, high = (i + 0.6) * config.cycle, (i + 1.4) * config.cycle
        near = sorted(entry for entry in logins if low <= entry[0] <= high)
        if near and rng.random() < 0.5:
            at, user, n = rng.choice(near)
            delay = rng.uniform(0.05, 0.5)
            kills.append(Kill(at + delay, (user, n), delay))
        else:
            kills.append(Kill(rng.uniform(low, high)))
    return Plan(users, members, steps, tuple(sorted(kills, key=lambda k: k.at)), duration)


# ------------------------------------------------------------------ the history

class History:
    def __init__(self, clock) -> None:
        self.clock = clock
        self.ops: list[Op] = []
        self.shown: list[Shown] = []
        self.notices: list[Notice] = []
        self.events = Counter()
        self.changes = 0
        self.sessions: list[tuple[float, str, str]] = []
        """(when, user, what): logins and logouts, for reading a dump."""

    def session(self, user: str, what: str) -> None:
        self.sessions.append((self.now(), user, what))

    def now(self) -> float:
        return self.clock.seconds()

    def note(self, what: str) -> None:
        self.events[what] += 1
        self.changes += 1

    def op(self, kind: str, sender: str, target: str, text: str, kills_before: int) -> Op:
        op = Op(len(self.ops), kind, sender, target, text, self.now(), kills_before=kills_before)
        self.ops.append(op)
        return op

    def track(self, op: Op, d: defer.Deferred) -> None:
        def ok(reply: dict[str, Any]) -> None:
            op.outcome, op.reply, op.answered_at = "ok", dict(reply), self.now()
            self.changes += 1
            if op.kind == "dm" and reply.get("status") == "delivered":
                self.notices.append(Notice(op.sender, reply["dm_id"], reply.get("to", op.target),
                                           self.now(), "reply"))

        def failed(failure) -> None:
            op.answered_at = self.now()
            self.changes += 1
            if failure.check(ChatError):
                op.outcome, op.code = "error", failure.value.code
            elif failure.check(Disconnected):
                op.outcome, op.code = "none", f"Disconnected: {failure.getErrorMessage()}"
            else:
                op.outcome, op.code = "none", f"{failure.type.__name__}: {failure.getErrorMessage()}"
        d.addCallbacks(ok, failed)

    def unanswered(self) -> list[Op]:
        return [op for op in self.ops if op.outcome == "pending"]


class Watcher(ChatObserver):
    """One user's observer: everything it is shown goes into the history."""

    def __init__(self, history: History, nick: str) -> None:
        self.history = history
        self.nick = nick
        self.on_reconnected = lambda: None

    def message(self, event, replay):
        self.history.shown.append(Shown(self.nick, "line", event.nick, event.room, event.text,
                                        event.msg_id, replay, self.history.now()))
        self.history.changes += 1

    def direct(self, event):
        self.history.shown.append(Shown(self.nick, "dm", event.nick, event.to, event.text,
                                        event.dm_id, event.stored, self.history.now()))
        self.history.changes += 1

    def delivered(self, event):
        self.history.notices.append(Notice(self.nick, event.dm_id, event.to, self.history.now(), "event"))
        self.history.changes += 1

    def error(self, error):
        self.history.note(f"observer error {error.code}")

    def disconnected(self, reason, retry_in):
        self.history.note("disconnected")

    def reconnected(self):
        self.history.note("reconnected")
        self.on_reconnected()


def sleep(reactor, seconds: float) -> defer.Deferred:
    return task.deferLater(reactor, max(0.0, seconds), lambda: None)


class User:
    """One person: logs in (a fresh ``ChatClient`` and state file each time,
    as a new ``twistchat-client`` would), joins its rooms, does its steps."""

    def __init__(self, run: "Run", nick: str, rooms: list[str], index: int) -> None:
        self.run = run
        self.nick = nick
        self.rooms = rooms
        self.password = f"pw-{nick}-{run.config.seed}-long-enough"
        self.rng = random.Random(f"{run.config.seed}/{nick}")
        self.endpoint = ClientEndpoint(run.reactor)
        self.port = run.reactor.listenUDP(0, self.endpoint, interface=HOST, maxPacketSize=65535)
        self.client: ChatClient | None = None
        self._logins_begun: dict[int, defer.Deferred] = {}
        self.session_kills = 0
        """Kills of the server before the client's current session began."""

    def session_began(self) -> None:
        """Logged in, or in again after a disconnect: count kills from here."""
        self.session_kills = self.run.kills_issued

    def login_began(self, n: int) -> defer.Deferred:
        """Fires when this user starts its ``n``-th planned login (from 0)."""
        return self._logins_begun.setdefault(n, defer.Deferred())

    async def login(self) -> None:
        run = self.run
        run.history.session(self.nick, "login begins")
        deadline = run.reactor.seconds() + LOGIN_TIMEOUT
        while True:
            if run.reactor.seconds() > deadline:
                raise RuntimeError(f"{self.nick} could not log in for {LOGIN_TIMEOUT:.0f} s")
            await sleep(run.reactor, 0)  # connect() from a fresh reactor turn
            state = ClientState.load(run.state_dir, self.nick, HOST, run.proxy.port)
            client = ChatClient(run.reactor, self.endpoint, (HOST, run.proxy.port), self.nick,
                                self.run.watchers[self.nick], password=self.password, state=state,
                                reconnect=True, rng=random.Random(self.rng.random()))
            try:
                await client.connect().addTimeout(LOGIN_ATTEMPT_TIMEOUT, run.reactor)
            except defer.TimeoutError:
                # A request the dead server had acknowledged is not noticed
                # lost before the next keepalive (15 s): start afresh.
                run.history.note("login attempt timed out")
                client.stop()
                continue
            except (Disconnected, ChatError) as e:
                run.history.note(f"login failed: {type(e).__name__}")
                client.stop()
                await sleep(run.reactor, 0.5)
                continue
            if await self._join_all(client, deadline):
                self.client = client
                self.session_began()
                run.history.session(self.nick, "logged in")
                return
            client.stop()

    async def _join_all(self, client: ChatClient, deadline: float) -> bool:
        run = self.run
        for room in self.rooms:
            while fold_room(room) not in client.rooms:
                if run.reactor.seconds() > deadline:
                    return False
                try:
                    await client.join(room)
                except Disconnected:
                    run.history.note("join: Disconnected")
                    if not await self._ready(client, deadline):
                        return False
                except ChatError as e:
                    run.history.note(f"join refused: {e.code}")
                    raise RuntimeError(f"{self.nick} cannot join {room}: {e}") from None
        return True

    async def _ready(self, client: ChatClient, deadline: float) -> bool:
        while not client.ready:
            if client.link_state.value in ("idle", "closed") or self.run.reactor.seconds() > deadline:
                return False
            await sleep(self.run.reactor, 0.05)
        return True

    async def logout(self) -> None:
        """``quit()``. Requests still unanswered then must be answered before
        the session ends (they were sent before the quit, and the server
        answers every request in order) unless the user quit while the
        client was reconnecting, the quit timed out, or the server was killed
        at any time since this session began (the client may not know yet):
        then the user gave up on them, and they are ``abandoned``."""
        run = self.run
        waiting = [op for op in run.history.ops if op.sender == self.nick and op.outcome == "pending"]
        client, self.client = self.client, None
        gave_up = not client.ready
        run.history.session(self.nick, f"quit ({client.link_state.value})")
        ended = client.quit()
        try:
            await ended.addTimeout(QUIT_TIMEOUT, run.reactor)
        except defer.TimeoutError:
            run.history.note("quit timed out")
            client.stop()
            gave_up = True
        run.history.session(self.nick, "quit done")
        for op in waiting:
            # The server was killed while this session lived: the session that
            # carried the request may be gone, and the user left instead of waiting.
            if gave_up or run.kills_issued != self.session_kills:
                op.abandoned = True

    async def act(self, steps: tuple[Step, ...], t0: float) -> None:
        run = self.run
        logins = 0
        last = 0.0
        for step in steps:
            await sleep(run.reactor, max(t0 + step.at, last + OP_SPACING) - run.reactor.seconds())
            last = run.reactor.seconds()
            if step.kind == "logout":
                await self.logout()
            elif step.kind == "login":
                began = self.login_began(logins)
                logins += 1
                run.reactor.callLater(0, began.callback, None)
                await self.login()
            elif step.kind == "say":
                op = run.history.op("line", self.nick, step.target, step.text, run.kills_issued)
                run.history.track(op, self.client.say(step.target, step.text))
            else:
                op = run.history.op("dm", self.nick, step.target, step.text, run.kills_issued)
                run.history.track(op, self.client.msg(step.target, step.text))

    async def barrier(self) -> bool:
        """One round trip on the current session: what the server sent
        before it has arrived."""
        try:
            await self.client.list_rooms().addTimeout(BARRIER_TIMEOUT, self.run.reactor)
            return True
        except Exception:
            return False

    def close(self) -> None:
        if self.client is not None:
            self.client.stop()
        self.port.stopListening()


@attrs.define
class Cycle:
    number: int
    kill: Kill
    killed: float
    restart_seconds: float
    integrity: str


@attrs.define
class Result:
    config: Config
    plan: Plan
    outcome: Outcome
    cycles: list[Cycle]
    settled: bool
    seconds: float
    events: Counter
    proxy: dict | None
    tracebacks: int
    workdir: Path

    @property
    def violations(self):
        return self.outcome.violations

    history: History | None = None
    settle_seconds: float = 0.0

    def dump(self, path: Path) -> None:
        """The whole history, one JSON object a line, in time order."""
        rows = [{"what": "op", **attrs.asdict(op)} for op in self.history.ops]
        rows += [{"what": "shown", **attrs.asdict(s)} for s in self.history.shown]
        rows += [{"what": "notice", **attrs.asdict(n)} for n in self.history.notices]
        rows += [{"what": "kill", "at": c.killed, **attrs.asdict(c)} for c in self.cycles]
        rows += [{"what": what, "at": at, "user": user} for at, user, what in self.history.sessions]
        rows.sort(key=lambda row: row.get("at", row.get("sent_at", 0.0)))
        path.write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))

    def summary(self) -> str:
        f = self.outcome.figures
        c = self.outcome.counts
        lines = [
            f"jepsen seed {self.config.seed}: {len(self.cycles)} kill -9 cycles, {self.config.users} users, "
            f"{self.plan.duration:.0f} s of workload, {self.settle_seconds:.1f} s to settle, "
            f"{self.seconds:.1f} s in all"
            f"{'' if self.settled else ' (did NOT settle: some answers or deliveries never came)'}",
            f"  lines: {f['lines sent']} sent, {f['lines ok']} ok, {f['lines refused']} refused, "
            f"{f['lines unanswered']} unanswered; {f['line deliveries checked']} deliveries checked, "
            f"{f['lines shown from history']} shown from history",
            f"  dms:   {f['dms sent']} sent, {f['dms ok']} ok ({f['dms ok stored']} said stored), "
            f"{f['dms refused']} refused, {f['dms unanswered']} unanswered; "
            f"{f['dm deliveries checked']} checked, {f['dms shown from the mailbox']} shown from the mailbox",
            f"  delivered notices: {f['delivered notices']}; dms ok never said delivered: "
            f"{f['dms ok never said delivered']}",
            "  " + ", ".join(f"{kind} {c.get(kind, 0)}" for kind in KINDS),
        ]
        if f["refusal codes"] or f["no-answer reasons"]:
            lines.append(f"  refusals {f['refusal codes']}; no answer {f['no-answer reasons']} "
                         f"({f['abandoned by a quit']} of them outstanding when their sender quit)")
        drops = ""
        if self.proxy:
            drops = f"proxy dropped {self.proxy['up']['dropped']} up, {self.proxy['down']['dropped']} down; "
        lines.append(f"  {drops}client disconnects {self.events['disconnected']}, reconnects "
                     f"{self.events['reconnected']}, login attempts timed out "
                     f"{self.events['login attempt timed out']}, server tracebacks {self.tracebacks}")
        notes = {k: v for k, v in sorted(self.events.items()) if k not in ("disconnected", "reconnected")}
        if notes:
            lines.append(f"  harness notes: {notes}")
        for cycle in self.cycles:
            how = (f"{cycle.kill.delay * 1000:.0f} ms after {cycle.kill.anchor[0]}'s login "
                   f"#{cycle.kill.anchor[1] + 1} began" if cycle.kill.anchor else f"planned {cycle.kill.at:.2f} s")
            lines.append(f"  kill {cycle.number}: {how}, at {cycle.killed:.2f} s, "
                         f"restarted in {cycle.restart_seconds:.2f} s, integrity {cycle.integrity}")
        first = self.outcome.first
        if first is not None:
            lines.append(f"FIRST VIOLATION ({first.kind}, at {first.at:.2f} s): {first.text}")
            lines.append(f"replay: {self.config.replay_command()}")
        return "\n".join(lines)


class Run:
    def __init__(self, reactor, config: Config, workdir: Path) -> None:
        self.reactor = reactor
        self.config = config
        self.workdir = Path(workdir)
        self.state_dir = self.workdir / "state"
        self.plan = make_plan(config)
        self.history = History(reactor)
        self.watchers = {nick: Watcher(self.history, nick) for nick in self.plan.users}
        self.cycles: list[Cycle] = []
        self.server: KillableServer | None = None
        self.proxy: Netem | None = None
        self.t0 = 0.0
        self.users: dict[str, User] = {}
        self.kills_issued = 0

    async def killer(self) -> None:
        for number, kill in enumerate(self.plan.kills, 1):
            if kill.anchor is None:
                await sleep(self.reactor, self.t0 + kill.at - self.reactor.seconds())
            else:
                user, n = kill.anchor
                began = self.users[user].login_began(n)
                latest = self.t0 + kill.at + ANCHOR_PATIENCE - self.reactor.seconds()
                try:
                    await began.addTimeout(max(0.0, latest), self.reactor)
                except defer.TimeoutError:
                    self.history.note("anchored kill: login did not begin in time")
                await sleep(self.reactor, kill.delay)
            killed = self.reactor.seconds() - self.t0
            self.kills_issued += 1
            self.server.kill()
            integrity = self.server.integrity()
            took = await self.server.start(self.reactor)
            self.cycles.append(Cycle(number, kill, killed, took, integrity))
            await sleep(self.reactor, 0.5)

    async def settle(self, users: list[User]) -> bool:
        """Until every request is answered, every user's session is live (a
        round trip) and nothing new has come for ``quiet`` seconds; bounded."""
        deadline = self.reactor.seconds() + self.config.settle
        last_change, changes = self.reactor.seconds(), self.history.changes
        while self.reactor.seconds() < deadline:
            live = all([await u.barrier() for u in users])
            now = self.reactor.seconds()
            if self.history.changes != changes:
                last_change, changes = now, self.history.changes
            if live and not self.history.unanswered() and now - last_change >= self.config.quiet:
                return True
            await sleep(self.reactor, 0.25)
        return False

    async def run(self) -> Result:
        began = time.monotonic()
        history = self.plan.history_size()
        extra = () if history == DEFAULT_HISTORY else ("--history", str(history))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.server = KillableServer(self.workdir, extra_args=extra)
        users: list[User] = []
        settled = False
        settle_seconds = 0.0
        counters = None
        try:
            await self.server.start(self.reactor)
            self.proxy = Netem(self.workdir, self.server.port, self.config.loss, self.config.delay_ms,
                               seed=self.config.seed)
            users = [User(self, nick, [r for r, m in self.plan.members.items() if nick in m], i)
                     for i, nick in enumerate(self.plan.users)]
            self.users = {user.nick: user for user in users}
            for user in users:
                self.watchers[user.nick].on_reconnected = user.session_began
            await defer.gatherResults([defer.Deferred.fromCoroutine(u.login()) for u in users],
                                      consumeErrors=True)
            self.t0 = self.reactor.seconds()
            self.history.clock = _Since(self.reactor, self.t0)
            work = [defer.Deferred.fromCoroutine(u.act(self.plan.steps[u.nick], self.t0)) for u in users]
            work.append(defer.Deferred.fromCoroutine(self.killer()))
            await defer.gatherResults(work, consumeErrors=True)
            for user in users:
                if user.client is None:
                    await user.login()
            settle_began = self.reactor.seconds()
            settled = await self.settle(users)
            settle_seconds = self.reactor.seconds() - settle_began
            await defer.gatherResults([defer.Deferred.fromCoroutine(u.logout()) for u in users],
                                      consumeErrors=True)
        finally:
            for user in users:
                user.close()
            if self.proxy is not None:
                counters = self.proxy.stop()
            self.server.stop()
        for op in self.history.unanswered():
            op.outcome, op.code = "none", "no answer by the end"
        outcome = check(self.history.ops, self.history.shown, self.history.notices, self.plan.members,
                        [(c.number, c.integrity) for c in self.cycles])
        return Result(self.config, self.plan, outcome, self.cycles, settled, time.monotonic() - began,
                      self.history.events, counters, self.server.tracebacks(), self.workdir,
                      self.history, settle_seconds)


class _Since:
    """Seconds since the workload began: the history's clock."""

    def __init__(self, reactor, t0: float) -> None:
        self.reactor, self.t0 = reactor, t0

    def seconds(self) -> float:
        return self.reactor.seconds() - self.t0


async def run(reactor, config: Config, workdir: Path) -> Result:
    return await Run(reactor, config, workdir).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.jepsen", description=__doc__.split("\n\n")[0])
    defaults = Config()
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--kills", type=int, default=defaults.kills)
    parser.add_argument("--users", type=int, default=defaults.users)
    parser.add_argument("--cycle", type=float, default=defaults.cycle)
    parser.add_argument("--step", type=float, default=defaults.step)
    parser.add_argument("--loss", type=float, default=defaults.loss)
    parser.add_argument("--settle", type=float, default=defaults.settle)
    parser.add_argument("--keep", type=Path, help="keep the database, logs and state files here")
    parser.add_argument("--all", action="store_true", help="print every violation, not only the first")
    parser.add_argument("--dump", type=Path, help="write the history (ops, shown, notices) here, as JSON lines")
    args = parser.parse_args(argv)
    config = Config(seed=args.seed, kills=args.kills, users=args.users, cycle=args.cycle,
                    step=args.step, loss=args.loss, settle=args.settle)
    if args.keep:
        if args.keep.exists() and any(args.keep.iterdir()):
            parser.error(f"--keep {args.keep}: not empty (a run starts from a new database)")
        args.keep.mkdir(parents=True, exist_ok=True)
        workdir = args.keep
    else:
        workdir = Path(tempfile.mkdtemp(prefix="twistchat-jepsen-"))
    box: dict[str, Result] = {}

    async def go(reactor):
        box["result"] = await run(reactor, config, workdir)

    try:
        task.react(lambda reactor: defer.Deferred.fromCoroutine(go(reactor)))
    except SystemExit as e:
        if e.code not in (0, None):
            raise
    result = box["result"]
    print(result.summary())
    if args.all:
        for v in sorted(result.violations, key=lambda v: v.at):
            print(f"  {v.at:7.2f} s  {v.kind}: {v.text}")
    if args.dump:
        result.dump(args.dump)
    print(f"files: {workdir}")
    return 1 if result.violations else 0


if __name__ == "__main__":
    sys.exit(main())
