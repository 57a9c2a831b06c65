"""aioquic in ``python -m bench transport``: its sans-IO ``QuicConnection``
(the same object its asyncio protocol drives) at each end, with virtual
``now`` everywhere; the client opens one bidirectional stream after the
handshake and writes each message behind a 4-byte length prefix; the
server reads the stream and cuts it back into messages, so delivery is in
order by construction.  Its defaults are kept (1200-byte datagrams, 1 MiB
connection and stream flow-control windows, NewReno), with a throwaway
self-signed certificate the client does not verify.  The bench never needs
it: when it cannot be imported the column says so."""

from __future__ import annotations

import datetime
import ssl
import struct

from twisted.internet.task import Clock

from bench.transport_channel import (
    CLIENT_ADDRESS, FEED_QUEUE_MESSAGES, SERVER_ADDRESS, WINDOW_FEED_INTERVAL, MessageTrace, RunCap,
    SansIOPeer, network_for, run_until_done,
)
from twistchat.netsim.transfer import TransferResult, TransferSettings

LENGTH_PREFIX = struct.Struct(">I")
"""Message boundaries on the one stream."""

ALPN = "twistchat-bench"
HOST_CID_LENGTH = 8
"""aioquic's default connection-id length: what the server parses the first header with."""


def quic_available() -> str | None:
    """None when aioquic imports, else why not."""
    try:
        import aioquic  # noqa: F401
    except ImportError as error:
        return f"aioquic not installed ({error}); pip install '.[bench]'"
    return None


def self_signed() -> tuple:
    """A throwaway certificate and key for the server (the client does not verify)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench.invalid")])
    start = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(1)
                   .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=36500))
                   .sign(key, hashes.SHA256()))
    return certificate, key


class QuicPeer(SansIOPeer):
    """One end of the connection; the server end is created by the first datagram."""

    def __init__(self, clock: Clock, peer_address: tuple, configuration, client: bool) -> None:
        super().__init__(clock, peer_address)
        from aioquic.quic.connection import QuicConnection
        self.configuration = configuration
        self.connection = QuicConnection(configuration=configuration) if client else None
        self.on_established = None
        self.on_message = None
        self._buffer = bytearray()
        self.stream_id: int | None = None
        self.written = 0

    def feed(self, datagram: bytes, address: tuple, now: float) -> None:
        if self.connection is None:
            from aioquic.buffer import Buffer
            from aioquic.quic.connection import QuicConnection
            from aioquic.quic.packet import pull_quic_header
            header = pull_quic_header(Buffer(data=datagram), host_cid_length=HOST_CID_LENGTH)
            self.connection = QuicConnection(configuration=self.configuration,
                                             original_destination_connection_id=header.destination_cid)
        self.connection.receive_datagram(datagram, address, now)
        self._events()

    def on_timer(self, now: float) -> None:
        if self.connection is not None:
            self.connection.handle_timer(now)
            self._events()

    def outgoing(self, now: float) -> list[bytes]:
        if self.connection is None:
            return []
        return [data for data, _ in self.connection.datagrams_to_send(now)]

    def next_timer(self) -> float | None:
        return self.connection.get_timer() if self.connection is not None else None

    def _events(self) -> None:
        from aioquic.quic import events
        while (event := self.connection.next_event()) is not None:
            if isinstance(event, events.HandshakeCompleted) and self.on_established is not None:
                self.on_established()
            elif isinstance(event, events.StreamDataReceived):
                self._buffer += event.data
                self._cut_messages()

    def _cut_messages(self) -> None:
        offset = 0
        while len(self._buffer) - offset >= LENGTH_PREFIX.size:
            (length,) = LENGTH_PREFIX.unpack_from(self._buffer, offset)
            end = offset + LENGTH_PREFIX.size + length
            if end > len(self._buffer):
                break
            if self.on_message is not None:
                self.on_message(bytes(self._buffer[offset + LENGTH_PREFIX.size:end]))
            offset = end
        del self._buffer[:offset]

    # -- the sending end
    def send(self, message: bytes) -> None:
        if self.stream_id is None:
            self.stream_id = self.connection.get_next_available_stream_id()
        framed = LENGTH_PREFIX.pack(len(message)) + message
        self.connection.send_stream_data(self.stream_id, framed)
        self.written += len(framed)

    def _stream_sender(self):
        # aioquic keeps per-stream send state private; the bench pins its version.
        return self.connection._streams[self.stream_id].sender

    def unsent_bytes(self) -> int:
        """Written to the stream, never yet sent."""
        if self.stream_id is None:
            return 0
        return self.written - self._stream_sender().highest_offset

    def all_acknowledged(self) -> bool:
        return self.stream_id is not None and self._stream_sender()._buffer_start >= self.written


def run_quic(settings: TransferSettings, cap: RunCap) -> tuple[TransferResult, str | None]:
    """One transfer of ``settings`` through the simulator over aioquic."""
    from aioquic.quic.configuration import QuicConfiguration
    cap.restart()
    clock = Clock()
    network = network_for(settings, clock)
    trace = MessageTrace(clock, settings)
    certificate, key = self_signed()
    server_config = QuicConfiguration(is_client=False, alpn_protocols=[ALPN])
    server_config.certificate, server_config.private_key = certificate, key
    client_config = QuicConfiguration(is_client=True, alpn_protocols=[ALPN], verify_mode=ssl.CERT_NONE,
                                      server_name="bench.invalid")
    sender = QuicPeer(clock, SERVER_ADDRESS, client_config, client=True)
    receiver = QuicPeer(clock, CLIENT_ADDRESS, server_config, client=False)
    receiver.on_message = trace.delivered
    network.attach(receiver, SERVER_ADDRESS)
    network.attach(sender, CLIENT_ADDRESS)
    queue_limit = FEED_QUEUE_MESSAGES * (max(settings.size, 8) + LENGTH_PREFIX.size)

    def feed() -> None:
        """As netsim's Sender: a message every 1/rate s, or (rate 0) keep
        about FEED_QUEUE_MESSAGES messages written to the stream but unsent."""
        if trace.all_sent:
            return
        if settings.rate > 0:
            sender.send(trace.next_message())
            sender.flush()
            clock.callLater(1 / settings.rate, feed)
            return
        while not trace.all_sent and sender.unsent_bytes() < queue_limit:
            sender.send(trace.next_message())
        sender.flush()
        clock.callLater(WINDOW_FEED_INTERVAL, feed)

    sender.on_established = lambda: clock.callLater(0, feed)
    sender.connection.connect(SERVER_ADDRESS, clock.seconds())
    sender.flush()
    sender.cap = receiver.cap = cap
    problem = run_until_done(network, cap, lambda: trace.all_delivered and sender.all_acknowledged())
    sender.stop()
    receiver.stop()
    return trace.result(wire_bytes=sender.bytes_sent + receiver.bytes_sent, network=network,
                        timed_out=problem is not None), problem
