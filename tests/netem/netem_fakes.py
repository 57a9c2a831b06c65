"""A fake reactor for the netem proxy tests: virtual time from Clock, and UDP ports
that record what is written to them instead of touching the network."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock

FIRST_FAKE_PORT = 40000


class FakeDatagramPort:
    """A bound UDP port; ``written`` holds (datagram, destination) pairs."""

    def __init__(self, protocol: Any, port: int, interface: str, max_packet_size: int) -> None:
        self.protocol = protocol
        self.port = port
        self.interface = interface
        self.max_packet_size = max_packet_size
        self.written: list[tuple[bytes, tuple[str, int]]] = []
        self.listening = True
        protocol.makeConnection(self)

    def getHost(self) -> IPv4Address:
        return IPv4Address("UDP", self.interface or "0.0.0.0", self.port)

    def write(self, datagram: bytes, address: tuple[str, int] | None = None) -> None:
        assert self.listening, "write on a closed port"
        assert address is not None, "the proxy's sockets are not connected: every write names its destination"
        self.written.append((datagram, address))

    def stopListening(self) -> defer.Deferred:
        self.listening = False
        self.protocol.doStop()
        return defer.succeed(None)

    def lose(self) -> None:
        """Close as the reactor does on a socket error, without stopListening."""
        self.listening = False
        self.protocol.doStop()

    def receive(self, datagram: bytes, source: tuple[str, int]) -> None:
        """Deliver a datagram to this port as if it came from ``source``."""
        assert self.listening, "datagram to a closed port"
        self.protocol.datagramReceived(datagram, source)

    def take_written(self) -> list[tuple[bytes, tuple[str, int]]]:
        written, self.written = self.written, []
        return written


class FakeUDPReactor(Clock):
    """Clock plus listenUDP; ``ports`` lists every port ever opened, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.ports: list[FakeDatagramPort] = []
        self._next_free_port = FIRST_FAKE_PORT

    def listenUDP(self, port: int, protocol: Any, interface: str = "", maxPacketSize: int = 8192) -> FakeDatagramPort:
        if port == 0:
            port = self._next_free_port
            self._next_free_port += 1
        bound = FakeDatagramPort(protocol, port, interface, maxPacketSize)
        self.ports.append(bound)
        return bound
