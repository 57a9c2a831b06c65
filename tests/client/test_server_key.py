"""Pinned server keys, as ssh's known_hosts: the client library on the
network simulator against a real server and transport, in virtual time.
A server restarted with another static key is refused by a client that
pinned the old one, before anything is sent; accepting the new key is an
explicit choice."""

from __future__ import annotations

import pytest

from twistchat.client import ChatError, ClientState, KnownServers, ServerKeyMismatch
from twistchat.endpoint.keys import key_fingerprint

from .harness import SERVER, World, server_key

NAME = "127.0.0.10:9999"


class Pins(World):
    def pinned_client(self, nick: str, known: KnownServers, **kwargs):
        return self.client(nick, known_servers=known, **kwargs)

    def met_then_rekeyed(self, directory) -> tuple[str, str]:
        """alice pins the server's key in ``directory``'s known_servers and
        quits; then the server's key changes. The old and new fingerprints."""
        alice, _ = self.pinned_client("alice", KnownServers.load(directory))
        self.wait(alice.connect())
        old = key_fingerprint(self.server_key)
        self.wait(alice.quit())
        return old, self.new_key()

    def new_key(self):
        """The server dies and comes back on the same store with another key."""
        self.kill_server()
        self.run(1)
        self.start_server(static_key=server_key(self.seed + 1))
        return key_fingerprint(self.server_key)


def logins(world: World) -> list[str]:
    """Nicks the server has registered: a refused client must not have logged in."""
    return sorted(world.store.accounts)


def test_first_contact_pins_the_key_and_says_so(tmp_path):
    world = Pins()
    known = KnownServers.load(tmp_path)
    alice, sees = world.pinned_client("alice", known)
    world.wait(alice.connect())
    old = key_fingerprint(world.server_key)
    assert KnownServers.load(tmp_path).get(SERVER) == alice.server_key
    assert sees.log[0] == ("pinned", NAME, old, None)
    world.wait(alice.quit())
    # Later contacts hold to the pin and say nothing.
    again, again_sees = world.pinned_client("alice", KnownServers.load(tmp_path),
                                            state=alice.state)
    world.wait(again.connect())
    assert again_sees.of("pinned") == []


def test_a_server_with_another_key_is_refused_naming_both_fingerprints(tmp_path):
    world = Pins()
    old, new = world.met_then_rekeyed(tmp_path)
    sessions_before = len(world.server.sessions)
    bob, bob_sees = world.pinned_client("bob", KnownServers.load(tmp_path))
    with pytest.raises(ServerKeyMismatch) as refused:
        world.wait(bob.connect())
    error = refused.value
    assert (error.server, error.expected, error.proven, error.pinned) == (NAME, old, new, True)
    assert old in str(error) and new in str(error)
    world.run(5)
    assert "bob" not in logins(world)             # nothing was sent: no login, no registration
    assert not bob.connected and bob_sees.of("pinned") == []
    assert KnownServers.load(tmp_path).get(SERVER) != world.server_key.public_key().public_bytes_raw()
    world.run(60)  # the refused handshake's server side times out; the probe closed its own
    assert len(world.server.sessions) == sessions_before


def test_reconnects_keep_the_pin_and_give_up_on_a_changed_key():
    world = Pins()
    alice, sees = world.client("alice")   # no known_servers: pinned in memory
    world.wait(alice.connect())
    world.wait(alice.join("#tea"))
    old = key_fingerprint(world.server_key)
    new = world.new_key()
    held = alice.say("#tea", "typed while the server was away")
    failures = []
    held.addErrback(failures.append)
    world.run(90)
    assert not alice.connected
    (last,) = [entry for entry in sees.of("disconnected") if not entry[2]]
    assert old in last[1] and new in last[1]       # told why, with both fingerprints
    assert len(failures) == 1                      # the held line failed, was not sent
    reader, _ = world.client("reader")             # trusts whatever key it meets first
    world.wait(reader.connect())
    history = world.wait(reader.join("#tea"))["history"]
    assert "typed while the server was away" not in [entry["text"] for entry in history]


def test_accept_new_server_key_re_pins_it_once(tmp_path):
    world = Pins()
    alice, _ = world.pinned_client("alice", KnownServers.load(tmp_path),
                                   state=ClientState.load(tmp_path, "alice", "h", 1))
    world.wait(alice.connect())
    old = key_fingerprint(world.server_key)
    world.wait(alice.quit())
    new = world.new_key()
    state = ClientState.load(tmp_path, "alice", "h", 1)
    again, sees = world.pinned_client("alice", KnownServers.load(tmp_path), state=state,
                                      accept_new_server_key=True)
    assert not world.wait(again.connect())["registered"]    # same nick, same store
    assert sees.of("pinned") == [("pinned", NAME, new, old)]
    assert KnownServers.load(tmp_path).get(SERVER) == again.server_key
    # Accepted once: a further change is refused, on reconnect too.
    world.kill_server()
    world.run(1)
    world.start_server(static_key=server_key(world.seed + 2))
    world.run(90)
    assert not again.connected
    assert [entry for entry in sees.of("disconnected") if not entry[2]]


def test_server_key_given_up_front_is_required_even_on_first_contact(tmp_path):
    world = Pins()
    right = key_fingerprint(world.server_key)
    wrong = key_fingerprint(server_key(99))
    eve, _ = world.pinned_client("eve", KnownServers.load(tmp_path), server_key=wrong)
    with pytest.raises(ServerKeyMismatch) as refused:
        world.wait(eve.connect())
    assert (refused.value.expected, refused.value.proven, refused.value.pinned) == (wrong, right, False)
    world.run(5)
    assert "eve" not in logins(world)
    assert KnownServers.load(tmp_path).get(SERVER) is None   # nothing pinned
    alice, sees = world.pinned_client("alice", KnownServers.load(tmp_path), server_key=right)
    world.wait(alice.connect())
    assert sees.of("pinned") == [("pinned", NAME, right, None)]


def test_server_key_given_replaces_a_stale_pin_once_the_server_proves_it(tmp_path):
    world = Pins()
    old, new = world.met_then_rekeyed(tmp_path)
    bob, sees = world.pinned_client("bob", KnownServers.load(tmp_path), server_key=new)
    world.wait(bob.connect())
    assert sees.of("pinned") == [("pinned", NAME, new, old)]
    assert KnownServers.load(tmp_path).get(SERVER) == bob.server_key


def test_register_sends_the_current_credential_and_a_wrong_one_is_refused():
    world = World()
    alice, _ = world.client("alice")
    world.wait(alice.connect())
    with pytest.raises(ChatError) as refused:
        world.wait(alice.register("a long enough password", current="not my secret"))
    assert refused.value.code == "BAD_CREDENTIAL"
    world.wait(alice.register("a long enough password"))     # the secret it logged in with
    world.wait(alice.register("another long password"))      # now the password it set
    back, _ = world.client("alice", password="another long password")
    world.wait(back.connect())


OTHER_NODE = ("127.0.0.11", 9999)
"""Another node of the network: met before (its key pinned), not reachable now."""


def test_a_node_met_for_the_first_time_must_prove_the_key_its_network_proved():
    """The nodes of one network share a key: a client failing over to a node
    it never used is not a first contact, and someone on the path to that
    node cannot take its session there."""
    world = Pins()
    known = KnownServers(None)
    known.pin(OTHER_NODE, server_key(world.seed + 7).public_key().public_bytes_raw())
    bob, bob_sees = world.pinned_client("bob", known, servers=[SERVER, OTHER_NODE])
    with pytest.raises(ServerKeyMismatch) as refused:
        world.wait(bob.connect())
    error = refused.value
    assert error.server == NAME and error.proven == key_fingerprint(world.server_key)
    assert "the key of its network, pinned for 127.0.0.11:9999" in str(error)
    world.run(5)
    assert "bob" not in logins(world) and bob_sees.of("pinned") == []
    assert known.get(SERVER) is None


def test_a_new_node_proving_its_networks_key_is_pinned_too():
    world = Pins()
    known = KnownServers(None)
    network_key = world.server_key.public_key().public_bytes_raw()
    known.pin(OTHER_NODE, network_key)
    carol, carol_sees = world.pinned_client("carol", known, servers=[SERVER, OTHER_NODE])
    world.wait(carol.connect())
    assert carol.ready and known.get(SERVER) == network_key
    assert carol_sees.of("pinned") == [("pinned", NAME, key_fingerprint(world.server_key), None)]
