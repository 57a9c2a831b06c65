"""A tiny UDP relay that records every datagram it carries, both ways, as a
capture on the path would (tcpdump on loopback): for tests that look for
what an on-path attacker could read.  Each client address gets an upstream
socket of its own, so the target sees one source port per client.  Runs in
a thread, so a test may block on its child processes meanwhile."""

from __future__ import annotations

import selectors
import socket
import threading

import attrs

LOOPBACK = "127.0.0.1"


@attrs.frozen
class Captured:
    direction: str
    """"up" (client to target) or "down"."""
    client: tuple[str, int]
    data: bytes


class CaptureRelay:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.records: list[Captured] = []
        self._lock = threading.Lock()
        self._listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._listen.bind((LOOPBACK, 0))
        self.port = self._listen.getsockname()[1]
        self._upstreams: dict[tuple[str, int], socket.socket] = {}
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listen, selectors.EVENT_READ, None)
        self._running = True
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def datagrams(self) -> list[Captured]:
        with self._lock:
            return list(self.records)

    def clients(self) -> list[tuple[str, int]]:
        with self._lock:
            return list(self._upstreams)

    def _record(self, direction: str, client: tuple[str, int], data: bytes) -> None:
        with self._lock:
            self.records.append(Captured(direction, client, data))

    def _run(self) -> None:
        while self._running:
            for key, _ in self._selector.select(timeout=0.05):
                sock, client = key.fileobj, key.data
                try:
                    data, source = sock.recvfrom(65535)
                except OSError:
                    continue
                if client is None:  # from a client, to the target
                    upstream = self._upstreams.get(source)
                    if upstream is None:
                        upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        upstream.bind((LOOPBACK, 0))
                        with self._lock:
                            self._upstreams[source] = upstream
                        self._selector.register(upstream, selectors.EVENT_READ, source)
                    self._record("up", source, data)
                    upstream.sendto(data, self.target)
                elif source == self.target:
                    self._record("down", client, data)
                    self._listen.sendto(data, client)

    def stop(self) -> None:
        self._running = False
        self._thread.join(timeout=5)
        for sock in [self._listen, *self._upstreams.values()]:
            sock.close()
