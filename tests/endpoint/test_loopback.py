"""The real thing: two endpoints on 127.0.0.1 UDP sockets and the real reactor."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer, reactor

from twistchat.endpoint.api import CloseCode
from twistchat.endpoint.endpoint import ClientEndpoint, ServerEndpoint

from .harness import Recorder

MESSAGES = 5000
pytestmark = pytest.mark.e2e


class Waiting(Recorder):
    def __init__(self, expected: int) -> None:
        super().__init__()
        self.expected = expected
        self.all_received = defer.Deferred()
        self.lost = defer.Deferred()

    def message_received(self, data: bytes) -> None:
        super().message_received(data)
        if len(self.messages) == self.expected:
            self.all_received.callback(None)

    def connection_lost(self, reason) -> None:
        super().connection_lost(reason)
        self.lost.callback(reason)


def ipv6_loopback_available() -> bool:
    import socket
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


LOOPBACKS = ["127.0.0.1", pytest.param("::1", marks=pytest.mark.skipif(
    not ipv6_loopback_available(), reason="this machine has no IPv6 loopback"))]


@pytest.mark.parametrize("host", LOOPBACKS)
@pytest_twisted.inlineCallbacks
def test_handshake_thousands_of_ordered_messages_and_close_over_loopback(host):
    server_protocols = []

    def factory(address):
        protocol = Waiting(MESSAGES)
        server_protocols.append(protocol)
        return protocol
    server = ServerEndpoint(reactor, factory)
    server_port = reactor.listenUDP(0, server, interface=host)
    client = ClientEndpoint(reactor)
    client_port = reactor.listenUDP(0, client, interface=host)
    try:
        client_protocol = Waiting(0)
        address = (host, server_port.getHost().port)
        yield client.connect(address, client_protocol).addTimeout(5, reactor)
        expected = [b"%d:" % i + bytes(i % 700) for i in range(MESSAGES)]
        for data in expected:
            client_protocol.connection.send_message(data)
        (server_side,) = server_protocols
        yield server_side.all_received.addTimeout(30, reactor)
        assert server_side.messages == expected
        client_protocol.connection.close("done")
        reason = yield server_side.lost.addTimeout(5, reactor)
        assert reason.code == CloseCode.NORMAL and reason.by_peer
        own = yield client_protocol.lost.addTimeout(5, reactor)
        assert own.unacked == ()
        assert server.counters.malformed == 0 and client.counters.malformed == 0
        # The server wrote to its socket itself (no udp.Port.write address checks).
        assert server._sendto == server_port.socket.sendto
        assert server.counters.datagrams_sent > 0 and server.counters.write_errors == 0
    finally:
        yield client_port.stopListening()
        yield server_port.stopListening()
