"""Real processes for end-to-end tests: the twistd server on a free
loopback port, with its log, started and stopped within bounded time."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

BIN = Path(sys.executable).parent
START_TIMEOUT = 15


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    def __init__(self, workdir: Path, port: int | None = None, args: Sequence[str] = ()) -> None:
        """``args``: more ``twistd twistchat`` options (``--redis URL``, ``--key PATH``...)."""
        self.workdir = workdir
        self.port = port or free_udp_port()
        self.args = list(args)
        self.log = workdir / "twistd.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.log.write_text("")
        self.process = subprocess.Popen(
            [str(BIN / "twistd"), "-n", "--pidfile=", "--logfile", str(self.log), "twistchat",
             "--port", str(self.port), "--interface", "127.0.0.1",
             "--db", str(self.workdir / "chat.sqlite3"), *self.args],
            cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while "twistchat listening" not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("server did not start:\n" + self.log.read_text())
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.process.send_signal(sig)
        self.process.wait(timeout=15)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop(signal.SIGKILL)

    def log_text(self) -> str:
        return self.log.read_text()
