"""A client and a server endpoint joined by a ``SimulatedNetwork`` in virtual time."""

from __future__ import annotations

import random

from twisted.internet.task import Clock

from twistchat.endpoint.api import CloseReason, MessageProtocol
from twistchat.endpoint.endpoint import ClientEndpoint, ServerEndpoint
from twistchat.endpoint.server import Admission
from twistchat.netsim.network import SimulatedNetwork
from twistchat.reliable.session import SessionConfig

SERVER = ("127.0.0.10", 9999)
CLIENT = ("127.0.0.20", 40000)


class Recorder(MessageProtocol):
    """Keeps everything a session reports."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.unreliable: list[bytes] = []
        self.closed: list[CloseReason] = []

    def message_received(self, data: bytes) -> None:
        self.messages.append(data)

    def unreliable_received(self, data: bytes) -> None:
        self.unreliable.append(data)

    def connection_lost(self, reason: CloseReason) -> None:
        self.closed.append(reason)


class Pair:
    """One server endpoint, one client endpoint, one connected session."""

    def __init__(self, seed: int = 1, config: SessionConfig | None = None,
                 admission: Admission | None = None, **network) -> None:
        self.clock = Clock()
        self.network = SimulatedNetwork(self.clock, seed=seed, **network)
        self.config = config or SessionConfig()
        self.server_protocols: list[Recorder] = []
        self.server = ServerEndpoint(self.clock, self._new_server_protocol, config=self.config,
                                     rng=random.Random(seed * 2 + 1), admission=admission)
        self.client = ClientEndpoint(self.clock, config=self.config, rng=random.Random(seed * 2))
        self.network.attach(self.server, SERVER)
        self.network.attach(self.client, CLIENT)
        self.client_protocol = Recorder()
        self.connect_failures: list = []

    def _new_server_protocol(self, address: tuple) -> Recorder:
        protocol = Recorder()
        self.server_protocols.append(protocol)
        return protocol

    @property
    def server_protocol(self) -> Recorder:
        return self.server_protocols[-1]

    def connect(self, until: float = 30.0) -> "Pair":
        self.client.connect(SERVER, self.client_protocol).addErrback(self.connect_failures.append)
        self.run_until(lambda: self.client_protocol.connection is not None
                       or bool(self.connect_failures), until)
        return self

    def run_until(self, condition, limit: float = 60.0) -> None:
        """Advance virtual time (at most ``limit`` more seconds) until ``condition()``."""
        self.network.run(until=self.clock.seconds() + limit, stop=condition)

    def run_for(self, seconds: float) -> None:
        target = self.clock.seconds() + seconds
        self.network.run(until=target)
        if self.clock.seconds() < target:
            self.clock.advance(target - self.clock.seconds())
