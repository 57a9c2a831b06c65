"""
Compiles the per-delivery hot path (``twistchat.compiled.COMPILED_MODULES``)
with mypyc when the install can (issue 16); everything else is in
pyproject.toml. Any failure (no C compiler, no Python headers, mypyc
refusing a module) leaves a pure Python install that works the same: the
failure is recorded in ``twistchat/compiled-sources.json`` and said once.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import traceback
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
SKIP_MYPYC_COMMANDS = {"egg_info", "dist_info", "sdist", "clean"}
"""Commands that never build: mypyc's type check and C generation are not run for them."""
GROUP_NAME = "twistchat_hotpath"
"""The shared library all compiled modules live in (``twistchat_hotpath__mypyc*.so``)."""


def _compiled_module():
    """twistchat/compiled.py alone (the module list and the digests), without
    importing the package."""
    spec = importlib.util.spec_from_file_location("_twistchat_compiled", ROOT / "twistchat" / "compiled.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


COMPILED = _compiled_module()
DIGESTS = ROOT / "twistchat" / COMPILED.DIGESTS_FILE


def _say(message: str) -> None:
    print(f"twistchat setup.py: {message}", file=sys.stderr)


def _record(**fields) -> None:
    DIGESTS.write_text(json.dumps(fields, indent=1, sort_keys=True) + "\n")


def _remove_built() -> None:
    """Every compiled module of an earlier build, beside its source: none is
    left to mix with the pure Python of a failed one."""
    for suffix in EXTENSION_SUFFIXES:
        for module in COMPILED.COMPILED_MODULES:
            COMPILED.source_path(module, ROOT).with_suffix(suffix).unlink(missing_ok=True)
        for shared in ROOT.glob(f"{GROUP_NAME}__mypyc*{suffix}"):
            shared.unlink()


def _extensions() -> list:
    if SKIP_MYPYC_COMMANDS & set(sys.argv[1:]):
        return []
    try:
        from mypyc.build import mypycify

        paths = [str(COMPILED.source_path(m, ROOT).relative_to(ROOT)) for m in COMPILED.COMPILED_MODULES]
        BuildHotPath.digests = COMPILED.source_digests(ROOT)  # what mypyc reads, before it reads it
        # Only the listed modules are compiled; what they import is read for its types.
        return mypycify(["--follow-imports=silent", *paths], group_name=GROUP_NAME)
    except (Exception, SystemExit) as error:  # mypyc exits on a type error
        _say(f"mypyc could not compile the hot path, installing pure Python: {error!r}")
        _remove_built()
        _record(failed=f"mypyc: {error!r}")
        return []


class BuildHotPath(build_ext):
    """build_ext that never fails the install: on any error the built
    modules are removed (pure Python for all, never a mix) and the failure
    recorded; on success the sources' digests are recorded for the guard."""

    digests: dict[str, str] = {}

    def run(self) -> None:
        try:
            super().run()
        except (Exception, SystemExit) as error:
            traceback.print_exc()
            _remove_built()
            _say(f"compiling the hot path failed, installing pure Python: {error!r}")
            _record(failed=f"build_ext: {error!r}")
            return
        _record(sources=self.digests, python=sys.version.split()[0])
        if not self.inplace and not getattr(self, "editable_mode", False):
            target = Path(self.build_lib) / "twistchat" / COMPILED.DIGESTS_FILE
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(DIGESTS.read_text())



setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildHotPath})
