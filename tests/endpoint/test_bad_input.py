"""Hostile and broken datagrams: dropped and counted, never raised, never
allowed to make the server keep state for an address it has not validated."""

from __future__ import annotations

import random

from hypothesis import given, settings, strategies as st
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher

from twistchat.endpoint.api import MessageProtocol
from twistchat.endpoint.endpoint import ServerEndpoint
from twistchat.endpoint.server import Admission
from twistchat.reliable.handshake import prologue
from twistchat.reliable.noise import NXInitiator
from twistchat.reliable.config import SessionConfig
from twistchat.wire.packets import (
    MIN_HELLO_SIZE, TAG_SIZE, Connect, Cookie, Hello, MessageFrame, Reset,
    decode_packet, encode_data_header, encode_frames, encode_packet,
)

from .harness import CLIENT, SERVER, Pair


class RecordingTransport:
    """Stands in for a UDP port: keeps what the endpoint writes, per address."""

    def __init__(self) -> None:
        self.written: list[tuple[bytes, tuple]] = []

    def write(self, datagram: bytes, address: tuple) -> None:
        self.written.append((bytes(datagram), address))

    def bytes_to(self, address: tuple) -> int:
        return sum(len(d) for d, a in self.written if a == address)


def make_server(admission: Admission | None = None
                ) -> tuple[ServerEndpoint, RecordingTransport, Clock, list]:
    clock = Clock()
    opened: list = []

    def factory(address):
        opened.append(address)
        return MessageProtocol()
    server = ServerEndpoint(clock, factory, rng=random.Random(5), admission=admission)
    transport = RecordingTransport()
    server.makeConnection(transport)
    return server, transport, clock, opened


def hello(cid: int = 42) -> bytes:
    return encode_packet(Hello(cid), pad_to=MIN_HELLO_SIZE)


def cookie_for(server, transport, address, cid=42) -> bytes:
    transport.written.clear()
    server.datagramReceived(hello(cid), address)
    (reply, _), = transport.written
    packet = decode_packet(reply)
    assert isinstance(packet, Cookie)
    return packet.cookie


def connect(cid: int, cookie: bytes, parameters=None) -> bytes:
    """A CONNECT as a real client writes it: Noise message 1 over the cookie."""
    noise = NXInitiator(prologue(cid, cookie))
    message_1 = noise.write_message_1((parameters or SessionConfig().transport_parameters()).encode())
    return encode_packet(Connect(cid, cookie, message_1), pad_to=MIN_HELLO_SIZE)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1600))
def test_random_datagrams_are_dropped_without_state_or_exceptions(datagram):
    server, transport, clock, opened = make_server()
    server.datagramReceived(datagram, ("203.0.113.9", 5000))
    clock.advance(1)
    assert opened == [] and server.sessions == {}
    # Whatever the server answered, it was no bigger than what it was sent.
    assert transport.bytes_to(("203.0.113.9", 5000)) <= len(datagram)


def test_each_kind_of_bad_datagram_is_counted():
    server, transport, clock, opened = make_server()
    source = ("203.0.113.9", 5000)
    valid = encode_data_header(7, 1) + bytes(TAG_SIZE + 1)  # sealed DATA, as far as anyone can tell
    server.datagramReceived(b"", source)
    server.datagramReceived(valid[:5], source)                         # truncated
    server.datagramReceived(valid[:-2], source)                        # no room for a tag and a frame
    server.datagramReceived(bytes(1501), source)                       # oversized
    server.datagramReceived(bytes([0x25]) + valid[1:], source)         # version 2
    server.datagramReceived(valid, source)                             # unknown connection
    server.datagramReceived(encode_packet(Hello(1)), source)           # unpadded hello
    server.datagramReceived(connect(9, b"\x00" * 20), source)          # forged cookie
    c = server.counters
    assert c.malformed == 3
    assert c.oversized == 1
    assert c.unknown_version == 1
    assert c.unknown_connection == 1
    assert c.short_hello == 1
    assert c.bad_cookie == 1
    assert opened == [] and server.sessions == {}


def test_hello_is_answered_statelessly_and_never_amplified():
    server, transport, clock, opened = make_server()
    for i in range(1000):
        address = (f"198.51.100.{i % 250}", 1000 + i)
        server.datagramReceived(hello(i), address)
        assert transport.bytes_to(address) <= MIN_HELLO_SIZE
    assert server.counters.cookies_sent == 1000
    assert server.sessions == {} and opened == []
    assert server._by_client == {} and server._used_client_cids == set()


def test_cookie_is_bound_to_the_address_that_asked_for_it():
    server, transport, clock, opened = make_server()
    cookie = cookie_for(server, transport, ("198.51.100.1", 1000))
    server.datagramReceived(connect(42, cookie), ("198.51.100.2", 1000))
    server.datagramReceived(connect(42, cookie), ("198.51.100.1", 1001))
    server.datagramReceived(connect(43, cookie), ("198.51.100.1", 1000))
    assert server.counters.bad_cookie == 3 and opened == []


def test_cookie_expires():
    server, transport, clock, opened = make_server()
    address = ("198.51.100.1", 1000)
    cookie = cookie_for(server, transport, address)
    clock.advance(3 * server.cookies.slot_seconds)
    server.datagramReceived(connect(42, cookie), address)
    assert server.counters.bad_cookie == 1 and opened == []


def test_replayed_connect_opens_one_session_only():
    server, transport, clock, opened = make_server()
    address = ("198.51.100.1", 1000)
    cookie = cookie_for(server, transport, address)
    datagram = connect(42, cookie)
    server.datagramReceived(datagram, address)
    server.datagramReceived(datagram, address)  # a retransmission: same session
    assert opened == [address] and len(server.sessions) == 1
    (handle,) = server.sessions.values()
    handle.connection.close(graceful=False)
    clock.advance(10)
    assert server.sessions == {}
    server.datagramReceived(datagram, address)  # replayed after the session ended
    assert server.counters.replayed_connect == 1
    assert opened == [address] and server.sessions == {}


def test_resets_for_unknown_connections_are_rate_limited_and_small():
    server, transport, clock, opened = make_server()
    probe = encode_data_header(7, 1) + bytes(TAG_SIZE + 1)
    for i in range(1000):
        server.datagramReceived(probe, ("203.0.113.5", 2000))
    resets = [d for d, _ in transport.written]
    assert 0 < len(resets) <= 101
    assert all(len(d) <= len(probe) for d in resets)
    assert all(isinstance(decode_packet(d), Reset) for d in resets)
    assert server.counters.unknown_connection == 1000


def test_session_limit_refuses_new_sessions_when_every_session_is_trusted():
    server, transport, clock, opened = make_server(Admission(max_sessions=2))
    for i in range(3):
        address = ("198.51.100.1", 1000 + i)
        server.datagramReceived(connect(i, cookie_for(server, transport, address, cid=i)), address)
        clock.advance(0)  # the next turn: handshakes past the per-turn budget run there
        for handle in server.sessions.values():
            handle.connection.mark_trusted()  # e.g. its user logged in
    assert len(opened) == 2 and server.counters.sessions_refused == 1


def test_duplicated_and_replayed_data_is_delivered_once():
    pair = Pair(rtt=0.02, duplicate=0.5).connect()
    captured = []
    pair.network.taps.append(lambda d, s, dst: captured.append(d) if s == CLIENT else None)
    for i in range(100):
        pair.client_protocol.connection.send_message(b"m%d" % i)
    pair.run_until(lambda: len(pair.server_protocol.messages) == 100, 10)
    for datagram in captured:  # an attacker replays everything it saw
        pair.server.datagramReceived(datagram, CLIENT)
    pair.run_for(1)
    assert pair.server_protocol.messages == [b"m%d" % i for i in range(100)]
    session = pair.server_protocol.connection.session
    assert session.stats.duplicate_packets >= len(captured)


def test_replay_from_another_address_gets_no_bulk_traffic():
    """An observer replaying a client's packet from a victim's address (to
    aim the session's traffic at it) gets at most what it sent, and the real
    client keeps its session (path validation before migrating)."""
    pair = Pair(rtt=0.02).connect()
    captured = []
    pair.network.taps.append(lambda d, s, dst: captured.append(d) if s == CLIENT else None)
    pair.client_protocol.connection.send_message(b"hello")
    pair.run_for(1)
    victim = ("192.0.2.66", 53)
    sent_to_victim = []
    pair.network.taps.append(
        lambda d, s, dst: sent_to_victim.append(len(d)) if dst == victim else None)
    pair.server.datagramReceived(captured[0], victim)
    connection = pair.server_protocol.connection
    for i in range(200):
        connection.send_message(bytes(1000))
    pair.run_for(2)
    assert sum(sent_to_victim) <= len(captured[0])
    assert connection.peer_address == CLIENT
    assert len(pair.client_protocol.messages) == 200


def test_internal_protocol_errors_do_not_escape_the_endpoint():
    """An application that raises on one message is logged with its
    traceback and counted, and its session goes on: the next message comes."""
    class Exploding(MessageProtocol):
        def __init__(self):
            self.messages = []

        def message_received(self, data):
            if data == b"boom":
                raise RuntimeError("application bug")
            self.messages.append(data)
    exploding = Exploding()
    pair = Pair(rtt=0.02)
    pair.server.protocol_factory = lambda address: exploding
    pair.connect()
    logged = []
    globalLogPublisher.addObserver(logged.append)
    try:
        pair.client_protocol.connection.send_message(b"boom")
        pair.run_for(1)
        pair.client_protocol.connection.send_message(b"after")
        pair.run_for(1)
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert pair.server.counters.internal_errors == 1
    assert exploding.messages == [b"after"]
    (failure,) = [e["log_failure"] for e in logged if "log_failure" in e]
    assert failure.check(RuntimeError) and "application raised" in formatEvent(
        next(e for e in logged if "log_failure" in e))


def test_spoofed_message_frame_announcing_4_gib_is_refused():
    pair = Pair(rtt=0.02).connect()
    session = pair.client_protocol.connection.session
    huge = MessageFrame(0, b"x" * 100, 0, 4 * 2**30)  # from the real peer: sealed with its keys
    datagram = session.protection.seal(session.peer_cid, 5000, encode_frames((huge,)))
    pair.server.datagramReceived(datagram, CLIENT)
    pair.run_for(1)
    (reason,) = pair.server_protocol.closed
    assert reason.code.name == "PROTOCOL_VIOLATION"
