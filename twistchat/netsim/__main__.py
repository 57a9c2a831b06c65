"""
``python -m twistchat.netsim``: one transfer through the simulated network.
Prints a few human lines, then one JSON object as the last line.
"""

from __future__ import annotations

import json
import sys

from twisted.python import usage

from twistchat.netsim.transfer import TransferSettings, run_transfer


def _probability(value: str) -> float:
    p = float(value)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{value} is not a probability between 0 and 1")
    return p


def _non_negative(value: str) -> float:
    number = float(value)
    if number < 0:
        raise ValueError(f"{value} is negative")
    return number


class Options(usage.Options):
    synopsis = "python -m twistchat.netsim [options]"
    longdesc = ("Send numbered messages through a simulated lossy network between real "
                "twistchat endpoints, in virtual time, and report what arrived.")
    optParameters = [
        ["loss", None, 0.0, "Probability of losing each datagram.", _probability],
        ["dup", None, 0.0, "Probability of duplicating each datagram.", _probability],
        ["rtt", None, 20.0, "Round-trip time in ms.", _non_negative],
        ["jitter", None, 0.0, "Uniform +- jitter on each one-way delay, in ms (reorders).", _non_negative],
        ["messages", None, 1000, "Messages to send.", int],
        ["size", None, 100, "Bytes per message (at least 8).", int],
        ["rate", None, 50.0, "Messages per second; 0 = as fast as the windows allow.", _non_negative],
        ["bandwidth", None, 0.0, "Link bandwidth in Mbit/s each way; 0 = unlimited.", _non_negative],
        ["queue-kb", None, 64, "Drop-tail queue in front of each link, in KiB.", int],
        ["seed", None, 1, "Random seed: same seed, same run.", int],
    ]

    def postOptions(self) -> None:
        if self["messages"] < 1:
            raise usage.UsageError("--messages must be at least 1")
        if self["size"] < 8:
            raise usage.UsageError("--size must be at least 8 (the sequence header)")


def main(argv: list[str] | None = None) -> int:
    options = Options()
    try:
        options.parseOptions(argv if argv is not None else sys.argv[1:])
    except usage.UsageError as e:
        print(f"{sys.argv[0]}: {e}", file=sys.stderr)
        print(options, file=sys.stderr)
        return 2
    settings = TransferSettings(
        loss=options["loss"], duplicate=options["dup"], rtt_ms=options["rtt"],
        jitter_ms=options["jitter"], messages=options["messages"], size=options["size"],
        rate=options["rate"], bandwidth_mbps=options["bandwidth"] or None,
        queue_kb=options["queue-kb"], seed=options["seed"])
    summary = run_transfer(settings).summary()
    print(f"sent {summary['sent']}, delivered {summary['delivered']}, missing {summary['missing']}, "
          f"duplicated {summary['duplicated']}, reordered {summary['reordered']}")
    print(f"latency p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms, max {summary['max_ms']} ms; "
          f"overhead {summary['overhead']}; goodput {summary['goodput_mbps']} Mbit/s")
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
