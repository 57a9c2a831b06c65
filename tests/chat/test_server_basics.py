"""Login, identities, robustness: what every client relies on first."""

from __future__ import annotations

from twistchat.chat import protocol as p
from twistchat.chat.server import identities
from twistchat.endpoint.api import CloseCode

from .fakes import Harness

DAY = 24 * 3600


def test_password_less_registration_returns_a_secret_that_logs_in_again(h: Harness):
    alice = h.connect()
    reply = alice.ok("login", nick="Alice")
    assert reply["registered"] is True and reply["nick"] == "Alice"
    secret = reply["secret"]
    assert reply["keepalive"] == 25 and reply["idle_timeout"] == 75
    alice.ok("quit")
    again = h.connect()
    reply = again.ok("login", nick="alice", secret=secret)
    assert reply["registered"] is False and "secret" not in reply.result
    assert reply["nick"] == "Alice"  # registered spelling


def test_store_holds_only_a_salted_scrypt_hash(h: Harness):
    secret = h.connect().ok("login", nick="alice")["secret"]
    h.login("bob", password="correct horse")
    for account, credential in ((h.store.accounts["alice"], secret),
                                (h.store.accounts["bob"], "correct horse")):
        assert credential not in account.credential
        scheme, n, r, pp, salt, digest = account.credential.split("$")
        assert (scheme, n) == ("scrypt", "16")
        assert identities.verify_credential(credential, account.credential)
    assert h.store.accounts["bob"].has_password and not h.store.accounts["alice"].has_password


def test_wrong_credential_is_refused_and_changes_nothing(h: Harness):
    alice = h.login("alice", password="correct horse")
    before = dict(h.store.accounts)
    intruder = h.connect()
    assert intruder.error("login", nick="ALICE", password="wrong horse") == "BAD_CREDENTIAL"
    assert intruder.error("login", nick="alice") == "BAD_CREDENTIAL"
    assert intruder.error("login", nick="alice", secret="guess") == "BAD_CREDENTIAL"
    assert h.store.accounts == before
    assert alice.closed is None and h.server.online["alice"].session is alice.protocol
    assert intruder.error("join", room="#x") == "NOT_LOGGED_IN"


def test_newest_login_wins_and_old_session_is_told_why(h: Harness):
    old = h.login("alice", password="correct horse")
    bob = h.login("bob", password="correct horse")
    old.ok("join", room="#tea")
    bob.ok("join", room="#tea")
    old.drain(); bob.drain()
    new = h.connect()
    new.ok("login", nick="alice", password="correct horse")
    assert old.events(p.ReplacedEvent)
    assert old.closed[1] == CloseCode.REPLACED
    quits = bob.events(p.QuitEvent)
    assert [(q.nick, q.reason) for q in quits] == [("alice", "replaced")]
    assert h.server.online["alice"].session is new.protocol
    # The old session's late death must not evict the new one.
    old.connection.peer_vanishes()
    assert h.server.online["alice"].session is new.protocol
    assert "tea" not in h.server.sessions[new.protocol].rooms


def test_add_and_change_password(h: Harness):
    secret = h.connect().ok("login", nick="alice")["secret"]
    alice = h.connect()
    alice.ok("login", nick="alice", secret=secret)
    assert alice.error("set_password", password="short", current=secret) == "WEAK_PASSWORD"
    alice.ok("set_password", password="a long password", current=secret)
    assert h.connect().error("login", nick="alice", secret=secret) == "BAD_CREDENTIAL"
    again = h.connect()
    again.ok("login", nick="alice", password="a long password")
    again.ok("set_password", password="another long one", current="a long password")
    h.connect().ok("login", nick="alice", password="another long one")


def test_set_password_needs_the_current_credential(h: Harness):
    """A session left open (or taken over) cannot take the nick for good."""
    secret = h.connect().ok("login", nick="alice")["secret"]
    alice = h.connect()
    alice.ok("login", nick="alice", secret=secret)
    before = dict(h.store.accounts)
    alice.send_raw(b'{"t": "set_password", "id": 99, "password": "a long password"}')
    (missing,) = [m for m in alice.messages() if getattr(m, "id", None) == 99]
    assert missing.code == "BAD_FIELD"  # current is required
    assert alice.error("set_password", password="a long password",
                       current="not the secret") == "BAD_CREDENTIAL"
    assert h.store.accounts == before
    h.connect().ok("login", nick="alice", secret=secret)  # still the old credential
    bob = h.login("bob", password="bob's password")
    assert bob.error("set_password", password="a long password",
                     current=secret) == "BAD_CREDENTIAL"  # alice's secret is not bob's
    bob.ok("set_password", password="a long password", current="bob's password")


def test_password_less_registration_expires_after_absence_but_password_ones_do_not():
    h = Harness(unclaimed_expiry=30 * DAY)
    alice_secret = h.connect().ok("login", nick="alice")["secret"]
    h.connect().ok("login", nick="bob", password="a long password")
    for session in list(h.server.sessions):
        session.connection.close("bye")
    h.clock.advance(29 * DAY)
    h.connect().ok("login", nick="alice", secret=alice_secret).result  # still valid, refreshes
    for session in list(h.server.sessions):
        session.connection.close("bye")
    h.clock.advance(31 * DAY)
    reply = h.connect().ok("login", nick="alice")  # anybody may take the lapsed nick
    assert reply["registered"] is True and reply["secret"] != alice_secret
    assert h.connect().error("login", nick="bob") == "BAD_CREDENTIAL"


def test_reaper_purges_lapsed_registrations_and_their_mailboxes():
    h = Harness(unclaimed_expiry=DAY, purge_interval=3600, idle_timeout=10 * DAY)
    h.connect().ok("login", nick="ghost")
    for session in list(h.server.sessions):
        session.connection.close("bye")
    bob = h.login("bob", password="a long password")
    assert bob.ok("dm", to="ghost", text="hello?")["status"] == "stored"
    bob_keepalive = 0
    for _ in range(30):
        h.advance(3600, step=5)
        bob_keepalive += 1
        bob.ok("ping")
    assert "ghost" not in h.store.accounts and "ghost" not in h.store.mailboxes
    assert "bob" in h.store.accounts


def test_nick_change_moves_identity_and_tells_rooms(h: Harness):
    alice = h.login("alice", password="a long password")
    bob = h.login("bob", password="a long password")
    alice.ok("join", room="#tea")
    bob.ok("join", room="#tea")
    bob.drain()
    assert alice.error("nick", nick="BOB") == "NICK_TAKEN"
    assert alice.ok("nick", nick="Alicia")["nick"] == "Alicia"
    assert [(e.old, e.new) for e in bob.events(p.NickEvent)] == [("alice", "Alicia")]
    assert "alice" not in h.store.accounts and h.store.accounts["alicia"].nick == "Alicia"
    assert alice.ok("who", room="#tea")["members"][0] == {"nick": "Alicia", "away": None, "op": True}
    alice.ok("nick", nick="ALICIA")  # own nick, other case
    # old nick is free again
    h.connect().ok("login", nick="alice")
    h.connect().ok("login", nick="Alicia", password="a long password")


def test_login_rules(h: Harness):
    c = h.connect()
    assert c.error("login", nick="bob", password="short") == "WEAK_PASSWORD"
    c.ok("login", nick="bob", password="a long password")
    assert c.error("login", nick="bob", password="a long password") == "ALREADY_LOGGED_IN"


def test_bad_input_gets_errors_and_never_disturbs_others(h: Harness):
    alice = h.login("alice")
    bob = h.login("bob")
    alice.ok("join", room="#tea")
    bob.ok("join", room="#tea")
    bob.drain()
    for garbage in [b"\xff", b"{", b'{"t":"nope","id":103}', b'{"t":"say","id":104,"room":"#tea","text":7}',
                    b'{"t":"say","id":105,"room":"#tea","text":"' + b"x" * 5000 + b'"}', b"",
                    b'{"t":"message","id":106}']:
        alice.send_raw(garbage)
    errors = [m for m in alice.messages() if isinstance(m, p.ErrorReply)]
    assert [e.code for e in errors] == ["BAD_MESSAGE", "BAD_MESSAGE", "UNKNOWN_TYPE", "BAD_FIELD",
                                        "TOO_LARGE", "BAD_MESSAGE", "UNKNOWN_TYPE"]
    assert bob.events() == []
    assert alice.closed is None
    assert alice.error("say", room="#other", text="hi") == "NOT_IN_ROOM"
    assert alice.ok("say", room="#tea", text="still fine")


def test_an_internal_failure_becomes_an_error_reply_not_a_traceback(h: Harness, monkeypatch):
    alice = h.login("alice")

    def broken(*args, **kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr(h.server, "_handlers", {**h.server._handlers, p.Ping: broken})
    assert alice.error("ping") == "INTERNAL"
    assert alice.ok("rooms")
    from twisted.python import log  # noqa: F401  (the failure is logged, not raised)


def test_a_say_whose_commit_fails_or_fails_after_it_is_answered_internal(h: Harness, monkeypatch):
    """Exactly one answer either way: the store refusing the line (nobody
    hears it), or what comes after its commit raising."""
    from twisted.internet.defer import fail

    alice, bob = h.login("alice"), h.login("bob")
    for member in (alice, bob):
        member.ok("join", room="#tea")
    bob.drain()
    with monkeypatch.context() as patched:
        patched.setattr(h.store, "append_history", lambda *a, **k: fail(RuntimeError("disk")))
        assert alice.error("say", room="#tea", text="lost") == "INTERNAL"
    assert bob.events(p.MessageEvent) == []
    with monkeypatch.context() as patched:
        def broken(*args, **kwargs):
            raise RuntimeError("boom")
        patched.setattr(h.server.memberships, "deliver", broken)
        alice.send_raw(p.encode(p.Say(id=90, room="#tea", text="kept, not sent")))
    answers = [m for m in alice.messages() if isinstance(m, p.Ok | p.ErrorReply) and m.id == 90]
    assert [(type(m), m.code) for m in answers] == [(p.ErrorReply, "INTERNAL")]
    assert alice.ok("say", room="#tea", text="fine")["msg_id"]
    assert [e.text for e in bob.events(p.MessageEvent)] == ["fine"]


def test_ping_replies_with_server_time(h: Harness):
    alice = h.login("alice")
    reply = alice.ok("ping")
    assert reply["ts"] == int(h.clock.seconds() * 1000) and reply["keepalive"] == 25
