"""A real ChatServer and real endpoints on the network simulator, in virtual
time: what the client library is tested against."""

from __future__ import annotations

import random

from twisted.internet.task import Clock

from twistchat.chat.server import ChatServer, ServerConfig
from twistchat.client import ChatClient, ChatObserver, ClientState
from twistchat.endpoint.endpoint import ClientEndpoint, ServerEndpoint
from twistchat.netsim.network import SimulatedNetwork
from twistchat.store.memory import MemoryStore

SERVER = ("127.0.0.10", 9999)
FAST = dict(scrypt_n=16, scrypt_r=1, scrypt_p=1)


class Recording(ChatObserver):
    def __init__(self) -> None:
        self.log: list[tuple] = []

    def message(self, event, replay):
        self.log.append(("message", event.room, event.nick, event.text, replay))

    def direct(self, event):
        self.log.append(("dm", event.nick, event.text, event.stored))

    def delivered(self, event):
        self.log.append(("delivered", event.to, event.dm_id))

    def presence(self, event):
        self.log.append(("presence", event.TYPE, getattr(event, "nick", None)))

    def error(self, error):
        self.log.append(("error", error.code))

    def server_going_down(self, message):
        self.log.append(("going down", message))

    def disconnected(self, reason, retry_in):
        self.log.append(("disconnected", reason, retry_in is not None))

    def reconnected(self):
        self.log.append(("reconnected",))

    def of(self, kind: str) -> list[tuple]:
        return [entry for entry in self.log if entry[0] == kind]


class World:
    def __init__(self, seed: int = 1, **network) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.network = SimulatedNetwork(self.clock, seed=seed, **{"rtt": 0.02, **network})
        self.store = MemoryStore()
        self.seed = seed
        self.server: ChatServer | None = None
        self.server_endpoint: ServerEndpoint | None = None
        self._clients = 0
        self.start_server()

    def start_server(self) -> None:
        self.server = ChatServer(self.store, self.clock, ServerConfig(**FAST),
                                 rng=random.Random(self.seed))
        self.server_endpoint = ServerEndpoint(self.clock, lambda a: self.server.build_protocol(),
                                              rng=random.Random(self.seed + 100))
        self.network.attach(self.server_endpoint, SERVER)
        self.server.start()

    def kill_server(self) -> None:
        """The server process dies: no goodbye, all sessions forgotten."""
        self.server.stop()
        self.server_endpoint.stopProtocol()
        self.network.detach(SERVER)

    def client(self, nick: str, state: ClientState | None = None, **kwargs) -> tuple[ChatClient, Recording]:
        self._clients += 1
        endpoint = ClientEndpoint(self.clock, rng=random.Random(self.seed * 1000 + self._clients))
        self.network.attach(endpoint, ("127.0.0.20", 40000 + self._clients))
        observer = Recording()
        client = ChatClient(self.clock, endpoint, SERVER, nick, observer,
                            state=state or ClientState(None),
                            rng=random.Random(self._clients), **kwargs)
        return client, observer

    def pair_in_room(self, room: str = "#tea"):
        """alice and bob, connected and both in ``room``."""
        alice, alice_sees = self.client("alice")
        bob, bob_sees = self.client("bob")
        for client in (alice, bob):
            self.wait(client.connect())
            self.wait(client.join(room))
        return alice, alice_sees, bob, bob_sees

    def wait(self, deferred, limit: float = 30.0):
        """Run virtual time until ``deferred`` fires; return its result or raise."""
        results = []
        deferred.addBoth(results.append)
        self.network.run(until=self.clock.seconds() + limit, stop=lambda: bool(results))
        assert results, "timed out"
        result = results[0]
        if hasattr(result, "raiseException"):
            result.raiseException()
        return result

    def run(self, seconds: float) -> None:
        target = self.clock.seconds() + seconds
        self.network.run(until=target)
        if self.clock.seconds() < target:
            self.clock.advance(target - self.clock.seconds())
