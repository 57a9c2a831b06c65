"""The congestion controller on the simulator (virtual time, deterministic):
bulk transfer does not collapse under random loss and reordering, and two
flows through one bottleneck share it."""

from __future__ import annotations

from twistchat.netsim.transfer import TransferSettings, run_transfer
from twistchat.netsim.two_flows import run_two_flows


def test_bulk_under_random_loss_and_reordering_keeps_most_of_the_link():
    """Issue 15: NewReno halving on every random loss gave 0.56 Mbit/s here."""
    summary = run_transfer(TransferSettings(
        loss=0.1, duplicate=0.1, jitter_ms=20, rate=0, size=3000, messages=600,
        bandwidth_mbps=10, rtt_ms=20, seed=1)).summary()
    assert summary["delivered"] == 600 and summary["missing"] == 0
    assert summary["goodput_mbps"] >= 3.0


def test_two_flows_share_one_bottleneck():
    result = run_two_flows(bandwidth_mbps=10, rtt_ms=20, queue_kb=64, messages=1500, seed=1)
    assert result.complete
    assert all(0.4 <= share <= 0.6 for share in result.shares)
    assert sum(result.goodputs_mbps) >= 8.0  # together they still fill the link
