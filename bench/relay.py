"""``python -m bench.relay``: the baseline for ``fanout``: a plain Twisted UDP
relay with no reliability at all, doing the job of the tutorial relay (seed
001): one socket, members known by address, every line re-sent to every
other member of the room.  Each line is answered with a one-datagram ack so
senders can keep a fixed window in flight, as the reliable senders do.

Wire (bytes): ``J<room>`` join; ``S<id> <room> <text>`` say, relayed to the
other members as ``M<addr> <text>`` and acknowledged to the sender as ``A<id>``.
"""

from __future__ import annotations

import signal
import sys

from twisted.internet.protocol import DatagramProtocol

from twistchat.endpoint.sockets import enlarge_buffers


class Relay(DatagramProtocol):
    def __init__(self) -> None:
        self.rooms: dict[bytes, dict[tuple, None]] = {}
        self.relayed = 0

    def datagramReceived(self, datagram: bytes, address: tuple) -> None:
        kind = datagram[:1]
        if kind == b"S":
            head, room, text = datagram[1:].split(b" ", 2)
            members = self.rooms.get(room, {})
            line = b"M%s:%d %s" % (address[0].encode(), address[1], text)
            write = self.transport.write
            for member in members:
                if member != address:
                    try:
                        write(line, member)
                    except OSError:
                        pass
            self.relayed += len(members) - 1
            write(b"A" + head, address)
        elif kind == b"J":
            self.rooms.setdefault(datagram[1:], {})[address] = None
            self.transport.write(b"OK", address)


def main() -> int:
    from twisted.internet import reactor
    relay = Relay()
    port = reactor.listenUDP(0, relay, interface="127.0.0.1", maxPacketSize=65535)
    enlarge_buffers(port)
    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(reactor.stop))
    print(f"relay listening on 127.0.0.1:{port.getHost().port}", flush=True)
    reactor.run(installSignalHandlers=False)
    print(f"relayed {relay.relayed}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
