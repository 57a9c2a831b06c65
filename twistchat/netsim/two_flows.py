"""
``python -m twistchat.netsim.two_flows``: two bulk transfers from two
clients to one server through one bottleneck link (shared bandwidth and
drop-tail queue), in virtual time. Shows whether the congestion controller
shares the link fairly and keeps the queue from staying full: prints each
flow's share of the goodput while both run, the mean and largest queue
delay, then one JSON object as the last line.
"""

from __future__ import annotations

import json
import random
import sys

import attrs
from twisted.internet.task import Clock
from twisted.python import usage

from twistchat.endpoint.endpoint import ClientEndpoint, ServerEndpoint
from twistchat.netsim.network import SimulatedNetwork
from twistchat.netsim.transfer import SERVER_ADDRESS, Receiver, Sender, TransferSettings
from twistchat.reliable.session import SessionConfig

CLIENT_ADDRESSES = (("127.0.0.21", 40001), ("127.0.0.22", 40002))
BOTTLENECK = "bottleneck"


@attrs.define
class TwoFlowResult:
    shares: tuple[float, float]
    """Each flow's part of the bytes delivered while both were sending."""
    goodputs_mbps: tuple[float, float]
    mean_queue_delay_ms: float
    max_queue_delay_ms: float
    queue_drops: int
    complete: bool

    def summary(self) -> dict:
        return {"shares": [round(s, 3) for s in self.shares],
                "goodput_mbps": [round(g, 3) for g in self.goodputs_mbps],
                "mean_queue_delay_ms": round(self.mean_queue_delay_ms, 2),
                "max_queue_delay_ms": round(self.max_queue_delay_ms, 2),
                "queue_drops": self.queue_drops, "complete": self.complete}



def run_two_flows(bandwidth_mbps: float = 10.0, rtt_ms: float = 20.0, queue_kb: int = 64,
                  messages: int = 4000, size: int = 1000, seed: int = 1,
                  config: SessionConfig | None = None, time_limit: float = 120.0) -> TwoFlowResult:
    config = config or SessionConfig()
    clock = Clock()
    network = SimulatedNetwork(clock, seed=seed, rtt=rtt_ms / 1000,
                               bandwidth_bps=bandwidth_mbps * 1e6, queue_bytes=queue_kb * 1024)
    receivers: list[Receiver] = []

    def new_receiver(address):
        receivers.append(Receiver(clock))
        return receivers[-1]

    server = ServerEndpoint(clock, new_receiver, config=config, rng=random.Random(seed * 31))
    network.attach(server, SERVER_ADDRESS)
    settings = TransferSettings(messages=messages, size=size, rate=0)
    senders = []
    for i, address in enumerate(CLIENT_ADDRESSES):
        network.links[address] = BOTTLENECK
        client = ClientEndpoint(clock, config=config, rng=random.Random(seed * 31 + i + 1))
        network.attach(client, address)
        sender = Sender(clock, settings)
        senders.append(sender)
        client.connect(SERVER_ADDRESS, sender)

    def one_done() -> bool:
        return len(receivers) == 2 and any(len(r.arrivals) >= messages for r in receivers)

    network.run(until=time_limit, stop=one_done)
    complete = one_done()
    start = max(s.started_at for s in senders if hasattr(s, "started_at")) if all(
        hasattr(s, "started_at") for s in senders) else 0.0
    end = clock.seconds()
    counts = [sum(1 for _, t in r.arrivals if t >= start) for r in receivers] + [0, 0]
    counts = counts[:2]
    total = sum(counts) or 1
    span = max(end - start, 1e-9)
    waited, queued, longest = network.queue_delays.get(BOTTLENECK, [0.0, 0, 0.0])
    return TwoFlowResult(
        shares=(counts[0] / total, counts[1] / total),
        goodputs_mbps=tuple(c * size * 8 / span / 1e6 for c in counts),
        mean_queue_delay_ms=waited / max(queued, 1) * 1000, max_queue_delay_ms=longest * 1000,
        queue_drops=network.stats.queue_drops, complete=complete)


class Options(usage.Options):
    optParameters = [
        ["bandwidth", None, 10.0, "Bottleneck bandwidth in Mbit/s.", float],
        ["rtt", None, 20.0, "Round-trip time in ms.", float],
        ["queue-kb", None, 64, "Drop-tail queue of the bottleneck, in KiB.", int],
        ["messages", None, 4000, "Messages per flow (1000 bytes each).", int],
        ["seed", None, 1, "Random seed.", int],
        ["congestion-control", None, "bbr", "bbr or newreno."],
    ]


def main(argv: list[str] | None = None) -> int:
    options = Options()
    try:
        options.parseOptions(argv if argv is not None else sys.argv[1:])
    except usage.UsageError as e:
        print(f"{sys.argv[0]}: {e}", file=sys.stderr)
        return 2
    result = run_two_flows(options["bandwidth"], options["rtt"], options["queue-kb"],
                           options["messages"], seed=options["seed"],
                           config=SessionConfig(congestion_control=options["congestion-control"]))
    summary = result.summary()
    print(f"shares {summary['shares']}, goodput {summary['goodput_mbps']} Mbit/s; queue delay "
          f"mean {summary['mean_queue_delay_ms']} ms, max {summary['max_queue_delay_ms']} ms, "
          f"{summary['queue_drops']} drops")
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
