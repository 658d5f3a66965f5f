"""`monitoring` sits above the stores and below the entry points (issue 13): it declares the
ports its adapters implement (monitoring/ports.py) and imports no store, nor the bus, the
simulator, the CLI, the server or the console; whoever builds a `Monitor` or a `Projector`
(`fundpool.compose`) hands it its stores."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from fundpool import compose
from fundpool.monitoring import ports
from fundpool.pool.config import load_config
from fundpool.stores.sqlite import SqliteStore

MONITORING = Path(__file__).resolve().parents[2] / "src" / "fundpool" / "monitoring"
EXAMPLE = MONITORING.parents[2] / "examples" / "pool.toml"
ABOVE_OR_ADAPTER = ("fundpool.stores", "fundpool.sim", "fundpool.cli", "fundpool.server",
                    "fundpool.console", "fundpool.compose", "fundpool.bus")


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and not node.level:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(MONITORING.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(MONITORING)))
def test_monitoring_imports_no_store_and_nothing_above_it(path: Path) -> None:
    wrong = sorted(name for name in imported(path)
                   if name.startswith(ABOVE_OR_ADAPTER))
    assert wrong == []


def test_the_composition_root_hands_the_monitor_the_sql_stores(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "ledger.sqlite3")
    store.initialise()
    projections: ports.ProjectionStore = compose.projection_store(store)
    try:
        monitor = compose.monitor(store, load_config(EXAMPLE), projections=projections)
        assert monitor.projections is projections
        assert monitor.outbox.last_pos() == 0
        assert monitor.step().applied == 0
    finally:
        projections.close()
        store.close()
