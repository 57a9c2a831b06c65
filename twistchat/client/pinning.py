"""
Which server key a ``ChatClient`` holds its server to, and opening a session
only to a server that proves it (ssh's known_hosts, for twistchat):

- a key pinned earlier (in ``known_servers``, or in memory since this
  client's first session) goes to the transport, which ends a handshake
  proving another key with SERVER_KEY_MISMATCH before anything is sent;
  a second, unpinned handshake that sends nothing and is closed at once
  then learns the key the server proves now, so ``ServerKeyMismatch`` can
  name both fingerprints;
- with no pin (first contact), a given fingerprint to replace the pin, or
  the one-off ``accept_new`` choice, the session opens unpinned and the
  key it proved is checked here, before the chat layer sends anything,
  then pinned, and the observer told.

Each ``host:port`` is pinned on its own, as ssh does, and the nodes of one
network (``servers.py``) share one key: so a node met for the first time
must prove the key another node of the list already proved (then it is
pinned too, and the observer told), and only a network none of whose nodes
was met before is taken on first contact. Otherwise whoever sits on the
path to a node a client has not used yet could take its sessions there the
first time the client fails over.
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.logger import Logger

from twistchat.client.known_servers import KnownServers, ServerKeyMismatch, server_name
from twistchat.client.observer import ChatObserver, Disconnected
from twistchat.client.state import StateError
from twistchat.endpoint.api import CloseCode, MessageProtocol
from twistchat.endpoint.endpoint import ClientEndpoint, ConnectError
from twistchat.endpoint.keys import fingerprint


class ServerKeyPin:
    """``known_servers``: where pins are kept (default: in memory, for the
    client's life); ``expected``: a fingerprint the server must prove, even
    on first contact, replacing a different pin once proven; ``accept_new``:
    the next session pins whatever key the server proves (a key change the
    user expected), later ones hold to that pin."""

    log = Logger()

    def __init__(self, known_servers: KnownServers | None = None,
                 expected: str | None = None, accept_new: bool = False,
                 network: Sequence[tuple[str, int]] = ()) -> None:
        self.known_servers = known_servers or KnownServers(None)
        self.network = tuple(network)
        """The nodes of the client's network, which all prove one key."""
        self.expected = expected
        """A fingerprint the server must prove (``server_key``), even on first contact."""
        self.accept_new = accept_new
        """The next session takes whatever key the server proves; used up by it."""
        self.held: dict[str, bytes] = {}
        """Per ``host:port``, the key held to from this client's first session there on."""
        self.key: bytes | None = None
        """The key the server of the latest session proved."""

    async def connect(self, endpoint: ClientEndpoint, address: tuple[str, int],
                      protocol: MessageProtocol, observer: ChatObserver) -> None:
        name = server_name(address)
        own = self.held.get(name) or self.known_servers.get(address)
        pinned, via = (own, None) if own is not None else self._network_pin(address)
        strict = pinned is not None and not self.accept_new and (
            self.expected in (None, fingerprint(pinned)))
        try:
            await endpoint.connect(address, protocol, server_key=pinned if strict else None)
        except ConnectError as e:
            if e.reason.code is CloseCode.SERVER_KEY_MISMATCH:
                raise ServerKeyMismatch(name, fingerprint(pinned), await self._probe(endpoint, address),
                                        pinned=True, via=via) from None
            raise Disconnected(f"cannot reach {address[0]}:{address[1]}: "
                               f"{e.reason.message or e.reason.code.name}") from None
        proven = protocol.connection.server_key
        if self.expected not in (None, fingerprint(proven)):
            protocol.connection.close("server key mismatch", graceful=False)
            raise ServerKeyMismatch(name, self.expected, fingerprint(proven), pinned=False)
        self.accept_new = False
        if proven != own:
            self._pin(address, proven, own, observer)
        self.held[name] = self.key = proven

    def _network_pin(self, address: tuple[str, int]) -> tuple[bytes | None, str | None]:
        """The key another node of the network proved (this run or pinned
        earlier), and that node's name; (None, None) if none was met."""
        for other in self.network:
            name = server_name(other)
            if other == address:
                continue
            key = self.held.get(name) or self.known_servers.get(other)
            if key is not None:
                return key, name
        return None, None

    async def _probe(self, endpoint: ClientEndpoint, address: tuple[str, int]) -> str | None:
        """The fingerprint of the key the server proves when not held to a
        pin: a second handshake, closed at once with nothing sent on it."""
        probe = MessageProtocol()
        try:
            await endpoint.connect(address, probe)
        except ConnectError:
            return None
        probe.connection.close("key probe", graceful=False)
        return fingerprint(probe.connection.server_key)

    def _pin(self, address: tuple[str, int], key: bytes, replaced: bytes | None,
             observer: ChatObserver) -> None:
        new, old = fingerprint(key), None if replaced is None else fingerprint(replaced)
        name = server_name(address)
        try:
            self.known_servers.pin(address, key)
        except StateError:
            self.log.failure("could not save the server key (pinned for this run only)")
        if old is None:
            self.log.info("new server key {key} for {server}, pinned", key=new, server=name)
        else:
            self.log.warn("server key for {server} changed from {old} to {key}: accepted, re-pinned",
                          server=name, old=old, key=new)
        observer.server_key_pinned(name, new, old)
