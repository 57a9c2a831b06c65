"""The proxy in virtual time on a fake reactor: routing, mapping, delays, expiry, stop."""

from __future__ import annotations

import subprocess
import sys

import pytest

from twistchat.netem import Impairment, ImpairmentProxy
from twistchat.netem.proxy import MAX_DATAGRAM_BYTES

from netem_fakes import FakeDatagramPort, FakeUDPReactor

LISTEN_PORT = 7000
TARGET = ("127.0.0.1", 9999)
ALICE = ("127.0.0.1", 50001)
BOB = ("127.0.0.1", 50002)
CAROL = ("127.0.0.1", 50003)
IDLE_TIMEOUT = 120.0


def make_proxy(
    reactor: FakeUDPReactor,
    up: Impairment | None = None,
    down: Impairment | None = None,
    **options: object,
) -> ImpairmentProxy:
    proxy = ImpairmentProxy(reactor, LISTEN_PORT, target=TARGET, impairment_up=up, impairment_down=down, **options)
    proxy.start()
    return proxy


def listening_port(reactor: FakeUDPReactor) -> FakeDatagramPort:
    return reactor.ports[0]


def upstream_ports(reactor: FakeUDPReactor) -> list[FakeDatagramPort]:
    return reactor.ports[1:]


def test_start_listens_where_asked_and_reports_the_port(fake_reactor: FakeUDPReactor) -> None:
    proxy = ImpairmentProxy(fake_reactor, 0, target=TARGET, listen_host="127.0.0.1")
    port = proxy.start()
    assert port == proxy.port == listening_port(fake_reactor).port
    assert listening_port(fake_reactor).interface == "127.0.0.1"
    assert listening_port(fake_reactor).max_packet_size >= MAX_DATAGRAM_BYTES


def test_target_must_be_an_ip_address(fake_reactor: FakeUDPReactor) -> None:
    with pytest.raises(ValueError, match="IP address"):
        ImpairmentProxy(fake_reactor, 0, target=("localhost", 9999))


def test_forwards_both_ways(fake_reactor: FakeUDPReactor) -> None:
    proxy = make_proxy(fake_reactor)
    listening_port(fake_reactor).receive(b"hello", ALICE)

    [upstream] = upstream_ports(fake_reactor)
    assert upstream.take_written() == [(b"hello", TARGET)]

    upstream.receive(b"hi alice", TARGET)
    assert listening_port(fake_reactor).take_written() == [(b"hi alice", ALICE)]
    assert proxy.counters.up.forwarded == proxy.counters.down.forwarded == 1


def test_datagrams_from_anyone_but_the_target_are_ignored(fake_reactor: FakeUDPReactor) -> None:
    proxy = make_proxy(fake_reactor)
    listening_port(fake_reactor).receive(b"hello", ALICE)
    upstream_ports(fake_reactor)[0].receive(b"spoofed", ("127.0.0.1", 6666))
    assert listening_port(fake_reactor).written == []
    assert proxy.counters.foreign_datagrams == 1 and proxy.counters.down.received == 0


def test_an_upstream_socket_lost_unexpectedly_is_replaced(fake_reactor: FakeUDPReactor) -> None:
    proxy = make_proxy(fake_reactor)
    listening_port(fake_reactor).receive(b"first", ALICE)
    upstream_ports(fake_reactor)[0].lose()
    assert proxy.client_addresses == []

    listening_port(fake_reactor).receive(b"second", ALICE)
    assert len(upstream_ports(fake_reactor)) == 2
    assert upstream_ports(fake_reactor)[1].take_written() == [(b"second", TARGET)]


def test_each_client_gets_its_own_upstream_socket(fake_reactor: FakeUDPReactor) -> None:
    proxy = make_proxy(fake_reactor)
    listening_port(fake_reactor).receive(b"from alice", ALICE)
    listening_port(fake_reactor).receive(b"from bob", BOB)
    listening_port(fake_reactor).receive(b"alice again", ALICE)

    alice_upstream, bob_upstream = upstream_ports(fake_reactor)
    assert alice_upstream.port != bob_upstream.port
    assert alice_upstream.take_written() == [(b"from alice", TARGET), (b"alice again", TARGET)]
    assert bob_upstream.take_written() == [(b"from bob", TARGET)]
    assert sorted(proxy.client_addresses) == [ALICE, BOB]

    bob_upstream.receive(b"to bob", TARGET)
    alice_upstream.receive(b"to alice", TARGET)
    assert listening_port(fake_reactor).take_written() == [(b"to bob", BOB), (b"to alice", ALICE)]


def test_delay_is_honoured_in_both_directions(fake_reactor: FakeUDPReactor) -> None:
    make_proxy(fake_reactor, up=Impairment(delay_ms=50.0), down=Impairment(delay_ms=30.0))
    listening_port(fake_reactor).receive(b"up", ALICE)
    [upstream] = upstream_ports(fake_reactor)

    fake_reactor.advance(0.049)
    assert upstream.written == []
    fake_reactor.advance(0.001)
    assert upstream.take_written() == [(b"up", TARGET)]

    upstream.receive(b"down", TARGET)
    fake_reactor.advance(0.029)
    assert listening_port(fake_reactor).written == []
    fake_reactor.advance(0.001)
    assert listening_port(fake_reactor).take_written() == [(b"down", ALICE)]


def test_constant_delay_keeps_order_even_for_simultaneous_datagrams(fake_reactor: FakeUDPReactor) -> None:
    make_proxy(fake_reactor, up=Impairment(delay_ms=10.0))
    for number in range(200):
        listening_port(fake_reactor).receive(b"%d" % number, ALICE)
    fake_reactor.advance(0.010)
    [upstream] = upstream_ports(fake_reactor)
    assert [datagram for datagram, _ in upstream.written] == [b"%d" % number for number in range(200)]


def test_jitter_reorders_and_each_datagram_arrives_within_its_bounds(fake_reactor: FakeUDPReactor) -> None:
    delay_ms, jitter_ms = 20.0, 10.0
    step_s, steps_between_sends, datagram_count = 0.0005, 2, 100
    make_proxy(fake_reactor, up=Impairment(delay_ms=delay_ms, jitter_ms=jitter_ms, seed=4))
    sent_at: dict[bytes, float] = {}
    arrived_at: dict[bytes, float] = {}
    for step in range(datagram_count * steps_between_sends + 100):
        if step % steps_between_sends == 0 and len(sent_at) < datagram_count:
            datagram = b"%d" % len(sent_at)
            sent_at[datagram] = fake_reactor.seconds()
            listening_port(fake_reactor).receive(datagram, ALICE)
        for port in upstream_ports(fake_reactor):
            for datagram, _ in port.take_written():
                arrived_at[datagram] = fake_reactor.seconds()
        fake_reactor.advance(step_s)

    assert set(arrived_at) == set(sent_at)
    for datagram, arrival in arrived_at.items():
        waited_ms = (arrival - sent_at[datagram]) * 1000
        assert delay_ms <= waited_ms + 1e-6 and waited_ms <= delay_ms + jitter_ms + step_s * 1000
    arrival_order = sorted(arrived_at, key=lambda datagram: (arrived_at[datagram], int(datagram)))
    assert arrival_order != sorted(sent_at, key=int)


def test_loss_and_duplication_are_applied_and_counted(fake_reactor: FakeUDPReactor) -> None:
    proxy = make_proxy(fake_reactor, up=Impairment(loss=1.0), down=Impairment(duplicate=1.0))
    listening_port(fake_reactor).receive(b"lost", ALICE)
    [upstream] = upstream_ports(fake_reactor)
    assert upstream.written == []

    upstream.receive(b"twice", TARGET)
    assert listening_port(fake_reactor).take_written() == [(b"twice", ALICE)] * 2
    up, down = proxy.counters.up, proxy.counters.down
    assert (up.received, up.dropped, up.forwarded) == (1, 1, 0)
    assert (down.received, down.duplicated, down.forwarded) == (1, 1, 2)


def test_counters_account_for_every_copy(fake_reactor: FakeUDPReactor) -> None:
    impairment = dict(loss=0.2, duplicate=0.2, delay_ms=5.0, jitter_ms=20.0)
    proxy = make_proxy(fake_reactor, up=Impairment(seed=1, **impairment), down=Impairment(seed=2, **impairment))
    for number in range(1000):
        listening_port(fake_reactor).receive(b"%d" % number, ALICE)
        upstream_ports(fake_reactor)[0].receive(b"%d" % number, TARGET)
        fake_reactor.advance(0.001)
    fake_reactor.advance(0.010)  # some still in flight
    proxy.stop()

    for direction in (proxy.counters.up, proxy.counters.down):
        assert direction.received == 1000
        assert 100 < direction.dropped < 300 and 100 < direction.duplicated < 300
        assert direction.cancelled > 0
        assert direction.received + direction.duplicated == (
            direction.dropped + direction.forwarded + direction.cancelled + direction.send_errors
        )


def test_idle_mapping_expires_and_closes_its_socket(fake_reactor: FakeUDPReactor) -> None:
    proxy = make_proxy(fake_reactor, idle_timeout=IDLE_TIMEOUT)
    listening_port(fake_reactor).receive(b"hello", ALICE)
    [upstream] = upstream_ports(fake_reactor)

    fake_reactor.advance(IDLE_TIMEOUT - 1)
    assert proxy.client_addresses == [ALICE] and upstream.listening
    fake_reactor.advance(1)
    assert proxy.client_addresses == [] and not upstream.listening
    assert proxy.counters.clients.expired == 1
    assert fake_reactor.getDelayedCalls() == []

    listening_port(fake_reactor).receive(b"back", ALICE)
    assert len(upstream_ports(fake_reactor)) == 2
    assert proxy.counters.clients.opened == 2


@pytest.mark.parametrize("direction", ["from client", "from target"])
def test_traffic_either_way_keeps_a_mapping_alive(fake_reactor: FakeUDPReactor, direction: str) -> None:
    proxy = make_proxy(fake_reactor, idle_timeout=IDLE_TIMEOUT)
    listening_port(fake_reactor).receive(b"hello", ALICE)
    [upstream] = upstream_ports(fake_reactor)

    for _ in range(5):
        fake_reactor.advance(IDLE_TIMEOUT / 2)
        if direction == "from client":
            listening_port(fake_reactor).receive(b"still here", ALICE)
        else:
            upstream.receive(b"still here", TARGET)
    assert upstream.listening

    fake_reactor.advance(IDLE_TIMEOUT)
    assert not upstream.listening and proxy.client_addresses == []


def test_clients_beyond_the_cap_are_refused_until_one_expires(fake_reactor: FakeUDPReactor) -> None:
    proxy = make_proxy(fake_reactor, idle_timeout=IDLE_TIMEOUT, max_clients=2)
    listening_port(fake_reactor).receive(b"a", ALICE)
    fake_reactor.advance(IDLE_TIMEOUT / 2)
    listening_port(fake_reactor).receive(b"b", BOB)
    listening_port(fake_reactor).receive(b"c", CAROL)
    assert sorted(proxy.client_addresses) == [ALICE, BOB]
    assert len(upstream_ports(fake_reactor)) == 2
    assert proxy.counters.clients.refused_datagrams == 1

    fake_reactor.advance(IDLE_TIMEOUT / 2)  # Alice expires
    listening_port(fake_reactor).receive(b"c", CAROL)
    assert sorted(proxy.client_addresses) == [BOB, CAROL]
    assert upstream_ports(fake_reactor)[-1].take_written() == [(b"c", TARGET)]


def test_datagram_delayed_past_its_mappings_expiry_is_not_sent(fake_reactor: FakeUDPReactor) -> None:
    proxy = make_proxy(fake_reactor, up=Impairment(delay_ms=5_000.0), idle_timeout=1.0)
    listening_port(fake_reactor).receive(b"slow", ALICE)
    [upstream] = upstream_ports(fake_reactor)
    fake_reactor.advance(1.0)
    assert not upstream.listening
    fake_reactor.advance(5.0)  # the fake would assert on a write to a closed port
    assert proxy.counters.up.cancelled == 1 and proxy.counters.up.forwarded == 0


def test_stop_closes_every_socket_and_cancels_every_timer(fake_reactor: FakeUDPReactor) -> None:
    proxy = make_proxy(fake_reactor, up=Impairment(delay_ms=100.0), down=Impairment(delay_ms=100.0))
    listening_port(fake_reactor).receive(b"a", ALICE)
    listening_port(fake_reactor).receive(b"b", BOB)
    upstream_ports(fake_reactor)[0].receive(b"to alice", TARGET)

    stopped = proxy.stop()
    assert stopped.called
    assert not any(port.listening for port in fake_reactor.ports)
    assert fake_reactor.getDelayedCalls() == []
    assert proxy.counters.up.cancelled == 2 and proxy.counters.down.cancelled == 1


def test_send_errors_are_counted_not_raised(fake_reactor: FakeUDPReactor) -> None:
    proxy = make_proxy(fake_reactor)

    def refuse(datagram: bytes, address: object = None) -> None:
        raise OSError(105, "No buffer space available")

    listening_port(fake_reactor).write = refuse
    listening_port(fake_reactor).receive(b"hello", ALICE)
    upstream_ports(fake_reactor)[0].receive(b"reply", TARGET)
    assert proxy.counters.down.send_errors == 1 and proxy.counters.down.forwarded == 0


def test_library_does_not_import_the_global_reactor() -> None:
    check = (
        "import sys, twistchat.netem, twistchat.netem.proxy, twistchat.netem.impairment;"
        "sys.exit('twisted.internet.reactor' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", check], timeout=30).returncode == 0
