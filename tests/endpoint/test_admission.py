"""Admission (issue 12): who gets a cookie and a session, and who is closed
first when the table is full. Datagrams are fed straight into a server
endpoint on a ``task.Clock``."""

from __future__ import annotations

import attrs

from twistchat.endpoint.ratelimit import Rate, source_prefix
from twistchat.endpoint.server import Admission
from twistchat.reliable.config import SessionConfig
from twistchat.reliable.state import State
from twistchat.wire.packets import Cookie, decode_packet

from .test_bad_input import connect, cookie_for, hello, make_server

LOOSE = Admission.for_load_generators()


def connect_from(server, transport, address, cid, parameters=None) -> bytes:
    return connect(cid, cookie_for(server, transport, address, cid=cid), parameters)


def open_sessions(server, transport, count, host="198.51.100.1", first_cid=1):
    for cid in range(first_cid, first_cid + count):
        address = (host, 1000 + cid)
        server.datagramReceived(connect_from(server, transport, address, cid), address)


def test_a_connect_with_invalid_parameters_gets_no_session():
    server, transport, clock, opened = make_server()
    address = ("198.51.100.1", 1000)
    lying = attrs.evolve(SessionConfig().transport_parameters(), max_ack_delay_ms=2**62 - 1)
    server.datagramReceived(connect_from(server, transport, address, 7, lying), address)
    assert opened == [] and server.counters.bad_parameters == 1


def test_a_full_table_closes_the_oldest_session_nobody_vouched_for():
    server, transport, clock, opened = make_server(attrs.evolve(LOOSE, max_sessions=3))
    open_sessions(server, transport, 3)
    oldest, second, third = server.sessions.values()
    second.connection.mark_trusted()
    open_sessions(server, transport, 1, first_cid=10)  # a fourth: room is made
    assert len(opened) == 4 and server.counters.sessions_evicted == 1
    assert oldest.session.has_ended and not second.session.has_ended
    assert server.live_sessions == 3
    transport.written.clear()
    clock.advance(0)  # the flush: the victim is sent its (sealed) CLOSE
    assert ("198.51.100.1", 1001) in [to for _, to in transport.written]
    assert oldest.session.state is State.CLOSING
    open_sessions(server, transport, 1, first_cid=20)  # third (untrusted) goes next
    assert third.session.has_ended and not second.session.has_ended


def test_sessions_that_have_ended_do_not_count_towards_the_limit():
    server, transport, clock, opened = make_server(attrs.evolve(LOOSE, max_sessions=2))
    open_sessions(server, transport, 2)
    for handle in server.sessions.values():
        handle.connection.mark_trusted()
        handle.connection.close("bye", graceful=False)
    clock.advance(0)
    assert len(server.sessions) == 2 and server.live_sessions == 0  # still closing
    open_sessions(server, transport, 2, first_cid=10)
    assert len(opened) == 4 and server.counters.sessions_refused == 0


def test_one_address_may_hold_only_so_many_sessions():
    server, transport, clock, opened = make_server(attrs.evolve(LOOSE, max_sessions_per_address=5))
    open_sessions(server, transport, 8, host="198.51.100.1")
    open_sessions(server, transport, 2, host="198.51.100.2", first_cid=50)
    assert len(opened) == 7 and server.counters.sessions_refused == 3


def test_new_sessions_are_rate_limited_per_address():
    admission = attrs.evolve(LOOSE, sessions_per_address=Rate(per_second=1, burst=3))
    server, transport, clock, opened = make_server(admission)
    open_sessions(server, transport, 5)
    assert len(opened) == 3 and server.counters.sessions_throttled == 2
    clock.advance(2)
    open_sessions(server, transport, 3, first_cid=10)
    assert len(opened) == 5


def test_new_sessions_from_everyone_together_are_rate_limited():
    """Each new session costs a handshake's CPU: many prefixes together are bounded too."""
    admission = attrs.evolve(LOOSE, sessions_in_total=Rate(per_second=1, burst=4))
    server, transport, clock, opened = make_server(admission)
    for block in range(6):
        open_sessions(server, transport, 1, host=f"198.51.{block}.1", first_cid=100 + block)
    assert len(opened) == 4 and server.counters.sessions_throttled_in_total == 2
    clock.advance(1)
    open_sessions(server, transport, 1, host="198.51.9.1", first_cid=200)
    assert len(opened) == 5


def test_cookies_are_rate_limited_per_address_and_per_prefix():
    admission = attrs.evolve(LOOSE, cookies_per_address=Rate(per_second=1, burst=2),
                             cookies_per_prefix=Rate(per_second=1, burst=5))
    server, transport, clock, opened = make_server(admission)

    def cookies_for(host: str, count: int) -> int:
        transport.written.clear()
        for cid in range(count):
            server.datagramReceived(hello(cid), (host, 2000 + cid))
        return sum(isinstance(decode_packet(d), Cookie) for d, _ in transport.written)

    assert cookies_for("203.0.113.1", 10) == 2  # the address's burst
    assert cookies_for("203.0.113.2", 10) == 2
    assert cookies_for("203.0.113.3", 10) == 1  # the /24's burst of 5 is spent
    assert cookies_for("198.51.100.9", 10) == 2  # another /24 is not affected
    assert server.counters.cookies_throttled == 10 * 4 - 7


def test_source_prefixes():
    assert source_prefix("203.0.113.77") == "203.0.113.0/24"
    assert source_prefix("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert source_prefix("::ffff:203.0.113.77") == "203.0.113.0/24"
    assert source_prefix("fe80::1%eth0") == "fe80::/64"
    assert source_prefix("not an address") == "not an address"


def test_a_burst_of_handshakes_is_spread_over_reactor_turns():
    """Each handshake costs two X25519 operations: a burst of 10 with a budget
    of 3 per turn opens 3 now and the rest over the next turns, oldest first,
    so the other sessions' packets are served between them."""
    server, transport, clock, opened = make_server(attrs.evolve(LOOSE, handshakes_per_turn=3))
    connects = []
    for cid in range(1, 11):
        address = ("198.51.100.1", 1000 + cid)
        connects.append((connect_from(server, transport, address, cid), address))
    for datagram, address in connects:
        server.datagramReceived(datagram, address)
    assert len(opened) == 3
    server.datagramReceived(*connects[5])  # a retransmission of one still waiting: not queued twice
    for turn_opened in (6, 9, 10):
        next_reactor_turn(clock)
        assert len(opened) == turn_opened
    assert opened == [address for _, address in connects]
    assert server.counters.handshakes_dropped == 0


def test_handshakes_past_the_queue_are_dropped_and_counted():
    admission = attrs.evolve(LOOSE, handshakes_per_turn=1, max_queued_handshakes=2)
    server, transport, clock, opened = make_server(admission)
    for cid in range(1, 6):
        address = ("198.51.100.1", 1000 + cid)
        server.datagramReceived(connect_from(server, transport, address, cid), address)
    assert len(opened) == 1 and server.counters.handshakes_dropped == 2
    clock.advance(0)
    assert len(opened) == 3


def next_reactor_turn(clock) -> None:
    """Run the calls due now, not those they schedule for now (a real
    reactor runs those in its next iteration, after reading the sockets;
    ``Clock.advance`` would run them at once)."""
    due = [call for call in clock.getDelayedCalls() if call.getTime() <= clock.seconds()]
    for call in due:
        clock.calls.remove(call)
        call.called = 1  # as Clock.advance marks them
        call.func(*call.args, **call.kw)


def test_waiting_handshakes_are_served_one_source_at_a_time():
    """An address re-opening sessions by the hundred does not put another
    address's handshake behind all of them: the queue takes sources in turn."""
    server, transport, clock, opened = make_server(attrs.evolve(LOOSE, handshakes_per_turn=2))
    burst = [(connect_from(server, transport, ("198.51.100.66", 2000 + cid), cid), ("198.51.100.66", 2000 + cid))
             for cid in range(1, 41)]
    user = ("203.0.113.5", 4000)
    late = connect_from(server, transport, user, 99)
    for datagram, address in burst:
        server.datagramReceived(datagram, address)
    server.datagramReceived(late, user)  # arrives after 40 from the attacker
    assert len(opened) == 2 and user not in opened
    next_reactor_turn(clock)
    assert user in opened[:4]  # its turn came at once, not after 38 others
