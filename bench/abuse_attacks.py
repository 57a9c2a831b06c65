"""``python -m bench.abuse_attacks NAME --port P --seconds S``: one hostile
peer of issue 12, in its own process (so its CPU is not the measuring
client's), against a real server on loopback.  It sets up (prints
``attacking`` when done), attacks for S seconds, stops by itself and prints
one JSON line: its bytes out and in, and what the server answered.

Attackers sit on their own loopback addresses (127.0.1.1, the HELLO
flooders 127.0.8.1/.2, the churn room's members 127.0.200-219.x): a real
user elsewhere must not share their per-address and per-/24 buckets, as on
the Internet.  Every attacker that holds server state does a real Noise
handshake (``ClientEndpoint``) and then misbehaves; hand-made packets
without keys are dropped unauthenticated and would measure nothing."""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import sys
import time
from collections import Counter
from typing import Any

from twisted.internet import defer

from bench.abuse_peers import (
    PASSWORD, SERVER, LoadClient, Meter, closed_why, every, metered_endpoint, request, session, tally,
)
from bench.common import run_async, sleep

QUICK = False


# ------------------------------------------------------------------ 1

async def lying_connect(reactor: Any, port: int, seconds: float, ready: Any) -> dict:
    """(a) CONNECTs declaring max_ack_delay 10^18 ms (RFC 9000 §18.2 says
    invalid), (b) CONNECTs declaring the largest valid one (16,383 ms) and
    CLOSEd at once, (c) sessions opened and held without a login: all as
    fast as the server lets one address."""
    from twistchat.reliable.config import SessionConfig
    meter = Meter()
    liar = metered_endpoint(reactor, meter, config=SessionConfig(max_ack_delay=1e15, handshake_timeout=2.0))
    closer = metered_endpoint(reactor, meter, config=SessionConfig(max_ack_delay=16.383, handshake_timeout=2.0))
    holder = metered_endpoint(reactor, meter, config=SessionConfig(handshake_timeout=2.0))
    out: dict = {"invalid": Counter(), "close_at_once": Counter(), "held": Counter(), "held_closed": Counter()}
    held: list[LoadClient] = []
    ready()
    end = time.monotonic() + seconds

    async def loop(endpoint: Any, kind: str) -> None:
        while time.monotonic() < end:
            client = LoadClient("-")
            try:
                await endpoint.connect((SERVER, port), client)
            except Exception as e:
                out[kind][type(e).__name__] += 1
                continue
            out[kind]["opened"] += 1
            if kind == "close_at_once":
                client.connection.close(graceful=False)
            else:
                held.append(client)
            await sleep(reactor, 0)

    await defer.gatherResults([defer.Deferred.fromCoroutine(loop(e, k)) for e, k in
                               [(liar, "invalid")] * 10 + [(closer, "close_at_once")] * 10
                               + [(holder, "held")] * 10], consumeErrors=True)
    for client in held:
        out["held_closed"][closed_why(client)] += 1
    return {**meter.figures(), **{k: dict(v) for k, v in out.items()}}


# ------------------------------------------------------------------ 2

async def sendq_hoarder(reactor: Any, port: int, seconds: float, ready: Any, hoarders: int = 4) -> dict:
    """A room's history filled with long lines; sessions that declare a
    16 MiB max message size and a 16 MiB window, ask ``history`` 20 times a
    second and let through (so ack) one incoming datagram every 5 s.  Closed,
    each logs in again (a password account) and goes on."""
    from twistchat.reliable.config import SessionConfig
    meter = Meter()
    plain = metered_endpoint(reactor, meter)
    filler = await session(plain, port, "filler", PASSWORD, "#hoard")
    says: Counter = Counter()
    for index in range(40 if QUICK else 100):
        request(filler, {"t": "say", "room": "#hoard", "text": f"{index} " + "x" * 4000}, says)
        await sleep(reactor, 0.055)  # within the 20/s rate
    await sleep(reactor, 0.5)
    gates = [{"open": True, "last": 0.0} for _ in range(hoarders)]

    def dropper(gate: dict) -> Any:
        def drop_in(datagram: bytes) -> bool:
            if gate["open"]:
                return False
            now = time.monotonic()
            if now - gate["last"] >= 5.0:  # one datagram through (and acked) every 5 s
                gate["last"] = now
                return False
            return True
        return drop_in
    big = SessionConfig(max_message_size=16 << 20, receive_window=16 << 20, give_up_timeout=3600,
                        idle_timeout=3600)
    endpoints = [metered_endpoint(reactor, meter, config=big, drop_in=dropper(g)) for g in gates]
    for index in range(hoarders):  # register the accounts
        c = await session(endpoints[index], port, f"hoard{index}", PASSWORD)
        c.connection.close(graceful=False)
    ready()
    replies: Counter = Counter()
    closed: Counter = Counter()
    end = time.monotonic() + seconds
    lifetimes: list[float] = []

    async def hoard(index: int) -> None:
        while time.monotonic() < end:
            gates[index]["open"] = True  # the login itself must get through
            try:
                client = await session(endpoints[index], port, f"hoard{index}", PASSWORD, "#hoard")
            except Exception as e:
                closed[f"relogin failed: {str(e)[:40]}"] += 1
                await sleep(reactor, 1.0)
                continue
            gates[index]["open"] = False
            born = time.monotonic()
            while client.lost is None and time.monotonic() < end:
                request(client, {"t": "history", "room": "#hoard"}, replies)
                await sleep(reactor, 0.05)
            closed[closed_why(client)] += 1
            if client.lost is not None:
                lifetimes.append(time.monotonic() - born)
            else:
                client.connection.close(graceful=False)
    await defer.gatherResults([defer.Deferred.fromCoroutine(hoard(i)) for i in range(hoarders)],
                              consumeErrors=True)
    return {**meter.figures(), "hoarders": hoarders, "replies": dict(replies),
            "sessions_ended": dict(closed),
            "seconds_to_close": sorted(round(t, 1) for t in lifetimes)[:20]}


# ------------------------------------------------------------------ 3

async def unfit_replies(reactor: Any, port: int, seconds: float, ready: Any) -> dict:
    """Eight 4,096-character lines of ``"`` in #quotes (8 KB each in JSON),
    then 12 nicks x 5 rooms with 512-byte topics (as many as the server
    allows from one /24), an over-size request; then more quote lines."""
    meter = Meter()
    endpoint = metered_endpoint(reactor, meter)
    out: dict = {"says": Counter(), "nicks": Counter(), "rooms": Counter(), "topics": Counter()}
    first = await session(endpoint, port, "quoter", PASSWORD, "#quotes")
    for _ in range(8):
        request(first, {"t": "say", "room": "#quotes", "text": '"' * 4096}, out["says"])
        await sleep(reactor, 0.06)
    held = [first]
    for n in range(12):
        try:
            client = await session(endpoint, port, f"topic{n}", PASSWORD)
        except Exception as e:
            out["nicks"][str(e).split(": ")[-1]] += 1
            continue
        out["nicks"]["ok"] += 1
        held.append(client)
        for r in range(5):
            room = f"#t{n:02d}x{r}" + "y" * 40
            reply = await client.request({"t": "join", "room": room})
            tally(out["rooms"], reply)
            if reply["t"] == "ok":
                tally(out["topics"], await client.request(
                    {"t": "topic", "room": room, "topic": "T" * 512}))
            await sleep(reactor, 0.06)
    # an over-size request: is it answered, and with its id?
    rid = first.send_raw({"t": "say", "room": "#quotes", "text": "z" * 40_000})
    oversize: dict = {}
    first.on_event = lambda c, data: oversize.setdefault("reply", data[:200].decode(errors="replace"))
    first.pending.pop(rid, None)
    ready()
    await every(reactor, seconds, 2.0, lambda: request(
        first, {"t": "say", "room": "#quotes", "text": '"' * 4096}, out["says"]))
    out["oversize_request_reply"] = oversize.get("reply")
    out["oversize_request_id"] = rid
    for c in held:
        c.connection.close(graceful=False)
    return {**meter.figures(), **{k: dict(v) if isinstance(v, Counter) else v for k, v in out.items()}}


# ------------------------------------------------------------------ 4

async def mailbox_flood(reactor: Any, port: int, seconds: float, ready: Any, target: str = "") -> dict:
    """As many nicks as one /24 may register DM ``target`` as fast as they can."""
    meter = Meter()
    endpoint = metered_endpoint(reactor, meter)
    clients: list[LoadClient] = []
    registrations: Counter = Counter()
    for n in range(8):
        try:
            clients.append(await session(endpoint, port, f"spam{n}", PASSWORD))
            registrations["ok"] += 1
        except Exception as e:
            registrations[str(e).split(": ")[-1]] += 1
    ready()
    replies: Counter = Counter()

    def blast() -> None:
        for index, client in enumerate(clients):
            request(client, {"t": "dm", "to": target, "text": f"buy now {index} " + "$" * 400}, replies)
    await every(reactor, seconds, 20.0, blast)  # each nick at its 20/s request rate
    await sleep(reactor, 1.0)
    for c in clients:
        c.connection.close(graceful=False)
    return {**meter.figures(), "registrations": dict(registrations), "dm_replies": dict(replies)}


# ------------------------------------------------------------------ 5

async def wrong_logins(reactor: Any, port: int, seconds: float, ready: Any, target: str = "",
                       sessions: int = 300) -> dict:
    """``sessions`` sessions each logging in as ``target`` with wrong
    passwords, again as soon as each answer comes."""
    meter = Meter()
    endpoints = [metered_endpoint(reactor, meter) for _ in range(4)]
    opened: list[LoadClient] = []
    failures: Counter = Counter()

    async def open_one(index: int) -> None:
        try:
            opened.append(await session(endpoints[index % 4], port))
        except Exception as e:
            failures[type(e).__name__] += 1
    await defer.gatherResults([defer.Deferred.fromCoroutine(open_one(i)) for i in range(sessions)],
                              consumeErrors=True)
    ready()
    replies: Counter = Counter()
    end = time.monotonic() + seconds
    started = time.monotonic()

    reopened = Counter()

    async def guess(client: LoadClient, index: int) -> None:
        attempt = 0
        while time.monotonic() < end:
            if client.lost is not None:  # closed by the server: open another and go on
                reopened[closed_why(client)] += 1
                try:
                    client = await session(endpoints[index % 4], port)
                except Exception as e:
                    failures[type(e).__name__] += 1
                    await sleep(reactor, 0.2)
                    continue
                opened.append(client)
            attempt += 1
            try:
                reply = await client.request({"t": "login", "nick": target,
                                              "password": f"guess-{index}-{attempt}"})
            except Exception:
                continue
            tally(replies, reply)
            if reply["t"] == "ok":
                replies["GUESSED"] += 1
                break
            if reply.get("code") == "RATE_LIMITED":
                await sleep(reactor, 0.05)
    await defer.gatherResults([defer.Deferred.fromCoroutine(guess(c, i)) for i, c in enumerate(list(opened))],
                              consumeErrors=True)
    elapsed = time.monotonic() - started
    ended = Counter(closed_why(c) for c in opened)
    return {**meter.figures(), "sessions": len(opened), "open_failed": dict(failures),
            "closed_by_server_then_reopened": dict(reopened),
            "replies": dict(replies), "sessions_ended": dict(ended),
            "guesses_checked_per_s": round(replies["BAD_CREDENTIAL"] / max(elapsed, 1e-9), 1)}


# ------------------------------------------------------------------ 6

async def reassembly(reactor: Any, port: int, seconds: float, ready: Any) -> dict:
    """Sessions (no login) each sending one message of the server's largest
    size with its first fragment withheld, as many as one address may open;
    plus logged-in ones (whose window opened) holding a window's worth."""
    meter = Meter()
    endpoint = metered_endpoint(reactor, meter)
    out: dict = {"opened": 0, "failed": Counter(), "partials": 0, "bytes_held_claimed": 0}
    held: list[LoadClient] = []

    def hold_partial(client: LoadClient, size: int) -> None:
        session_ = client.connection.session
        seq = session_.send_message(os.urandom(size), reactor.seconds())
        queue = session_._buffer.lanes[0].queue  # the interactive lane: the one messages go on by default
        first = next(c for c in queue if c.seq == seq and c.offset == 0)
        queue.remove(first)  # never sent: the rest waits in the server's reassembly
        client.connection._endpoint.mark_dirty(client.connection._handle)
        out["partials"] += 1
        out["bytes_held_claimed"] += size - len(first.data)

    logged: list[LoadClient] = []
    for n in range(3):
        try:
            logged.append(await session(endpoint, port, f"frag{n}", PASSWORD))
        except Exception as e:
            out["failed"][str(e)[:40]] += 1
    ready()
    for client in logged:
        size = client.connection.peer_max_message_size - 1024
        for _ in range(max(1, (1 << 20) // size)):
            hold_partial(client, size)
    end = time.monotonic() + seconds

    async def opener() -> None:
        while time.monotonic() < end:
            client = LoadClient("-")
            try:
                await endpoint.connect((SERVER, port), client)
            except Exception as e:
                out["failed"][type(e).__name__] += 1
                await sleep(reactor, 0.05)
                continue
            out["opened"] += 1
            held.append(client)
            hold_partial(client, client.connection.peer_max_message_size - 1024)
    await defer.gatherResults([defer.Deferred.fromCoroutine(opener()) for _ in range(10)],
                              consumeErrors=True)
    ended = Counter(closed_why(c) for c in held + logged)
    for c in held + logged:
        if c.lost is None:
            c.connection.close(graceful=False)
    return {**meter.figures(), "opened": out["opened"], "partials": out["partials"],
            "bytes_held_claimed": out["bytes_held_claimed"], "failed": dict(out["failed"]),
            "sessions_ended": dict(ended)}


# ------------------------------------------------------------------ 7

async def churn(reactor: Any, port: int, seconds: float, ready: Any, members: int = 98) -> dict:
    """A room of 100: ``members`` ordinary members (20 addresses in 20
    /24s) and two churners; half the time ``away`` toggles, half join/part
    cycles, as fast as the request rate (20/s) allows."""
    meter, crowd = Meter(), Meter()
    endpoints = [metered_endpoint(reactor, crowd, interface=f"127.0.{200 + i}.1") for i in range(20)]
    failed: Counter = Counter()

    async def member(index: int) -> None:
        try:
            await session(endpoints[index % 20], port, f"m{index}", None, "#crowd")
        except Exception as e:
            failed[str(e)[:40]] += 1
    sem = defer.DeferredSemaphore(10)
    await defer.gatherResults([sem.run(lambda i=i: defer.Deferred.fromCoroutine(member(i)))
                               for i in range(members)], consumeErrors=True)
    mine = metered_endpoint(reactor, meter)
    a = await session(mine, port, "churner", PASSWORD, "#crowd")
    await sleep(reactor, 1.0)
    ready()
    result: dict = {**{"members_failed": dict(failed)}}
    for phase in ("away", "join_part"):
        replies: Counter = Counter()
        out0, in0 = meter.bytes_out, crowd.bytes_in
        toggle = {"n": 0}

        def act() -> None:
            toggle["n"] += 1
            if phase == "away":
                obj = {"t": "away", "message": "brb"} if toggle["n"] % 2 else {"t": "away"}
            else:
                obj = {"t": "part", "room": "#crowd"} if toggle["n"] % 2 else {"t": "join", "room": "#crowd"}
            request(a, obj, replies)
        await every(reactor, seconds / 2, 19.0, act)
        await sleep(reactor, 0.5)
        sent, fanned = meter.bytes_out - out0, crowd.bytes_in - in0
        result[phase] = {"replies": dict(replies), "attacker_bytes_out": sent,
                         "members_bytes_in": fanned, "ratio": round(fanned / max(1, sent), 1)}
    return {**meter.figures(), **result}


# ------------------------------------------------------------------ 8

def hello_flood(port: int, seconds: float, source: str) -> dict:
    """Full-size, valid HELLOs from one socket as fast as it can write."""
    from twistchat.wire.packets import MIN_HELLO_SIZE, Hello, encode_packet
    rng = random.Random(os.getpid())
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((source, 0))
    s.setblocking(False)
    meter = Meter()
    print("attacking", flush=True)
    end = time.monotonic() + seconds
    template = bytearray(encode_packet(Hello(1), pad_to=MIN_HELLO_SIZE))
    while time.monotonic() < end:
        for _ in range(64):
            template[1:9] = rng.getrandbits(64).to_bytes(8, "big")
            try:
                s.sendto(template, (SERVER, port))
            except (BlockingIOError, OSError):
                break
            meter.bytes_out += len(template)
            meter.datagrams_out += 1
        while True:
            try:
                data = s.recv(65535)
            except (BlockingIOError, ConnectionRefusedError):
                break
            meter.bytes_in += len(data)
            meter.datagrams_in += 1
    return {**meter.figures(), "source": source,
            "hellos_per_s": round(meter.datagrams_out / seconds), "cookies": meter.datagrams_in}


ATTACKS = {"lying_connect": lying_connect, "sendq_hoarder": sendq_hoarder,
           "unfit_replies": unfit_replies, "mailbox_flood": mailbox_flood,
           "wrong_logins": wrong_logins, "reassembly": reassembly, "churn": churn}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.abuse_attacks")
    parser.add_argument("name", choices=sorted(ATTACKS) + ["hello_flood"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--target", default="")
    parser.add_argument("--source", default="127.0.8.1")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    global QUICK
    QUICK = args.quick
    if args.name == "hello_flood":
        result = hello_flood(args.port, args.seconds, args.source)
    else:
        attack = ATTACKS[args.name]
        kwargs = {"target": args.target} if args.target else {}

        async def run(reactor: Any) -> dict:
            return await attack(reactor, args.port, args.seconds,
                                lambda: print("attacking", flush=True), **kwargs)
        result = run_async(run)
    print(json.dumps(result, sort_keys=True, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
