"""`monitoring` declares the ports its adapters implement (monitoring/ports.py) and imports no
store (tests/test_layers.py holds it to that); whoever builds a `Monitor` (`fundpool.compose`)
hands it its stores."""

from __future__ import annotations

from pathlib import Path

from fundpool import compose
from fundpool.monitoring import ports
from fundpool.pool.config import load_config
from fundpool.stores.sqlite import SqliteStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"


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
