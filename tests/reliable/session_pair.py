"""Drive reliable sessions directly: bytes and ``now`` in, datagrams out.

No endpoint, no reactor, no simulator: a test moves every datagram itself,
so it can drop, reorder or forge any of them and see exactly what the
session does in answer. Two shapes:

- ``Pair``: a real client session and a real server session. The client's
  HELLO is answered with a COOKIE (the server endpoint, not the session,
  checks cookies), its CONNECT becomes ``Session.server(...)``, and then
  ``c2s`` / ``s2c`` move what one side wants to send to the other, minus
  the datagrams named in ``drop`` (as aioquic's tests do);
- ``server_session`` and ``Peer``: one real server session whose client is
  written by hand (``peer.send(Ack(...))``), for tests that must control
  each packet number and each acknowledgement.

Only the public surface of ``Session`` is used here.
"""

from __future__ import annotations

import random
from collections.abc import Collection

import attrs

from twistchat.reliable.session import Session, SessionConfig
from twistchat.wire.packets import (
    Accept, Ack, Connect, Cookie, Data, MessageFrame, TransportParameters, decode_packet,
    encode_packet,
)

def parameters(**changes) -> TransportParameters:
    """What a default session announces, with ``changes``."""
    return attrs.evolve(SessionConfig().transport_parameters(), **changes)


CLIENT = ("198.51.100.7", 40000)
SERVER = ("192.0.2.1", 9999)
NEW_CLIENT = ("198.51.100.7", 51111)
"""Where the client appears to come from after a NAT rebinding."""
SERVER_CID = 0x5E5510
CLIENT_CID = 0xC11E47
COOKIE = b"\x00\x00\x00\x01" + b"m" * 16


def packets(datagrams: list[tuple[bytes, tuple]]) -> list:
    """Decode what ``datagrams_to_send`` returned."""
    return [decode_packet(datagram) for datagram, _ in datagrams]


def frames(datagrams: list[tuple[bytes, tuple]], kind: type | None = None) -> list:
    """Every frame of every DATA packet, in order; only those of ``kind`` if given."""
    found = [f for p in packets(datagrams) if isinstance(p, Data) for f in p.frames]
    return [f for f in found if kind is None or isinstance(f, kind)]


def seqs(datagrams: list[tuple[bytes, tuple]]) -> list[int]:
    """Sequence numbers of the message frames, in the order they went out."""
    return [f.seq for f in frames(datagrams, MessageFrame)]


def events(session: Session) -> list:
    out = []
    while (event := session.next_event()) is not None:
        out.append(event)
    return out


def ack_of(*pns: int, delay_us: int = 0) -> Ack:
    """An ACK frame for exactly these packet numbers, in correct ranges."""
    ranges: list[tuple[int, int]] = []
    for pn in sorted(set(pns), reverse=True):
        if ranges and ranges[-1][0] == pn + 1:
            ranges[-1] = (pn, ranges[-1][1])
        else:
            ranges.append((pn, pn))
    return Ack(tuple(ranges), delay_us)


class Pair:
    """A client and a server session that the test connects by hand."""

    def __init__(self, now: float = 0.0, client_config: SessionConfig | None = None,
                 server_config: SessionConfig | None = None) -> None:
        self.client = Session.client(now=now, server_address=SERVER,
                                     config=client_config or SessionConfig(),
                                     rng=random.Random(1))
        self.server_config = server_config or SessionConfig()
        self.server: Session | None = None
        self.client_address = CLIENT
        """Where the server sees the client's datagrams come from (NAT rebinding: change it)."""

    @classmethod
    def connected(cls, now: float = 0.0, **configs) -> "Pair":
        """A pair past the handshake, all at ``now``, events drained."""
        pair = cls(now, **configs)
        pair.handshake(now)
        events(pair.client)
        events(pair.server)
        return pair

    def handshake(self, now: float) -> list:
        """HELLO -> COOKIE -> CONNECT -> ACCEPT, all at ``now``; the four datagrams."""
        [(hello, to)] = self.client.datagrams_to_send(now)
        assert to == SERVER
        cookie = encode_packet(Cookie(decode_packet(hello).client_cid, COOKIE))
        assert self.client.receive_datagram(cookie, SERVER, now)
        [(connect, to)] = self.client.datagrams_to_send(now)
        accept = self.accept(connect, now)
        return [hello, cookie, connect, accept]

    def accept(self, connect: bytes, now: float, lost: bool = False) -> bytes:
        """What the server endpoint does with a CONNECT whose cookie is good;
        the ACCEPT reaches the client unless ``lost``."""
        packet = decode_packet(connect)
        assert isinstance(packet, Connect) and packet.cookie == COOKIE
        self.server = Session.server(now=now, local_cid=SERVER_CID, client_cid=packet.client_cid,
                                     client_address=self.client_address,
                                     client_parameters=packet.parameters,
                                     config=self.server_config, rng=random.Random(2))
        [(accept, to)] = self.server.datagrams_to_send(now)
        assert to == self.client_address and isinstance(decode_packet(accept), Accept)
        if not lost:
            assert self.client.receive_datagram(accept, SERVER, now)
        return accept

    def c2s(self, now: float, drop: Collection[int] | bool = ()) -> list[tuple[bytes, tuple]]:
        """Everything the client sends now, delivered to the server except
        the datagrams whose index is in ``drop`` (``True``: all of them)."""
        out = self.client.datagrams_to_send(now)
        for i, (datagram, to) in enumerate(out):
            assert to == SERVER
            if drop is not True and i not in drop:
                assert self.server.receive_datagram(datagram, self.client_address, now)
        return out

    def s2c(self, now: float, drop: Collection[int] | bool = ()) -> list[tuple[bytes, tuple]]:
        """The same, server to client (whatever address the server sends to)."""
        out = self.server.datagrams_to_send(now)
        for i, (datagram, _) in enumerate(out):
            if drop is not True and i not in drop:
                assert self.client.receive_datagram(datagram, SERVER, now)
        return out


def server_session(now: float = 0.0, config: SessionConfig | None = None,
                   client_parameters: TransportParameters | None = None) -> Session:
    """A server session just created for a CONNECT, its ACCEPT already sent."""
    session = Session.server(now=now, local_cid=SERVER_CID, client_cid=CLIENT_CID,
                             client_address=CLIENT,
                             client_parameters=client_parameters or parameters(),
                             config=config or SessionConfig(), rng=random.Random(5))
    [(accept, to)] = session.datagrams_to_send(now)
    assert to == CLIENT and isinstance(decode_packet(accept), Accept)
    return session


class Peer:
    """The client of a ``server_session``, written by hand: it sends DATA
    packets with consecutive packet numbers (or chosen ones)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.next_pn = 0

    def send(self, *frames, now: float, pn: int | None = None, address: tuple = CLIENT) -> bytes:
        if pn is None:
            pn = self.next_pn
        self.next_pn = max(self.next_pn, pn + 1)
        datagram = encode_packet(Data(SERVER_CID, pn, tuple(frames)))
        assert self.session.receive_datagram(datagram, address, now)
        return datagram

    def ack(self, *pns: int, now: float) -> None:
        self.send(ack_of(*pns), now=now)


def send_one(session: Session, data: bytes, now: float) -> int:
    """Queue one message and put it on the wire alone; the packet number."""
    session.send_message(data, now)
    [(datagram, _)] = session.datagrams_to_send(now)
    return decode_packet(datagram).packet_number


def with_rtt(session: Session, peer: Peer, rtt: float, now: float = 0.0) -> float:
    """Give ``session`` one clean RTT sample of ``rtt``: a message sent at
    ``now``, acknowledged at ``now + rtt``. Returns that time."""
    pn = send_one(session, b"warm-up", now)
    peer.ack(pn, now=now + rtt)
    assert session.rtt.has_sample
    return now + rtt

