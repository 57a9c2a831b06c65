"""
Which build of the hot path this process runs: compiled (mypyc) or pure
Python, chosen once, before any of its modules is imported (issue 16).

``setup.py`` compiles ``COMPILED_MODULES`` with mypyc when it can and records
a digest of each one's source beside them (``DIGESTS_FILE``). An editable
install leaves each extension module beside its ``.py``, and an extension
module wins the import; so pure Python is chosen by putting a finder in
front that loads the ``.py``. All of them or none: mypyc modules of one
build call each other natively, and a compiled module next to a pure one it
was built against could disagree with it. Pure Python is chosen when

- ``TWISTCHAT_PURE_PYTHON=1`` asks for it,
- the build did not compile (no C compiler, or mypyc failed: the install
  goes on pure), or
- any compiled module's source changed since the build (warned once): an
  engineer editing a ``.py`` never silently runs the ``.so`` of the old one.

The compiled modules' mutable attrs classes are spelled
``@attr.s(auto_attribs=True, slots=True, eq=False)``: mypyc makes those
native (a C struct), while an ``attrs.define`` class stays a Python class
and one with an ``attrs.Factory`` default does not compile; with
``slots=True`` mypyc keeps attrs' ``__init__`` (a Python call per instance:
the records made per packet or message, ``Chunk``, ``SentPacket``,
``RateSample``, are plain classes with their own ``__init__``) but not its
``__eq__``, so they compare by identity in both builds. docs/benchmarks.md, "a compiled
hot path (mypyc)", has the rest of what mypyc needed.

Imports nothing of twistchat's: ``twistchat/__init__.py`` runs ``select()``.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from pathlib import Path

PURE_ENV = "TWISTCHAT_PURE_PYTHON"
"""Set to 1 to run pure Python even where the compiled build is fresh."""
DIGESTS_FILE = "compiled-sources.json"
"""Written by ``setup.py`` beside this module: what was compiled, from which sources."""

COMPILED_MODULES = (
    "twistchat.wire.errors", "twistchat.wire.varint", "twistchat.wire.frames",
    "twistchat.wire.packets",
    "twistchat.reliable.errors", "twistchat.reliable.events", "twistchat.reliable.state",
    "twistchat.reliable.config", "twistchat.reliable.rangeset", "twistchat.reliable.rtt",
    "twistchat.reliable.acks", "twistchat.reliable.rack", "twistchat.reliable.congestion",
    "twistchat.reliable.bbr", "twistchat.reliable.delivery_rate", "twistchat.reliable.pacing",
    "twistchat.reliable.nonce", "twistchat.reliable.protection", "twistchat.reliable.reassembly",
    "twistchat.reliable.sent_packet",
    "twistchat.reliable.recovery", "twistchat.reliable.sending",
    "twistchat.reliable.packet_builder", "twistchat.reliable.paths",
    "twistchat.reliable.session",
    "twistchat.endpoint.timers", "twistchat.endpoint.servicing", "twistchat.endpoint.broadcast",
    "twistchat.chat.server.marks",
)
"""The per-delivery path (issue 16): wire codecs, the sans-IO session, the
endpoint's work per session (a datagram in, a session serviced, the flush),
and a room line's loop over its members (sent to each, kept on each one's mark).
The handshake, Noise and cookie modules run once a session and stay pure."""

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
"""The folder ``twistchat/`` sits in (the project root in an editable install)."""

COMPILED = "compiled"
PURE = "pure"


def source_path(module: str, root: Path = PACKAGE_ROOT) -> Path:
    return root.joinpath(*module.split(".")).with_suffix(".py")


def source_digests(root: Path = PACKAGE_ROOT) -> dict[str, str]:
    """sha256 of each compiled module's source, as ``setup.py`` records it."""
    return {module: hashlib.sha256(source_path(module, root).read_bytes()).hexdigest()
            for module in COMPILED_MODULES}


def _has_extension(module: str, root: Path) -> bool:
    source = source_path(module, root)
    stem = source.with_suffix("")
    return any(Path(f"{stem}{suffix}").exists()
               for suffix in importlib.machinery.EXTENSION_SUFFIXES)


def choose(environ: dict | os._Environ = os.environ, root: Path = PACKAGE_ROOT) -> tuple[str, str]:
    """``(COMPILED or PURE, why)`` for a tree at ``root``; decides nothing
    else, so the tests can ask it about any tree."""
    if environ.get(PURE_ENV, "") not in ("", "0"):
        return PURE, f"{PURE_ENV}={environ[PURE_ENV]}"
    record = _build_record(root)
    failure = f": the last build failed ({record['failed']})" if record.get("failed") else ""
    built = [m for m in COMPILED_MODULES if _has_extension(m, root)]
    if not built:
        return PURE, f"not compiled{failure}"
    if len(built) < len(COMPILED_MODULES):
        missing = sorted(set(COMPILED_MODULES) - set(built))
        return PURE, f"stale build: no compiled module for {', '.join(missing)}"
    if failure:
        return PURE, f"stale build{failure}"
    recorded = record.get("sources")
    if not isinstance(recorded, dict):
        return PURE, f"stale build: no readable twistchat/{DIGESTS_FILE}"
    changed = sorted(m for m, digest in source_digests(root).items() if recorded.get(m) != digest)
    if changed:
        return PURE, f"stale build: {', '.join(changed)} changed since it was compiled"
    return COMPILED, "compiled with mypyc; sources unchanged since"


def _build_record(root: Path) -> dict:
    """What ``setup.py`` recorded (the sources' digests, or why the build
    failed), read once; empty if there is no readable record."""
    try:
        record = json.loads((root / "twistchat" / DIGESTS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


class _PureFinder(importlib.abc.MetaPathFinder):
    """Loads each compiled module from its ``.py`` instead of its extension."""

    def __init__(self, root: Path) -> None:
        self._sources = {module: source_path(module, root) for module in COMPILED_MODULES}

    def find_spec(self, name, path=None, target=None):
        source = self._sources.get(name)
        if source is None:
            return None
        return importlib.util.spec_from_file_location(name, source)


def select() -> None:
    """Choose the mode for this process; once (``twistchat/__init__.py``)."""
    global MODE, REASON
    MODE, REASON = choose()
    if MODE == PURE:
        already = sorted(m for m in COMPILED_MODULES if m in sys.modules)
        if already:  # only if something imported them before twistchat itself
            raise ImportError(f"twistchat.compiled: {already} imported before the mode was chosen")
        sys.meta_path.insert(0, _PureFinder(PACKAGE_ROOT))
        if REASON.startswith("stale build"):
            warnings.warn(f"twistchat runs pure Python: {REASON}; `make compile` rebuilds it",
                          RuntimeWarning, stacklevel=2)


MODE, REASON = PURE, "not chosen yet"
"""This process's mode and why, once ``select()`` has run."""
