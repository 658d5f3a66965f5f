"""Which ledger accounts belong to a service rather than to the ledger's callers.

The pool's state accounts (`pool:…`), merchants' claims on it (`merchant:…`), the memo
accounts that count merchant advances against their caps (`exposure:…`) and the treasury
desk's accounts (`fx:…`, `credit:…`, `partner:…`, `netting:…`, `commission:…`) are moved by the
services that own them (payments, routing, the dispatcher, instant settlement: pool/accounts.py
names them), through their approval and risk checks. A raw ledger posting that touches one is
an adjustment (ledger/adjustments.py): it needs `ledger:adjust` and a written reason.

Everything else (`world:<channel>`, customers', test and treasury accounts) is the callers' own,
moved with `ledger:write` alone.
"""

from __future__ import annotations

from collections.abc import Iterable

# The first segment of an address a service owns: pool/accounts.py builds every one of them.
SERVICE_NAMESPACES = frozenset({"pool", "merchant", "exposure",
                                # the treasury desk's (fundpool.desk, docs/treasury.md): FX
                                # positions, credit lines, netting participants and clearing,
                                # split commissions
                                "fx", "credit", "partner", "netting", "commission"})


def owned_by_service(address: str) -> bool:
    return address.partition(":")[0] in SERVICE_NAMESPACES


def service_owned(addresses: Iterable[str]) -> list[str]:
    """The addresses among `addresses` that a service owns, sorted, each once."""
    return sorted({a for a in addresses if owned_by_service(a)})
