"""Issue 15's goals, checked for twistchat's column of ``python -m bench
transport`` against the same run's KCP and aioquic figures and the issue's
fixed targets.  A goal whose figures are missing (a workload not run, a run
that did not finish) is missed, and says why."""

from __future__ import annotations

CHAT_P99_TARGET_MS = {"chat10": 46.0, "chat30": 134.0}
"""Today's p99 when the issue was filed: it must not get worse."""

CHAT_OVERHEAD_FALLBACK = {"chat10": 1.75, "chat30": 2.4}
"""The issue's anchors' overheads, used only when KCP and aioquic did not run."""

LOSSY_BULK_TARGET_MBPS = 6.0
"""60% of the 10 Mbit/s link."""

FAIR_SHARE = (0.40, 0.60)
CLEAN_BULK_TARGET = 0.90
"""Of the link's 10 Mbit/s."""

LINK_MBPS = 10.0
ANCHORS = ("kcp", "aioquic")


def _median(cells: dict, workload: str, impl: str, figure: str) -> float | None:
    cell = cells.get(workload, {}).get(impl)
    if cell is None or cell["finished_seeds"] < cell["seeds"]:
        return None
    return cell["medians"].get(figure)


def _anchor(cells: dict, workload: str, figure: str) -> dict[str, float | None]:
    """Each anchor that ran: its median, or None if a seed did not finish."""
    return {impl: _median(cells, workload, impl, figure) for impl in ANCHORS
            if cells.get(workload, {}).get(impl) is not None}


def _goal(name: str, met: bool, detail: str) -> dict:
    return {"goal": name, "met": met, "detail": detail}


def check_goals(cells: dict) -> list[dict]:
    goals = []
    for key, target in CHAT_P99_TARGET_MS.items():
        p99 = _median(cells, key, "twistchat", "p99_ms")
        overhead = _median(cells, key, "twistchat", "overhead")
        anchors = {k: v for k, v in _anchor(cells, key, "overhead").items() if v is not None}
        bound = min(anchors.values()) if anchors else CHAT_OVERHEAD_FALLBACK[key]
        source = ", ".join(f"{k} {v:.2f}" for k, v in anchors.items()) or \
            f"issue's anchors {bound} (KCP and aioquic did not run)"
        if p99 is None or overhead is None:
            goals.append(_goal(f"{key}: p99 <= {target:g} ms and overhead below the anchors", False,
                               "twistchat's run not done (not run, or did not finish)"))
            continue
        goals.append(_goal(f"{key}: p99 <= {target:g} ms", p99 <= target, f"p99 {p99:g} ms"))
        goals.append(_goal(f"{key}: overhead below KCP's and aioquic's", overhead < bound,
                           f"overhead {overhead:.2f} vs {source}"))
    goodput = _median(cells, "lossy10", "twistchat", "goodput_mbps")
    anchors = _anchor(cells, "lossy10", "goodput_mbps")
    name = f"lossy10: >= {LOSSY_BULK_TARGET_MBPS:g} Mbit/s and ahead of both anchors"
    if goodput is None:
        goals.append(_goal(name, False, "twistchat's run not done (not run, or did not finish)"))
    else:
        # An anchor that did not finish the transfer is beaten by one that did.
        ahead = all(v is None or goodput > v for v in anchors.values())
        against = ", ".join(f"{k} {'did not finish' if v is None else f'{v:g}'}"
                            for k, v in anchors.items()) or "no anchor ran"
        goals.append(_goal(name, goodput >= LOSSY_BULK_TARGET_MBPS and ahead,
                           f"{goodput:g} Mbit/s vs {against}"))
    cell = cells.get("flows", {}).get("twistchat")
    by_seed = cell["shares_by_seed"] if cell and cell["finished_seeds"] == cell["seeds"] else None
    low, high = FAIR_SHARE
    # Every seed, not the medians: each seed starts the second flow at another moment.
    goals.append(_goal(f"flows: each of two flows gets {low:.0%}-{high:.0%} of the link, every seed",
                       bool(by_seed) and all(low <= s <= high for shares in by_seed for s in shares),
                       f"shares by seed {by_seed}" if by_seed else
                       "twistchat's run not done (not run, or did not finish)"))
    goodput = _median(cells, "bulk", "twistchat", "goodput_mbps")
    goals.append(_goal(f"bulk: >= {CLEAN_BULK_TARGET:.0%} of the {LINK_MBPS:g} Mbit/s link",
                       goodput is not None and goodput >= CLEAN_BULK_TARGET * LINK_MBPS,
                       f"{goodput:g} Mbit/s" if goodput is not None else
                       "twistchat's run not done (not run, or did not finish)"))
    return goals


def format_goals(goals: list[dict]) -> str:
    return "\n".join(f"  {'met   ' if g['met'] else 'MISSED'} {g['goal']}: {g['detail']}" for g in goals)
