"""A node of the network dies: its client notices (the transport gives up on
what the node never acknowledged), moves to the next node of its list, logs
in there and catches up from history, nothing lost, nothing doubled
(docs/CLUSTER.md, "Failure"). Two real ChatServers on one store and one
key, as two nodes of one network, on the simulated network in virtual time."""

from __future__ import annotations

from twistchat.client import ClientState, KnownServers, LinkState
from twistchat.client.servers import ServerList

from .harness import SERVER, World
from .test_resend import AFTER_ACK, history_texts, said

NODE_B = ("127.0.0.11", 9999)
NETWORK = [SERVER, NODE_B]
GIVE_UP_AND_MOVE = 60
"""Virtual seconds enough for the transport to give up (15 s), the back-off
and the login on the other node."""


class TwoNodes(World):
    """Node A at ``harness.SERVER`` (the world's own server), node B at
    ``NODE_B``: one store, one key."""

    def __init__(self, start_b: bool = True) -> None:
        super().__init__()
        if start_b:
            self.start_b()

    def start_b(self) -> None:
        """Node B reads the memberships kept in the store when it starts (a
        node's own cache of them; keeping it in step across nodes is the
        cluster's, docs/CLUSTER.md): start it after the joins it must know."""
        self.node_b, self.node_b_endpoint = self.start_node(NODE_B, seed=7)


def room_lines(observer, room: str = "#tea") -> list[tuple[str, str]]:
    return [(nick, text) for _, where, nick, text, _ in observer.of("message") if where == room]


def test_a_dead_node_s_client_logs_in_on_the_next_and_misses_nothing_nor_sees_it_twice():
    world = TwoNodes(start_b=False)
    alice, alice_sees = world.client("alice", servers=NETWORK)
    world.wait(alice.connect())
    world.wait(alice.join("#tea"))
    world.wait(alice.say("#tea", "before"))
    world.start_b()
    bob, _ = world.client("bob", servers=NODE_B)
    world.wait(bob.connect())
    world.wait(bob.join("#tea"))
    assert alice.status().server == "127.0.0.10:9999"
    world.kill_server_before(said, after=AFTER_ACK)   # A commits the line, then dies unanswered
    in_flight = alice.say("#tea", "in flight")
    world.run(2)
    assert not world.server_alive
    for n in range(3):                                 # said on B while alice is away
        world.wait(bob.say("#tea", f"missed {n}"))
    reply = world.wait(in_flight, limit=GIVE_UP_AND_MOVE)

    assert alice.link_state is LinkState.READY and alice.status().server == "127.0.0.11:9999"
    assert "the server stopped answering" in alice_sees.of("disconnected")[0][1]
    assert alice_sees.of("server changed") == [("server changed", "127.0.0.10:9999", "127.0.0.11:9999")]
    assert history_texts(world).count("in flight") == 1     # the resend was answered, not posted
    assert reply["msg_id"] == world.store.history["#tea"][1].msg_id
    world.run(5)
    assert room_lines(alice_sees) == [            # each once, in order; her own line whose
        ("alice", "in flight"),                   # answer died with A comes from history
        ("bob", "missed 0"), ("bob", "missed 1"), ("bob", "missed 2")]
    assert alice_sees.of("rejoined")[0][1] == "#tea"   # put back by B, not re-joined by hand
    world.wait(bob.say("#tea", "live on B"))
    world.run(1)
    assert room_lines(alice_sees)[-1] == ("bob", "live on B")


def test_moving_to_a_node_already_pinned_is_silent_and_a_new_node_is_pinned(tmp_path):
    world = TwoNodes()
    known = KnownServers.load(tmp_path)
    alice, alice_sees = world.client("alice", servers=NETWORK, known_servers=known)
    world.wait(alice.connect())
    assert [entry[1] for entry in alice_sees.of("pinned")] == ["127.0.0.10:9999"]
    world.kill_server()
    alice.ping()                                       # unacknowledged: the transport gives up
    world.run(GIVE_UP_AND_MOVE)
    assert alice.ready and alice.status().server == "127.0.0.11:9999"
    assert [entry[1] for entry in alice_sees.of("pinned")] == ["127.0.0.10:9999", "127.0.0.11:9999"]
    assert KnownServers.load(tmp_path).get(NODE_B) == alice.server_key  # the network's one key

    again, again_sees = world.client("carol", servers=[NODE_B, SERVER],
                                     known_servers=KnownServers.load(tmp_path))
    world.wait(again.connect())                        # on B, pinned by alice's move
    world.start_server()
    world.kill_node(world.node_b, world.node_b_endpoint, NODE_B)
    again.ping()
    world.run(GIVE_UP_AND_MOVE)
    assert again.ready and again.status().server == "127.0.0.10:9999"
    assert again_sees.of("pinned") == []               # both pinned already: not a word


def test_the_state_is_the_network_s_so_moving_node_keeps_the_marks(tmp_path):
    world = TwoNodes()
    state = ClientState.for_network(tmp_path, "alice", NETWORK)
    alice, _ = world.client("alice", servers=NETWORK, state=state)
    world.wait(alice.connect())
    world.wait(alice.join("#tea"))
    world.wait(alice.say("#tea", "marked"))
    world.kill_server()
    alice.ping()
    world.run(GIVE_UP_AND_MOVE)
    assert alice.ready and alice.status().server == "127.0.0.11:9999"
    files = sorted(path.name for path in tmp_path.iterdir())
    assert files == ["alice@127.0.0.10_9999.json"]     # one file for the network, not one per node
    kept = ClientState.for_network(tmp_path, "alice", ServerList(NETWORK))  # as the CLI gives it
    assert kept.secret == state.secret and kept.last_seen["#tea"] == world.store.history["#tea"][0].msg_id


def test_an_old_single_server_state_file_still_loads_for_its_network(tmp_path):
    old = ClientState.load(tmp_path, "alice", *NODE_B)  # as a client of node B alone wrote it
    old.secret, old.last_seen = "the secret", {"#tea": 41}
    old.save()
    as_second = ClientState.for_network(tmp_path, "alice", NETWORK)
    assert (as_second.secret, as_second.last_seen) == ("the secret", {"#tea": 41})
    as_second.saw("#tea", 42)
    as_second.save()                                   # from now on it is the network's file
    assert ClientState.load(tmp_path, "alice", *SERVER).last_seen == {"#tea": 42}
    assert ClientState.for_network(tmp_path, "alice", [NODE_B]).last_seen == {"#tea": 41}


def test_an_idle_client_notices_by_keepalive_and_moves_within_the_idle_timeout():
    world = TwoNodes()
    alice, alice_sees = world.client("alice", servers=NETWORK)
    world.wait(alice.connect())
    world.kill_server()                                # nothing of alice's is in flight
    world.run(45 + 5)                                  # a keepalive (<= 30 s) unacked 15 s, then the move
    assert alice.ready and alice.status().server == "127.0.0.11:9999"
    (why,) = [reason for _, reason, _ in alice_sees.of("disconnected")]
    assert why.startswith("the server stopped answering")   # its keepalive went unacknowledged
