"""A client's list of servers (client/servers.py): how ``--host`` items are
read, and which server each attempt goes to: round robin, the back-off
waited once per round of the list, not once per server."""

from __future__ import annotations

import random

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock

from twistchat.chat import protocol as p
from twistchat.client import ChatClient, Disconnected, LinkState, ServerList, ServerListError
from twistchat.client.link import RECONNECT_DELAYS, RECONNECT_JITTER
from twistchat.client.servers import ServerRotation, parse_server
from twistchat.endpoint.api import CloseCode, CloseReason
from twistchat.endpoint.endpoint import ConnectError

from .harness import Recording
from .scripted import ScriptedServer, run

A, B, C = ("10.0.0.1", 9999), ("10.0.0.2", 9999), ("10.0.0.3", 9999)
HANDSHAKE_GIVES_UP = 10.0
"""Seconds a connect to a dead node takes to fail, as the real handshake's timeout."""
STEP = 0.05
"""``scripted.run``'s step: "at once" is within one."""


@pytest.mark.parametrize("text, expected", [
    ("chat.example", [("chat.example", 9999)]),
    ("a,b:9992, c:9993", [("a", 9999), ("b", 9992), ("c", 9993)]),
    ("127.0.0.1:1", [("127.0.0.1", 1)]),
    ("[::1]:9998,[fe80::1]", [("::1", 9998), ("fe80::1", 9999)]),
    ("::1", [("::1", 9999)]),                       # as a single --host always took it
])
def test_good_host_lists(text, expected) -> None:
    assert list(ServerList.parse(text, 9999)) == expected


@pytest.mark.parametrize("text, says", [
    ("", "no host"),
    ("a,,b", "no host"),
    ("a:", "port must be a number"),
    ("a:http", "port must be a number"),
    ("a:70000", "port must be a number"),
    ("a:0", "port must be a number"),
    ("[::1", "in brackets"),
    ("[chat.example]:1", "in brackets"),
    ("[::1]x", "only :PORT"),
    ("::1:zz:", "not an IPv6 address"),
    ("a b", "not a host name"),
    ("-a", "not a host name"),
    ("a,A:9999", "listed twice"),
])
def test_bad_host_lists_say_what_is_wrong(text, says) -> None:
    with pytest.raises(ServerListError, match=says):
        ServerList.parse(text, 9999)


def test_one_socket_cannot_talk_both_ip_versions() -> None:
    assert ServerList.parse("[::1]:1,[::2]:1", 9).ipv6 and not ServerList.parse("a,b", 9).ipv6
    with pytest.raises(ServerListError, match="IPv4 and IPv6"):
        ServerList.parse("127.0.0.1,[::1]", 9).ipv6


def test_a_single_address_and_a_list_are_both_taken() -> None:
    assert ServerList.of(A).addresses == (A,)
    assert ServerList.of([A, B]).names == ("10.0.0.1:9999", "10.0.0.2:9999")
    assert parse_server("[::1]:5", 9) == ("::1", 5)


def test_rotation_is_round_robin_and_says_where_rounds_begin() -> None:
    rotation = ServerRotation(ServerList([A, B, C]))
    assert rotation.current == A
    assert rotation.move_on(session_lost=True) and rotation.current == B   # a round begins at B
    assert not rotation.move_on() and rotation.current == C
    assert not rotation.move_on() and rotation.current == A
    assert rotation.move_on() and rotation.current == B                    # B, C, A tried: next round
    single = ServerRotation(ServerList([A]))
    assert single.move_on() and single.move_on(session_lost=True) and single.current == A


class Nodes:
    """Plays the ``ClientEndpoint`` for scripted nodes: a connect goes to the
    node at its address, or fails after ``HANDSHAKE_GIVES_UP`` for one that is down."""

    def __init__(self, clock: Clock, addresses) -> None:
        self.clock = clock
        self.nodes = {address: ScriptedServer(clock, address) for address in addresses}
        self.down: set = set()
        self.attempts: list[tuple[float, tuple]] = []

    def connect(self, address, protocol, server_key=None) -> defer.Deferred:
        self.attempts.append((self.clock.seconds(), address))
        if address not in self.down:
            return self.nodes[address].connect(address, protocol, server_key)
        failing: defer.Deferred = defer.Deferred()
        self.clock.callLater(HANDSHAKE_GIVES_UP, failing.errback, ConnectError(
            CloseReason(CloseCode.HANDSHAKE_FAILED, "no answer from the server")))
        return failing

    def die(self, address) -> None:
        """The node stops answering: its session ends as the transport gives up."""
        self.down.add(address)
        self.nodes[address].current.end(CloseReason(CloseCode.PEER_UNRESPONSIVE, "no acknowledgement"))


def on_nodes(addresses, **kwargs):
    clock = Clock()
    nodes = Nodes(clock, addresses)
    observer = Recording()
    client = ChatClient(clock, nodes, addresses, "alice", observer, rng=random.Random(1), **kwargs)
    return clock, nodes, client, observer


def waits(nodes: Nodes, since: float) -> list[float]:
    """Seconds between one failed attempt's end and the next attempt."""
    times = [since] + [t for t, _ in nodes.attempts]
    return [round(later - (earlier if i == 0 else earlier + HANDSHAKE_GIVES_UP), 3)
            for i, (earlier, later) in enumerate(zip(times, times[1:]))]


def within_jitter(wait: float, delay: float) -> bool:
    return delay * (1 - RECONNECT_JITTER) <= wait <= delay * (1 + RECONNECT_JITTER) + STEP


def at_once(gaps: list[float]) -> bool:
    return all(gap <= STEP for gap in gaps)


def test_a_lost_node_moves_the_client_round_robin_backing_off_once_per_round() -> None:
    clock, nodes, client, observer = on_nodes([A, B, C])
    client.connect()
    run(clock, 1)
    assert client.ready and client.address == A
    del nodes.attempts[:]
    lost_at = clock.seconds()
    nodes.down.update({B, C})
    nodes.die(A)
    run(clock, 3 * (3 * HANDSHAKE_GIVES_UP) + sum(RECONNECT_DELAYS[:3]) * 1.3)
    order = [address for _, address in nodes.attempts]
    assert order[:9] == [B, C, A] * 3
    gaps = waits(nodes, lost_at)[:9]
    assert within_jitter(gaps[0], RECONNECT_DELAYS[0]) and at_once(gaps[1:3])
    assert within_jitter(gaps[3], RECONNECT_DELAYS[1]) and at_once(gaps[4:6])
    assert within_jitter(gaps[6], RECONNECT_DELAYS[2]) and at_once(gaps[7:9])
    assert observer.of("server changed")[:3] == [
        ("server changed", "10.0.0.1:9999", "10.0.0.2:9999"),
        ("server changed", "10.0.0.2:9999", "10.0.0.3:9999"),
        ("server changed", "10.0.0.3:9999", "10.0.0.1:9999")]
    assert client.link_state is LinkState.RECONNECTING

    nodes.down.discard(C)                             # C is back: the client logs in there
    run(clock, 3 * HANDSHAKE_GIVES_UP + RECONNECT_DELAYS[3] * 1.3)
    assert client.ready and client.address == C and client.status().server == "10.0.0.3:9999"
    assert len(nodes.nodes[C].sent(p.Login)) == 1


def echo(request) -> dict:
    return {"room": request.room, "msg_id": 7, "ts": 1}


def test_a_say_in_flight_at_the_move_is_resent_with_its_key_and_answered_once() -> None:
    clock, nodes, client, _ = on_nodes([A, B])
    for node in nodes.nodes.values():
        node.results[p.Say] = echo
    nodes.nodes[A].silent.add(p.Say)                 # A takes the line and never answers
    client.connect()
    run(clock, 1)
    replies: list = []
    client.say("#tea", "in flight").addBoth(replies.append)
    run(clock, 1)
    nodes.die(A)
    client.say("#tea", "during the move").addBoth(replies.append)   # held, then sent on B
    run(clock, 5)
    assert client.ready and client.address == B
    (first,) = nodes.nodes[A].sent(p.Say)
    resent, held = nodes.nodes[B].sent(p.Say)
    assert resent.idem == first.idem and (resent.text, held.text) == ("in flight", "during the move")
    assert replies == [echo(first), echo(held)]


def test_a_first_connect_tries_each_server_once_then_fails() -> None:
    clock, nodes, client, observer = on_nodes([A, B])
    nodes.down.update({A, B})
    connecting = client.connect()
    failures: list = []
    connecting.addErrback(failures.append)
    run(clock, 2 * HANDSHAKE_GIVES_UP + 1)
    assert [address for _, address in nodes.attempts] == [A, B]
    assert len(failures) == 1 and failures[0].check(Disconnected)
    assert "10.0.0.2:9999" in failures[0].getErrorMessage()
    assert [retry for _, _, retry in observer.of("disconnected")] == [True]   # on to B, at once
    assert client.link_state is LinkState.IDLE


def test_a_first_connect_logs_in_on_the_second_server_when_the_first_is_down() -> None:
    clock, nodes, client, _ = on_nodes([A, B])
    nodes.down.add(A)
    connecting = client.connect()
    run(clock, HANDSHAKE_GIVES_UP + 1)
    assert connecting.called and client.ready and client.address == B


@pytest.mark.parametrize("code", ["UNAVAILABLE", "SHUTTING_DOWN", "RATE_LIMITED"])
def test_a_first_login_refused_for_now_moves_on_to_the_next_server(code) -> None:
    """A node that cannot reach its store (or is going down) refuses the
    login for now: another node of the network may well take it."""
    clock, nodes, client, _ = on_nodes([A, B])
    nodes.nodes[A].results[p.Login] = lambda request: p.ErrorReply(id=request.id, code=code)
    connecting = client.connect()
    run(clock, 2)
    assert connecting.called and client.ready and client.address == B
    assert not nodes.nodes[A].current.open  # the refused session was closed, not left half open


def test_keep_trying_backs_off_per_round_of_the_list() -> None:
    clock, nodes, client, _ = on_nodes([A, B], keep_trying=True)
    nodes.down.update({A, B})
    client.connect()
    run(clock, 4 * HANDSHAKE_GIVES_UP + RECONNECT_DELAYS[0] * 1.3)
    assert [address for _, address in nodes.attempts][:4] == [A, B, A, B]
    gaps = waits(nodes, 0.0)[1:4]
    assert at_once([gaps[0], gaps[2]]) and within_jitter(gaps[1], RECONNECT_DELAYS[0])


@pytest.mark.parametrize("code", [CloseCode.PEER_UNRESPONSIVE, CloseCode.RESET,
                                  CloseCode.SHUTTING_DOWN, CloseCode.IDLE_TIMEOUT])
def test_every_way_of_losing_a_node_moves_the_client_to_the_next(code) -> None:
    clock, nodes, client, observer = on_nodes([A, B])
    client.connect()
    run(clock, 1)
    nodes.nodes[A].current.end(CloseReason(code, "gone", by_peer=True))
    run(clock, RECONNECT_DELAYS[0] * 1.3)
    assert client.ready and client.address == B and len(nodes.nodes[B].sent(p.Login)) == 1
    assert observer.of("reconnected") == [("reconnected",)]
