"""Real sockets on 127.0.0.1: the proxy in this process with the real reactor,
and the command line as a child process. Every wait is bounded."""

from __future__ import annotations

import json
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import deferLater

from twistchat.endpoint.sockets import enlarge_buffers
from twistchat.netem import Impairment, ImpairmentProxy

pytestmark = pytest.mark.e2e

LOOPBACK = "127.0.0.1"
WAIT_SECONDS = 5.0
PROCESS_START_SECONDS = 15.0
LARGE_DATAGRAM_BYTES = 60_000
"""Well above Twisted's default read size of 8192, below loopback's limit."""
REPOSITORY = Path(__file__).resolve().parents[2]
BANNER = re.compile(r"^netem listening on 127\.0\.0\.1:(\d+) -> 127\.0\.0\.1:(\d+) loss=0 dup=0 ")


class Echo(DatagramProtocol):
    def datagramReceived(self, datagram: bytes, address: tuple[str, int]) -> None:
        self.transport.write(datagram, address)


class Collector(DatagramProtocol):
    """Fires ``complete`` once ``expected`` datagrams have arrived."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.received: list[bytes] = []
        self.complete: defer.Deferred = defer.Deferred()

    def datagramReceived(self, datagram: bytes, address: tuple[str, int]) -> None:
        self.received.append(datagram)
        if len(self.received) == self.expected:
            self.complete.callback(self.received)


@pytest_twisted.ensureDeferred
async def test_at_zero_loss_every_datagram_comes_back_through_the_proxy() -> None:
    from twisted.internet import reactor

    datagrams = [b"datagram %d" % number for number in range(200)] + [b"x" * LARGE_DATAGRAM_BYTES]
    # The test's own sockets get the buffers the proxy's have: 201 datagrams
    # in one burst overflow a default receive buffer when this process is
    # slow to read (a loaded machine), and that loss is not the proxy's.
    echo_port = reactor.listenUDP(0, Echo(), interface=LOOPBACK, maxPacketSize=65535)
    enlarge_buffers(echo_port)
    proxy = ImpairmentProxy(
        reactor,
        0,
        target=(LOOPBACK, echo_port.getHost().port),
        impairment_up=Impairment(delay_ms=2.0, jitter_ms=3.0, seed=1),
        impairment_down=Impairment(delay_ms=1.0, jitter_ms=3.0, seed=2),
    )
    proxy_port = proxy.start()
    collector = Collector(expected=len(datagrams))
    client_port = reactor.listenUDP(0, collector, interface=LOOPBACK, maxPacketSize=65535)
    enlarge_buffers(client_port)
    try:
        for datagram in datagrams:
            client_port.write(datagram, (LOOPBACK, proxy_port))
        received = await collector.complete.addTimeout(WAIT_SECONDS, reactor)
    finally:
        await proxy.stop()
        await echo_port.stopListening()
        await client_port.stopListening()

    assert sorted(received) == sorted(datagrams)
    assert proxy.client_addresses == []
    up, down = proxy.counters.up, proxy.counters.down
    assert up.forwarded == down.forwarded == len(datagrams)
    assert up.dropped == down.dropped == up.send_errors == down.send_errors == 0


@pytest_twisted.ensureDeferred
async def test_a_target_that_starts_late_is_reached_through_the_same_mapping() -> None:
    """The ICMP port-unreachable for datagrams sent before the target is up must
    not kill the client's upstream socket (as it would a connected one under epoll)."""
    from twisted.internet import reactor

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((LOOPBACK, 0))
        target_port = probe.getsockname()[1]
    proxy = ImpairmentProxy(reactor, 0, target=(LOOPBACK, target_port))
    proxy_port = proxy.start()
    collector = Collector(expected=1)
    client_port = reactor.listenUDP(0, collector, interface=LOOPBACK)
    echo_port = None
    try:
        for _ in range(3):
            client_port.write(b"anyone there?", (LOOPBACK, proxy_port))
            await deferLater(reactor, 0.05)
        echo_port = reactor.listenUDP(target_port, Echo(), interface=LOOPBACK)
        client_port.write(b"now?", (LOOPBACK, proxy_port))
        received = await collector.complete.addTimeout(WAIT_SECONDS, reactor)
    finally:
        await proxy.stop()
        await client_port.stopListening()
        if echo_port is not None:
            await echo_port.stopListening()

    assert received == [b"now?"]
    assert proxy.counters.clients.opened == 1
    assert proxy.counters.up.send_errors == 0


def read_line_within(process: subprocess.Popen, seconds: float) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=seconds):
            raise AssertionError(f"no line from the process within {seconds} s")
    return process.stdout.readline()


def udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOOPBACK, 0))
    sock.settimeout(WAIT_SECONDS)
    return sock


NETEM_MODULE = [sys.executable, "-m", "twistchat.netem"]
NETEM_WITH_SIGINT_IGNORED = [
    sys.executable, "-c",
    "import runpy, signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "runpy.run_module('twistchat.netem', run_name='__main__', alter_sys=True)",
]
"""How a background job of a non-interactive shell (``pytest &``, CI runners)
starts it: SIGINT inherited as ignored, which Twisted's own handler setup
leaves alone."""


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_command_line_proxy_forwards_then_reports_counters_on_signal(stop_signal: signal.Signals) -> None:
    forward_then_stop(NETEM_MODULE, stop_signal)


def test_command_line_proxy_stops_on_sigint_even_when_it_inherited_sigint_ignored() -> None:
    forward_then_stop(NETEM_WITH_SIGINT_IGNORED, signal.SIGINT)


def forward_then_stop(command: list[str], stop_signal: signal.Signals) -> None:
    round_trips = 5
    with udp_socket() as server, udp_socket() as client:
        server_port = server.getsockname()[1]
        process = subprocess.Popen(
            command + ["--listen", "0", "--to", f"{LOOPBACK}:{server_port}", "--seed", "1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPOSITORY,
        )
        try:
            started = time.monotonic()
            banner = read_line_within(process, PROCESS_START_SECONDS)
            startup_seconds = time.monotonic() - started
            match = BANNER.match(banner)
            assert match, banner
            proxy_port, banner_target_port = int(match[1]), int(match[2])
            assert banner_target_port == server_port and proxy_port != 0

            upstream_addresses = set()
            for number in range(round_trips):
                client.sendto(b"ping %d" % number, (LOOPBACK, proxy_port))
                datagram, upstream_address = server.recvfrom(65535)
                assert datagram == b"ping %d" % number
                upstream_addresses.add(upstream_address)
                server.sendto(b"pong %d" % number, upstream_address)
                reply, reply_source = client.recvfrom(65535)
                assert (reply, reply_source) == (b"pong %d" % number, (LOOPBACK, proxy_port))
            [upstream_address] = upstream_addresses  # one upstream socket for one client
            assert upstream_address[1] != proxy_port

            process.send_signal(stop_signal)
            out, err = process.communicate(timeout=WAIT_SECONDS)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()

    assert process.returncode == 0, err
    assert "Traceback" not in err
    counters = json.loads(out.strip().splitlines()[-1])
    for direction in ("up", "down"):
        assert counters[direction]["forwarded"] == round_trips
        assert counters[direction]["dropped"] == counters[direction]["duplicated"] == 0
    assert counters["clients"]["opened"] == 1
    print(f"netem process printed its banner {startup_seconds:.2f} s after launch")
