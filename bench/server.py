"""A bench-side launcher for the chat server: ``python -m bench.server``.

Runs ``ServerEndpoint`` + ``ChatServer`` + the memory store on one UDP port,
exactly as the twistd plugin wires them, but lets a bench change the limits
that would otherwise measure the limit instead of the server (per-session
request rate, room size, scrypt cost of password-less registration).  Prints
``bench-server listening on 127.0.0.1:PORT`` once listening; logs to --log.
On SIGTERM it stops the reactor and prints its endpoint counters as JSON.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys

import attrs

from twistchat.endpoint.sockets import enlarge_buffers


def flush_per_turn_endpoint():
    """A what-if, measured by ``fanout --flush-per-turn``: the same endpoint,
    but what arriving datagrams make sessions send waits for the end of the
    reactor turn (after Twisted's read loop), so one burst is packed together."""
    from twistchat.endpoint.endpoint import ServerEndpoint

    class FlushPerTurnEndpoint(ServerEndpoint):
        def _flush(self) -> None:
            if self._flush_call is None or not self._flush_call.active():
                self._flush_call = None
                return super()._flush()
            # a flush is already scheduled for this turn: let it do the work

        def datagramReceived(self, datagram: bytes, address: tuple) -> None:
            if self._flush_call is None:
                self._flush_call = self.reactor.callLater(0, self._scheduled_flush)
            super().datagramReceived(datagram, address)

        def _scheduled_flush(self) -> None:
            self._flush_call = None
            ServerEndpoint._flush(self)

    return FlushPerTurnEndpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rate", type=float, default=None, help="requests/s per session")
    parser.add_argument("--burst", type=int, default=None)
    parser.add_argument("--max-members", type=int, default=None)
    parser.add_argument("--scrypt-n", type=int, default=None)
    parser.add_argument("--log", default=None, help="log file (default stderr)")
    parser.add_argument("--flush-per-turn", action="store_true",
                        help="EXPERIMENT: flush once per reactor turn instead of after every "
                             "datagram (a what-if for the transport owners; not the product)")
    parser.add_argument("--profile", default=None, help="write cProfile stats here on exit")
    parser.add_argument("--unthrottled", action="store_true",
                        help="no admission limits per source address (a load generator opens "
                             "thousands of sessions from 127.0.0.1 on purpose)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="any ServerConfig field (e.g. max_sessions=300), as a Python literal")
    parser.add_argument("--stalls", action="store_true",
                        help="measure how late the reactor runs a 10 ms timer (its stalls); "
                             "reported with the counters on exit")
    parser.add_argument("--profile-on-signal", action="store_true",
                        help="profile only between SIGUSR1 and SIGUSR2 (which writes --profile)")
    args = parser.parse_args(argv)

    from twisted.internet import reactor
    from twisted.logger import (FilteringLogObserver, LogLevel, LogLevelFilterPredicate,
                                globalLogBeginner, textFileLogObserver)

    from twistchat.chat.server import ChatServer, ServerConfig
    from twistchat.endpoint.endpoint import ServerEndpoint
    from twistchat.endpoint.server import Admission
    from twistchat.store.memory import MemoryStore

    out = open(args.log, "a") if args.log else sys.stderr
    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)
    globalLogBeginner.beginLoggingTo(
        [FilteringLogObserver(textFileLogObserver(out), [predicate])],
        redirectStandardIO=False)

    changes = {}
    if args.rate is not None:
        changes["rate"] = args.rate
    if args.burst is not None:
        changes["burst"] = args.burst
    if args.max_members is not None:
        changes["max_members_per_room"] = args.max_members
    if args.scrypt_n is not None:
        changes["scrypt_n"] = args.scrypt_n
    import ast
    for item in args.set:
        field, _, value = item.partition("=")
        if field not in attrs.fields_dict(ServerConfig):  # an older checkout: say so, go on
            print(f"bench-server: ServerConfig has no {field}; --set ignored", file=sys.stderr, flush=True)
            continue
        try:
            changes[field] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            changes[field] = value
    config = attrs.evolve(ServerConfig(), **changes)
    chat = ChatServer(MemoryStore(), reactor, config)
    endpoint_class = flush_per_turn_endpoint() if args.flush_per_turn else ServerEndpoint
    # Wired as the twistd plugin wires them (the transport follows the chat
    # config: message size, SendQ, admission), where this checkout has it.
    try:
        from twistchat.chat.server.service import admission as plugin_admission
        from twistchat.chat.server.service import session_config
        session = session_config(config)
        admission = plugin_admission(config)
    except ImportError:
        session, admission = None, Admission()
    if args.unthrottled:
        admission = Admission.for_load_generators(max_sessions=admission.max_sessions)
    endpoint = endpoint_class(reactor, lambda address: chat.build_protocol(), config=session,
                              admission=admission)
    close_codes: dict = {}
    real_on_closed = endpoint._on_closed

    def on_closed(handle, reason):  # why sessions ended, for the abuse bench
        key = reason.code.name + (" (by peer)" if reason.by_peer else "")
        close_codes[key] = close_codes.get(key, 0) + 1
        return real_on_closed(handle, reason)
    endpoint._on_closed = on_closed
    port = reactor.listenUDP(args.port, endpoint, interface="127.0.0.1", maxPacketSize=65535)
    enlarge_buffers(port)
    chat.start()
    try:  # the collector policy of ``twistd twistchat``, where this checkout has one
        from twistchat.chat.server.collector import tune_collector
        tune_collector()
    except ImportError:
        pass
    try:  # and its heap trimming, where this checkout has it
        from twistchat.chat.server.collector import heap_trim_service
        trimming = heap_trim_service()
        if trimming is not None:
            trimming.startService()
    except ImportError:
        pass
    try:  # and its watch of the reactor's stalls, where this checkout has it
        from twistchat.chat.server.stall_watch import StallWatch
        StallWatch(reactor, sampling=True).startService()
    except ImportError:
        pass

    import cProfile
    profiler = None
    if args.profile and not args.profile_on_signal:
        profiler = cProfile.Profile()
        profiler.enable()
    elif args.profile:
        window: dict = {}

        def begin(*_):
            window["p"] = cProfile.Profile()
            window["p"].enable()

        def end(*_):
            if "p" in window:
                window["p"].disable()
                window.pop("p").dump_stats(args.profile)
        signal.signal(signal.SIGUSR1, begin)
        signal.signal(signal.SIGUSR2, end)

    def stop(*_):
        reactor.callFromThread(reactor.stop)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stalls = StallMeter(reactor) if args.stalls else None
    print(f"bench-server listening on 127.0.0.1:{port.getHost().port}", flush=True)
    reactor.run(installSignalHandlers=False)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    extra = {"reactor_stalls": stalls.figures()} if stalls is not None else {}
    print(json.dumps({**attrs.asdict(endpoint.counters), "close_codes": close_codes, **extra}),
          flush=True)
    return 0


class StallMeter:
    """How late a 10 ms timer fires: the longest times the reactor could not
    answer anyone (a blocking call, a long burst of work, no CPU)."""

    INTERVAL = 0.01

    def __init__(self, reactor) -> None:
        import time
        self._clock, self._reactor = time.monotonic, reactor
        self.lateness: list[float] = []
        self._due = self._clock() + self.INTERVAL
        reactor.callLater(self.INTERVAL, self._tick)

    def _tick(self) -> None:
        now = self._clock()
        self.lateness.append(now - self._due)
        self._due = now + self.INTERVAL
        self._reactor.callLater(self.INTERVAL, self._tick)

    def figures(self) -> dict:
        late = sorted(self.lateness)
        if not late:
            return {}
        return {"ticks": len(late), "p99_ms": round(late[int(0.99 * (len(late) - 1))] * 1000, 1),
                "max_ms": round(late[-1] * 1000, 1),
                "over_50ms": sum(1 for x in late if x > 0.05)}


if __name__ == "__main__":
    sys.exit(main())
