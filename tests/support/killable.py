"""Real processes for crash tests, driven from a running reactor: a
``twistd twistchat`` that can be SIGKILLed and started again on the same
port and database file, and the ``python -m twistchat.netem`` impairment
proxy in front of it.  Starting a server waits without blocking the reactor,
so the clients of the test process keep running through every restart.
Each incarnation of the server writes a log of its own (``twistd-N.log``)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from twisted.internet import task

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
POLL = 0.05
LISTENING = "twistchat listening"


def free_udp_port() -> int:
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class KillableServer:
    """``twistd -n twistchat --port P --db FILE``; ``kill()`` is SIGKILL."""

    def __init__(self, workdir: Path, port: int | None = None,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.workdir = Path(workdir)
        self.port = port or free_udp_port()
        self.db = self.workdir / "chat.sqlite3"
        self.extra_args = tuple(extra_args)
        self.process: subprocess.Popen | None = None
        self.incarnation = 0
        self.logs: list[Path] = []

    @property
    def log(self) -> Path:
        return self.logs[-1]

    def argv(self) -> list[str]:
        return [str(BIN / "twistd"), "-n", "--pidfile=", "--logfile", str(self.log), "twistchat",
                "--port", str(self.port), "--interface", "127.0.0.1", "--db", str(self.db),
                *self.extra_args]

    def spawn(self) -> None:
        self.incarnation += 1
        self.logs.append(self.workdir / f"twistd-{self.incarnation}.log")
        self.log.write_text("")
        self.process = subprocess.Popen(self.argv(), cwd=self.workdir, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.STDOUT)

    def started(self) -> bool:
        """Listening; raises if the process died or took too long."""
        if LISTENING in self.log.read_text(errors="replace"):
            return True
        if self.process.poll() is not None:
            raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log_text()}")
        return False

    async def start(self, reactor) -> float:
        """Spawn and wait (without blocking the reactor) until it listens;
        returns the seconds it took."""
        began = time.monotonic()
        self.spawn()
        while not self.started():
            if time.monotonic() - began > START_TIMEOUT:
                self.kill()
                raise RuntimeError(f"server did not start in {START_TIMEOUT:.0f} s:\n{self.log_text()}")
            await task.deferLater(reactor, POLL, lambda: None)
        return time.monotonic() - began

    def start_blocking(self) -> None:
        began = time.monotonic()
        self.spawn()
        while not self.started():
            if time.monotonic() - began > START_TIMEOUT:
                self.kill()
                raise RuntimeError(f"server did not start:\n{self.log_text()}")
            time.sleep(POLL)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, and reap it."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        """SIGTERM (a graceful shutdown), SIGKILL if it hangs."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()

    def integrity(self) -> str:
        """``PRAGMA integrity_check`` of the database, as SQLite would find
        it on the next start (call it while the server is down)."""
        if not self.db.exists():
            return "ok"
        connection = sqlite3.connect(str(self.db), timeout=5)
        try:
            return "; ".join(row[0] for row in connection.execute("PRAGMA integrity_check"))
        finally:
            connection.close()

    def log_text(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')}" for path in self.logs)

    def tracebacks(self) -> int:
        return sum(path.read_text(errors="replace").count("Traceback") for path in self.logs)


class Netem:
    """``python -m twistchat.netem`` in front of 127.0.0.1:``target_port``."""

    def __init__(self, workdir: Path, target_port: int, loss: float, delay_ms: float,
                 seed: int, jitter_ms: float = 0.0, dup: float = 0.0) -> None:
        self.log = Path(workdir) / "netem.log"
        self._out = open(self.log, "w")
        argv = [sys.executable, "-m", "twistchat.netem", "--listen", "0",
                "--to", f"127.0.0.1:{target_port}", "--loss", str(loss), "--dup", str(dup),
                "--delay", str(delay_ms), "--jitter", str(jitter_ms), "--seed", str(seed)]
        self.process = subprocess.Popen(argv, stdout=self._out, stderr=subprocess.STDOUT, cwd=REPO,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.port = self._wait_for_port()

    def _wait_for_port(self) -> int:
        import re
        deadline = time.monotonic() + START_TIMEOUT
        pattern = re.compile(r"netem listening on 127\.0\.0\.1:(\d+)")
        while time.monotonic() < deadline:
            found = pattern.search(self.log.read_text(errors="replace"))
            if found:
                return int(found.group(1))
            if self.process.poll() is not None:
                break
            time.sleep(POLL)
        self.stop()
        raise RuntimeError("netem did not start:\n" + self.log.read_text(errors="replace"))

    def stop(self) -> dict | None:
        """SIGTERM; returns the counters it prints on the way out."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._out.close()
        for line in reversed(self.log.read_text(errors="replace").splitlines()):
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except ValueError:
                    return None
        return None
