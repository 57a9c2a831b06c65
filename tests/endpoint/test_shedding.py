"""Shedding (issue 12, HELLO flood): a prefix refused more often than any
honest network is ignored for a while, its sessions' DATA excepted; the
period doubles for a prefix that floods again soon after. Datagrams are fed
into a server endpoint on a ``task.Clock``; the kernel filter's program is
run by a small interpreter of the classic BPF it uses."""

from __future__ import annotations

import ipaddress
import struct

import attrs

from twistchat.endpoint.ratelimit import Rate
from twistchat.endpoint.server import Admission
from twistchat.endpoint.shedding import ShedPolicy, Shedder
from twistchat.endpoint import socket_filter
from twistchat.endpoint.socket_filter import program
from twistchat.wire.packets import PROTOCOL_VERSION, PacketType

from .test_bad_input import cookie_for, hello, make_server
from .test_admission import connect_from

POLICY = ShedPolicy(refusals=Rate(per_second=10, burst=50), first_period=5.0, max_period=40.0)
ADMISSION = Admission(cookies_per_address=Rate(per_second=1, burst=2),
                      cookies_per_prefix=Rate(per_second=1000, burst=1000), shedding=POLICY)
FLOODER = ("203.0.113.7", 4000)


def flood(server, count, source=FLOODER, first_cid=1000):
    for cid in range(first_cid, first_cid + count):
        server.datagramReceived(hello(cid), source)


def test_refusals_past_the_burst_shed_the_prefix_then_it_is_released():
    shedder = Shedder(POLICY)
    assert [shedder.refused("203.0.113.7", 0.0) for _ in range(50)] == [None] * 50
    assert shedder.refused("203.0.113.8", 0.0) == "203.0.113.0/24"  # same /24
    assert shedder.is_shed("203.0.113.200") and not shedder.is_shed("203.0.114.1")
    assert shedder.next_release() == 5.0
    assert not shedder.release_due(4.9)
    assert shedder.release_due(5.0) and not shedder


def test_a_prefix_that_floods_again_soon_is_shed_twice_as_long_up_to_the_cap():
    shedder = Shedder(POLICY)
    now, periods = 0.0, []
    for _ in range(5):
        while shedder.refused("203.0.113.7", now) is None:
            pass
        periods.append(shedder.period("203.0.113.0/24"))
        now = shedder.next_release()
        shedder.release_due(now)
    assert periods == [5.0, 10.0, 20.0, 40.0, 40.0]


def test_a_released_prefix_that_floods_on_is_shed_again_after_its_probation_not_the_full_burst():
    shedder = Shedder(POLICY)
    first = 0
    while shedder.refused("203.0.113.7", 0.0) is None:
        first += 1
    shedder.release_due(5.0)
    again = 0
    while shedder.refused("203.0.113.7", 5.0) is None:
        again += 1
    assert (first, again) == (POLICY.refusals.burst, POLICY.probation_refusals.burst)
    shedder.release_due(5.0 + 10.0)
    later = 15.0 + POLICY.max_period + 1  # quiet for long: the full burst again
    assert [shedder.refused("203.0.113.7", later) for _ in range(50)] == [None] * 50


def test_a_prefix_quiet_for_long_starts_again_at_the_first_period():
    shedder = Shedder(POLICY)
    while shedder.refused("203.0.113.7", 0.0) is None:
        pass
    shedder.release_due(5.0)
    now = 5.0 + POLICY.max_period + 1
    while shedder.refused("203.0.113.7", now) is None:
        pass
    assert shedder.period("203.0.113.0/24") == 5.0


def test_the_shed_table_is_bounded():
    shedder = Shedder(attrs.evolve(POLICY, max_prefixes=3))
    for block in range(5):
        while shedder.refused(f"198.51.{block}.1", 0.0) is None and len(shedder.prefixes) < 3:
            pass
    assert len(shedder.prefixes) == 3


def test_a_hello_flood_is_shed_but_other_prefixes_still_get_cookies():
    server, transport, clock, opened = make_server(ADMISSION)
    flood(server, 2 + 50 + 1)  # 2 answered, 50 refused within the burst, the next sheds
    assert server.counters.cookies_sent == 2 and server.counters.prefixes_shed == 1
    answered = len(transport.written)
    flood(server, 1000, first_cid=5000)
    assert len(transport.written) == answered  # not answered, not even counted as refused
    assert server.counters.shed == 1000 and server.counters.cookies_throttled == 51
    assert cookie_for(server, transport, ("198.51.100.1", 1000))  # another prefix: served


def test_a_shed_prefix_keeps_its_sessions_and_is_served_again_after_the_period():
    server, transport, clock, opened = make_server(ADMISSION)
    office = ("203.0.113.50", 7000)
    server.datagramReceived(connect_from(server, transport, office, 9), office)
    (handle,) = server.sessions.values()
    flood(server, 60)
    assert server.counters.prefixes_shed == 1
    transport.written.clear()
    handle.connection.send_message(b"to the office")
    clock.advance(0)
    assert {to for _, to in transport.written} == {office}  # its session still talks
    shed_before = server.counters.shed
    forged = first_byte(PacketType.DATA)[:1] + handle.session.local_cid.to_bytes(8, "big") + bytes(40)
    server.datagramReceived(forged, office)  # DATA from the shed prefix reaches its session
    assert server.counters.shed == shed_before and handle.session.stats.unauthenticated == 1
    server.datagramReceived(hello(76), ("203.0.113.51", 7001))
    assert server.counters.shed == shed_before + 1  # a handshake from it does not
    clock.advance(POLICY.first_period)
    transport.written.clear()
    server.datagramReceived(hello(77), ("203.0.113.51", 7001))
    assert len(transport.written) == 1  # a cookie again


def test_load_generators_are_never_shed():
    server, transport, clock, opened = make_server(Admission.for_load_generators())
    flood(server, 3000)
    assert server.counters.prefixes_shed == 0 and server.counters.cookies_sent == 3000


# -- the kernel filter's program -------------------------------------------------

def run_filter(code, source: str, payload: bytes) -> bool:
    """Classic BPF, the instructions ``program`` emits, on an IPv4/UDP packet
    as a UDP socket's filter sees it (data from the UDP header)."""
    ip_source = struct.unpack("!I", ipaddress.ip_address(source).packed)[0]
    packet = bytes(8) + payload
    a, pc = 0, 0
    while True:
        op, jt, jf, k = code[pc]
        if op == socket_filter.LOAD_WORD:
            assert k == (socket_filter.SKF_NET_OFF + 12) & 0xFFFFFFFF
            a = ip_source
        elif op == socket_filter.LOAD_BYTE:
            if k >= len(packet):
                return False  # the kernel drops on an out-of-bounds load
            a = packet[k]
        elif op == socket_filter.AND:
            a &= k
        elif op == socket_filter.JUMP_IF_EQUAL:
            pc += jt if a == k else jf
        elif op == socket_filter.RETURN:
            return k != 0
        else:
            raise AssertionError(f"unexpected opcode {op:#x}")
        pc += 1


def first_byte(packet_type: PacketType) -> bytes:
    return bytes([(PROTOCOL_VERSION << 4) | packet_type]) + bytes(20)


def test_the_filter_drops_all_but_data_from_shed_prefixes_only():
    shed = [f"10.0.{n}.0/24" for n in range(0, 250, 2)]  # 125 prefixes, every other /24
    code = program(shed)
    for host in ("10.0.0.1", "10.0.124.9", "10.0.248.255"):
        assert run_filter(code, host, first_byte(PacketType.DATA))
        for kind in (PacketType.HELLO, PacketType.CONNECT, PacketType.RESET):
            assert not run_filter(code, host, first_byte(kind))
        assert not run_filter(code, host, b"\xff junk")
    for host in ("10.0.1.1", "10.0.249.1", "192.0.2.1"):
        for kind in PacketType:
            assert run_filter(code, host, first_byte(kind))


def test_no_prefixes_accepts_everything_and_the_jump_range_is_respected():
    assert all(run_filter(program([]), "10.0.0.1", first_byte(k)) for k in PacketType)
    code = program([f"10.{n // 256}.{n % 256}.0/24" for n in range(255)])
    assert not run_filter(code, "10.0.254.3", first_byte(PacketType.HELLO))
    assert run_filter(code, "10.1.0.3", first_byte(PacketType.HELLO))
