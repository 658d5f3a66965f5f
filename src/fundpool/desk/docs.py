"""The desk's objects as documents: the API's answers and the CLI's `--json` are these."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from fundpool.core.actor import Actor
from fundpool.core.money import Asset, format_amount
from fundpool.desk.fx import quote_of
from fundpool.desk.netting import efficiency_text
from fundpool.desk.ports import DeskObject
from fundpool.desk.service import Desk
from fundpool.ledger.docs import iso
from fundpool.treasury.split import Share
from fundpool.treasury.waterfall import WaterfallReport


def actor_doc(actor: Actor | None) -> dict[str, Any] | None:
    return None if actor is None else actor.shown()


def money(asset: Asset, minor: int) -> str:
    return format_amount(minor, asset.scale)


def quote_doc(desk: Desk, obj: DeskObject, now_us: int) -> dict[str, Any]:
    q = quote_of(obj)
    sell, buy = desk.config.asset(q.sell_asset), desk.config.asset(q.buy_asset)
    # An open quote past its time is expired, whether or not anyone has tried it since.
    state = "expired" if obj.state == "open" and now_us >= q.expires_at_us else obj.state
    return {"id": obj.id, "state": state, "sell": q.sell_asset, "buy": q.buy_asset,
            "sell_amount": money(sell, q.sell_minor), "buy_amount": money(buy, q.buy_minor),
            "rate": rate_text(q.rate), "mid_rate": rate_text(q.mid_rate),
            "spread_percent": rate_text(q.spread * 100),
            "sell_channel": obj.body["sell_channel"], "buy_channel": obj.body["buy_channel"],
            "created_at": iso(obj.created_at_us), "expires_at": iso(q.expires_at_us),
            "expires_in_ms": max(0, (q.expires_at_us - now_us) // 1_000)
            if obj.state == "open" else 0,
            "entry_id": obj.body.get("entry_id"), "error": obj.body.get("error"),
            "created_by": actor_doc(obj.actor)}


def rate_text(rate: Any) -> str:
    """A rate (an exact fraction) as decimal text with 10 places, for people to read; the
    quote's amounts are what is exact."""
    value = Fraction(rate)
    whole, rest = divmod(value.numerator * 10**10, value.denominator)
    if 2 * rest >= value.denominator:
        whole += 1
    text = f"{whole // 10**10}.{whole % 10**10:010d}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def share_doc(asset: Asset | None, share: Share) -> dict[str, Any]:
    return {"party": share.party, "role": share.role,
            "amount": money(asset, share.amount_minor) if asset else str(share.amount_minor),
            "amount_minor": str(share.amount_minor)}


def waterfall_doc(asset: Asset, report: WaterfallReport) -> dict[str, Any]:
    return {"asset": asset.code, "left": money(asset, report.left_minor),
            "tiers": [{"name": t.name, "due": money(asset, t.due_minor),
                       "paid": money(asset, t.paid_minor), "owed": money(asset, t.owed_minor),
                       "fully_paid": t.fully_paid} for t in report.tiers],
            "obligations": [{"id": o.obligation_id, "creditor": o.creditor, "tier": o.tier,
                             "amount": money(asset, o.amount_minor),
                             "paid": money(asset, o.paid_minor),
                             "owed": money(asset, o.owed_minor)} for o in report.payments]}

def obligation_doc(desk: Desk, o: DeskObject) -> dict[str, Any]:
    asset = desk.config.asset(o.body["asset"])
    return {"id": o.id, "state": o.state, "payer": o.body["payer"], "payee": o.body["payee"],
            "asset": asset.code, "amount": money(asset, int(o.body["amount_minor"])),
            "reference": o.body.get("reference"), "cycle": o.body.get("cycle"),
            "created_at": iso(o.created_at_us), "created_by": actor_doc(o.actor)}

def cycle_doc(desk: Desk, c: DeskObject) -> dict[str, Any]:
    asset = desk.config.asset(c.body["asset"])
    b = c.body
    return {"id": c.id, "state": c.state, "asset": asset.code,
            "obligations": b["obligations"], "settled": b["settled"], "queued": b["queued"],
            "gross": money(asset, int(b["gross_minor"])),
            "net": money(asset, int(b["net_minor"])),
            "efficiency": efficiency_text(b["efficiency"]),
            "settled_gross": money(asset, int(b["settled_gross_minor"])),
            "settled_efficiency": efficiency_text(b["settled_efficiency"]),
            "positions": {p: money(asset, int(n)) for p, n in b["positions"].items()},
            "short": b.get("short", []), "entry_id": b.get("entry_id"),
            "at": iso(c.created_at_us), "by": actor_doc(c.actor)}


# --- liquidity -------------------------------------------------------------------------------


def _amount_or_none(asset: Asset, minor: int | None) -> str | None:
    return None if minor is None else money(asset, minor)


def position_doc(desk: Desk, p: dict[str, Any]) -> dict[str, Any]:
    asset = desk.config.asset(p["asset"])
    band = p["band"]
    return {"channel": p["channel"], "asset": asset.code, "kind": p["kind"],
            "available": money(asset, p["available_minor"]),
            "available_minor": str(p["available_minor"]),
            "band": None if band is None else {
                "min": money(asset, band.min_minor), "target": money(asset, band.target_minor),
                "max": money(asset, band.max_minor)},
            "status": p["status"], "managed": p["managed"]}


def plan_doc(desk: Desk, plan: DeskObject) -> dict[str, Any]:
    b = plan.body

    def amount(code: str, text: str) -> str:
        return money(desk.config.asset(code), int(text))

    return {"id": plan.id, "state": plan.state, "auto": b.get("auto", False),
            "created_at": iso(plan.created_at_us), "proposed_by": actor_doc(plan.actor),
            "balances_at": iso(int(b["balances_at_us"])),
            "transfers": [{"source": t["source"], "destination": t["destination"],
                           "asset": t["asset"], "amount": amount(t["asset"], t["amount_minor"]),
                           "fee": amount(t["asset"], t["fee_minor"]),
                           "latency_s": t["latency_s"], "why": t["why"]}
                          for t in b["transfers"]],
            "unresolved": [{"channel": u["channel"], "asset": u["asset"],
                            "shortfall": amount(u["asset"], u["shortfall_minor"]),
                            "excess": amount(u["asset"], u["excess_minor"]), "why": u["why"]}
                           for u in b["unresolved"]],
            "total_fee": {code: amount(code, n) for code, n in b["total_fee_minor"].items()},
            "explanation": b["explanation"], "payments": b.get("payments", []),
            "payment_states": b.get("payment_states", {}),
            "approved_by": b.get("approved_by"), "rejected_by": b.get("rejected_by"),
            "note": b.get("note"), "short": b.get("short"), "error": b.get("error")}


def sweep_run_doc(desk: Desk, run: dict[str, Any]) -> dict[str, Any]:
    return {**{k: v for k, v in run.items() if k != "moves"},
            "moves": [{"source": m["source"], "destination": m["destination"],
                       "asset": m["asset"],
                       "amount": money(desk.config.asset(m["asset"]), int(m["amount_minor"])),
                       "reason": m["reason"]} for m in run.get("moves", [])]}


def credit_doc(desk: Desk, line: dict[str, Any]) -> dict[str, Any]:
    facility = line["facility"]
    asset = desk.config.asset(facility.asset)
    return {"id": facility.id, "channel": facility.channel, "asset": asset.code,
            "limit": money(asset, facility.limit_minor),
            "annual_rate_percent": rate_text(facility.annual_rate * 100),
            "owed": money(asset, line["owed_minor"]),
            "drawn": money(asset, line["drawn_minor"]),
            "interest_due": money(asset, line["interest_due_minor"]),
            "headroom": money(asset, max(0, facility.limit_minor - line["owed_minor"])),
            "interest": money(asset, line["interest_minor"]),
            "accrued_day": line["accrued_day"]}


def credit_run_doc(desk: Desk, run: dict[str, Any]) -> dict[str, Any]:
    """A credit line's run (`run_credit`'s record) with its asset and its amounts as decimal
    text (`drawn`, `repaid`, `interest`, `owed`) beside the minor units."""
    facility = next(f for f in desk.liquidity.facilities if f.id == run["facility"])
    asset = desk.config.asset(facility.asset)
    return {**run, "asset": asset.code,
            **{name.removesuffix("_minor"): money(asset, int(value))
               for name, value in run.items() if name.endswith("_minor")}}
