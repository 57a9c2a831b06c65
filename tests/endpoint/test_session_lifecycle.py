"""Handshake, delivery, liveness and close, through real endpoints in virtual time."""

from __future__ import annotations

import pytest

from twistchat.endpoint.api import CloseCode, ConnectionClosed, MessageTooLarge
from twistchat.endpoint.server import Admission
from twistchat.reliable.session import SessionConfig

from .harness import CLIENT, SERVER, Pair


def test_handshake_then_messages_both_ways_in_order():
    pair = Pair(rtt=0.02).connect()
    client = pair.client_protocol.connection
    server_side = pair.server_protocol
    for i in range(300):
        client.send_message(b"c%d" % i)
    pair.run_until(lambda: len(server_side.messages) == 300, 10)
    assert server_side.messages == [b"c%d" % i for i in range(300)]
    for i in range(300):
        server_side.connection.send_message(b"s%d" % i)
    pair.run_until(lambda: len(pair.client_protocol.messages) == 300, 10)
    assert pair.client_protocol.messages == [b"s%d" % i for i in range(300)]


def test_handshake_costs_two_round_trips():
    pair = Pair(rtt=0.05).connect()
    assert pair.client_protocol.connection is not None
    assert pair.clock.seconds() == pytest.approx(0.1, abs=1e-6)


def test_small_messages_are_packed_into_few_datagrams():
    pair = Pair(rtt=0.02).connect()
    sent_before = pair.client.counters.datagrams_sent
    for i in range(100):
        pair.client_protocol.connection.send_message(b"x" * 20)
    pair.run_until(lambda: len(pair.server_protocol.messages) == 100, 10)
    # 100 messages of 20 bytes fit in 3 datagrams of 1200 bytes.
    assert pair.client.counters.datagrams_sent - sent_before <= 4


def test_large_message_is_fragmented_within_datagram_size_and_reassembled():
    pair = Pair(rtt=0.02, loss=0.1, jitter=0.005).connect()
    big = bytes(range(256)) * 256  # 64 KiB, the default cap
    sizes = []
    pair.network.taps.append(lambda datagram, source, destination: sizes.append(len(datagram)))
    pair.client_protocol.connection.send_message(big)
    pair.run_until(lambda: pair.server_protocol.messages, 30)
    assert pair.server_protocol.messages == [big]
    assert max(sizes) <= 1200


def test_message_over_the_cap_is_refused_before_sending():
    pair = Pair().connect()
    with pytest.raises(MessageTooLarge):
        pair.client_protocol.connection.send_message(bytes(64 * 1024 + 1))


def test_unreliable_messages_arrive_without_retransmission():
    pair = Pair(rtt=0.02).connect()
    pair.client_protocol.connection.send_unreliable(b"typing")
    pair.run_for(1)
    assert pair.server_protocol.unreliable == [b"typing"]


def test_client_close_is_reported_to_both_sides_once():
    pair = Pair(rtt=0.02).connect()
    pair.client_protocol.connection.send_message(b"last words")
    pair.client_protocol.connection.close("bye")
    pair.run_for(5)
    assert pair.server_protocol.messages == [b"last words"]
    (server_reason,) = pair.server_protocol.closed
    (client_reason,) = pair.client_protocol.closed
    assert server_reason.code == CloseCode.NORMAL and server_reason.by_peer
    assert server_reason.message == "bye"
    assert client_reason.code == CloseCode.NORMAL and not client_reason.by_peer
    assert client_reason.unacked == ()
    assert pair.server.sessions == {} and pair.client.sessions == {}
    with pytest.raises(ConnectionClosed):
        pair.client_protocol.connection.send_message(b"too late")


def test_server_close_is_reported_to_client():
    pair = Pair(rtt=0.02).connect()
    pair.server_protocol.connection.close("maintenance", CloseCode.SHUTTING_DOWN)
    pair.run_for(5)
    (reason,) = pair.client_protocol.closed
    assert reason.code == CloseCode.SHUTTING_DOWN and reason.by_peer
    assert reason.message == "maintenance"


def test_keepalives_hold_an_idle_session_open_for_hours():
    pair = Pair(rtt=0.02).connect()
    pair.run_for(3 * 3600)
    assert pair.client_protocol.closed == [] and pair.server_protocol.closed == []
    # Keepalive at the server's suggested interval (jittered up to 1.2x): no more often.
    interval = SessionConfig().keepalive_interval
    datagrams = pair.client.counters.datagrams_sent
    assert 3 * 3600 / (1.2 * interval) <= datagrams <= 3 * 3600 / interval + 10


def test_server_suggests_the_keepalive_interval():
    pair = Pair(rtt=0.02)
    pair.server.config = SessionConfig(keepalive_interval=5.0)
    pair.connect()
    assert pair.client_protocol.connection.session.keepalive_interval == 5.0


def vanish_client(pair: Pair) -> None:
    """The client host disappears without a word (power cut, NAT state lost)."""
    pair.client.stopProtocol()
    pair.network.detach(CLIENT)


def test_vanished_client_is_reaped_by_the_server_idle_timeout():
    """Servers do not ping thousands of clients: clients keep alive, and a
    client silent for the idle timeout (3 keepalives) is gone."""
    pair = Pair(rtt=0.02).connect()
    assert pair.server_protocol.connection.idle_timeout == SessionConfig().idle_timeout  # as it says
    vanish_client(pair)
    started = pair.clock.seconds()
    pair.run_until(lambda: pair.server_protocol.closed, 120)
    (reason,) = pair.server_protocol.closed
    assert reason.code == CloseCode.IDLE_TIMEOUT and not reason.by_peer
    assert pair.clock.seconds() - started <= SessionConfig().idle_timeout + 0.1
    assert pair.server.sessions == {}


def test_vanished_server_is_detected_by_client_keepalive():
    pair = Pair(rtt=0.02).connect()
    pair.server.stopProtocol()
    pair.network.detach(SERVER)
    started = pair.clock.seconds()
    pair.run_until(lambda: pair.client_protocol.closed, 120)
    (reason,) = pair.client_protocol.closed
    assert reason.code == CloseCode.PEER_UNRESPONSIVE
    config = SessionConfig()
    assert pair.clock.seconds() - started <= \
        config.keepalive_interval * 1.2 + config.give_up_timeout + 0.1


def test_silent_peer_without_keepalives_ends_in_idle_timeout():
    pair = Pair(rtt=0.02, config=SessionConfig(keepalive_interval=0, idle_timeout=30)).connect()
    pair.network.partition(pair.clock.seconds(), 1000)
    started = pair.clock.seconds()
    pair.run_until(lambda: pair.client_protocol.closed, 120)
    (reason,) = pair.client_protocol.closed
    assert reason.code == CloseCode.IDLE_TIMEOUT
    assert pair.clock.seconds() - started == pytest.approx(30, abs=0.1)


def test_unresponsive_peer_gives_up_in_bounded_time_and_reports_unacked():
    pair = Pair(rtt=0.02).connect()
    connection = pair.client_protocol.connection
    connection.send_message(b"delivered")
    pair.run_for(1)
    pair.network.partition(pair.clock.seconds(), pair.clock.seconds() + 1000)
    started = pair.clock.seconds()
    for i in range(5):
        connection.send_message(b"lost %d" % i)
    pair.run_until(lambda: pair.client_protocol.closed, 100)
    (reason,) = pair.client_protocol.closed
    assert reason.code == CloseCode.PEER_UNRESPONSIVE
    assert reason.unacked == tuple(b"lost %d" % i for i in range(5))
    assert pair.clock.seconds() - started <= SessionConfig().give_up_timeout + 1


def test_handshake_to_nobody_fails_with_connect_error():
    pair = Pair(rtt=0.02)
    pair.network.detach(("127.0.0.10", 9999))
    pair.connect(until=30)
    (failure,) = pair.connect_failures
    assert failure.value.reason.code == CloseCode.HANDSHAKE_FAILED
    assert pair.clock.seconds() <= SessionConfig().handshake_timeout + 0.01


def test_handshake_survives_heavy_loss():
    for seed in range(10):
        pair = Pair(seed=seed, rtt=0.02, loss=0.3).connect()
        assert pair.client_protocol.connection is not None, seed


def test_nat_rebinding_keeps_the_session_after_path_validation():
    pair = Pair(rtt=0.02).connect()
    connection = pair.client_protocol.connection
    for i in range(50):
        connection.send_message(b"before %d" % i)
    pair.run_for(1)
    new_address = (CLIENT[0], CLIENT[1] + 1)
    pair.network.rebind(CLIENT, new_address)
    for i in range(50):
        connection.send_message(b"after %d" % i)
    pair.run_until(lambda: len(pair.server_protocol.messages) == 100, 10)
    assert pair.server_protocol.messages == [b"before %d" % i for i in range(50)] + \
        [b"after %d" % i for i in range(50)]
    pair.run_for(1)  # one round trip to validate the new path
    assert pair.server_protocol.connection.peer_address == new_address
    pair.server_protocol.connection.send_message(b"reply")
    pair.run_until(lambda: pair.client_protocol.messages, 5)
    assert pair.client_protocol.messages == [b"reply"]


def test_packet_numbers_are_never_reused():
    pair = Pair(rtt=0.02, loss=0.3, seed=3).connect()
    from twistchat.wire.packets import Data, decode_packet
    numbers = []

    def spy(datagram, source, destination):
        if source == CLIENT:
            packet = decode_packet(datagram)
            if isinstance(packet, Data):
                numbers.append(packet.packet_number)
    pair.network.taps.append(spy)
    for i in range(500):
        pair.client_protocol.connection.send_message(b"m%d" % i + bytes(500))
    pair.run_until(lambda: len(pair.server_protocol.messages) == 500, 60)
    assert pair.client_protocol.connection.session.stats.retransmitted_frames > 0
    assert len(numbers) == len(set(numbers))
    assert numbers == sorted(numbers)


def test_connecting_from_inside_callbacks_does_not_recurse():
    """A load generator or a reconnecting client opens its next session from
    a callback, while thousands of others complete in the same reactor turn:
    that must not nest one flush inside another per session."""
    from .harness import Recorder
    pair = Pair(rtt=0.02, admission=Admission.for_load_generators())
    opened = []

    class OpensAnother(Recorder):
        def __init__(self, last: bool) -> None:
            super().__init__()
            self.last = last

        def connection_made(self, connection):
            super().connection_made(connection)
            opened.append(self)
            if not self.last:
                pair.client.connect(SERVER, OpensAnother(last=True))
    for _ in range(600):
        pair.client.connect(SERVER, OpensAnother(last=False))
    pair.run_until(lambda: len(opened) == 1200, 600)
    assert len(opened) == 1200


def test_a_lost_hello_costs_a_third_of_a_second_not_a_full_timeout():
    pair = Pair(rtt=0.02)
    pair.network.partition(0.0, 0.1)   # the first HELLO is lost
    pair.connect()
    assert pair.client_protocol.connection is not None
    assert pair.clock.seconds() <= 0.333 + 2 * 0.02 + 0.01


def test_on_acked_fires_once_the_peer_has_the_message_and_never_after_a_loss_of_session():
    pair = Pair(rtt=0.02, loss=0.2, seed=4).connect()
    server_side = pair.server_protocol.connection
    acked: list[int] = []
    for i in range(50):
        server_side.send_message(b"dm%d" % i, on_acked=lambda i=i: acked.append(i))
    pair.run_until(lambda: len(acked) == 50, 20)
    assert sorted(acked) == list(range(50))
    assert len(pair.client_protocol.messages) == 50  # acked means the peer has it
    pair.network.partition(pair.clock.seconds(), pair.clock.seconds() + 60)
    server_side.send_message(b"lost", on_acked=lambda: acked.append(-1))
    pair.run_until(lambda: bool(pair.server_protocol.closed), 30)
    assert -1 not in acked
    assert pair.server_protocol.closed[0].unacked == (b"lost",)


def test_acked_below_counts_the_sequence_numbers_send_message_returns():
    pair = Pair(rtt=0.02, loss=0.2, seed=5).connect()
    server_side = pair.server_protocol.connection
    seqs = [server_side.send_message(b"line %d" % i) for i in range(50)]
    assert seqs == list(range(seqs[0], seqs[0] + 50))
    assert server_side.acked_below <= seqs[0]
    pair.run_until(lambda: server_side.acked_below > seqs[-1], 20)
    assert server_side.acked_below == seqs[-1] + 1
    assert len(pair.client_protocol.messages) == 50  # acknowledged means the peer has them
    pair.network.partition(pair.clock.seconds(), pair.clock.seconds() + 60)
    lost = server_side.send_message(b"lost")
    pair.run_until(lambda: bool(pair.server_protocol.closed), 30)
    assert server_side.acked_below == lost  # it stays, and never passes a lost message


def test_each_side_sees_the_message_cap_the_other_announced():
    pair = Pair(rtt=0.02, config=SessionConfig(max_message_size=5000)).connect()
    assert pair.client_protocol.connection.peer_max_message_size == 5000
    assert pair.server_protocol.connection.peer_max_message_size == 5000
    with pytest.raises(MessageTooLarge):
        pair.server_protocol.connection.send_message(bytes(5001))
