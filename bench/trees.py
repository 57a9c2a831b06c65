"""
What ``bench hotpath`` and ``bench serverpath`` share: each run is a child
process, on this tree (compiled, or pure Python with ``--pure-too``) or on
the ``twistchat`` package of ``--base`` unpacked by ``git archive``, all in
the same run; the least of ``--repeat`` runs is kept (the machine is
shared, and noise only ever adds time).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def parse(argv: list[str], prog: str, baseline: str, repeat: int, child_args: int,
          quick_repeat: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=repeat,
                        help=f"runs of each shape and tree; the least is kept (default {repeat})")
    parser.add_argument("--base", default=baseline,
                        help=f"the commit to compare with (default {baseline})")
    parser.add_argument("--pure-too", action="store_true",
                        help="also run this tree pure Python (TWISTCHAT_PURE_PYTHON=1), issue 16")
    parser.add_argument("--child", nargs=child_args, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tree", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.runs = quick_repeat if args.quick else args.repeat
    return args


def child(measure: Callable[..., dict], args: argparse.Namespace) -> dict:
    """In the child: measure on the tree asked for, print the result as JSON."""
    if args.tree is not None:
        sys.path.insert(0, str(args.tree))  # before anything imports twistchat
    result = measure(*args.child)
    result["mode"] = mode()
    print(json.dumps(result))
    return result


def mode() -> str:
    """What the child ran: compiled or pure (``twistchat.compiled``, issue 16)."""
    chosen = sys.modules.get("twistchat.compiled")
    if chosen is None:
        return "pure (a tree without twistchat.compiled)"
    return f"{chosen.MODE} ({chosen.REASON})"


def unpack(commit: str, into: Path) -> Path:
    """The ``twistchat`` package as it was at ``commit``."""
    from bench.common import REPO
    archive = subprocess.run(["git", "archive", "--format=tar", commit, "twistchat"], cwd=REPO,
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def _run_child(module: str, child_args: list[int], tree: Path | None, pure: bool) -> dict:
    from bench.common import REPO  # in the parent only: it imports twistchat
    from twistchat.compiled import PURE_ENV
    command = [sys.executable, "-m", module, "--child", *map(str, child_args)]
    if tree is not None:
        command += ["--tree", str(tree)]
    env = {**os.environ, PURE_ENV: "1"} if pure else None
    out = subprocess.run(command, cwd=REPO, check=True, env=env,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def compare(module: str, shapes: list[tuple[dict[str, Any], list[int]]],
            args: argparse.Namespace, label: Callable[[dict[str, Any]], str]) -> list[dict]:
    """Each shape (its row so far, its child's arguments) on the base, on
    this tree pure if asked, and on this tree; with the ratios of CPU per
    delivery."""
    from bench.common import say
    rows = []
    with tempfile.TemporaryDirectory(prefix="twistchat-trees-") as scratch:
        base_tree = unpack(args.base, Path(scratch))
        for row, child_args in shapes:
            trees = [("base", base_tree, False), ("this tree", None, False)]
            if args.pure_too:
                trees.insert(1, ("this tree, pure", None, True))
            for name, tree, pure in trees:
                runs = [_run_child(module, child_args, tree, pure) for _ in range(args.runs)]
                row[name] = min(runs, key=lambda r: r["us_per_delivery"])
                say(f"{label(row)}, {name}: {row[name]}")
            ratio = row["base"]["us_per_delivery"] / max(row["this tree"]["us_per_delivery"], 1e-9)
            row["speedup"] = round(ratio, 2)
            say(f"  this tree takes 1/{ratio:.2f} of base {args.base}'s CPU per delivery")
            if args.pure_too:
                pure_ratio = row["this tree, pure"]["us_per_delivery"] / max(
                    row["this tree"]["us_per_delivery"], 1e-9)
                row["compiled_vs_pure"] = round(pure_ratio, 2)
                say(f"  compiled: 1/{pure_ratio:.2f} of pure Python's CPU per delivery")
            rows.append(row)
    return rows
