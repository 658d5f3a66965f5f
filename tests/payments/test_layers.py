"""`payments` sits above the stores and below the entry points (issue 13): it declares the
ports its stores implement (payments/ports.py) and imports no store, nor the simulator, the
CLI, the server or the console; whoever builds a service or a dispatcher hands it its store."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PAYMENTS = Path(__file__).resolve().parents[2] / "src" / "fundpool" / "payments"
ABOVE_OR_ADAPTER = ("fundpool.stores", "fundpool.sim", "fundpool.cli", "fundpool.server",
                    "fundpool.console", "fundpool.compose", "fundpool.bus", "fundpool.runtime")


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and not node.level:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(PAYMENTS.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(PAYMENTS)))
def test_payments_imports_no_store_and_nothing_above_it(path: Path) -> None:
    wrong = sorted(name for name in imported(path)
                   if name.startswith(ABOVE_OR_ADAPTER))
    assert wrong == []
