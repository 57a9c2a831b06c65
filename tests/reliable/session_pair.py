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

Only the public surface of ``Session`` is used here. Every DATA packet is
sealed; ``packets``/``frames``/``seqs`` open what they are given with the
keys of the sessions (and hand-written peers) made here, most recent first.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Collection

import attrs
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from twistchat.reliable.handshake import prologue
from twistchat.reliable.noise import NXInitiator
from twistchat.reliable.protection import PacketProtection, reset_token
from twistchat.reliable.session import Session, SessionConfig
from twistchat.wire.packets import (
    Accept, Ack, Connect, Cookie, Data, MessageFrame, SealedData, TransportParameters,
    decode_frames, decode_packet, encode_frames, encode_packet,
)

SERVER_KEY = X25519PrivateKey.from_private_bytes(bytes(range(32)))
"""The server's static key in these tests."""
RESET_SECRET = b"r" * 32

_OPENERS: deque[PacketProtection] = deque(maxlen=16)
"""Keys of the sessions made here: what ``packets`` opens sealed DATA with."""


def _open(packet):
    if not isinstance(packet, SealedData):
        return packet
    for protection in reversed(_OPENERS):
        plaintext = protection.open(packet)
        if plaintext is not None:
            return Data(packet.dest_cid, packet.packet_number, decode_frames(plaintext))
    raise AssertionError("a DATA packet no session of this test can open")

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
    """Decode (and open) what ``datagrams_to_send`` returned."""
    return [_open(decode_packet(datagram)) for datagram, _ in datagrams]


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
        self.server = Session.server(now=now, local_cid=SERVER_CID, connect=packet,
                                     client_address=self.client_address, static_key=SERVER_KEY,
                                     reset_token=reset_token(RESET_SECRET, SERVER_CID),
                                     config=self.server_config, rng=random.Random(2))
        _OPENERS.append(self.server.protection)
        [(accept, to)] = self.server.datagrams_to_send(now)
        assert to == self.client_address and isinstance(decode_packet(accept), Accept)
        if not lost:
            assert self.client.receive_datagram(accept, SERVER, now)
            _OPENERS.append(self.client.protection)
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
                   client_parameters: TransportParameters | None = None,
                   reassembly_budget=None, send_budget=None) -> Session:
    """A server session just created for a CONNECT, its ACCEPT already sent
    to a hand-written client (``Peer(session)`` then speaks for it)."""
    noise = NXInitiator(prologue(CLIENT_CID, COOKIE))
    message_1 = noise.write_message_1((client_parameters or parameters()).encode())
    session = Session.server(now=now, local_cid=SERVER_CID,
                             connect=Connect(CLIENT_CID, COOKIE, message_1), client_address=CLIENT,
                             static_key=SERVER_KEY, reset_token=reset_token(RESET_SECRET, SERVER_CID),
                             config=config or SessionConfig(), rng=random.Random(5),
                             reassembly_budget=reassembly_budget, send_budget=send_budget)
    [(accept, to)] = session.datagrams_to_send(now)
    assert to == CLIENT and isinstance(accept_packet := decode_packet(accept), Accept)
    _, (client_to_server, server_to_client) = noise.read_message_2(accept_packet.handshake)
    protection = PacketProtection(client_to_server, server_to_client)
    _PEER_KEYS[id(session)] = protection
    _OPENERS.append(protection)
    return session


_PEER_KEYS: dict[int, PacketProtection] = {}
"""The hand-written client's keys, by the server session it talks to."""


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
        datagram = sealed(self.session, pn, encode_frames(frames))
        assert self.session.receive_datagram(datagram, address, now)
        return datagram

    def ack(self, *pns: int, now: float) -> None:
        self.send(ack_of(*pns), now=now)


def sealed(session: Session, pn: int, plaintext: bytes) -> bytes:
    """A DATA datagram from the hand-written client of ``session``, sealed
    with its keys around ``plaintext`` (encoded frames, or anything)."""
    return _PEER_KEYS[id(session)].seal(SERVER_CID, pn, plaintext)


def send_paced(session: Session, now: float, within: float = 0.005) -> list[tuple[bytes, tuple]]:
    """Everything ``session`` sends from ``now`` to ``now + within``, waking
    it whenever it asks (the pacer spreads a flight over time)."""
    out = session.datagrams_to_send(now)
    end = now + within
    while (timer := session.get_timer()) is not None and timer <= end:
        now = max(now, timer)
        session.handle_timer(now)
        sent = session.datagrams_to_send(now)
        if not sent and session.get_timer() <= now:
            break
        out += sent
    return out


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

