"""The shape docs/ARCHITECTURE.md promises, read from the code's own imports.

An AST walk over ``twistchat/`` (imports under ``TYPE_CHECKING`` count: a
type-only import upward is still a dependency a reader has to follow).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "twistchat"

LAYERS = {
    "wire": 0, "store": 0, "cluster": 0, "compiled": 0,
    "reliable": 1,
    "endpoint": 2,
    "chat": 3,
    "client": 4,
    "cli": 5, "netsim": 5, "netem": 5,
}
"""Each top-level package may import only packages on a lower level (and itself)."""

MAX_LINES = 450
REASON_MARK = "over the project's ~450"
"""A longer module says why in its docstring, in these words."""


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The twistchat modules ``name`` imports (``from a import b`` counts as
    ``a.b`` when that is a module, else as ``a``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                       for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t.split(".")[0] == "twistchat" and t != name)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_package_has_a_layer():
    packages = {_layer(m) for m in MODULES} - {None}
    assert packages <= set(LAYERS), f"add {packages - set(LAYERS)} to LAYERS (and ARCHITECTURE.md)"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_the_layers(module):
    layer = _layer(module)
    if layer is None:
        return
    upward = sorted(t for t in GRAPH[module]
                    if _layer(t) not in (None, layer) and LAYERS[_layer(t)] >= LAYERS[layer])
    assert not upward, f"{module} ({layer}) imports {upward}"


def test_the_transport_never_imports_what_sits_on_it():
    """The issue's rule in its own words: wire/ and reliable/ stand alone."""
    for module, targets in GRAPH.items():
        if _layer(module) in ("wire", "reliable"):
            assert not {_layer(t) for t in targets} & {"endpoint", "chat", "client", "cli"}, module


def test_no_import_cycles():
    """Tarjan's strongly connected components over the module graph."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH.get(node, ()):
            if target not in GRAPH:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            # A package's __init__ re-exporting its own modules is not a cycle a reader follows.
            real = [m for m in component if MODULES[m].name != "__init__.py"]
            if len(real) > 1:
                cycles.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_long_without_saying_why(module):
    path = MODULES[module]
    source = path.read_text()
    lines = source.count("\n")
    if lines <= MAX_LINES:
        return
    docstring = ast.get_docstring(ast.parse(source)) or ""
    assert REASON_MARK in docstring, f"{path.name}: {lines} lines and no reason in its docstring"


def test_the_walk_sees_real_imports():
    """Guard the guard: the walk finds imports we know are there."""
    assert "twistchat.wire.packets" in GRAPH["twistchat.reliable.session"]
    assert "twistchat.reliable.session" in GRAPH["twistchat.endpoint.server"]
