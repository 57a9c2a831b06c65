"""KCP in ``python -m bench transport``: the ``kcp`` package's ``KCP`` class,
a Cython binding of skywind3000's ikcp.c (see docs/benchmarks-transport.md
for how that was checked), in its documented fast mode ``nodelay=1,
interval=10, resend=2, nc=1``, driven as its README says: ``ikcp_update``
every ``interval`` ms (virtual), ``ikcp_input`` on every datagram, messages
(not stream mode) handed to ``ikcp_send``.  The bench never needs it: when
it cannot be imported the column says so."""

from __future__ import annotations

from twisted.internet.task import Clock

from bench.transport_channel import (
    CLIENT_ADDRESS, FEED_QUEUE_MESSAGES, SERVER_ADDRESS, WINDOW_FEED_INTERVAL, MessageTrace, RunCap,
    SansIOPeer, network_for, run_until_done,
)
from twistchat.netsim.transfer import TransferResult, TransferSettings
from twistchat.wire.packets import MAX_DATAGRAM_SIZE

FAST_MODE = {"no_delay": True, "update_interval": 10, "resend_count": 2, "no_congestion_control": True}
"""KCP's README: ``ikcp_nodelay(kcp, 1, 10, 2, 1)``, its "turbo mode"."""

KCP_WINDOW_SEGMENTS = 1024
"""Send and receive window, in segments of at most an MTU: about 1.2 MB of
full segments, the same order as twistchat's and aioquic's 1 MiB windows
(KCP counts segments, not bytes; its default send window of 32 caps bulk
at ~37 KB per round trip, which would measure the setting, not the protocol)."""

UPDATE_PHASE_S = FAST_MODE["update_interval"] / 2000
"""Both ends' update loops run half an interval out of step with the
sender's clock.  A message handed over at a steady rate otherwise always
meets the loop at the same point of its 10 ms (just before an update: no
wait; just after: a whole interval); independent clocks meet it, on
average, half an interval before the next update."""

KCP_MTU = MAX_DATAGRAM_SIZE
"""The same largest datagram as twistchat's (and aioquic's 1200)."""

KCP_HEADER_BYTES = 24
"""ikcp.c's IKCP_OVERHEAD: each segment's header."""

CONVERSATION_ID = 1


def kcp_available() -> str | None:
    """None when the ``kcp`` package imports, else why not."""
    try:
        import kcp  # noqa: F401
    except ImportError as error:
        return f"kcp not installed ({error}); pip install '.[bench]'"
    return None


class KcpPeer(SansIOPeer):
    """One end: a KCP control block on the simulator, woken every ``interval`` ms."""

    def __init__(self, clock: Clock, peer_address: tuple, window: int) -> None:
        super().__init__(clock, peer_address)
        from kcp import KCP
        self.kcp = KCP(CONVERSATION_ID, max_transmission=KCP_MTU, send_window_size=window,
                       receive_window_size=window, **FAST_MODE)
        self._output: list[bytes] = []
        self.kcp.include_outbound_handler(lambda _kcp, datagram: self._output.append(datagram))
        self._next_update = clock.seconds() + UPDATE_PHASE_S
        self.on_message = None
        self.refused = 0
        """Datagrams ikcp_input refused (dropped, as a socket loop would)."""

    def feed(self, datagram: bytes, address: tuple, now: float) -> None:
        from kcp.exceptions import KCPException
        try:
            self.kcp.receive(datagram)
        except KCPException:
            self.refused += 1
            return
        if self.on_message is not None:
            for message in self.kcp.get_all_received():
                self.on_message(bytes(message))

    def on_timer(self, now: float) -> None:
        """ikcp_update every ``interval`` ms, as KCP's README asks."""
        self.kcp.update(int(round(now * 1000)) & 0xFFFFFFFF)
        self._next_update = now + FAST_MODE["update_interval"] / 1000

    def next_timer(self) -> float:
        return self._next_update

    def outgoing(self, now: float) -> list[bytes]:
        datagrams, self._output = self._output, []
        return datagrams

    def send(self, message: bytes) -> None:
        """Queued in KCP; it goes out at the next update, as KCP's users see it."""
        self.kcp.enqueue(message)

    def waiting(self) -> int:
        """Segments queued or unacknowledged (ikcp_waitsnd)."""
        return self.kcp.get_outbound_packets()


def run_kcp(settings: TransferSettings, cap: RunCap, window: int = KCP_WINDOW_SEGMENTS
            ) -> tuple[TransferResult, str | None]:
    """One transfer of ``settings`` through the simulator over KCP."""
    cap.restart()
    clock = Clock()
    network = network_for(settings, clock)
    trace = MessageTrace(clock, settings)
    sender = KcpPeer(clock, SERVER_ADDRESS, window)
    receiver = KcpPeer(clock, CLIENT_ADDRESS, window)
    receiver.on_message = trace.delivered
    network.attach(receiver, SERVER_ADDRESS)
    network.attach(sender, CLIENT_ADDRESS)
    sender.cap = receiver.cap = cap
    mss = KCP_MTU - KCP_HEADER_BYTES
    segments_per_message = -(-max(settings.size, 8) // mss)
    feed_limit = FEED_QUEUE_MESSAGES * segments_per_message + window

    def feed() -> None:
        """As netsim's Sender: a message every 1/rate s, or (rate 0) keep
        about FEED_QUEUE_MESSAGES messages queued beyond the send window."""
        if trace.all_sent:
            return
        if settings.rate > 0:
            sender.send(trace.next_message())
            clock.callLater(1 / settings.rate, feed)
            return
        while not trace.all_sent and sender.waiting() < feed_limit:
            sender.send(trace.next_message())
        clock.callLater(WINDOW_FEED_INTERVAL, feed)

    # KCP has no handshake: the first message goes out at the first update.
    feed()
    sender.flush()
    receiver.flush()
    problem = run_until_done(network, cap, lambda: trace.all_delivered and sender.waiting() == 0)
    return trace.result(wire_bytes=sender.bytes_sent + receiver.bytes_sent, network=network,
                        timed_out=problem is not None), problem
