"""Hostile peers, the chat side (issue 12; PROTOCOL.md C4, C8, C9): each
limit on fakes and a ``task.Clock``, and the eviction order end to end."""

from __future__ import annotations

import json
import random
from pathlib import Path

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from twistchat.chat import protocol as p
from twistchat.chat.protocol import sizes
from twistchat.chat.server import ChatServer, ServerConfig, identities
from twistchat.chat.server.guards import Backoff, Deadlines, source_of
from twistchat.chat.server.service import admission, session_config
from twistchat.client.limits import client_endpoint
from twistchat.endpoint.api import CloseCode
from twistchat.endpoint.endpoint import ServerEndpoint
from twistchat.endpoint.server import Admission
from twistchat.netsim.network import SimulatedNetwork
from twistchat.reliable.config import SessionConfig, stranger_window
from twistchat.store.memory import MemoryStore

from endpoint.harness import Recorder

from .fakes import Harness

DAY = 24 * 3600
OWNER = "203.0.113.10"
ATTACKER = "198.51.100.66"
ATTACKER_2 = "198.51.101.66"


def _hold_wrong_guesses(h: Harness, wrong: str) -> list[Deferred]:
    """Credential checks of ``wrong`` wait (a busy thread pool) until fired;
    every other check runs at once."""
    held: list[Deferred] = []
    real = h.server.off_reactor

    def off_reactor(function, *args):
        if function is identities.verify_credential and args[0] == wrong:
            d: Deferred = Deferred()
            held.append(d)
            return d
        return real(function, *args)
    h.server.off_reactor = off_reactor  # type: ignore[method-assign]
    return held


def _replies(client) -> list[p.Message]:
    return [m for m in client.messages() if isinstance(m, p.Ok | p.ErrorReply)]


# ---------------------------------------------------------------- login deadline

def test_a_session_that_never_logs_in_is_closed_at_the_login_deadline():
    h = Harness(login_timeout=10)
    idle, member = h.connect(), h.connect()
    member.ok("login", nick="alice")
    h.clock.advance(9.9)
    assert idle.closed is None
    h.clock.advance(0.2)
    message, code, _ = idle.closed
    assert code == CloseCode.NORMAL and "login timeout" in message and "10 s" in message
    h.clock.advance(30)
    assert member.closed is None  # logged in: no deadline


def test_login_deadlines_share_one_timer():
    h = Harness(login_timeout=10)
    clients = [h.connect() for _ in range(200)]
    timers = [c for c in h.clock.getDelayedCalls()
              if getattr(c.func, "__qualname__", None) == "TimerQueue._expire"]
    assert len(timers) == 1
    h.clock.advance(11)
    assert all(c.closed for c in clients)


def test_a_login_marks_the_session_trusted_and_a_failed_one_does_not():
    h = Harness()
    h.login("alice", password="correct horse")
    guest, intruder = h.connect(), h.connect()
    assert intruder.error("login", nick="alice", password="wrong horse") == "BAD_CREDENTIAL"
    assert not intruder.connection.trusted
    guest.ok("login", nick="guest")
    assert guest.connection.trusted


# ---------------------------------------------------------------- logins

def test_three_hundred_wrong_logins_do_not_hold_up_the_owner():
    """Before: every login of a nick waited its turn, so 300 wrong ones made
    the owner's take 12 s.  Now at most ``login_queue`` are checked at once,
    the rest are refused at once, and the owner (from a source it logged in
    from before) has a queue of its own and never waits behind a wrong guess;
    nor for a credential worker, since one source (two networks here) holds
    at most ``credential_per_source`` of them."""
    h = Harness(login_queue=4)
    assert (h.config.credential_workers, h.config.credential_per_source) == (4, 2)
    h.login("owner", password="correct horse", host=OWNER).ok("quit")
    held = _hold_wrong_guesses(h, "wrong horse")
    attackers = [h.connect(host=ATTACKER if n % 2 else ATTACKER_2) for n in range(300)]
    for attacker in attackers:
        attacker.send_raw(p.encode(p.Login(id=1, nick="owner", password="wrong horse")))
    assert len(held) == 4 and h.server.credential_work.running == 4
    refused = [r for a in attackers for r in _replies(a)]
    assert len(refused) == 296 and {r.code for r in refused} == {"RATE_LIMITED"}
    owner = h.connect(host=OWNER)
    owner.send_raw(p.encode(p.Login(id=1, nick="owner", password="correct horse")))
    assert _replies(owner) == [] and h.server.credential_work.waiting == 1  # a worker's turn
    held[0].callback(False)  # one wrong guess checked (in real life: tens of ms)
    [reply] = _replies(owner)
    assert isinstance(reply, p.Ok) and reply.result["nick"] == "owner"
    for d in held[1:]:
        d.callback(False)
    assert {r.code for a in attackers for r in _replies(a)} == {"BAD_CREDENTIAL", "RATE_LIMITED"}
    assert h.server.login_locks == {} and h.server.credential_work.running == 0


def test_credential_work_is_bounded_in_all_and_per_source():
    """Issue 12: 98 registrations at once took the server to 225 MiB (16 MiB
    of scrypt each); now at most ``credential_workers`` run at once and past
    ``credential_queue`` waiting a login is refused at once."""
    h = Harness(credential_workers=2, credential_queue=3, credential_per_source=2)
    held = _hold_wrong_guesses(h, "wrong horse")
    for n in range(6):
        h.login(f"user{n}", password="correct horse", host=f"192.0.{n}.1").ok("quit")
    guessers = {n: h.connect(host=f"192.0.{n % 6}.1") for n in range(8)}
    for n, guesser in guessers.items():
        guesser.send_raw(p.encode(p.Login(id=1, nick=f"user{n % 6}", password="wrong horse")))
    work = h.server.credential_work
    assert (work.running, work.waiting) == (2, 3)  # 5 admitted: 2 run, 3 wait
    refused = {n: r.code for n, g in guessers.items() for r in _replies(g)}
    assert refused == {5: "RATE_LIMITED", 6: "RATE_LIMITED", 7: "RATE_LIMITED"}
    assert "busy" in next(r.message for r in _replies(guessers[5]))
    while held:
        held.pop(0).callback(False)
    assert (work.running, work.waiting) == (0, 0)
    assert all(r.code in ("BAD_CREDENTIAL", "RATE_LIMITED") for g in guessers.values() for r in _replies(g))


def test_one_source_gets_its_share_of_the_workers_and_waits_for_the_rest():
    """A NAT'ed office logging in at once is served in turn, not refused; a
    later login from elsewhere does not wait behind it; past its share of
    the queue, that source is refused."""
    h = Harness(credential_workers=3, credential_per_source=2, credential_per_source_waiting=2)
    held = _hold_wrong_guesses(h, "wrong horse")
    for n in range(5):
        h.login(f"office{n}", password="correct horse", host=f"192.0.{n}.1").ok("quit")
    office = [h.connect(host="203.0.113.80") for _ in range(5)]
    for n, client in enumerate(office):
        client.send_raw(p.encode(p.Login(id=1, nick=f"office{n}", password="wrong horse")))
    work = h.server.credential_work
    assert (work.running, work.waiting) == (2, 2)  # its share runs, two wait ...
    assert [r.code for r in _replies(office[4])] == ["RATE_LIMITED"]  # ... and no more
    elsewhere = h.connect(host="198.51.100.80")
    elsewhere.send_raw(p.encode(p.Login(id=1, nick="newcomer")))
    [reply] = _replies(elsewhere)  # the third worker: not behind the office's queue
    assert isinstance(reply, p.Ok)
    held.pop(0).callback(False)  # one of the office's checks ends: its next one starts
    assert (work.running, work.waiting) == (2, 1)
    while held:
        held.pop(0).callback(False)
    assert [r.code for c in office[:4] for r in _replies(c)] == ["BAD_CREDENTIAL"] * 4

def test_failed_logins_back_off_per_nick_and_source_and_close_the_session():
    h = Harness(login_free_failures=3, login_backoff=1.0, login_failures_per_session=5)
    h.login("alice", password="correct horse", host=OWNER).ok("quit")
    guesser = h.connect(host=ATTACKER)
    for _ in range(3):
        assert guesser.error("login", nick="alice", password="wrong horse") == "BAD_CREDENTIAL"
    # Backing off: refused at once, not checked (the right password too).
    reply = guesser.request("login", nick="alice", password="correct horse")
    assert reply.code == "RATE_LIMITED" and "try again in 1 s" in reply.message
    assert guesser.closed is None
    # Another source guessing this nick is held off too (the nick backs off)...
    elsewhere = h.connect(host="192.0.2.77")
    assert elsewhere.error("login", nick="alice", password="wrong horse") == "RATE_LIMITED"
    # ...but the owner, from where it logged in before, is not.
    h.connect(host=OWNER).ok("login", nick="alice", password="correct horse")
    # The fifth failure on one session closes it, after its answer.
    assert guesser.error("login", nick="bob", password="wrong horse") == "RATE_LIMITED"
    assert guesser.closed[:2] == ("too many failed logins", CloseCode.NORMAL)


def test_the_back_off_doubles_and_is_forgotten_after_quiet():
    backoff = Backoff(free=2, first=1.0, longest=8.0)
    now = 100.0
    backoff.failed("k", now)
    assert backoff.held_for("k", now) == 0  # the free one
    holds = []
    for _ in range(6):
        backoff.failed("k", now)
        holds.append(backoff.held_for("k", now))
    assert holds == [1, 2, 4, 8, 8, 8]
    assert backoff.held_for("k", now + 8 + 8) == 0  # quiet as long as the longest hold
    backoff.failed("k", now + 16)
    assert backoff.held_for("k", now + 16) == 0  # starts afresh


def test_one_source_guessing_many_nicks_backs_off():
    h = Harness(login_free_failures=3)
    for nick in ("a1", "a2", "a3", "a4"):
        h.login(nick, password="correct horse")
    guesser = h.connect(host=ATTACKER)
    codes = [guesser.error("login", nick=nick, password="wrong horse")
             for nick in ("a1", "a2", "a3", "a4")]
    assert codes == ["BAD_CREDENTIAL"] * 3 + ["RATE_LIMITED"]
    h.clock.advance(1.0)
    assert guesser.error("login", nick="a4", password="wrong horse") == "BAD_CREDENTIAL"


def test_registrations_are_throttled_per_source_prefix():
    h = Harness(registration_rate=1.0, registration_burst=2)  # per minute
    assert h.connect(host="203.0.113.5").ok("login", nick="r1")["registered"]
    h.connect(host="203.0.113.5").ok("login", nick="r2")
    assert h.connect(host="203.0.113.5").error("login", nick="r3") == "RATE_LIMITED"
    assert h.connect(host="203.0.113.200").error("login", nick="r3") == "RATE_LIMITED"  # same /24
    h.connect(host="198.51.100.1").ok("login", nick="r3")  # another /24
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::ffff"):
        h.connect(host=host).ok("login", nick=f"v{host[-1]}")
    assert h.connect(host="2001:db8:1:2:abcd::9").error("login", nick="v3") == "RATE_LIMITED"
    h.clock.advance(60)
    h.connect(host="203.0.113.5").ok("login", nick="r4")


def test_login_sources_are_addresses_or_ipv6_slash_64():
    assert source_of(("192.0.2.1", 5)) == "192.0.2.1"
    assert source_of(("2001:db8::1", 5, 0, 0)) == source_of(("2001:db8::2", 6, 0, 0)) == "2001:db8::/64"
    assert source_of(None) == ""


def test_unused_password_accounts_expire_too():
    h = Harness(account_expiry=10 * DAY, unclaimed_expiry=2 * DAY)
    h.login("keeper", password="correct horse").ok("quit")
    h.login("online", password="correct horse")
    h.clock.advance(9 * DAY)
    assert "keeper" in h.store.accounts
    h.clock.advance(2 * DAY)
    again = h.connect()
    reply = again.ok("login", nick="keeper", password="another horse")
    assert reply["registered"] is True  # the old registration lapsed: registered afresh
    assert "online" in h.store.accounts  # online users never lapse


def test_the_reaper_purges_lapsed_password_accounts():
    h = Harness(account_expiry=10 * DAY, purge_interval=3600)
    h.login("keeper", password="correct horse").ok("quit")
    h.advance(11 * DAY, step=3600)
    assert "keeper" not in h.store.accounts


# ---------------------------------------------------------------- the mailbox

def _offline(h: Harness, nick: str) -> str:
    """Register ``nick`` and leave; returns its secret."""
    client = h.connect()
    secret = client.ok("login", nick=nick)["secret"]
    client.ok("quit")
    return secret


def test_a_stranger_cannot_fill_a_mailbox_a_friend_uses():
    h = Harness(mailbox_per_sender=3, mailbox_size=10)
    _offline(h, "bob")
    stranger, friend = h.login("stranger"), h.login("friend")
    for n in range(3):
        stranger.ok("dm", to="bob", text=f"spam {n}")
    reply = stranger.request("dm", to="bob", text="more")
    assert reply.code == "MAILBOX_QUOTA"
    assert friend.ok("dm", to="bob", text="lunch?")["status"] == "stored"
    assert len(h.store.mailboxes["bob"]) == 4


def test_dms_per_sender_are_rate_limited():
    h = Harness(dm_rate=1.0, dm_burst=2)
    _offline(h, "bob")
    stranger, friend = h.login("stranger"), h.login("friend")
    stranger.ok("dm", to="bob", text="1")
    stranger.ok("dm", to="bob", text="2")
    assert stranger.error("dm", to="bob", text="3") == "RATE_LIMITED"
    friend.ok("dm", to="bob", text="still gets in")
    h.clock.advance(1.0)
    stranger.ok("dm", to="bob", text="3")
    assert [dm.text for dm in h.store.mailboxes["bob"]] == ["1", "2", "still gets in", "3"]


def test_a_global_store_quota_refuses_with_store_full():
    h = Harness(max_stored_dms=3)
    secret, _ = _offline(h, "b1"), _offline(h, "b2")
    sender = h.login("sender")
    for to in ("b1", "b1", "b2"):
        sender.ok("dm", to=to, text="hi")
    reply = sender.request("dm", to="b2", text="one too many")
    assert reply.code == "STORE_FULL" and "no more DMs" in reply.message
    h.connect().ok("login", nick="b1", secret=secret)  # replayed and acknowledged
    sender.ok("dm", to="b2", text="room again")


# ---------------------------------------------------------------- churn

def test_presence_join_part_and_nick_are_on_a_slower_bucket():
    h = Harness(churn_rate=0.5, churn_burst=3)
    alice = h.login("alice")
    watchers = [h.login(f"w{n}") for n in range(20)]
    for w in watchers:
        w.ok("join", room="#tea")
    alice.ok("join", room="#tea")
    alice.ok("away", message="lunch")
    alice.ok("away")
    reply = alice.request("away", message="again")
    assert reply.code == "RATE_LIMITED" and "presence" in reply.message
    assert alice.error("part", room="#tea") == "RATE_LIMITED"
    assert alice.error("nick", nick="alicia") == "RATE_LIMITED"
    alice.ok("say", room="#tea", text="talking is not churn")
    alice.ok("ping")
    aways = watchers[0].events(p.AwayEvent)
    assert len(aways) == 2  # the refused one reached nobody
    h.clock.advance(2.0)
    alice.ok("part", room="#tea")


def test_toggling_away_in_a_full_room_fans_out_a_bounded_number_of_events():
    h = Harness()  # the defaults: 100 members, churn 0.5/s with a burst of 30
    alice = h.login("alice")
    members = [h.login(f"m{n}") for n in range(99)]
    for m in members:
        m.ok("join", room="#big")
    alice.ok("join", room="#big")
    for m in members:
        m.drain()
    for step in range(100):  # 20 toggles a second for 5 s
        alice.send_raw(p.encode(p.Away(id=1000 + step, message="x" if step % 2 else None)))
        h.clock.advance(0.05)
    got = len(members[0].events(p.AwayEvent))
    burst = h.config.churn_burst
    assert burst == 30 and got <= burst + 5 * h.config.churn_rate + 1


# ---------------------------------------------------------------- over-size requests

def test_an_over_size_request_is_answered_with_its_id():
    h = Harness()
    alice = h.login("alice")
    cap = h.config.limits.max_header_bytes
    first = b'{"t":"say","id":41,"room":"#tea","text":"' + b'\\"' * cap + b'"}'
    last = b'{"room":"#tea","text":"' + b"x" * cap + b'","t":"say","id":42}'
    for rid, data in ((41, first), (42, last)):
        alice.send_raw(data)
        reply = alice.messages()[-1]
        assert isinstance(reply, p.ErrorReply) and (reply.id, reply.code) == (rid, "TOO_LARGE")


# ---------------------------------------------------------------- one timer helper

def test_deadlines_skip_keys_discarded_early():
    clock, expired = Clock(), []
    deadlines: Deadlines[str] = Deadlines(clock, 10, expired.append)
    deadlines.add("a")
    clock.advance(5)
    deadlines.add("b")
    deadlines.discard("a")
    clock.advance(5)
    assert expired == [] and len(clock.getDelayedCalls()) == 1
    clock.advance(5)
    assert expired == ["b"] and clock.getDelayedCalls() == []


def test_deadlines_a_key_added_again_expires_once_at_its_new_deadline():
    clock, expired = Clock(), []
    deadlines: Deadlines[str] = Deadlines(clock, 10, expired.append)
    deadlines.add("a")
    deadlines.add("b")
    clock.advance(4)
    deadlines.add("a")  # again: now due at 14, after b
    clock.advance(6)
    assert expired == ["b"] and len(deadlines) == 1
    clock.advance(4)
    assert expired == ["b", "a"] and len(deadlines) == 0 and clock.getDelayedCalls() == []
    clock.advance(20)
    assert expired == ["b", "a"]


# ---------------------------------------------------------------- end to end

class SimulatedServer:
    """A real ServerEndpoint wired as the twistd plugin wires it
    (``session_config``), on the network simulator."""

    def __init__(self, config: ServerConfig, admission_: Admission) -> None:
        self.clock = clock = Clock()
        clock.advance(1_700_000_000)
        self.network = SimulatedNetwork(clock, seed=3, rtt=0.02)
        self.chat = ChatServer(MemoryStore(), clock, config, rng=random.Random(3))
        self.endpoint = ServerEndpoint(clock, lambda address: self.chat.build_protocol(),
                                       config=session_config(config), rng=random.Random(4),
                                       admission=admission_)
        self.network.attach(self.endpoint, ("127.0.0.10", 9999))
        self.chat.start()

    def run(self, seconds: float, stop=lambda: False) -> None:
        self.network.run(until=self.clock.seconds() + seconds, stop=stop)

    def connect(self, n: int) -> Recorder:
        endpoint = client_endpoint(self.clock, rng=random.Random(10 + n))
        self.network.attach(endpoint, ("127.0.0.20", 40000 + n))
        protocol = Recorder()
        endpoint.connect(("127.0.0.10", 9999), protocol)
        self.run(5, stop=lambda: protocol.connection is not None)
        assert protocol.connection is not None
        return protocol

    def request(self, user: Recorder, request) -> p.Message:
        before = len(user.messages)
        user.connection.send_message(p.encode(request))
        self.run(5, stop=lambda: len(user.messages) > before)
        return p.decode_server_message(user.messages[before])


def test_a_full_server_evicts_a_session_that_never_logged_in_not_a_logged_in_one():
    """The chat server vouches for a session at login (mark_trusted), so
    when the table is full the one that never logged in goes first."""
    config = ServerConfig(scrypt_n=16, scrypt_r=1, scrypt_p=1, max_sessions=2)
    assert admission(config).max_sessions == 2
    world = SimulatedServer(config, attrs.evolve(Admission.for_load_generators(), max_sessions=2))
    user = world.connect(1)
    assert isinstance(world.request(user, p.Login(id=1, nick="alice")), p.Ok)
    lurker = world.connect(2)
    world.run(1)
    newcomer = world.connect(3)  # the table is full: room is made
    world.run(3)
    assert [r.code for r in lurker.closed] == [CloseCode.SERVER_BUSY]
    assert user.closed == [] and newcomer.closed == []
    assert world.endpoint.counters.sessions_evicted == 1
    world.chat.stop()


def test_before_login_a_session_may_send_its_largest_login_and_little_more():
    """Issue 12, partial reassembly: a session not logged in is offered the
    window its largest login needs, not one of its largest message."""
    config = ServerConfig(scrypt_n=16, scrypt_r=1, scrypt_p=1)
    world = SimulatedServer(config, Admission.for_load_generators())
    user = world.connect(1)
    offered = user.connection.session.peer_parameters.receive_window
    assert offered == stranger_window(p.max_login_request_bytes()) < 8 * 1024
    protocol_doc = (Path(__file__).parents[2] / "docs" / "PROTOCOL.md").read_text()
    assert f"({offered:,} bytes" in protocol_doc  # what a client's author reads (Part 1 §4 WINDOW)
    assert user.connection.peer_max_message_size > 8 * offered  # big messages wait for login
    longest = sizes.WORST_ESCAPED_CHAR * p.SECRET_MAX_LENGTH
    worst = json.dumps({"t": "login", "id": p.MAX_REQUEST_ID, "nick": "n" * p.NICK_MAX_LENGTH,
                        "password": longest}, ensure_ascii=True).encode()
    user.connection.send_message(worst)
    world.run(5, stop=lambda: bool(user.messages))
    assert isinstance(p.decode_server_message(user.messages[0]), p.Ok)
    world.run(1)
    assert user.connection.session.peer_parameters.receive_window == SessionConfig().receive_window
    world.chat.stop()
