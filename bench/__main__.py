"""``python -m bench NAME [--quick]`` or ``python -m bench all [--quick]``."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time

from bench.common import REPO, emit

BENCHES = ["fanout", "hotpath", "serverpath", "latency", "scale", "abuse", "handshake", "transport", "transfer", "cluster"]


def run_all(argv: list[str]) -> dict:
    """Each bench in its own process (a Twisted reactor runs once per process)."""
    results = {}
    for name in BENCHES:
        print(f"=== {name} ===", flush=True)
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "bench", name, *argv], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
        print(proc.stdout, end="", flush=True)
        lines = proc.stdout.strip().splitlines()
        try:
            results[name] = json.loads(lines[-1])
        except (IndexError, ValueError):
            results[name] = {"error": f"exit {proc.returncode}, no JSON line"}
        results[name]["wall_s"] = round(time.monotonic() - started, 1)
    return {"bench": "all", "results": results}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in BENCHES + ["all"]:
        print(f"usage: python -m bench {{{'|'.join(BENCHES + ['all'])}}} [--quick]", file=sys.stderr)
        return 2
    name, argv = sys.argv[1], sys.argv[2:]
    if name == "all":
        emit(run_all(argv))
        return 0
    from bench.procstat import machine
    before = machine()
    module = importlib.import_module(f"bench.{name}")
    result = module.main(argv)
    result["machine"] = before
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
