"""twistchat in ``python -m bench transport``: one flow is exactly
``python -m twistchat.netsim`` (``run_transfer``, unchanged); several flows
reuse netsim's own ``Sender``, ``Receiver`` and endpoints, with every
client's uplink mapped onto one shared bottleneck link."""

from __future__ import annotations

import random

import attrs

from twisted.internet.task import Clock

from bench.transport_channel import RunCap, network_for
from twistchat.endpoint.endpoint import ClientEndpoint, ServerEndpoint
from twistchat.netsim.transfer import (
    CLIENT_ADDRESS, SERVER_ADDRESS, Receiver, Sender, TransferResult, TransferSettings, run_transfer,
)

SHARED_UPLINK = "shared-uplink"
"""The one link every client's datagrams queue on in a multi-flow run."""


def run_one_flow(settings: TransferSettings, cap: RunCap) -> tuple[TransferResult, str | None]:
    """netsim's transfer as it is; its ``time_limit`` is the run's virtual cap."""
    result = run_transfer(attrs.evolve(settings, time_limit=cap.virtual_s))
    problem = f"did not finish in {cap.virtual_s:g} s virtual" if result.timed_out else None
    return result, problem


def client_address(flow: int) -> tuple:
    """Flow 0 sends from netsim's own client address, the others from the next ports."""
    return (CLIENT_ADDRESS[0], CLIENT_ADDRESS[1] + flow)


class FlowsRun:
    """``flows`` twistchat transfers of ``settings`` from separate clients to
    one server, flow k starting ``k * stagger`` virtual seconds after flow 0,
    all uplinks through one bottleneck (``SHARED_UPLINK``)."""

    def __init__(self, settings: TransferSettings, flows: int = 2, stagger: float = 0.0) -> None:
        self.settings = settings
        self.clock = Clock()
        addresses = [client_address(k) for k in range(flows)]
        self.network = network_for(settings, self.clock,
                                   link_of={a: SHARED_UPLINK for a in addresses} if flows > 1 else None)
        self.receivers = {a: Receiver(self.clock) for a in addresses}
        self.server = ServerEndpoint(self.clock, lambda address: self.receivers[address],
                                     config=settings.config,
                                     rng=random.Random(settings.seed * 7919 + 1))
        self.network.attach(self.server, SERVER_ADDRESS)
        self.clients, self.senders, self.failures = [], [], []
        for k, address in enumerate(addresses):
            client = ClientEndpoint(self.clock, config=settings.config,
                                    rng=random.Random(settings.seed * 7919 + 2 + 1000 * k))
            self.network.attach(client, address)
            sender = Sender(self.clock, settings)
            self.clients.append(client)
            self.senders.append(sender)
            if k == 0 or stagger <= 0:
                self._connect(client, sender)
            else:
                self.clock.callLater(k * stagger, self._connect, client, sender)
        self.addresses = addresses

    def _connect(self, client: ClientEndpoint, sender: Sender) -> None:
        client.connect(SERVER_ADDRESS, sender).addErrback(self.failures.append)

    def flow_finished(self, sender: Sender) -> bool:
        if sender.closed is not None:
            return True
        return sender.connection is not None and len(sender.sent_at) >= self.settings.messages \
            and sender.connection.pending_bytes() == 0

    def finished(self) -> bool:
        return bool(self.failures) or all(self.flow_finished(s) for s in self.senders)

    def run(self, cap: RunCap) -> str | None:
        """Until every flow is done or the virtual cap; why not done, or None."""
        self.network.run(until=cap.virtual_s, stop=self.finished)
        if self.failures:
            return f"a handshake failed: {self.failures[0].value!r}"
        return None if self.finished() else f"did not finish in {cap.virtual_s:g} s virtual"

    def arrivals(self, flow: int) -> list[tuple[int, float]]:
        return self.receivers[self.addresses[flow]].arrivals

    def wire_bytes(self) -> int:
        return self.server.counters.bytes_sent + sum(c.counters.bytes_sent for c in self.clients)


def link_shares(run: FlowsRun) -> dict:
    """Each flow's share of the link while all flows were sending: payload
    delivered between the last flow's first send and the first flow's last
    arrival, over what the link carries in that time."""
    settings = run.settings
    size = max(settings.size, 8)
    starts = [s.sent_at[0] for s in run.senders if s.sent_at]
    ends = [max((t for _, t in run.arrivals(k)), default=0.0) for k in range(len(run.senders))]
    if len(starts) < len(run.senders) or not settings.bandwidth_mbps:
        return {"shares": None, "overlap_s": 0.0}
    start, end = max(starts), min(ends)
    if end <= start:
        return {"shares": None, "overlap_s": 0.0}
    capacity_bytes = settings.bandwidth_mbps * 1e6 / 8 * (end - start)
    shares = [round(sum(size for _, t in run.arrivals(k) if start <= t <= end) / capacity_bytes, 3)
              for k in range(len(run.senders))]
    return {"shares": shares, "overlap_s": round(end - start, 3)}


def run_flows(settings: TransferSettings, cap: RunCap, flows: int = 2,
              stagger: float = 0.0) -> dict:
    """Several flows on one link: completion, each flow's share, the total."""
    run = FlowsRun(settings, flows=flows, stagger=stagger)
    problem = run.run(cap)
    delivered = [len({i for i, _ in run.arrivals(k)}) for k in range(flows)]
    in_order = all([i for i, _ in run.arrivals(k)] == list(range(delivered[k])) for k in range(flows))
    shares = link_shares(run)
    return {"flows": flows, "stagger_s": stagger, "delivered": delivered,
            "missing": sum(settings.messages - d for d in delivered), "in_order": in_order,
            "problem": problem, **shares,
            "link_total": round(sum(shares["shares"]), 3) if shares["shares"] else None,
            "wire_bytes": run.wire_bytes(), "seconds": round(run.clock.seconds(), 3)}
