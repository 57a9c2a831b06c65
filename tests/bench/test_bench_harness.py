"""The bench harness's own bookkeeping: what it calls missing, duplicated and
reordered must be right, or every figure built on it is wrong.  Fast; no
sockets except the relay round trip, which is bounded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import procstat  # noqa: E402
from bench.common import percentile  # noqa: E402
from bench.latency import LineChecker  # noqa: E402


class FakeClient:
    def __init__(self, nick: str) -> None:
        self.nick = nick


def line(sender: str, seq: int) -> bytes:
    return json.dumps({"t": "message", "room": "#r", "nick": sender, "text": f"L {seq} 0.0",
                       "msg_id": seq, "ts": 0}, separators=(",", ":")).encode()


def test_clean_run_counts_nothing_wrong() -> None:
    checker = LineChecker(["a"], ["r"], per_sender=3)
    for seq in range(3):
        checker.on_event(FakeClient("r"), line("a", seq))
    assert checker.complete()
    assert checker.tally() == {"missing": 0, "duplicated": 0, "reordered": 0, "delivered": 3,
                               "expected": 3}


def test_missing_duplicated_and_reordered_lines_are_each_counted() -> None:
    checker = LineChecker(["a", "b"], ["r"], per_sender=4)
    for seq in (0, 2, 1, 1):  # 3 missing, 1 duplicated, 2 -> 1 reordered
        checker.on_event(FakeClient("r"), line("a", seq))
    for seq in range(4):
        checker.on_event(FakeClient("r"), line("b", seq))
    tally = checker.tally()
    assert (tally["missing"], tally["duplicated"], tally["reordered"]) == (1, 1, 1)
    assert not checker.complete()


def test_lines_from_unknown_senders_or_at_senders_are_ignored() -> None:
    checker = LineChecker(["a"], ["r"], per_sender=1)
    checker.on_event(FakeClient("a"), line("a", 0))       # a sender hears another sender
    checker.on_event(FakeClient("r"), line("zz", 0))      # someone else in the room
    checker.on_event(FakeClient("r"), b'{"t":"join","room":"#r","nick":"q"}')
    assert checker.tally()["delivered"] == 0


def test_percentile_and_proc_readings() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile(list(map(float, range(101))), 99) == 99.0
    assert procstat.rss_bytes(os.getpid()) > 1_000_000
    assert procstat.cpu_seconds(os.getpid()) > 0


def test_unknown_bench_name_is_a_usage_error() -> None:
    done = subprocess.run([sys.executable, "-m", "bench", "nope"], cwd=REPO, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 2
    assert "usage" in done.stderr


def test_abuse_scenarios_cover_issue_12_and_summarise() -> None:
    from bench.abuse_attacks import ATTACKS
    from bench.abuse_scenarios import SCENARIOS, Addresses, ratio, summary_line
    assert set(SCENARIOS) == set(ATTACKS) | {"hello_flood"} and len(SCENARIOS) == 8
    assert all(spec["attack"] and spec["defence"] for spec in SCENARIOS.values())
    addresses = Addresses()
    taken = [addresses.take() for _ in range(200)]  # each real user its own loopback address
    assert len(set(taken)) == 200 and all(a.startswith("127.0.") and a != "127.0.0.1" for a in taken)
    assert ratio(3.0, 1.5) == 2.0 and ratio(None, 1.0) is None and ratio(1.0, 0) is None
    probe = {"login_median_ms": 40.0, "p99_ms": 2.0, "lost": 0}
    line = summary_line("x", {"unloaded": probe, "loaded": probe, "attacker": {"bytes_out": 1, "bytes_in": 2},
                              "server_rss_mib": {"before_attack": 1, "peak_during": 2, "attack_setup_max": 1,
                                                 "vm_hwm": 2}, "login_ratio": 1.0, "p99_ratio": 1.0,
                              "server_tracebacks": 0, "goals": {"a": True, "b": False}})
    assert "missed: b" in line


def test_repeated_abuse_runs_judge_timing_on_the_median_and_the_rest_in_every_run() -> None:
    from bench.abuse_scenarios import median_of_runs

    def run(login: float, p99: float, lost: int = 0) -> dict:
        return {"login_ratio": login, "p99_ratio": p99, "loaded": {"login_failed": []},
                "goals": {"login_within_2x": login <= 2, "p99_within_2x": p99 <= 2, "nothing_lost": lost == 0}}
    one_hiccup = median_of_runs([run(1.1, 4.3), run(1.2, 0.9), run(1.0, 1.5)])
    assert one_hiccup["p99_ratio"] == 1.5 and one_hiccup["login_ratio"] == 1.1
    assert one_hiccup["goals"] == {"login_within_2x": True, "p99_within_2x": True, "nothing_lost": True}
    assert one_hiccup["median_of"] == 3 and len(one_hiccup["runs"]) == 3
    two_slow = median_of_runs([run(1.1, 4.3), run(1.2, 0.9), run(1.0, 2.5)])
    assert two_slow["p99_ratio"] == 2.5 and not two_slow["goals"]["p99_within_2x"]
    one_loss = median_of_runs([run(1.0, 1.0), run(1.0, 1.0, lost=1), run(1.0, 1.0)])
    assert not one_loss["goals"]["nothing_lost"]
    assert median_of_runs([run(1.0, 1.0), run(1.0, 3.0)])["p99_ratio"] == 3.0  # two runs: the worse


def test_the_cluster_bench_spreads_its_senders_over_the_nodes() -> None:
    from bench.cluster import _spread
    clients = [FakeClient(f"m{i}") for i in range(10)]  # member i is on node i mod 3
    assert [int(c.nick[1:]) % 3 for c in _spread(clients, 3, 6)] == [0, 1, 2, 0, 1, 2]
    assert [c.nick for c in _spread(clients, 3, 4)] == ["m0", "m1", "m2", "m3"]
    assert len(_spread(clients[:2], 3, 6)) == 2  # never more senders than members


def test_the_serverpath_clock_runs_calls_as_task_clock_does() -> None:
    from bench.serverpath import _lazy_clock
    clock, ran = _lazy_clock(), []
    clock.callLater(2, ran.append, "b")
    clock.callLater(1, ran.append, "a")
    dropped = clock.callLater(1.5, ran.append, "cancelled")
    moved = clock.callLater(0.5, ran.append, "moved")
    clock.callLater(1, ran.append, "a2")
    dropped.cancel()
    moved.reset(3)
    assert [call.getTime() for call in clock.getDelayedCalls()] == [1, 1, 2, 3]
    clock.advance(2.5)
    assert ran == ["a", "a2", "b"]
    clock.advance(1)
    assert ran == ["a", "a2", "b", "moved"] and clock.calls == []


def test_serverpath_counts_every_line_each_member_got() -> None:
    from bench.serverpath import measure
    result = measure(members=4, rounds=3)
    assert result["deliveries"] == 3 * 4 * 3  # four senders, three others each
    assert result["us_per_delivery"] > 0 and result["lines_per_datagram"] > 0


def test_bench_scale_reads_the_counts_its_holder_processes_print() -> None:
    from bench.scale import Holder
    from bench.scale_holder import status_line

    class Client:
        def __init__(self, lost: object = None) -> None:
            self.lost = lost

    line = status_line([Client(), Client("timed out"), Client()])
    assert line == "status 3 1"
    log = f"status 0 0\n{line}\nready 3\n"
    assert [tuple(map(int, found)) for found in Holder.STATUS.findall(log)][-1] == (3, 1)


def _warnings_logged(run) -> str:
    """What ``run()`` logs at warning level or above, as a server's log file has it."""
    import io

    from twisted.logger import LogLevel, formatEventAsClassicLogText, globalLogPublisher

    out = io.StringIO()

    def write(event: dict) -> None:
        if event["log_level"] >= LogLevel.warn:
            out.write(formatEventAsClassicLogText(event))
    globalLogPublisher.addObserver(write)
    try:
        run()
    finally:
        globalLogPublisher.removeObserver(write)
    return out.getvalue()


def test_bench_scale_reads_the_full_collections_the_server_logs() -> None:
    """The server's own warning, formatted as its log file has it, is what
    ``bench scale`` counts: a changed message would make it count none."""
    from bench.scale import FULL_COLLECTION, MIDDLE_COLLECTION, YOUNG_COLLECTION, logged_ms
    from twistchat.chat.server.collector import FullCollectionWatch

    now = [0.0]
    watch = FullCollectionWatch(clock=lambda: now[0])

    def collect() -> None:
        for generation, seconds in ((2, 0.05), (2, 1.5), (2, 0.4), (1, 0.3), (0, 0.2)):
            watch("start", {"generation": generation})
            now[0] += seconds
            watch("stop", {"generation": generation, "collected": 0})
    log = _warnings_logged(collect)
    assert logged_ms(FULL_COLLECTION, log) == [1500, 400]
    assert logged_ms(MIDDLE_COLLECTION, log) == [300]
    assert logged_ms(YOUNG_COLLECTION, log) == [200]


def test_bench_scale_reads_the_stalls_the_server_logs() -> None:
    """The same for the server's stall warnings (``StallWatch``)."""
    from twisted.internet.task import Clock

    from bench.scale import STALL, logged_ms
    from twistchat.chat.server.stall_watch import CHECK_INTERVAL, StallWatch

    clock = Clock()
    watch = StallWatch(clock, clock=clock.seconds)

    def stall() -> None:
        watch.startService()
        for late in (0.02, 0.25, 0.6):
            clock.advance(CHECK_INTERVAL + late)
        watch.stopService()
    assert logged_ms(STALL, _warnings_logged(stall)) == [250, 600]


def test_bench_fanout_judges_a_room_on_the_median_of_its_pairs() -> None:
    from bench.fanout import ratios, summarize_pairs

    def pair(reliable: float, plain: float, reliable_cpu: float, plain_cpu: float) -> dict:
        return ratios({"deliveries_per_s": reliable, "deliveries_per_server_cpu_s": reliable_cpu},
                      {"deliveries_per_s": plain, "deliveries_per_server_cpu_s": plain_cpu})

    # One pair whose relay ran slow reaches 1.0; the room does not.
    pairs = [pair(70, 70, 66, 60), pair(50, 100, 60, 100), pair(40, 100, 55, 100)]
    assert [p["ratio_per_server_cpu_s"] for p in pairs] == [1.1, 0.6, 0.55]
    summary = summarize_pairs(pairs)
    assert summary["ratio"] == 0.5 and summary["ratio_range"] == [0.4, 1.0]
    assert summary["ratio_per_server_cpu_s"] == 0.6
    assert summary["ratio_per_server_cpu_s_range"] == [0.55, 1.1]
    assert summary["goal_met"] is False
    # An even count reports the lower middle, a figure one pair measured.
    assert summarize_pairs(pairs[:2])["ratio_per_server_cpu_s"] == 0.6
    assert summarize_pairs([pair(120, 100, 110, 100)])["goal_met"] is True


def test_bench_scale_times_the_full_collections_of_the_members_process() -> None:
    """Only full collections count, and only the part inside a line's span."""
    import gc

    from bench.scale import FullCollections

    watch = FullCollections()
    gc.callbacks.append(watch)
    try:
        gc.collect(0)
        assert watch.spans == []
        gc.collect()
    finally:
        gc.callbacks.remove(watch)
    (start, end), = watch.spans
    assert start <= end
    assert watch.seconds_within(start - 1.0, end + 1.0) == end - start
    assert watch.seconds_within(end + 1.0, end + 2.0) == 0.0
    assert watch.seconds_within(start, start + (end - start) / 2) == pytest.approx((end - start) / 2)
