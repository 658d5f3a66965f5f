"""Fraud rings: payees linked by what they share, found on a graph of the recent payouts.

A node per payee and per attribute a payout names: the account it is paid into (its
destination), the beneficiary name as screening normalises it (two payee ids that are the
same person), and the device and IP address when the caller put them in the payment's
metadata (`device`, `ip`). An edge joins a payee to each attribute of its payouts. A connected
component that holds at least `min_payees` payees is a suspected ring: money spread over
several payees that all end in the same places is what mule networks look like (networkx's
connected components; the engine's in-path `ring` condition keeps the same links in a
union-find, risk/features.py).

Each ring says why: its payees, the attributes they share (those linked to two payees or
more), how many payouts and how much per asset.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import networkx as nx

from fundpool.risk.screening import normalised

ATTRIBUTES = ("destination", "name", "device", "ip")
RING_PAYEES_MIN = 3
RINGS_SHOWN_MAX = 100


@dataclass(frozen=True, slots=True)
class Payout:
    """One payout as the ring search sees it."""

    payee: str
    asset: str
    amount: int
    destination: str | None = None
    device: str | None = None
    ip: str | None = None


@dataclass(frozen=True, slots=True)
class FraudRing:
    id: str  # stable for the same payees: the first 16 hex of their sorted names' sha256
    payees: tuple[str, ...]
    shared: tuple[tuple[str, str, int], ...]  # (attribute, value, payees linked to it)
    payouts: int
    amounts: tuple[tuple[str, int], ...]  # (asset, total minor units)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "payees": list(self.payees),
                "shared": [{"attribute": a, "value": v, "payees": n}
                           for a, v, n in self.shared],
                "payouts": self.payouts,
                "amounts": {asset: str(total) for asset, total in self.amounts}}


def find_rings(payouts: Iterable[Payout], min_payees: int = RING_PAYEES_MIN
               ) -> list[FraudRing]:
    """The suspected rings among `payouts`, largest first."""
    graph: Any = nx.Graph()
    counts: dict[str, int] = {}
    totals: dict[str, dict[str, int]] = {}
    for payout in payouts:
        payee = "payee:" + payout.payee
        graph.add_node(payee)
        counts[payee] = counts.get(payee, 0) + 1
        sums = totals.setdefault(payee, {})
        sums[payout.asset] = sums.get(payout.asset, 0) + payout.amount
        name = normalised(payout.payee)
        for attribute, value in (("destination", payout.destination), ("name", name),
                                 ("device", payout.device), ("ip", payout.ip)):
            if value:
                graph.add_edge(payee, f"{attribute}:{value}")
    rings: list[FraudRing] = []
    for component in nx.connected_components(graph):
        payees = sorted(n.removeprefix("payee:") for n in component if n.startswith("payee:"))
        if len(payees) < min_payees:
            continue
        shared = sorted(
            (node.split(":", 1)[0], node.split(":", 1)[1], graph.degree(node))
            for node in component if not node.startswith("payee:") and graph.degree(node) > 1)
        amounts: dict[str, int] = {}
        for payee in payees:
            for asset, total in totals["payee:" + payee].items():
                amounts[asset] = amounts.get(asset, 0) + total
        digest = hashlib.sha256("\n".join(payees).encode()).hexdigest()[:16]
        rings.append(FraudRing(digest, tuple(payees), tuple(shared),
                               sum(counts["payee:" + p] for p in payees),
                               tuple(sorted(amounts.items()))))
    rings.sort(key=lambda r: (-len(r.payees), r.id))
    return rings
