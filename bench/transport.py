"""``python -m bench transport [--quick] [--seeds 1,2,3]``: twistchat's
transport side by side with KCP (fast mode) and aioquic, each driven
through the project's simulator channel in virtual time, on issue 15's
workloads (netsim's own arguments), medians over seeds.  Prints the table,
then issue 15's goals checked for twistchat's column, then one JSON line.

KCP and aioquic are bench-only extras (``pip install '.[bench]'``): a
missing one is named and its column left empty; the rest still runs.
How each is driven and what could bias the comparison:
docs/benchmarks-transport.md."""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Callable

import attrs

from bench.common import say
from bench.transport_channel import RunCap
from bench.transport_goals import check_goals, format_goals
from bench.transport_kcp import kcp_available, run_kcp
from bench.transport_quic import quic_available, run_quic
from bench.transport_twistchat import run_flows, run_one_flow
from twistchat.netsim.__main__ import Options as NetsimOptions
from twistchat.netsim.transfer import TransferSettings

CHAT = "--rtt 20 --jitter 5 --messages 5000 --size 100 --rate 50"
LOSSY_BULK = "--loss 0.1 --dup 0.1 --jitter 20 --rate 0 --size 3000 --messages 2000"


@attrs.define(frozen=True)
class Workload:
    key: str
    title: str
    netsim_args: str
    """Exactly what ``python -m twistchat.netsim`` is given for the same run (plus ``--seed``)."""
    quick_messages: int
    flows: int = 1
    """Above 1: that many twistchat flows from separate clients through one bottleneck."""


WORKLOADS = [
    Workload("chat10", "chat, 10% loss", f"--loss 0.1 {CHAT}", 1000),
    Workload("chat30", "chat, 30% loss", f"--loss 0.3 {CHAT}", 1000),
    Workload("chat0", "chat, no loss", f"--loss 0 {CHAT}", 1000),
    Workload("bulk", "bulk, 10 Mbit/s link",
             "--loss 0 --rate 0 --bandwidth 10 --rtt 20 --messages 20000 --size 100", 5000),
    Workload("lossy", "bulk, lossy and reordering, no link limit", LOSSY_BULK, 500),
    Workload("lossy10", "bulk, lossy and reordering, 10 Mbit/s link",
             f"{LOSSY_BULK} --bandwidth 10 --rtt 20", 500),
    Workload("flows", "two twistchat flows on one 10 Mbit/s link",
             "--loss 0 --rate 0 --bandwidth 10 --rtt 20 --messages 20000 --size 100", 10000,
             flows=2),
]
"""Issue 15's six rows, in its order, then the fairness row: two flows of
the clean bulk workload, both clients' uplinks through one link and one
64 KiB queue, the second flow starting ``flow_stagger(seed)`` after the
first; shares are taken while both are sending."""

STAGGER_RANGE_S = (0.1, 1.0)


def flow_stagger(seed: int) -> float:
    """When the second flow starts, in virtual seconds: drawn from the seed.
    A lossless run is otherwise the same for every seed, and the shares
    depend on how far the first flow had got, so the seeds sample that."""
    return round(random.Random(seed).uniform(*STAGGER_RANGE_S), 3)

FIGURES = ("p50_ms", "p99_ms", "overhead", "goodput_mbps")


def settings_for(netsim_args: str, seed: int, messages: int | None = None) -> TransferSettings:
    """netsim's own option parser and defaults, mapped as its ``main`` maps them."""
    options = NetsimOptions()
    options.parseOptions(netsim_args.split() + ["--seed", str(seed)])
    settings = TransferSettings(
        loss=options["loss"], duplicate=options["dup"], rtt_ms=options["rtt"],
        jitter_ms=options["jitter"], messages=options["messages"], size=options["size"],
        rate=options["rate"], bandwidth_mbps=options["bandwidth"] or None,
        queue_kb=options["queue-kb"], seed=options["seed"])
    return settings if messages is None else attrs.evolve(settings, messages=messages)


@attrs.define(frozen=True)
class Implementation:
    name: str
    column: str
    run: Callable
    missing: Callable[[], str | None] = lambda: None


IMPLEMENTATIONS = [
    Implementation("twistchat", "twistchat", run_one_flow),
    Implementation("kcp", "KCP fast", run_kcp, kcp_available),
    Implementation("aioquic", "aioquic", run_quic, quic_available),
]


def run_cell(impl: Implementation, workload: Workload, seeds: list[int], cap: RunCap,
             messages: int | None) -> dict:
    """One implementation on one workload over ``seeds``: per seed and medians."""
    per_seed, problems = [], []
    for seed in seeds:
        settings = settings_for(workload.netsim_args, seed, messages)
        result, problem = impl.run(settings, cap)
        summary = result.summary()
        wrong = [f"{summary[k]} {k}" for k in ("missing", "duplicated", "reordered") if summary[k]]
        problem = problem or (", ".join(wrong) if wrong else None)
        ok = problem is None
        per_seed.append({"seed": seed, "finished": ok, "problem": problem, "expected": settings.messages,
                         **{k: summary[k] for k in FIGURES + ("sent", "delivered", "missing",
                                                              "duplicated", "reordered", "seconds")}})
        if not ok:
            problems.append(f"seed {seed}: {problem}")
    finished = [s for s in per_seed if s["finished"]]
    medians = {k: round(statistics.median(s[k] for s in finished), 4) if finished else None
               for k in FIGURES}
    return {"medians": medians, "finished_seeds": len(finished), "seeds": len(seeds),
            "problems": problems, "per_seed": per_seed}


def run_flows_cell(workload: Workload, seeds: list[int], cap: RunCap, messages: int | None) -> dict:
    per_seed = []
    for seed in seeds:
        settings = settings_for(workload.netsim_args, seed, messages)
        per_seed.append({"seed": seed, **run_flows(settings, cap, flows=workload.flows,
                                                   stagger=flow_stagger(seed))})
    for s in per_seed:
        if s["problem"] is None:
            s["problem"] = (f"{s['missing']} missing" if s["missing"] else
                            "out of order" if not s["in_order"] else
                            "the flows never sent at the same time" if not s["shares"] else None)
    good = [s for s in per_seed if s["problem"] is None]
    shares = None
    if good:
        shares = [round(statistics.median(s["shares"][k] for s in good), 3)
                  for k in range(workload.flows)]
    return {"medians": {"shares": shares,
                        "link_total": round(sum(shares), 3) if shares else None},
            "shares_by_seed": [s["shares"] for s in good],
            "finished_seeds": len(good), "seeds": len(seeds),
            "problems": [f"seed {s['seed']}: {s['problem']}" for s in per_seed if s not in good],
            "per_seed": per_seed}


def unfinished_text(cell: dict) -> str:
    """Why a cell has no figures: each reason once, with its seeds (and, for
    a transfer, how much of it had arrived)."""
    by_reason: dict[str, list[dict]] = {}
    for s in cell["per_seed"]:
        if s.get("problem") is not None and not s.get("finished", False):
            by_reason.setdefault(s["problem"], []).append(s)
    parts = []
    for reason, runs in by_reason.items():
        seeds = ",".join(str(s["seed"]) for s in runs)
        got = ""
        if all("expected" in s for s in runs):
            got = f"; {', '.join(str(s['delivered']) for s in runs)} of {runs[0]['expected']} delivered"
        parts.append(f"{reason} (seed{'s' if len(runs) > 1 else ''} {seeds}{got})")
    return "; ".join(parts)


def format_cell(cell: dict | None, workload: Workload) -> str:
    if cell is None:
        return "-"
    if cell["finished_seeds"] < cell["seeds"]:
        return unfinished_text(cell)
    m = cell["medians"]
    if workload.flows > 1:
        by_seed = ", ".join(" / ".join(f"{s:.0%}" for s in shares) for shares in cell["shares_by_seed"])
        return f"shares by seed {by_seed} (link {m['link_total']:.0%})"
    return f"p99 {m['p99_ms']:g} ms, overhead {m['overhead']:.2f}, {m['goodput_mbps']:g} Mbit/s"


def format_table(workloads: list[Workload], cells: dict, columns: list[Implementation]) -> str:
    lines = ["| workload (netsim arguments) | " + " | ".join(i.column for i in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for w in workloads:
        row = [format_cell(cells[w.key].get(i.name), w) for i in columns]
        lines.append(f"| {w.title}: `{w.netsim_args}` | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench transport")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run, not the figures: seed 1 only, and messages per run "
                             + ", ".join(f"{w.key} {w.quick_messages}" for w in WORKLOADS))
    parser.add_argument("--seeds", default=None, help="comma-separated seeds (default 1,2,3; --quick 1)")
    parser.add_argument("--only", default=None,
                        help="comma-separated workload keys: " + ",".join(w.key for w in WORKLOADS))
    parser.add_argument("--virtual-cap", type=float, default=600.0,
                        help="virtual seconds one run may take before it is reported unfinished")
    parser.add_argument("--wall-cap", type=float, default=120.0,
                        help="real seconds one KCP or aioquic run may take (twistchat's runs "
                             "are bounded by the virtual cap alone, as in netsim)")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in (args.seeds or ("1" if args.quick else "1,2,3")).split(",")]
    workloads = [w for w in WORKLOADS if args.only is None or w.key in args.only.split(",")]
    missing = {i.name: i.missing() for i in IMPLEMENTATIONS}
    for name, why in missing.items():
        if why:
            say(f"{name}: skipped: {why}")
    started = time.monotonic()
    cells: dict[str, dict] = {}
    for w in workloads:
        messages = w.quick_messages if args.quick else None
        cells[w.key] = {}
        for impl in IMPLEMENTATIONS:
            if missing[impl.name] or (w.flows > 1 and impl.name != "twistchat"):
                continue
            t0 = time.monotonic()
            cap = RunCap(virtual_s=args.virtual_cap, wall_s=args.wall_cap)
            cells[w.key][impl.name] = (run_flows_cell(w, seeds, cap, messages) if w.flows > 1
                                       else run_cell(impl, w, seeds, cap, messages))
            say(f"{w.key:8} {impl.name:9} {format_cell(cells[w.key][impl.name], w)} "
                f"[{time.monotonic() - t0:.1f} s]")
    wall = time.monotonic() - started
    say("")
    say(f"medians over seeds {','.join(map(str, seeds))}"
        f"{' (--quick: fewer messages, see --help)' if args.quick else ''}; {wall:.0f} s wall")
    say(format_table(workloads, cells, IMPLEMENTATIONS))
    goals = check_goals(cells)
    say("")
    say("issue 15 goals (twistchat's column, against this run's KCP and aioquic):")
    say(format_goals(goals))
    return {"bench": "transport", "quick": args.quick, "seeds": seeds,
            "implementations": {i.name: missing[i.name] or "ran" for i in IMPLEMENTATIONS},
            "workloads": [{"key": w.key, "title": w.title, "netsim_args": w.netsim_args,
                           "messages": w.quick_messages if args.quick else
                           settings_for(w.netsim_args, seeds[0]).messages,
                           "flows": w.flows, "results": cells[w.key]} for w in workloads],
            "goals": goals, "caps": {"virtual_s": args.virtual_cap, "wall_s": args.wall_cap},
            "wall_s": round(wall, 1)}
