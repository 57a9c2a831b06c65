"""Sessions nobody vouched for (not logged in) get a bounded share of each
reactor turn, one source address at a time (issue 12): a burst of wrong
logins from hundreds of an attacker's sessions must not put a logged-in
user's line, or another newcomer's login, behind all of them. Every
datagram is moved by hand between endpoints on one ``task.Clock``, so a
test decides what arrives within one turn."""

from __future__ import annotations

import random

import attrs
from twisted.internet.task import Clock

from twistchat.endpoint.endpoint import ClientEndpoint, ServerEndpoint
from twistchat.endpoint.server import Admission

from .harness import Recorder
from .test_admission import next_reactor_turn
from .test_bad_input import RecordingTransport

SERVER = ("192.0.2.1", 9999)
ATTACKER = "198.51.100.66"
USER = "203.0.113.5"
NEWCOMER = "203.0.113.77"


class Wires:
    """A server endpoint and client endpoints (one per address), joined by
    the test: ``deliver`` moves what each has written to the other side."""

    def __init__(self, admission: Admission) -> None:
        self.clock = Clock()
        self.received: dict[tuple, Recorder] = {}
        self.server = ServerEndpoint(self.clock, self._protocol_for, rng=random.Random(3),
                                     admission=admission)
        self.server_wire = RecordingTransport()
        self.server.makeConnection(self.server_wire)
        self.clients: dict[tuple, tuple[ClientEndpoint, RecordingTransport, Recorder]] = {}

    def _protocol_for(self, address: tuple) -> Recorder:
        self.received[address] = Recorder()
        return self.received[address]

    def open(self, address: tuple) -> Recorder:
        """A client at ``address`` with a session to the server."""
        endpoint = ClientEndpoint(self.clock, rng=random.Random(hash(address)))
        wire = RecordingTransport()
        endpoint.makeConnection(wire)
        protocol = Recorder()
        self.clients[address] = (endpoint, wire, protocol)
        endpoint.connect(SERVER, protocol)
        self.settle()
        assert protocol.connection is not None
        return protocol

    def client_datagrams(self, address: tuple) -> list[bytes]:
        """What the client at ``address`` has written, taken off its wire."""
        _, wire, _ = self.clients[address]
        self.clock.advance(0)  # its flush
        written = [datagram for datagram, _ in wire.written]
        wire.written.clear()
        return written

    def to_server(self, datagrams: list[tuple[bytes, tuple]]) -> None:
        """Into the server in one reactor turn, in this order."""
        for datagram, address in datagrams:
            self.server.datagramReceived(datagram, address)

    def settle(self, seconds: float = 0.0) -> None:
        """Move datagrams both ways (and time on) until nothing is left to move."""
        deadline = self.clock.seconds() + seconds
        while True:
            self.clock.advance(0)
            moved = False
            for address, (endpoint, wire, _) in self.clients.items():
                for datagram, _ in wire.written:
                    self.server.datagramReceived(datagram, address)
                    moved = True
                wire.written.clear()
            self.clock.advance(0)
            for datagram, to in self.server_wire.written:
                if to in self.clients:
                    self.clients[to][0].datagramReceived(datagram, SERVER)
                    moved = True
            self.server_wire.written.clear()
            if not moved:
                if self.clock.seconds() >= deadline:
                    return
                self.clock.advance(min(0.05, deadline - self.clock.seconds()))

    def trust(self, address: tuple) -> None:
        handle, = [h for h in self.server.sessions.values() if h.session.peer_address == address]
        handle.connection.mark_trusted()
        self.settle()


def sessions_at(wires: Wires, host: str, count: int) -> list[tuple]:
    addresses = [(host, 20000 + n) for n in range(count)]
    for address in addresses:
        wires.open(address)
    return addresses


def one_message_each(wires: Wires, addresses: list[tuple], text: bytes) -> list[tuple[bytes, tuple]]:
    sent = []
    for address in addresses:
        wires.clients[address][2].connection.send_message(text + repr(address).encode())
        datagram, = wires.client_datagrams(address)
        sent.append((datagram, address))
    return sent


def arrived(wires: Wires, addresses: list[tuple]) -> list[tuple]:
    return [a for a in addresses if wires.received[a].messages]


LIMITS = attrs.evolve(Admission.for_load_generators(), stranger_datagrams_per_turn=8)


def test_a_logged_in_users_line_is_not_queued_behind_a_burst_of_strangers():
    wires = Wires(LIMITS)
    attackers = sessions_at(wires, ATTACKER, 40)
    user, = sessions_at(wires, USER, 1)
    wires.trust(user)
    burst = one_message_each(wires, attackers, b"login as owner, guess ")
    line = one_message_each(wires, [user], b"hello room")
    wires.to_server(burst + line)  # the user's line arrives behind 40 guesses
    next_reactor_turn(wires.clock)
    assert arrived(wires, [user]) == [user]
    assert len(arrived(wires, attackers)) <= 2 * LIMITS.stranger_datagrams_per_turn
    wires.settle()  # the strangers' turn comes: every one of their datagrams, none lost
    assert arrived(wires, attackers) == attackers
    assert wires.server.counters.stranger_datagrams_queued >= 40 - 2 * 8
    assert wires.server.counters.stranger_datagrams_dropped == 0


def test_waiting_strangers_are_served_one_source_at_a_time():
    """A newcomer's login behind an attacker's backlog waits for one of the
    attacker's datagrams per turn, not for all of them."""
    wires = Wires(attrs.evolve(LIMITS, stranger_datagrams_per_turn=2))
    attackers = sessions_at(wires, ATTACKER, 30)
    newcomer, = sessions_at(wires, NEWCOMER, 1)
    wires.to_server(one_message_each(wires, attackers, b"guess ")
                    + one_message_each(wires, [newcomer], b"login newcomer"))
    served_before = None
    for turn in range(1, 20):
        next_reactor_turn(wires.clock)
        if arrived(wires, [newcomer]):
            served_before = len(arrived(wires, attackers))
            break
    assert served_before is not None and served_before <= 4  # not behind 28 waiting guesses


def test_a_sources_share_of_the_queue_is_bounded_and_its_overflow_is_sent_again():
    admission = attrs.evolve(LIMITS, stranger_datagrams_per_turn=2,
                             max_queued_stranger_datagrams_per_source=10)
    wires = Wires(admission)
    attackers = sessions_at(wires, ATTACKER, 30)
    newcomer, = sessions_at(wires, NEWCOMER, 1)
    wires.to_server(one_message_each(wires, attackers, b"guess ")
                    + one_message_each(wires, [newcomer], b"login newcomer"))
    counters = wires.server.counters
    assert counters.stranger_datagrams_dropped == 30 - 2 - 10
    assert counters.stranger_datagrams_queued == 10 + 1  # the newcomer still had room
    wires.settle(seconds=5.0)  # loss recovery sends the dropped ones again
    assert arrived(wires, attackers + [newcomer]) == attackers + [newcomer]


def test_the_whole_queue_is_bounded_across_sources():
    admission = attrs.evolve(LIMITS, stranger_datagrams_per_turn=1, max_queued_stranger_datagrams=5)
    wires = Wires(admission)
    hosts = [f"198.51.{n}.9" for n in range(8)]
    everyone = [address for host in hosts for address in sessions_at(wires, host, 1)]
    wires.to_server(one_message_each(wires, everyone, b"hi "))
    assert wires.server.counters.stranger_datagrams_queued == 5
    assert wires.server.counters.stranger_datagrams_dropped == 8 - 1 - 5
