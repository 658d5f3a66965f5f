"""The entry points' arrows, read from the source (every import statement, at any depth, those
under TYPE_CHECKING too): no import circle inside the CLI, and the server and the simulator
import neither the CLI, the console nor the composition root that builds them."""

from __future__ import annotations

import ast
from pathlib import Path

import fundpool

SRC = Path(fundpool.__file__).resolve().parent.parent


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in (SRC / "fundpool").rglob("*.py")}


def imported(name: str) -> set[str]:
    """The fundpool modules `name` imports (a `from package import name` names both)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {target for target in found if target in MODULES and target != name}


def circles(prefix: str) -> list[list[str]]:
    """The strongly connected groups of more than one module under `prefix` (Tarjan)."""
    graph = {name: {t for t in imported(name) if t.startswith(prefix)}
             for name in MODULES if name.startswith(prefix)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return found


def test_the_cli_has_no_import_circle() -> None:
    assert circles("fundpool.cli") == []


def test_the_server_and_the_simulator_do_not_import_what_builds_them() -> None:
    above = ("fundpool.cli", "fundpool.console", "fundpool.compose")
    wrong = {
        name: sorted(t for t in imported(name) if t.startswith(above))
        for name in MODULES
        if name.startswith(("fundpool.server", "fundpool.sim"))
    }
    assert {name: targets for name, targets in wrong.items() if targets} == {}
