"""``python -m bench transport``'s own machinery: the twistchat column is
netsim's transfer and nothing else, the shared-bottleneck channel really
shares one queue, the foreign-transport glue cannot stall virtual time, the
accounting is netsim's, and the goals are read the way issue 15 states
them.  KCP and aioquic are not needed (nor installed) here."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import attrs
import pytest
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import Clock

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import transport  # noqa: E402
from bench.transport_channel import (  # noqa: E402
    MIN_TIMER_STEP, MessageTrace, RunCap, SansIOPeer, message_payload, network_for,
)
from bench.transport_goals import check_goals  # noqa: E402
from bench.transport_kcp import kcp_available  # noqa: E402
from bench.transport_quic import quic_available  # noqa: E402
from bench.transport_twistchat import FlowsRun, run_flows, run_one_flow  # noqa: E402
from twistchat.netsim import __main__ as netsim_main  # noqa: E402
from twistchat.netsim.network import IP_UDP_HEADER_BYTES  # noqa: E402
from twistchat.netsim.transfer import TransferSettings, run_transfer  # noqa: E402

LOSSY_ARGS = "--loss 0.1 --dup 0.05 --jitter 5 --rate 0 --messages 300 --size 500 --bandwidth 10"


def test_twistchat_column_is_exactly_what_netsim_prints_for_the_same_arguments(capsys) -> None:
    assert netsim_main.main(LOSSY_ARGS.split() + ["--seed", "2"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    result, problem = run_one_flow(transport.settings_for(LOSSY_ARGS, seed=2), RunCap())
    assert problem is None
    assert result.summary() == printed


def test_one_flow_on_the_bench_channel_replays_netsims_transfer_to_the_microsecond() -> None:
    """network_for builds run_transfer's network and FlowsRun drives netsim's
    own Sender and Receiver: same seed, same datagrams lost, same arrivals."""
    settings = transport.settings_for(LOSSY_ARGS, seed=3)
    reference = run_transfer(settings)
    run = FlowsRun(settings, flows=1)
    assert run.run(RunCap()) is None
    assert [i for i, _ in run.arrivals(0)] == reference.delivered_indices
    sent_at = run.senders[0].sent_at
    replayed = [arrived - sent_at[i] for i, arrived in run.arrivals(0)]
    assert replayed == pytest.approx(reference.latencies, abs=1e-9)
    assert reference.network_stats["lost"] > 0


class Sink(DatagramProtocol):
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.arrivals: list[tuple[bytes, float]] = []

    def datagramReceived(self, datagram: bytes, address: tuple) -> None:
        self.arrivals.append((datagram, self.clock.seconds()))


def _two_senders(shared: bool, queue_kb: int = 64):
    clock = Clock()
    settings = TransferSettings(bandwidth_mbps=1.0, rtt_ms=0.0, queue_kb=queue_kb)
    a, b, sink_address = ("10.0.0.1", 1), ("10.0.0.2", 1), ("10.0.0.9", 1)
    network = network_for(settings, clock, link_of={a: "up", b: "up"} if shared else None)
    sink = Sink(clock)
    network.attach(sink, sink_address)
    senders = [network.attach(DatagramProtocol(), address) for address in (a, b)]
    return clock, network, sink, senders, sink_address


def test_sources_mapped_to_one_link_queue_behind_each_other() -> None:
    one_datagram_s = (1000 + IP_UDP_HEADER_BYTES) * 8 / 1e6
    for shared, second_at in ((False, one_datagram_s), (True, 2 * one_datagram_s)):
        clock, network, sink, (a, b), to = _two_senders(shared)
        a.write(b"a" * 1000, to)
        b.write(b"b" * 1000, to)
        network.run(until=1.0)
        assert [d[:1] for d, _ in sink.arrivals] == [b"a", b"b"]
        assert sink.arrivals[1][1] == pytest.approx(second_at)


def test_one_source_filling_the_shared_queue_makes_the_other_lose() -> None:
    clock, network, sink, (a, b), to = _two_senders(shared=True, queue_kb=4)
    for _ in range(10):
        a.write(bytes(1000), to)
    b.write(b"b" * 1000, to)
    network.run(until=1.0)
    assert network.stats.queue_drops >= 6
    assert b"b" * 1000 not in [d for d, _ in sink.arrivals]


def test_two_flows_both_complete_in_order_and_share_no_more_than_the_link() -> None:
    settings = transport.settings_for("--rate 0 --bandwidth 10 --messages 4000 --size 500", seed=1)
    outcome = run_flows(settings, RunCap(), flows=2, stagger=0.1)
    assert outcome["problem"] is None
    assert outcome["missing"] == 0 and outcome["in_order"]
    assert outcome["overlap_s"] > 0
    assert all(share > 0.05 for share in outcome["shares"])
    assert 0.5 < outcome["link_total"] <= 1.0


class StubbornDeadline(SansIOPeer):
    """A sans-IO peer that, like aioquic 1.7.2's time-threshold loss timer,
    treats its deadline as expired only strictly after it."""

    def __init__(self, clock: Clock, deadline: float) -> None:
        super().__init__(clock, ("10.0.0.9", 1))
        self.deadline: float | None = deadline
        self.fired = 0

    def feed(self, datagram, address, now) -> None:
        pass

    def outgoing(self, now):
        return []

    def next_timer(self):
        return self.deadline

    def on_timer(self, now) -> None:
        self.fired += 1
        assert self.fired < 100, "the timer is re-armed at the same instant for ever"
        if now > self.deadline:
            self.deadline = None


def test_a_deadline_that_rounds_short_still_lets_virtual_time_move_on() -> None:
    clock = Clock()
    clock.advance(0.1)
    peer = StubbornDeadline(clock, deadline=clock.seconds())
    peer.flush()
    network = network_for(TransferSettings(), clock)
    network.run(until=1.0)
    assert peer.deadline is None and peer.fired == 1
    assert clock.seconds() == pytest.approx(0.1 + MIN_TIMER_STEP)


def test_a_spent_wall_cap_arms_no_more_timers() -> None:
    clock = Clock()
    peer = StubbornDeadline(clock, deadline=0.5)
    peer.cap = RunCap(wall_s=0.0)
    peer.flush()
    assert not clock.calls


def test_trace_counts_latency_from_hand_over_to_first_in_order_delivery() -> None:
    clock = Clock()
    settings = TransferSettings(messages=2, size=100)
    trace = MessageTrace(clock, settings)
    first, second = trace.next_message(), None
    clock.advance(0.010)
    second = trace.next_message()
    clock.advance(0.030)
    trace.delivered(first)
    trace.delivered(second)
    trace.delivered(second)  # a duplicate: counted, not timed twice
    clock.advance(1.0)
    result = trace.result(wire_bytes=500, network=network_for(settings, clock), timed_out=False)
    summary = result.summary()
    assert result.latencies == pytest.approx([0.040, 0.030])
    assert (summary["delivered"], summary["duplicated"], summary["missing"]) == (2, 1, 0)
    assert summary["overhead"] == 2.5
    assert first == message_payload(0, settings) and len(first) == 100


def _cell(medians: dict, finished: bool = True) -> dict:
    return {"medians": medians, "finished_seeds": 3 if finished else 2, "seeds": 3}


def _cells(**overrides) -> dict:
    cells = {
        "chat10": {"twistchat": _cell({"p99_ms": 40.0, "overhead": 1.5}),
                   "kcp": _cell({"p99_ms": 90.0, "overhead": 1.8}),
                   "aioquic": _cell({"p99_ms": 90.0, "overhead": 1.9})},
        "chat30": {"twistchat": _cell({"p99_ms": 130.0, "overhead": 2.0}),
                   "kcp": _cell({"p99_ms": 200.0, "overhead": 2.4})},
        "lossy10": {"twistchat": _cell({"goodput_mbps": 7.0}),
                    "kcp": _cell({"goodput_mbps": 0.2}, finished=False),
                    "aioquic": _cell({"goodput_mbps": 0.6})},
        "flows": {"twistchat": {**_cell({"shares": [0.45, 0.5]}),
                                "shares_by_seed": [[0.45, 0.5], [0.55, 0.41], [0.5, 0.45]]}},
        "bulk": {"twistchat": _cell({"goodput_mbps": 9.1})},
    }
    cells.update(overrides)
    return cells


def test_goals_all_met_when_ahead_of_both_anchors_and_the_fixed_targets() -> None:
    goals = check_goals(_cells())
    assert all(goal["met"] for goal in goals), goals
    assert "kcp did not finish" in next(g["detail"] for g in goals if g["goal"].startswith("lossy10"))


def test_each_goal_misses_on_its_own_figure() -> None:
    worse = {
        "chat10": {"twistchat": _cell({"p99_ms": 46.5, "overhead": 1.85}),
                   "kcp": _cell({"p99_ms": 90.0, "overhead": 1.8})},
        "lossy10": {"twistchat": _cell({"goodput_mbps": 6.5}), "aioquic": _cell({"goodput_mbps": 7.0})},
        "flows": {"twistchat": {**_cell({"shares": [0.5, 0.45]}),  # medians fine, one seed not
                                "shares_by_seed": [[0.5, 0.45], [0.7, 0.25], [0.45, 0.5]]}},
        "bulk": {"twistchat": _cell({"goodput_mbps": 8.9})},
    }
    missed = {g["goal"].split(":")[0] for g in check_goals(_cells(**worse)) if not g["met"]}
    assert missed == {"chat10", "lossy10", "flows", "bulk"}
    chat10 = [g for g in check_goals(_cells(**worse)) if g["goal"].startswith("chat10")]
    assert [g["met"] for g in chat10] == [False, False]


def test_an_unfinished_or_absent_twistchat_run_misses_its_goal() -> None:
    goals = check_goals(_cells(bulk={"twistchat": _cell({"goodput_mbps": 9.5}, finished=False)},
                               flows={}))
    assert not next(g for g in goals if g["goal"].startswith("bulk"))["met"]
    assert not next(g for g in goals if g["goal"].startswith("flows"))["met"]


def test_the_bench_names_a_missing_anchor_and_runs_the_rest(monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "kcp", None)      # an import of it now fails
    monkeypatch.setitem(sys.modules, "aioquic", None)
    assert kcp_available() and quic_available()
    monkeypatch.setattr(transport, "IMPLEMENTATIONS", [
        attrs.evolve(impl, missing={"kcp": kcp_available, "aioquic": quic_available}.get(
            impl.name, impl.missing)) for impl in transport.IMPLEMENTATIONS])
    result = transport.main(["--quick", "--only", "chat0,flows"])
    out = capsys.readouterr().out
    assert "kcp: skipped: kcp not installed" in out and "aioquic: skipped" in out
    assert result["implementations"]["kcp"].startswith("kcp not installed")
    by_key = {w["key"]: w["results"] for w in result["workloads"]}
    assert set(by_key["chat0"]) == {"twistchat"}
    assert by_key["chat0"]["twistchat"]["finished_seeds"] == 1
    assert by_key["flows"]["twistchat"]["medians"]["shares"]
    assert "| chat, no loss:" in out and "issue 15 goals" in out
    json.dumps(result)  # the bench's last line must be JSON


def test_a_run_that_cannot_finish_is_reported_not_waited_for() -> None:
    settings = transport.settings_for("--loss 0.3 --rate 0 --messages 200 --size 3000", seed=1)
    result, problem = run_one_flow(settings, RunCap(virtual_s=0.5))
    assert problem == "did not finish in 0.5 s virtual"
    assert result.timed_out
    cell = transport.run_cell(transport.IMPLEMENTATIONS[0], transport.Workload(
        "x", "x", "--loss 0.3 --rate 0 --messages 200 --size 3000", 200), [1], RunCap(virtual_s=0.5), None)
    text = transport.format_cell(cell, transport.WORKLOADS[0])
    delivered = cell["per_seed"][0]["delivered"]
    assert delivered < 200
    assert text == f"did not finish in 0.5 s virtual (seed 1; {delivered} of 200 delivered)"
