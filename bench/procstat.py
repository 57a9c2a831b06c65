"""What /proc says about a process: CPU seconds and resident memory."""

from __future__ import annotations

import os

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime is field 14, stime 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def hot_path(pid: int) -> str:
    """``compiled`` if ``pid`` has the mypyc build of twistchat's hot path
    mapped (issue 16, setup.py), else ``pure``: what a child really ran."""
    with open(f"/proc/{pid}/maps") as f:
        return "compiled" if "twistchat_hotpath__mypyc" in f.read() else "pure"


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def machine() -> dict:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    return {"cpus": os.cpu_count(), "cpu_model": model, "loadavg_at_start": " ".join(load)}


def cpu_seconds_self() -> float:
    """This process, all threads."""
    usage = os.times()
    return usage.user + usage.system


def machine_busy_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot (/proc/stat): the
    difference over a span says how saturated the machine was."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


class CpuSpan:
    """Processes' shares of a core and the machine's busy share over a span."""

    def __init__(self, **pids: int) -> None:
        import time
        self._pids, self._clock = pids, time.monotonic
        self._started = self._clock()
        self._cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
        self._machine = machine_busy_jiffies()

    def figures(self) -> dict:
        elapsed = max(self._clock() - self._started, 1e-9)
        busy, total = machine_busy_jiffies()
        shares = {}
        for name, pid in self._pids.items():
            try:
                shares[f"{name}_core_share"] = round((cpu_seconds(pid) - self._cpu[name]) / elapsed, 3)
            except OSError:  # ended meanwhile
                shares[f"{name}_core_share"] = None
        return {**shares,
                "machine_busy_share": round((busy - self._machine[0]) / max(total - self._machine[1], 1), 3)}
