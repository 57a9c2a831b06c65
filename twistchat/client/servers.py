"""
The servers a client may talk to: one ``host:port``, or the nodes of one
network (docs/CLUSTER.md), which share accounts, rooms, history and one
server key, so that any of them will do.

``ServerList`` is the list as given (``--host a,b:9992,[::1]:9993``, or
``ChatClient(reactor, endpoint, [(host, port), ...], ...)``); the first
entry names the network (the client's state file is keyed by it).

``ServerRotation`` picks which one a session is opened to: the first to
begin with; when a session is lost or an attempt fails, the next, round
robin. A *round* is one try of each server; the client waits its back-off
(``link.RECONNECT_DELAYS``) before each round, not before each server, so a
dead node costs its clients one back-off, not one per node, and the
jittered wait before a round spreads a dead node's clients over the others.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Sequence

import attrs

from twistchat.client.known_servers import server_name

Address = tuple[str, int]
MAX_PORT = 65535
HOST_NAME = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$")
"""A DNS name or an IPv4 address, as ``--host`` takes it (RFC 1123 labels;
``_`` allowed, as resolvers accept it)."""


class ServerListError(ValueError):
    """An item of a server list that is no ``host``, ``host:port`` or
    ``[IPv6]:port``, or a list that is empty or names a server twice."""


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def _port(text: str, item: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= MAX_PORT:
        raise ServerListError(f"{item!r}: the port must be a number from 1 to {MAX_PORT}")
    return int(text)


def parse_server(item: str, default_port: int) -> Address:
    """``host``, ``host:port``, ``[IPv6]``, ``[IPv6]:port`` or a bare IPv6
    address (then the port is ``default_port``)."""
    text = item.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not _is_ipv6(host):
            raise ServerListError(f"{item!r}: an IPv6 address goes in brackets, as [::1]:9999")
        if rest and not rest.startswith(":"):
            raise ServerListError(f"{item!r}: only :PORT may follow the bracketed address")
        return host, _port(rest[1:], item) if rest else default_port
    if text.count(":") > 1:  # a bare IPv6 address: no port can be told apart
        if not _is_ipv6(text):
            raise ServerListError(f"{item!r}: not an IPv6 address (write [ADDRESS]:PORT)")
        return text, default_port
    host, colon, port = text.partition(":")
    if not HOST_NAME.match(host):
        raise ServerListError(f"{item!r}: not a host name or address" if host
                              else f"{item!r}: no host")
    return host, _port(port, item) if colon else default_port


@attrs.frozen
class ServerList:
    """The servers of one network, in the order they are tried."""

    addresses: tuple[Address, ...] = attrs.field(converter=tuple)

    @addresses.validator
    def _check(self, _attribute, addresses) -> None:
        if not addresses:
            raise ServerListError("no server given")
        names = [server_name(a) for a in addresses]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ServerListError(f"{', '.join(twice)} listed twice")

    @classmethod
    def of(cls, servers: "Address | Sequence[Address] | ServerList") -> "ServerList":
        """One ``(host, port)``, a sequence of them, or a ``ServerList``."""
        if isinstance(servers, ServerList):
            return servers
        if len(servers) == 2 and isinstance(servers[0], str):
            return cls([(servers[0], int(servers[1]))])
        return cls([(host, int(port)) for host, port in servers])

    @classmethod
    def parse(cls, text: str, default_port: int) -> "ServerList":
        """``a,b:9992,[::1]:9993``: items separated by commas, each as
        ``parse_server`` takes it."""
        return cls([parse_server(item, default_port) for item in text.split(",")])

    @property
    def network(self) -> Address:
        """The first server: what names this network (its state file)."""
        return self.addresses[0]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(server_name(a) for a in self.addresses)

    @property
    def ipv6(self) -> bool:
        """Every server is an IPv6 address (the client's socket must be IPv6);
        ServerListError if some are and some are not: one socket cannot do both."""
        kinds = {_is_ipv6(host) for host, _ in self.addresses}
        if len(kinds) > 1:
            raise ServerListError("IPv4 and IPv6 servers in one list: give one kind")
        return kinds == {True}

    def __len__(self) -> int:
        return len(self.addresses)

    def __iter__(self) -> Iterator[Address]:
        return iter(self.addresses)


class ServerRotation:
    """Which server the next session goes to, and where a round ends."""

    def __init__(self, servers: ServerList) -> None:
        self.servers = servers
        self.index = 0
        self.tried = 0
        """Servers tried in this round so far."""

    @property
    def current(self) -> Address:
        return self.servers.addresses[self.index]

    @property
    def round_ends_here(self) -> bool:
        """The current server is the last of this round still to try."""
        return self.tried + 1 >= len(self.servers)

    def move_on(self, session_lost: bool = False) -> bool:
        """To the next server. ``session_lost``: a logged-in session on the
        current one ended, and a new round begins with the next; otherwise
        an attempt on the current one failed. True when a round begins (so
        wait the back-off first); False: try the next at once."""
        self.index = (self.index + 1) % len(self.servers)
        if session_lost:
            self.tried = 0
            return True
        self.tried += 1
        if self.tried >= len(self.servers):
            self.tried = 0
            return True
        return False
