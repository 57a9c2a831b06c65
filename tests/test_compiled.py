"""The compiled hot path (issue 16): which build a process runs
(``twistchat.compiled``), the guard against a stale build, and the same
bytes on the wire from both builds."""

from __future__ import annotations

import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from twistchat import compiled
from twistchat.compiled import COMPILED, COMPILED_MODULES, DIGESTS_FILE, PURE, PURE_ENV, choose

ROOT = Path(__file__).resolve().parents[1]
SO = importlib.machinery.EXTENSION_SUFFIXES[0]
"""A suffix this interpreter loads extension modules from."""

BUILT = choose({}, ROOT)
needs_build = pytest.mark.skipif(BUILT[0] != COMPILED, reason=f"the hot path is not compiled here: {BUILT[1]}")


def _tree(root: Path, built: bool = True, digests: bool = True) -> Path:
    """A copy of the compiled modules' sources at ``root``, with empty
    stand-ins for their extension modules and the build's digest file."""
    for module in COMPILED_MODULES:
        source = compiled.source_path(module, root)
        source.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(compiled.source_path(module), source)
        if built:
            source.with_suffix(SO).touch()
    if digests:
        (root / "twistchat" / DIGESTS_FILE).write_text(
            json.dumps({"sources": compiled.source_digests(root)}))
    return root


def test_a_fresh_build_runs_compiled(tmp_path):
    assert choose({}, _tree(tmp_path))[0] == COMPILED


def test_the_environment_forces_pure_python(tmp_path):
    assert choose({PURE_ENV: "1"}, _tree(tmp_path)) == (PURE, f"{PURE_ENV}=1")
    assert choose({PURE_ENV: "0"}, tmp_path)[0] == COMPILED


def test_no_build_is_pure(tmp_path):
    assert choose({}, _tree(tmp_path, built=False, digests=False)) == (PURE, "not compiled")


def test_a_failed_build_is_pure_and_says_why(tmp_path):
    root = _tree(tmp_path, built=False)
    (root / "twistchat" / DIGESTS_FILE).write_text(json.dumps({"failed": "build_ext: no gcc"}))
    mode, why = choose({}, root)
    assert mode == PURE and "no gcc" in why


def test_a_source_changed_since_the_build_makes_every_module_pure(tmp_path):
    root = _tree(tmp_path)
    edited = compiled.source_path("twistchat.reliable.sending", root)
    edited.write_text(edited.read_text() + "\n# an engineer's edit\n")
    mode, why = choose({}, root)
    assert mode == PURE and why.startswith("stale build") and "twistchat.reliable.sending" in why


def test_a_build_missing_a_module_is_pure(tmp_path):
    root = _tree(tmp_path)
    compiled.source_path("twistchat.wire.varint", root).with_suffix(SO).unlink()
    mode, why = choose({}, root)
    assert mode == PURE and "twistchat.wire.varint" in why


def test_a_build_without_its_digests_is_pure(tmp_path):
    assert choose({}, _tree(tmp_path, digests=False))[0] == PURE


def test_the_install_compiled_the_hot_path_where_it_could():
    """A change mypyc refuses (a type error in reliable/, say) would
    otherwise leave every install quietly pure: where a C compiler and the
    Python headers are, the build must have worked. An edit since the build
    is the guard's business, not a failure."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None or not Path(sysconfig.get_paths()["include"], "Python.h").exists():
        pytest.skip(f"no C compiler ({compiler}) or no Python headers: pure Python is the install")
    mode, why = BUILT
    if "changed since it was compiled" in why:
        pytest.skip(why)
    assert mode == COMPILED, why


def test_every_compiled_module_exists():
    for module in COMPILED_MODULES:
        assert compiled.source_path(module).is_file(), module


def _run(code: str, env: dict, cwd: Path = ROOT) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def _env(**changes) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in (PURE_ENV, "PYTHONPATH")}
    env.update(changes)
    return env


WHICH_FILES = """
    import importlib, twistchat.compiled as c
    files = [importlib.import_module(m).__file__ for m in c.COMPILED_MODULES]
    print(c.MODE, sorted({f.rsplit('.', 1)[-1] for f in files}))
"""


@needs_build
def test_a_process_runs_all_compiled_or_all_pure():
    assert _run(WHICH_FILES, _env()).split()[:2] == ["compiled", "['so']"]
    assert _run(WHICH_FILES, _env(**{PURE_ENV: "1"})).split()[:2] == ["pure", "['py']"]


@needs_build
def test_an_edited_source_runs_pure_with_one_warning(tmp_path):
    """A copy of the built tree, one source edited: every module loads from
    its .py (never a mix), and the process is told once."""
    shutil.copytree(ROOT / "twistchat", tmp_path / "twistchat",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for shared in ROOT.glob("twistchat_hotpath__mypyc*"):
        shutil.copy(shared, tmp_path)
    assert _run(WHICH_FILES, _env(), cwd=tmp_path).split()[:2] == ["compiled", "['so']"]
    edited = compiled.source_path("twistchat.wire.frames", tmp_path)
    edited.write_text(edited.read_text() + "\n# edited after the build\n")
    out = _run(WHICH_FILES + "    import twistchat.reliable.session\n", _env(), cwd=tmp_path)
    assert out.split()[:2] == ["pure", "['py']"]
    assert out.count("RuntimeWarning") == 1 and "twistchat.wire.frames changed" in out


TRAFFIC = """
    # Sessions past their handshake, lines queued, every fifth datagram lost
    # (so retransmission, probes and acks of ranges run), timers fired: a
    # digest of every datagram and event. Key material and randomness are
    # seeded, so both builds must give the same bytes.
    import hashlib, random
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    keys = random.Random(7)
    X25519PrivateKey.generate = classmethod(
        lambda cls: X25519PrivateKey.from_private_bytes(keys.randbytes(32)))
    import twistchat.compiled as c
    from bench.hotpath import SERVER_ADDRESS, _pairs
    digest, count, now = hashlib.sha256(), 0, 0.001
    for client, server, address in _pairs(3):
        for round in range(40):
            now += 0.01
            for i in range(1 + round % 5):
                server.send_message(b"line %d %d" % (round, i) * (1 + 40 * (i == 3)), now)
            for peer, other, to in ((server, client, SERVER_ADDRESS), (client, server, address)):
                for datagram, _ in peer.datagrams_to_send(now):
                    digest.update(datagram)
                    count += 1
                    if count % 5:
                        other.receive_datagram(datagram, to, now + 0.005)
                deadline = peer.get_timer()
                if deadline is not None and deadline <= now + 0.01:
                    peer.handle_timer(now + 0.01)
            for peer in (client, server):
                while (event := peer.next_event()) is not None:
                    digest.update(repr(event).encode())
        digest.update(repr(server.stats).encode() + repr(client.stats).encode())
    print(c.MODE, count, digest.hexdigest())
"""


@needs_build
def test_both_builds_put_the_same_bytes_on_the_wire():
    compiled_run = _run(TRAFFIC, _env()).split()
    pure_run = _run(TRAFFIC, _env(**{PURE_ENV: "1"})).split()
    assert compiled_run[0] == COMPILED and pure_run[0] == PURE
    assert compiled_run[1:] == pure_run[1:]


@needs_build
def test_both_builds_give_the_same_netsim_run():
    """A seeded run of the simulator (loss, jitter: reordering) in virtual
    time: every figure it prints is the same."""
    argv = [sys.executable, "-m", "twistchat.netsim", "--loss", "0.1", "--jitter", "5",
            "--messages", "300", "--rate", "0", "--seed", "3"]
    runs = [subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
            for env in (_env(), _env(**{PURE_ENV: "1"}))]
    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    last = [json.loads(r.stdout.strip().splitlines()[-1]) for r in runs]
    assert last[0] == last[1] and last[0]["missing"] == 0
