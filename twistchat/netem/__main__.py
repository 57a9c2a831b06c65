"""
Command line for the netem impairment proxy:

    python -m twistchat.netem --listen 9000 --to 127.0.0.1:9999 \\
        --loss 0.05 --dup 0.01 --delay 40 --jitter 20 --seed 1

Both directions get the same settings (each with its own random stream
derived from the seed). The first line on stdout is a banner giving the real
listening port, flushed at once so a parent process can wait for it; on
SIGINT or SIGTERM the proxy prints its counters as one JSON line and exits 0.

The banner is printed only once both signal handlers are in place, and they
are installed here rather than left to ``reactor.run()``: Twisted takes
SIGINT only when it finds Python's default handler, and a process started
from a background job of a non-interactive shell (``pytest &``, many CI
runners) inherits SIGINT ignored, so Ctrl-C or ``kill -INT`` did nothing.
"""

from __future__ import annotations

import json
import math
import random
import signal
import socket
import sys
from typing import Any

from twisted.internet.error import CannotListenError
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)
from twisted.python import usage

from twistchat.netem.impairment import Impairment
from twistchat.netem.proxy import DEFAULT_IDLE_TIMEOUT_SECONDS, DEFAULT_MAX_CLIENTS, ImpairmentProxy

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

PROGRAM = "python -m twistchat.netem"
HIGHEST_PORT = 65535
SEED_BITS = 32
"""Seeds picked when none is given are this wide, short enough to retype."""


def _number(option: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise usage.UsageError(f"--{option} must be a number, not {text!r}") from None
    if not math.isfinite(value):
        raise usage.UsageError(f"--{option} must be finite, not {text!r}")
    return value


def _integer(option: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise usage.UsageError(f"--{option} must be an integer, not {text!r}") from None


def _probability(option: str, text: str) -> float:
    value = _number(option, text)
    if not 0.0 <= value <= 1.0:
        raise usage.UsageError(f"--{option} must be a probability between 0 and 1, not {text}")
    return value


def _milliseconds(option: str, text: str) -> float:
    value = _number(option, text)
    if value < 0:
        raise usage.UsageError(f"--{option} must be a delay in milliseconds >= 0, not {text}")
    return value


def _port(option: str, text: str, lowest: int) -> int:
    value = _integer(option, text)
    if not lowest <= value <= HIGHEST_PORT:
        raise usage.UsageError(f"--{option} must be a port between {lowest} and {HIGHEST_PORT}, not {text}")
    return value


def parse_host_port(text: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` or ``[IPV6]:PORT`` and resolve HOST to an IP address."""
    host, separator, port_text = text.rpartition(":")
    if not separator or not host:
        raise usage.UsageError(f"--to must be HOST:PORT (e.g. 127.0.0.1:9999), not {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port = _port("to", port_text, lowest=1)
    try:
        resolved = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as failure:
        raise usage.UsageError(f"--to host {host!r} cannot be resolved: {failure}") from None
    address = resolved[0][4]
    return address[0], port


def format_endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class NetemOptions(usage.Options):
    synopsis = f"Usage: {PROGRAM} --listen PORT --to HOST:PORT [options]"
    longdesc = "A UDP proxy that drops, duplicates, delays and reorders datagrams in both directions."

    optFlags = [
        ["verbose", "v", "Log every client mapping and expiry to stderr."],
    ]
    optParameters = [
        ["listen", None, None, "UDP port to listen on; 0 picks a free one (shown in the banner)."],
        ["listen-host", None, "127.0.0.1", "Address to listen on."],
        ["to", None, None, "HOST:PORT of the server to forward to."],
        ["loss", None, "0", "Probability in [0, 1] that a datagram is dropped."],
        ["dup", None, "0", "Probability in [0, 1] that a datagram is duplicated."],
        ["delay", None, "0", "Delay in milliseconds added to every datagram."],
        ["jitter", None, "0", "Extra uniform random delay in [0, JITTER) ms; reorders datagrams."],
        ["seed", None, None, "Random seed, for reproducible runs (default: random, shown in the banner)."],
        ["idle-timeout", None, str(DEFAULT_IDLE_TIMEOUT_SECONDS), "Seconds of silence before a client's upstream socket is closed."],
        ["max-clients", None, str(DEFAULT_MAX_CLIENTS), "Most clients mapped at once; new ones are refused beyond it."],
    ]

    def postOptions(self) -> None:
        if self["listen"] is None:
            raise usage.UsageError("--listen PORT is required")
        if self["to"] is None:
            raise usage.UsageError("--to HOST:PORT is required")
        self["listen"] = _port("listen", self["listen"], lowest=0)
        self["to"] = parse_host_port(self["to"])
        for option in ("loss", "dup"):
            self[option] = _probability(option, self[option])
        for option in ("delay", "jitter"):
            self[option] = _milliseconds(option, self[option])
        if self["seed"] is None:
            self["seed"] = random.SystemRandom().getrandbits(SEED_BITS)
        else:
            self["seed"] = _integer("seed", self["seed"])
        self["idle-timeout"] = _number("idle-timeout", self["idle-timeout"])
        if self["idle-timeout"] <= 0:
            raise usage.UsageError(f"--idle-timeout must be > 0 seconds, not {self['idle-timeout']}")
        self["max-clients"] = _integer("max-clients", self["max-clients"])
        if self["max-clients"] < 1:
            raise usage.UsageError(f"--max-clients must be >= 1, not {self['max-clients']}")


def direction_seeds(seed: int) -> tuple[int, int]:
    """Two independent streams from one seed, so up and down do not mirror each other."""
    deriving = random.Random(seed)
    return deriving.getrandbits(64), deriving.getrandbits(64)


def impairments_from(options: NetemOptions) -> tuple[Impairment, Impairment]:
    up_seed, down_seed = direction_seeds(options["seed"])
    settings = dict(
        loss=options["loss"],
        duplicate=options["dup"],
        delay_ms=options["delay"],
        jitter_ms=options["jitter"],
    )
    return Impairment(seed=up_seed, **settings), Impairment(seed=down_seed, **settings)


def banner(options: NetemOptions, port: int) -> str:
    target_host, target_port = options["to"]
    return (
        f"netem listening on {format_endpoint(options['listen-host'], port)}"
        f" -> {format_endpoint(target_host, target_port)}"
        f" loss={options['loss']:g} dup={options['dup']:g}"
        f" delay={options['delay']:g}ms jitter={options['jitter']:g}ms"
        f" seed={options['seed']}"
        f" idle-timeout={options['idle-timeout']:g}s max-clients={options['max-clients']}"
    )


def _log_to_stderr(verbose: bool) -> None:
    level = LogLevel.info if verbose else LogLevel.warn
    observer = FilteringLogObserver(
        textFileLogObserver(sys.stderr),
        [LogLevelFilterPredicate(defaultLogLevel=level)],
    )
    # stdout belongs to the banner and the counters line: do not redirect it.
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


def stop_on_signals(reactor: Any) -> None:
    """SIGINT and SIGTERM stop the reactor, whatever handling was inherited."""
    def stop(number: int, frame: Any) -> None:
        reactor.callFromThread(reactor.stop)
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, stop)


def main(argv: list[str] | None = None, reactor: Any = None) -> int:
    options = NetemOptions()
    try:
        options.parseOptions(sys.argv[1:] if argv is None else argv)
    except usage.UsageError as error:
        print(f"{PROGRAM}: {error}", file=sys.stderr)
        print(f"{options.synopsis}\nTry '{PROGRAM} --help' for all options.", file=sys.stderr)
        return EXIT_USAGE

    if reactor is None:
        from twisted.internet import reactor  # only the command line touches the global reactor
    _log_to_stderr(options["verbose"])
    impairment_up, impairment_down = impairments_from(options)
    proxy = ImpairmentProxy(
        reactor,
        options["listen"],
        target=options["to"],
        impairment_up=impairment_up,
        impairment_down=impairment_down,
        listen_host=options["listen-host"],
        idle_timeout=options["idle-timeout"],
        max_clients=options["max-clients"],
    )
    try:
        port = proxy.start()
    except (CannotListenError, OSError) as error:
        print(f"{PROGRAM}: cannot listen on {options['listen-host']}:{options['listen']}: {error}", file=sys.stderr)
        return EXIT_FAILURE
    reactor.addSystemEventTrigger("before", "shutdown", proxy.stop)
    stop_on_signals(reactor)
    print(banner(options, port), flush=True)  # ready: a signal from now on is handled
    reactor.run(installSignalHandlers=False)
    print(json.dumps(proxy.counters.as_dict(), sort_keys=True), flush=True)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
