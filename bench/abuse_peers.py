"""What the hostile peers of ``bench.abuse_attacks`` share: metered
endpoints on their own loopback addresses, sessions that do a real
handshake (and login), replies tallied by code."""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from typing import Any

from twisted.internet import defer

from bench.common import LoadClient, sleep

ATTACKER = "127.0.1.1"
SERVER = "127.0.0.1"
PASSWORD = "correct horse battery"


class Meter:
    """Bytes and datagrams through the sockets of one side."""

    def __init__(self) -> None:
        self.bytes_out = self.bytes_in = self.datagrams_out = self.datagrams_in = 0

    def figures(self) -> dict:
        return {"bytes_out": self.bytes_out, "bytes_in": self.bytes_in,
                "datagrams_out": self.datagrams_out, "datagrams_in": self.datagrams_in}


def metered_endpoint(reactor: Any, meter: Meter, interface: str = ATTACKER, config: Any = None,
                     drop_in: Any = None) -> Any:
    """A ``ClientEndpoint`` on ``interface`` counting into ``meter``;
    ``drop_in(datagram) -> bool`` drops incoming datagrams unseen by the
    sessions (a peer that does not ack)."""
    from twistchat.endpoint.endpoint import ClientEndpoint
    from twistchat.endpoint.sockets import enlarge_buffers
    endpoint = ClientEndpoint(reactor, config=config,
                              rng=random.Random(int.from_bytes(os.urandom(16), "big")))
    port = reactor.listenUDP(0, endpoint, interface=interface, maxPacketSize=65535)
    enlarge_buffers(port)
    real_write, real_receive = endpoint.transport.write, endpoint.datagramReceived

    def write(datagram: bytes, address: Any = None) -> Any:
        meter.bytes_out += len(datagram)
        meter.datagrams_out += 1
        return real_write(datagram, address)

    def receive(datagram: bytes, address: Any) -> None:
        meter.bytes_in += len(datagram)
        meter.datagrams_in += 1
        if drop_in is not None and drop_in(datagram):
            return
        real_receive(datagram, address)
    endpoint.transport.write = write
    endpoint.datagramReceived = receive
    endpoint.bench_port = port
    return endpoint


async def session(endpoint: Any, port: int, nick: str | None = None, password: str | None = None,
                  room: str | None = None, on_event: Any = None) -> LoadClient:
    """Handshake (and login, join); raises on failure."""
    client = LoadClient(nick or "-", on_event)
    await sleep(endpoint.reactor, 0)  # a fresh reactor turn (see common.connect_client)
    await endpoint.connect((SERVER, port), client)
    if nick is not None:
        request = {"t": "login", "nick": nick}
        if password:
            request["password"] = password
        reply = await client.request(request)
        if reply["t"] != "ok":
            client.connection.close(graceful=False)
            raise RuntimeError(f"login {nick}: {reply.get('code')}")
    if room is not None:
        reply = await client.request({"t": "join", "room": room})
        if reply["t"] != "ok":
            raise RuntimeError(f"join {room}: {reply.get('code')}")
    return client


def tally(counter: Counter, reply: Any) -> None:
    if isinstance(reply, dict):
        counter[reply["t"] if reply["t"] == "ok" else reply.get("code", "?")] += 1
    else:
        counter["lost"] += 1


def request(client: LoadClient, obj: dict, counter: Counter) -> defer.Deferred:
    try:
        d = client.request(obj)
    except Exception:  # the session has ended
        counter["session_ended"] += 1
        return defer.succeed(None)
    d.addBoth(lambda r: tally(counter, r))
    return d


def closed_why(client: LoadClient) -> str:
    lost = client.lost
    return "open" if lost is None else f"{lost.code.name}"


async def every(reactor: Any, seconds: float, rate: float, action: Any) -> None:
    """Call ``action()`` ``rate`` times a second for ``seconds``."""
    start, tick, due = time.monotonic(), 0.01, 0.0
    while time.monotonic() - start < seconds:
        due += rate * tick
        while due >= 1:
            due -= 1
            action()
        await sleep(reactor, tick)
