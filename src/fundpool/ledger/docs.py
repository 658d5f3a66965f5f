"""Ledger values as JSON documents: the one shape the CLI's `--json` and the API both print.

Amounts are exact decimal text at the asset's scale, with the minor units beside them as
strings (`"posted": "12.34", "posted_minor": "1234"`): exact in any JSON reader, JavaScript's
included. Times are ISO-8601 UTC with microseconds, with the integer beside them where a caller
computes with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from fundpool.core.ledger.model import Balance
from fundpool.core.money import Asset
from fundpool.ledger.adjustments import adjustment_of
from fundpool.ledger.service import Recorded

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso(at_us: int) -> str:
    """Microseconds since the epoch as ISO-8601 UTC: 2026-11-24T10:00:00.000000Z."""
    return (EPOCH + timedelta(microseconds=at_us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def amount_fields(name: str, minor: int, asset: Asset | None) -> dict[str, str]:
    """`{name: "12.34", name_minor: "1234"}`: exact text both ways, safe in any JSON reader."""
    return {name: format_minor(minor, asset), f"{name}_minor": str(minor)}


def format_minor(minor: int, asset: Asset | None) -> str:
    return str(minor) if asset is None else asset.format(minor)


def balance_fields(balance: Balance, asset: Asset | None) -> dict[str, str]:
    return {
        **amount_fields("posted", balance.posted, asset),
        **amount_fields("pending_out", balance.pending_out, asset),
        **amount_fields("pending_in", balance.pending_in, asset),
        **amount_fields("available", balance.available, asset),
    }


def posting_doc(posting: Mapping[str, Any], assets: Mapping[str, Asset]) -> dict[str, object]:
    asset_code = str(posting["asset"])
    return {
        "source": posting["source"],
        "destination": posting["destination"],
        "asset": asset_code,
        **amount_fields("amount", int(posting["amount_minor"]), assets.get(asset_code)),
    }


def entry_doc(recorded: Recorded, assets: Mapping[str, Asset]) -> dict[str, object]:
    """A recorded entry for output: what it did, amounts at their asset's scale."""
    body: Mapping[str, Any] = recorded.body
    doc: dict[str, object] = {
        "status": "replayed" if recorded.replayed else "applied",
        "seq": recorded.seq,
        "id": recorded.id,
        "kind": recorded.kind,
        "at": iso(recorded.at_us),
        "at_us": recorded.at_us,
        "hash": recorded.hash.hex(),
    }
    # `postings` are what moved (posted balances); a pending transfer's `reservation` is what
    # it holds, moves only when posted, and then perhaps only in part.
    if isinstance(body.get("postings"), list):
        doc["postings"] = [posting_doc(p, assets) for p in body["postings"]]
    if "reverses" in body:
        doc["reverses"] = body["reverses"]
    if isinstance(body.get("posting"), Mapping):
        reservation = posting_doc(body["posting"], assets)
        doc["reservation"] = reservation
        doc["postings"] = []
        if recorded.kind == "pending_created":
            doc["pending_id"] = recorded.id
            doc["timeout_s"] = body.get("timeout_s")
            doc["expires_at"] = iso(int(body["expires_at_us"]))
        else:
            doc["pending_id"] = body["pending_id"]
            asset = assets.get(str(body["posting"]["asset"]))
            posted_minor = int(body["posted_minor"])
            doc.update(amount_fields("posted", posted_minor, asset))
            doc.update(amount_fields("released", int(body["released_minor"]), asset))
            if posted_minor:
                doc["postings"] = [{**reservation, **amount_fields("amount", posted_minor, asset)}]
    if "metadata" in body:
        doc["metadata"] = body["metadata"]
        adjustment = adjustment_of(body["metadata"])
        if adjustment is not None:  # a person's raw posting, with its reason and actor
            doc["adjustment"] = adjustment
    if "idempotency_key" in body:
        doc["idempotency_key"] = body["idempotency_key"]
    return doc
