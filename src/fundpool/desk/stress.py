"""Stress tests on the pool's live state (treasury/stress.py): the scenario engine run hour by
hour from what the pool holds now.

The live state a scenario starts from:

- **positions**: each channel's available balance per asset, in one consistent read;
- **user liabilities** per asset: the pool holds its customers' money, so what they could
  withdraw is the pool's total of the asset (available, locked, in transit, pending
  settlement) less the pool's own FX position in it (what it bought with conversions is its
  own; what it sold it still owes); its fee income is kept apart and is not theirs. An FX
  shock therefore falls on the pool's open FX positions;
- **normal flows** per position and hour: the deposits (in) and payouts and transfers out
  (out) created in the last `FLOW_WINDOW_S`, scaled to an hour;
- **credit lines** with what each has drawn, and the moves between a channel and another of
  the same asset (the liquidity desk's routes, with their latency).

The report says, hour by hour, every position's balance, what could not be paid, and the
credit drawn; the survival horizon (the first hour a withdrawal could not be met, or none),
the first position to run dry, and the credit needed beyond the facilities.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import Any

from fundpool.core.actor import Actor
from fundpool.core.clock import Clock, IdSource
from fundpool.core.errors import FundpoolError
from fundpool.core.money import format_amount
from fundpool.desk.liquidity import LiquidityDesk
from fundpool.desk.ports import DeskAction, DeskStore
from fundpool.ledger.service import Ledger
from fundpool.pool.config import FundpoolConfig, PoolConfig
from fundpool.pool.rates import RateSource
from fundpool.pool.view import pool_view
from fundpool.treasury import stress
from fundpool.treasury.config import TreasuryConfig
from fundpool.treasury.fx import fx_position

FLOW_WINDOW_S = 600  # the flows of the last ten minutes, scaled to an hour
FLOW_PAYMENTS_MAX = 100_000
SECOND_US = 1_000_000


def scenario_doc_from_options(withdraw: str, hours: int, withdrawal_hours: int | None,
                              outages: Sequence[str], shocks: Sequence[str]) -> dict[str, Any]:
    """A scenario document from the CLI's options (`rtp:2-10`, `EUR=-20`); what is wrong in
    them is refused by the scenario's own checks."""
    doc: dict[str, Any] = {"name": "cli", "hours": hours,
                           "withdrawal_share": share_text(withdraw),
                           "withdrawal_hours": withdrawal_hours or hours, "outages": [],
                           "fx_shock": {}}
    for text in outages:
        channel, _, span = text.partition(":")
        start, _, end = span.partition("-")
        doc["outages"].append({"channel": channel,
                               "from_hour": int(start) if start.isdigit() else start,
                               "to_hour": int(end) if end.isdigit() else end})
    for text in shocks:
        asset, _, percent = text.partition("=")
        doc["fx_shock"][asset] = share_text(percent)
    return doc


def share_text(percent: str) -> str:
    """A percent's text as a share's ("30" -> "0.3", "-20" -> "-0.2"); text that is not a
    number is left as it is, for the scenario's check to name."""
    try:
        value = decimal.Decimal(percent.strip())
    except decimal.InvalidOperation:
        return percent
    if not value.is_finite():
        return percent
    return format(value.scaleb(-2).normalize(), "f")


class StressDesk:
    def __init__(self, ledger: Ledger, store: DeskStore, config: FundpoolConfig,
                 pool: PoolConfig, treasury: TreasuryConfig, liquidity: LiquidityDesk,
                 rates: Callable[[], RateSource], *, clock: Clock, ids: IdSource) -> None:
        self.ledger = ledger
        self.store = store
        self.config = config
        self.pool = pool
        self.treasury = treasury
        self.liquidity = liquidity
        self._rates = rates
        self.clock = clock
        self.ids = ids

    def state(self) -> stress.StressState:
        view = pool_view(self.ledger.store, self.config, self.pool, self._rates())
        positions: dict[tuple[str, str], int] = {}
        liabilities: dict[str, int] = {}
        for asset_view in view.assets:
            code = asset_view.asset.code
            for cid, figures in asset_view.by_channel.items():
                positions[(cid, code)] = figures.available
            total = asset_view.total
            # The pool's own FX position is not its customers' money: what it bought
            # (a positive position) is the pool's, what it sold (negative) it still owes.
            liabilities[code] = max(0, total.available + total.locked + total.in_transit
                                    + total.pending_settlement - self._fx_position(code))
        inflow, outflow = self._flows()
        reporting = self.config.asset(self.pool.reporting_currency)
        rates: dict[str, Fraction] = {}
        source = self._rates()
        for code in liabilities:
            rate = source.rate(code, reporting.code)
            if rate is not None:
                rates[code] = rate
        drawn = {f.id: max(0, self.liquidity.owed(f)) for f in self.liquidity.facilities}
        scales = {code: self.config.asset(code).scale for code in liabilities}
        return stress.StressState(
            positions=positions, liabilities=liabilities, inflow_per_hour=inflow,
            outflow_per_hour=outflow, credit=tuple(self.liquidity.facilities),
            credit_drawn=drawn, routes=tuple(self.liquidity.routes()), rates=rates,
            scales=scales, reporting_asset=reporting.code)

    def _fx_position(self, code: str) -> int:
        try:
            return self.ledger.balance(fx_position(self.pool.id, code), code).available
        except FundpoolError:  # never converted: no position
            return 0

    def _flows(self) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
        now = self.clock.now_us()
        since = now - FLOW_WINDOW_S * SECOND_US
        made = self.liquidity.payments.created_between(since, now + 1,
                                                       limit=FLOW_PAYMENTS_MAX)
        scale = Fraction(3_600, FLOW_WINDOW_S)
        inflow: dict[tuple[str, str], Fraction] = {}
        outflow: dict[tuple[str, str], Fraction] = {}
        for p in made:
            if p.channel is None:
                continue
            key = (p.channel, p.asset)
            if p.kind.inbound:
                inflow[key] = inflow.get(key, Fraction(0)) + p.amount_minor * scale
            elif not p.kind.between_channels:
                outflow[key] = outflow.get(key, Fraction(0)) + p.amount_minor * scale
        return ({k: int(v) for k, v in inflow.items()}, {k: int(v) for k, v in outflow.items()})

    def run(self, doc: Mapping[str, Any], *, actor: Actor | None = None) -> dict[str, Any]:
        scenario = stress.scenario_from_mapping(
            doc, channels=self.pool.channels,
            assets=sorted({code for _, code in self.liquidity.positions_list}))
        state = self.state()
        report = stress.run(state, scenario)
        now = self.clock.now_us()
        out = report_doc(self, scenario, report)
        run_id = self.ids.new_id(now)
        self.store.add([], DeskAction(now, "stress.run", "stress", run_id, actor, {
            "pool": self.pool.id, "scenario": dict(doc),
            "survival_horizon_h": out["survival_horizon_h"],
            "first_dry": out["first_dry"]}))
        out["id"] = run_id
        return out


def report_doc(desk: StressDesk, scenario: stress.Scenario, report: stress.StressReport
               ) -> dict[str, Any]:
    def money(code: str, minor: int) -> str:
        return format_amount(minor, desk.config.asset(code).scale)

    first = report.first_dry
    var = report.value_at_risk
    summary = [
        f"scenario {scenario.name}: {scenario.hours} h",
        ("survived every hour" if report.survival_horizon_h is None
         else f"survival horizon: {report.survival_horizon_h} h"),
        ("no position ran dry" if first is None
         else f"first dry: {first[0]} {first[1]} at hour {first[2]}"),
        *(f"credit needed beyond the facilities: {money(code, n)} {code}"
          for code, n in sorted(report.credit_needed.items()) if n > 0)]
    return {
        "scenario": scenario.name, "hours_simulated": scenario.hours,
        "survival_horizon_h": report.survival_horizon_h,
        "first_dry": None if first is None else {"channel": first[0], "asset": first[1],
                                                 "hour": first[2]},
        "credit_needed": {code: money(code, n) for code, n in sorted(
            report.credit_needed.items())},
        "fees": {code: money(code, n) for code, n in sorted(report.fees_minor.items())},
        "interest": {code: money(code, n) for code, n in sorted(
            report.interest_minor.items())},
        "value_at_risk": None if var is None else {
            "asset": var.asset, "fx_loss": money(var.asset, var.fx_loss_minor),
            "shortfall": money(var.asset, var.shortfall_minor),
            "costs": money(var.asset, var.costs_minor),
            "total": money(var.asset, var.total_minor)},
        "missing_rates": list(report.missing_rates),
        "hours": [{"hour": h.hour,
                   "balances": {f"{cid}/{code}": money(code, n)
                                for (cid, code), n in sorted(h.balances.items())},
                   "shortfall": {code: money(code, n) for code, n in sorted(
                       h.shortfall.items())},
                   "credit_drawn": {code: money(code, n) for code, n in sorted(
                       h.credit_drawn.items())},
                   "waiting": {code: money(code, n) for code, n in sorted(
                       h.waiting.items())}} for h in report.hours],
        "summary": summary}
