"""A real ChatServer and real endpoints on the network simulator, in virtual
time: what the client library is tested against."""

from __future__ import annotations

import random

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from twisted.internet.task import Clock

from twistchat.chat import protocol as p
from twistchat.chat.server import ChatServer, ServerConfig
from twistchat.chat.server.service import session_config
from twistchat.client import ChatClient, ChatObserver, ClientState
from twistchat.client.limits import client_endpoint
from twistchat.endpoint.endpoint import ServerEndpoint
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

    def contact(self, event):
        self.log.append(("contact", event.nick, event.state))

    def rejoined(self, event):
        self.log.append(("rejoined", event.room, event.missed, event.not_kept))

    def server_going_down(self, message):
        self.log.append(("going down", message))

    def disconnected(self, reason, retry_in):
        self.log.append(("disconnected", reason, retry_in is not None))

    def reconnected(self):
        self.log.append(("reconnected",))

    def server_changed(self, old, new):
        self.log.append(("server changed", old, new))

    def server_key_pinned(self, server, fingerprint, replaced):
        self.log.append(("pinned", server, fingerprint, replaced))

    def of(self, kind: str) -> list[tuple]:
        return [entry for entry in self.log if entry[0] == kind]


def server_key(seed: int) -> X25519PrivateKey:
    """A static server key that depends only on ``seed``."""
    return X25519PrivateKey.from_private_bytes(random.Random(seed).randbytes(32))


class World:
    def __init__(self, seed: int = 1, server_config: dict | None = None, **network) -> None:
        """``server_config``: ``ServerConfig`` fields beside the fast scrypt."""
        self.server_config = server_config or {}
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.network = SimulatedNetwork(self.clock, seed=seed, **{"rtt": 0.02, **network})
        self.store = MemoryStore()
        self.seed = seed
        self.server: ChatServer | None = None
        self.server_endpoint: ServerEndpoint | None = None
        self._clients = 0
        self.server_alive = False
        self.server_key = server_key(seed)
        """The server's static key: kept across restarts, as its key file is."""
        self.start_server()

    def start_server(self, static_key: X25519PrivateKey | None = None) -> None:
        """(Re)start on the same store; ``static_key`` replaces the server's key."""
        if static_key is not None:
            self.server_key = static_key
        self.server, self.server_endpoint = self.start_node(SERVER)
        self.server_alive = True

    def start_node(self, address: tuple[str, int], seed: int = 0) -> tuple[ChatServer, ServerEndpoint]:
        """A server at ``address`` on this world's store, proving its key:
        with another at another address, two nodes of one network."""
        config = ServerConfig(**{**FAST, **self.server_config})
        server = ChatServer(self.store, self.clock, config, rng=random.Random(self.seed + seed))
        endpoint = ServerEndpoint(self.clock, lambda a: server.build_protocol(),
                                  config=session_config(config),
                                  rng=random.Random(self.seed + seed + 100),
                                  static_key=self.server_key)
        self.network.attach(endpoint, address)
        server.start()
        return server, endpoint

    def kill_server(self) -> None:
        """The server process dies: no goodbye, all sessions forgotten."""
        self.kill_node(self.server, self.server_endpoint, SERVER)
        self.server_alive = False

    def kill_node(self, server: ChatServer, endpoint: ServerEndpoint, address: tuple[str, int]) -> None:
        server.stop()
        endpoint.stopProtocol()
        self.network.detach(address)

    def kill_server_before(self, answer, after: float = 0.0) -> None:
        """Kill the server the moment it is about to send a message for which
        ``answer(message)`` is true (a reply whose effect is committed): that
        message and all after it are lost. With ``after``, the server lives
        on mute for that long first, so its transport still acknowledges what
        it received, as a server that dies between commit and answer does."""
        doomed = {"armed": True, "mute": False}

        def die() -> None:
            if self.server_alive:
                self.kill_server()

        def muting(connection):
            return _Muting(connection, answer, doomed, lambda: self.clock.callLater(after, die))
        for session in self.server.sessions:
            session.connection = muting(session.connection)
        original = self.server.build_protocol

        def build():
            session = original()
            made = session.connection_made
            session.connection_made = lambda connection: made(muting(connection))
            return session
        self.server.build_protocol = build

    def client(self, nick: str, state: ClientState | None = None, servers=SERVER,
               **kwargs) -> tuple[ChatClient, Recording]:
        self._clients += 1
        endpoint = client_endpoint(self.clock, rng=random.Random(self.seed * 1000 + self._clients))
        self.network.attach(endpoint, ("127.0.0.20", 40000 + self._clients))
        observer = Recording()
        client = ChatClient(self.clock, endpoint, servers, nick, observer,
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


class _Muting:
    """A server-side connection that goes silent for good once a doomed
    message is about to leave (everything else passes through)."""

    def __init__(self, connection, answer, doomed: dict, kill) -> None:
        self._connection = connection
        self._answer = answer
        self._doomed = doomed
        self._kill = kill

    def __getattr__(self, name):
        return getattr(self._connection, name)

    def send_message(self, data: bytes, *args, **kwargs):
        if not self._doomed["mute"] and self._doomed["armed"]:
            try:
                message = p.decode_server_message(data)
            except p.ChatProtocolError:
                message = None
            if message is not None and self._answer(message):
                self._doomed.update(mute=True, armed=False)
                self._kill()
        if self._doomed["mute"]:
            return None
        return self._connection.send_message(data, *args, **kwargs)
