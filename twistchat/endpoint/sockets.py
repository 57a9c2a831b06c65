"""
Socket glue shared by the programs that open real UDP ports (the netem
proxy, the benches): nothing here is needed by the endpoint itself.
"""

from __future__ import annotations

import socket
from typing import Any

SOCKET_BUFFER_BYTES = 4 * 1024 * 1024
"""Asked-for kernel buffers, so bursts are not lost in our own socket (the
kernel caps this at net.core.rmem_max / wmem_max)."""


def enlarge_buffers(port: Any, size: int = SOCKET_BUFFER_BYTES) -> None:
    """Ask for ``size``-byte receive and send buffers on ``port``'s socket.

    Best effort: a refusal is ignored, and a port without a ``.socket``
    (a test fake) is left alone."""
    sock = getattr(port, "socket", None)
    if sock is None:
        return
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, size)
        except OSError:
            pass
