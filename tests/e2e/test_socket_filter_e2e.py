"""The kernel half of shedding on a real loopback socket: once a prefix is
shed, the kernel drops its handshake packets before they reach the socket
(nothing to read), lets its DATA through, and serves every other prefix;
detaching restores everything. Linux only: elsewhere there is no filter."""

from __future__ import annotations

import socket
import sys

import pytest

from twistchat.endpoint.socket_filter import KernelFilter
from twistchat.wire.packets import PROTOCOL_VERSION, PacketType

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_ATTACH_FILTER is Linux's")]


class Port:
    """What KernelFilter needs of a Twisted UDP port."""

    def __init__(self, sock):
        self.socket = sock


def arrives(server: socket.socket, source: str, packet_type: PacketType) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.bind((source, 0))
        sender.sendto(bytes([(PROTOCOL_VERSION << 4) | packet_type]) + bytes(40), server.getsockname())
    try:
        server.recvfrom(2048)
        return True
    except socket.timeout:
        return False


def test_a_shed_prefix_loses_its_handshakes_in_the_kernel_but_keeps_its_data():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(0.2)
        kernel = KernelFilter.for_transport(Port(server))
        assert kernel.available and kernel.apply(["127.0.8.0/24", "127.0.10.0/24"])
        for shed in ("127.0.8.1", "127.0.10.200"):
            assert not arrives(server, shed, PacketType.HELLO)
            assert not arrives(server, shed, PacketType.CONNECT)
            assert arrives(server, shed, PacketType.DATA)
        assert arrives(server, "127.0.9.1", PacketType.HELLO)
        assert kernel.apply([])  # released: detached
        assert arrives(server, "127.0.8.1", PacketType.HELLO)
