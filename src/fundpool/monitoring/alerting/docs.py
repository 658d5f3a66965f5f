"""The KPI library and the figures a rule may name, as JSON-ready documents (for
`fundpool alerts kpis --json`, the API and the console)."""

from __future__ import annotations

from fundpool.monitoring.alerting.figures import FIGURES
from fundpool.monitoring.kpis import KPIS


def templates_doc() -> list[dict[str, object]]:
    """The KPI library as JSON-ready documents (for `fundpool alerts kpis --json`, the API)."""
    return [t.to_dict() for t in KPIS.values()]


def figures_doc() -> list[dict[str, object]]:
    return [{"name": f.name, "kind": f.kind, "description": f.description,
             "params": ["stage"] if f.takes_stage else []} for f in FIGURES.values()]
