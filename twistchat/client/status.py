"""
Where a ``ChatClient`` stands, for a person (``/status``) or a program:
the server and the key it proved, the nick, the rooms, what the transport
has seen (RTT, loss both ways), how long this session has been logged in,
and what is still waiting for an answer or an acknowledgement. A snapshot,
read without changing anything.
"""

from __future__ import annotations

from typing import Any

import attrs

from twistchat.client.known_servers import server_name
from twistchat.client.link import LinkState
from twistchat.endpoint.keys import fingerprint


@attrs.define
class ClientCounters:
    """What the client dropped on purpose, so it is never invisible."""

    duplicate_dms: int = 0
    """DMs the server handed over again (its mailbox resends until our
    transport acknowledged one) and the client did not show twice."""
    duplicate_deliveries: int = 0
    """``delivered`` notices dropped as already seen."""
    unreadable_unreliable: int = 0
    """Unreliable messages from the server that were no typing notice: dropped."""
    typing_sent: int = 0
    typing_held_back: int = 0
    """Typing notices not sent: within ``TYPING_SEND_INTERVAL`` of the last one to that target."""


@attrs.frozen
class ClientStatus:
    server: str
    """``host:port``: the server the client is on, or trying next."""
    servers: tuple[str, ...]
    """Every server of its list (``servers.py``), in the order they are tried."""
    server_key: str | None
    """The fingerprint of the key the server proved (and this client pinned)."""
    nick: str
    state: LinkState
    rooms: tuple[str, ...]
    logged_in_for: float | None
    """Seconds since this session logged in; None when not logged in."""
    ping_rtt: float | None
    """The last ``ping()``'s round trip, seconds (None: no ping yet)."""
    transport: Any
    """The session's ``endpoint.stats.TransportStats``, or None without one."""
    unanswered: int
    """Requests sent and not answered yet."""
    held: int
    """Requests waiting for the next login."""
    counters: ClientCounters


def client_status(client: Any) -> ClientStatus:
    key = client.server_key
    connection = client._link.connection if client._link is not None else None
    stats = getattr(connection, "transport_stats", None)
    since = client.logged_in_at if client.ready else None
    return ClientStatus(
        server=server_name(client.address), servers=client.servers.names,
        server_key=fingerprint(key) if key else None, nick=client.nick,
        state=client.link_state, rooms=tuple(client.rooms.values()),
        logged_in_for=None if since is None else client.reactor.seconds() - since,
        ping_rtt=client.last_ping_rtt, transport=stats() if stats is not None else None,
        unanswered=len(client._outbox.sent), held=len(client._outbox.held),
        counters=attrs.evolve(client.counters))
