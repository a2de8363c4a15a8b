"""The house rules of src/, checked: layers import only downwards, core/ is pure, no import
circle (imports under TYPE_CHECKING count), no module a reader cannot hold, every action in
actions.yaml registered, and the reconcile order defined once (core/flow.py)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
import yaml

SRC = Path(__file__).resolve().parents[2] / "src"
LAYERS = {  # a package -> the packages it may import (besides itself, stdlib, third parties)
    "core": set(),
    "literals": {"core"},
    "state": {"core", "literals"},
    "workload": {"core", "literals", "state"},
    "relations": {"core", "literals", "state", "workload"},
    "engine": {"core", "literals", "state", "workload", "relations"},
    "actions": {"core", "literals", "state", "workload", "relations", "engine"},
    "charm": {"core", "literals", "state", "workload", "relations", "engine", "actions"},
}
MAX_LINES = 400


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path, known: set[str]) -> set[str]:
    """The src modules `path` imports, anywhere in it (deferred and TYPE_CHECKING ones too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found |= {n for n in names if n in known}
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(path, set(mods)) - {name} for name, path in mods.items()}


def layer(module: str) -> str:
    return module.split(".", 1)[0]


def test_every_import_goes_down_the_layers() -> None:
    wrong = [
        f"{m} imports {d}"
        for m, deps in graph().items()
        for d in deps
        if layer(d) != layer(m) and layer(d) not in LAYERS[layer(m)]
    ]
    assert not wrong, wrong


def test_core_is_pure() -> None:
    for name, path in modules().items():
        if layer(name) != "core":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                mods += [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
                assert not [m for m in mods if m == "ops" or m.startswith("ops.")], name


def test_no_import_circle() -> None:
    edges = graph()
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == 1:
                cycle = path[path.index(dep) :] + [dep]
                raise AssertionError(f"import circle: {' -> '.join(cycle)}")
            if dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_over_400_lines(name: str) -> None:
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines: split it by concern"


def test_every_action_is_registered_and_loads_its_own_family_only() -> None:
    from actions import registry

    declared = set(yaml.safe_load((SRC.parent / "actions.yaml").read_text()))
    assert declared == set(registry.MODULES), declared ^ set(registry.MODULES)
    for name in sorted(declared):
        action = registry.get(name)
        assert action.name == name
        assert importlib.import_module(registry.MODULES[name])


def test_the_reconcile_order_is_defined_once() -> None:
    """Only core/flow.py strings the passes together; the engine asks it for the next step."""
    from core import flow

    assert [p.name for p in flow.FLOW] == [
        "local",
        "restart",
        "cluster",
        "turn",
        "tls",
        "auth",
        "clients",
    ]
    engine = (SRC / "engine" / "reconciler.py").read_text()
    assert "flow.next_step(" in engine
    for decide in ("next_local_step(", "next_cluster_step(", "next_restart_step("):
        assert decide not in engine, f"the engine calls {decide} itself"
