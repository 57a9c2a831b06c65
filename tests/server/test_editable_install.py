"""``pip install -e .`` (what a developer types, in any editable mode) must
leave ``twistd twistchat`` working. Installing into a fresh virtualenv takes
too long for the suite (it was checked by hand: ``python -m venv /tmp/x &&
/tmp/x/bin/pip install -e . && /tmp/x/bin/twistd --help`` lists twistchat);
this checks, cheaply, the two facts that result rests on."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_packages_sit_where_setuptools_installs_editable_with_a_plain_pth_file():
    """setuptools' editable install adds the project root to sys.path with a
    plain .pth file (not an import hook, which Twisted's plugin scan cannot
    see) when ``package-dir`` is ``{"": ROOT}`` and every package is its own
    folder under that root."""
    from setuptools import find_namespace_packages

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {"": "."}
    found = find_namespace_packages(where=str(ROOT), include=config["packages"]["find"]["include"])
    assert {"twistchat", "twistchat.client", "twisted.plugins"} <= set(found)
    for name in found:
        assert (ROOT / name.replace(".", "/")).is_dir(), name
    assert not (ROOT / "twisted" / "__init__.py").exists()          # Twisted's own package
    assert not (ROOT / "twisted" / "plugins" / "__init__.py").exists()  # scanned, not shadowed


def test_twisteds_plugin_scan_finds_twistchat_from_the_project_root_on_sys_path(tmp_path):
    """What that .pth file gives a fresh interpreter: the root on sys.path,
    and nothing else of ours (this venv's own install is taken out first)."""
    script = (
        "import os, sys\n"
        f"root = {str(ROOT)!r}\n"
        "sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.getcwd()) != root]\n"
        "sys.path.append(root)\n"
        "from twisted.application.service import IServiceMaker\n"
        "from twisted.plugin import getPlugins\n"
        "from twisted import plugins\n"
        "print(' '.join(sorted(p.tapname for p in getPlugins(IServiceMaker, plugins))))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "twistchat" in result.stdout.split()
