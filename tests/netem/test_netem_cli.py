"""Command line parsing: valid settings, and clear usage errors instead of tracebacks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from twistchat.netem.__main__ import EXIT_USAGE, NetemOptions, banner, direction_seeds, impairments_from, main

VALID = ["--listen", "9000", "--to", "127.0.0.1:9999"]


def parse(arguments: list[str]) -> NetemOptions:
    options = NetemOptions()
    options.parseOptions(arguments)
    return options


def test_defaults() -> None:
    options = parse(VALID)
    assert options["listen"] == 9000 and options["to"] == ("127.0.0.1", 9999)
    assert (options["loss"], options["dup"], options["delay"], options["jitter"]) == (0, 0, 0, 0)
    assert options["listen-host"] == "127.0.0.1"
    assert isinstance(options["seed"], int)


def test_all_settings() -> None:
    options = parse(
        ["--listen", "0", "--to", "localhost:9999", "--loss", "0.1", "--dup", "0.02",
         "--delay", "40", "--jitter", "15.5", "--seed", "7", "--listen-host", "0.0.0.0",
         "--idle-timeout", "30", "--max-clients", "8"]
    )
    assert options["to"][1] == 9999 and options["to"][0] in ("127.0.0.1", "::1")
    up, down = impairments_from(options)
    assert (up.loss, up.duplicate, up.delay_ms, up.jitter_ms) == (0.1, 0.02, 40.0, 15.5)
    assert (down.loss, down.duplicate, down.delay_ms, down.jitter_ms) == (0.1, 0.02, 40.0, 15.5)
    assert up.seed != down.seed
    assert (options["idle-timeout"], options["max-clients"]) == (30.0, 8)
    assert banner(options, 41234).startswith(
        "netem listening on 0.0.0.0:41234 -> "
    ) and "loss=0.1 dup=0.02 delay=40ms jitter=15.5ms seed=7" in banner(options, 41234)


def test_ipv6_target_in_brackets() -> None:
    assert parse(["--listen", "0", "--to", "[::1]:9999"])["to"] == ("::1", 9999)


def test_direction_seeds_are_reproducible_and_distinct() -> None:
    assert direction_seeds(5) == direction_seeds(5)
    up_seed, down_seed = direction_seeds(5)
    assert up_seed != down_seed


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["--to", "127.0.0.1:9999"], "--listen PORT is required"),
        (["--listen", "0"], "--to HOST:PORT is required"),
        (["--listen", "70000", "--to", "127.0.0.1:9999"], "--listen must be a port"),
        (["--listen", "x", "--to", "127.0.0.1:9999"], "--listen must be an integer"),
        (["--listen", "0", "--to", "127.0.0.1"], "--to must be HOST:PORT"),
        (["--listen", "0", "--to", "127.0.0.1:"], "--to must be an integer"),
        (["--listen", "0", "--to", ":9999"], "--to must be HOST:PORT"),
        (["--listen", "0", "--to", "127.0.0.1:0"], "--to must be a port"),
        (["--listen", "0", "--to", "no-such-host.invalid:9999"], "cannot be resolved"),
        (VALID + ["--loss", "1.5"], "--loss must be a probability"),
        (VALID + ["--loss", "-0.1"], "--loss must be a probability"),
        (VALID + ["--dup", "2"], "--dup must be a probability"),
        (VALID + ["--loss", "lots"], "--loss must be a number"),
        (VALID + ["--loss", "nan"], "--loss must be finite"),
        (VALID + ["--delay", "-5"], "--delay must be a delay in milliseconds >= 0"),
        (VALID + ["--jitter", "-1"], "--jitter must be a delay in milliseconds >= 0"),
        (VALID + ["--seed", "abc"], "--seed must be an integer"),
        (VALID + ["--idle-timeout", "0"], "--idle-timeout must be > 0"),
        (VALID + ["--max-clients", "0"], "--max-clients must be >= 1"),
        (VALID + ["--bogus"], "bogus"),
    ],
)
def test_bad_arguments_give_a_usage_error(
    arguments: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(arguments) == EXIT_USAGE
    captured = capsys.readouterr()
    assert complaint in captured.err
    assert "Usage:" in captured.err
    assert captured.out == ""


def test_bad_arguments_as_a_process_print_no_traceback() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "twistchat.netem", "--listen", "0", "--to", "127.0.0.1:9999", "--loss", "7"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert finished.returncode == EXIT_USAGE
    assert "--loss must be a probability between 0 and 1, not 7" in finished.stderr
    assert "Traceback" not in finished.stderr
