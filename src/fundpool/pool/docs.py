"""The pool view as a JSON document: the one shape `fundpool pool view --json`, the monitor
and the API print. Amounts are exact decimal text at the asset's scale with their minor units
beside them (fundpool.ledger.docs)."""

from __future__ import annotations

from fundpool.core.money import Asset
from fundpool.ledger.docs import amount_fields
from fundpool.pool.view import FIGURES, Figures, PoolView


def _state_doc(figures: Figures, asset: Asset) -> dict[str, str]:
    doc: dict[str, str] = {}
    for name in (*FIGURES, "total"):
        doc.update(amount_fields(name, getattr(figures, name), asset))
    return doc


def view_doc(shown: PoolView) -> dict[str, object]:
    reporting = shown.reporting_currency
    return {
        "pool": shown.pool,
        "as_of_seq": shown.as_of_seq,
        "reporting_currency": reporting.code,
        "assets": [
            {
                "asset": view.asset.code,
                "scale": view.asset.scale,
                "channels": {
                    channel: _state_doc(figures, view.asset)
                    for channel, figures in view.by_channel.items()
                },
                "total": _state_doc(view.total, view.asset),
                "reporting": None
                if view.reporting is None
                else _state_doc(view.reporting, reporting),
            }
            for view in shown.assets
        ],
        "reporting_total": _state_doc(shown.reporting_total, reporting),
        "missing_rates": list(shown.missing_rates),
    }
