"""The treasury desk as the console shows it (pages/treasury/), without any UI: the words for
the desk's states and outcomes, a quote's countdown, the forms' checks and the bodies they
send, and the stress test's chart.

Everything comes from the desk's routes (server/v1/treasury.py) as JSON documents whose
amounts are exact decimal text. Nothing here does arithmetic on money: an amount is shown as
the API wrote it, compared as an exact `Decimal`, and summed (for the stress chart's balance
of an asset over its channels) as an exact `Decimal` whose text is what the chart is given.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from fundpool.console.format import Locale, duration_text
from fundpool.console.i18n import t
from fundpool.console.recon import is_zero, words
from fundpool.console.texts import actor_text

# The API's amount text (server/v1/treasury.py AMOUNT_PATTERN): what a form may send.
AMOUNT_TEXT = re.compile(r"[0-9]{1,40}(\.[0-9]{1,18})?")
SECOND_MS = 1_000
SECONDS_SLOT = "{s}"  # where the browser's countdown puts the seconds left
NAME_CHARS_MAX = 64

QUOTE_STATE_KEYS = {  # desk/fx.py: a quote's life
    "open": "treasury.quote_open", "accepted": "treasury.quote_accepted",
    "executed": "treasury.quote_executed", "expired": "treasury.quote_expired",
    "refused": "treasury.quote_refused",
}
QUOTE_STATE_COLOURS = {"open": "primary", "accepted": "primary", "executed": "positive",
                       "expired": "grey", "refused": "negative"}
PLAN_STATE_KEYS = {  # desk/liquidity.py: a rebalancing plan's life
    "proposed": "treasury.plan_proposed", "executing": "treasury.plan_executing",
    "executed": "treasury.plan_executed", "rejected": "treasury.plan_rejected",
    "outdated": "treasury.plan_outdated", "nothing_to_move": "treasury.plan_nothing_to_move",
}
PLAN_STATE_COLOURS = {"proposed": "warning", "executing": "primary", "executed": "positive",
                      "rejected": "grey", "outdated": "negative", "nothing_to_move": "grey"}
BAND_STATUS_KEYS = {  # treasury/bands.py BandStatus; a position without a band: None
    "below_min": "treasury.band_below_min", "within": "treasury.band_within",
    "above_max": "treasury.band_above_max",
}
BAND_STATUS_COLOURS = {"below_min": "negative", "within": "positive", "above_max": "warning"}
SWEEP_OUTCOME_KEYS = {  # desk/liquidity.py run_sweeps: each rule's outcome
    "swept": "treasury.sweep_swept", "nothing_to_move": "treasury.sweep_nothing",
    "sweep_pending": "treasury.sweep_pending", "stale_balances": "treasury.sweep_stale",
}
SWEEP_RUN_KEYS = {"running": "treasury.run_running", "done": "treasury.run_done"}
OBLIGATION_STATE_KEYS = {"queued": "treasury.obligation_queued",
                         "settled": "treasury.obligation_settled"}
PARTICIPANT_KINDS = {"merchant": "treasury.kind_merchant", "partner": "treasury.kind_partner"}
SPLIT_ROLE_KEYS = {"platform": "treasury.role_platform", "partner": "treasury.role_partner",
                   "agent": "treasury.role_agent", "merchant": "treasury.role_merchant"}


def state_text(keys: Mapping[str, str], value: object, locale: Locale) -> str:
    """A state or outcome of the desk in words; one the console does not know as the API
    wrote it."""
    return words(keys, None if value is None else str(value), locale)


def band_status_text(status: str | None, locale: Locale) -> str:
    if status is None:
        return t("treasury.band_none", locale)
    return state_text(BAND_STATUS_KEYS, status, locale)


# --- a quote's countdown -------------------------------------------------------------------


def seconds_left(expires_in_ms: int, elapsed_ms: int = 0) -> int:
    """Whole seconds a quote is still open `elapsed_ms` after the API said `expires_in_ms`,
    rounded up (a quote with 200 ms left still has "1 s"), never below 0. The page's
    countdown (pages/treasury/exchange.py, in the browser) counts the same way."""
    return max(0, math.ceil((expires_in_ms - elapsed_ms) / SECOND_MS))


def expired(expires_in_ms: int, elapsed_ms: int = 0) -> bool:
    return seconds_left(expires_in_ms, elapsed_ms) == 0


def listed_state(quote: Mapping[str, Any]) -> str:
    """A quote's state as the list shows it: the desk marks a quote `expired` only when
    someone accepts it late, so an `open` one with no time left (`expires_in_ms` 0) is
    listed as expired."""
    state = str(quote.get("state"))
    if state == "open" and int(quote.get("expires_in_ms") or 0) <= 0:
        return "expired"
    return state


def countdown_templates(locale: Locale) -> tuple[str, str]:
    """(the text while a quote is open, with `{s}` where its seconds go; the text at 0), as
    the browser's countdown writes them."""
    return (t("treasury.seconds_left", locale, seconds=SECONDS_SLOT),
            t("treasury.quote_expired_now", locale))


def countdown_text(seconds: int, locale: Locale) -> str:
    """What the countdown says with `seconds` left (the browser's text, made here)."""
    running, over = countdown_templates(locale)
    return over if seconds <= 0 else running.replace(SECONDS_SLOT, str(seconds))


# --- amounts as the forms take them ---------------------------------------------------------


def amount_ok(text: str | None) -> bool:
    """Whether `text` is an amount the desk's routes take (`12.50`): digits, at most one
    point; its asset's scale is the API's to check (`too_many_decimals`)."""
    return text is not None and AMOUNT_TEXT.fullmatch(text.strip()) is not None


def same_amount(first: str | None, second: str | None) -> bool:
    """Whether two of the API's amount texts are the same amount (`1000.00` and `1000`)."""
    try:
        return first is not None and second is not None and \
            Decimal(first.strip()) == Decimal(second.strip())
    except InvalidOperation:
        return False


def share_text(percent: str) -> str | None:
    """A percent typed by a person as the share the scenario takes (`30` -> `0.3`,
    `-20` -> `-0.2`), exactly; None for text that is not a number."""
    try:
        value = Decimal(percent.strip())
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    shifted = value.scaleb(-2).normalize()
    return format(shifted, "f")


def latency_text(seconds: int | float, locale: Locale) -> str:
    return duration_text(float(seconds) * 1_000_000, locale)


# --- plans ----------------------------------------------------------------------------------


def move_text(move: Mapping[str, Any]) -> str:
    """A sweep's move: `bank-a → rtp 1200.00 USD`."""
    return f"{move.get('source')} → {move.get('destination')} {move.get('amount')} " \
        f"{move.get('asset')}"


def actor_name(actor: Mapping[str, Any] | None, locale: Locale) -> str:
    """Who did it, as the rest of the console says it (`texts.actor_text`: the desk's own
    runs are the engine's, in the user's language)."""
    return (actor_text(actor, locale, recorded=False) or "—") if actor else "—"


def is_proposer(plan: Mapping[str, Any], username: str) -> bool:
    """Whether the signed-in user proposed `plan` (the API refuses them its approval:
    `plan_self_approval`)."""
    by = plan.get("proposed_by") or {}
    return by.get("kind") == "user" and by.get("name") == username


def plan_summary(plan: Mapping[str, Any]) -> list[str]:
    """The plan's explanation without the lines its transfers and unresolved positions say
    already (each one's `why`): what is left is the summary (`USD: 1 transfer moving …`)."""
    said = {str(item.get("why")) for key in ("transfers", "unresolved")
            for item in plan.get(key) or []}
    return [str(line) for line in plan.get("explanation") or [] if str(line) not in said]


def fees_text(total_fee: Mapping[str, str] | None) -> str:
    """A plan's fees per asset (`100.25 USD · 3.00 EUR`), as the API gave them."""
    return " · ".join(f"{amount} {code}" for code, amount in sorted((total_fee or {}).items())) \
        or "—"


# --- the waterfall's rows -------------------------------------------------------------------


@dataclass
class TierRow:
    name: str = ""
    after: str = ""  # the tier it comes after; empty for the most senior one


@dataclass
class ObligationRow:
    id: str = ""
    creditor: str = ""
    tier: str = ""
    amount: str = ""


def _clean(text: object) -> str:
    return str(text or "").strip()


def waterfall_rows(tiers: Sequence[TierRow], obligations: Sequence[ObligationRow]
                   ) -> tuple[list[dict[str, str]], list[dict[str, str]], list[str]]:
    """The preview's `tiers` and `obligations` from the form's rows (wholly empty rows
    left out), and the rows' faults: `tier:<n>` for a tier without a name, `obligation:<n>`
    for an obligation missing a field or with an amount that is not one. The API checks the
    rest (an unknown tier, a cycle, a tier without obligations) and says so."""
    out_tiers: list[dict[str, str]] = []
    out_obligations: list[dict[str, str]] = []
    faults: list[str] = []
    for index, tier in enumerate(tiers, start=1):
        name, after = _clean(tier.name), _clean(tier.after)
        if not name and not after:
            continue
        if not name:
            faults.append(f"tier:{index}")
        out_tiers.append({"name": name, **({"after": after} if after else {})})
    for index, row in enumerate(obligations, start=1):
        fields = {"id": _clean(row.id), "creditor": _clean(row.creditor),
                  "tier": _clean(row.tier), "amount": _clean(row.amount)}
        if not any(fields.values()):
            continue
        if not all(fields.values()) or not amount_ok(fields["amount"]):
            faults.append(f"obligation:{index}")
        out_obligations.append(fields)
    return out_tiers, out_obligations, faults


# --- the stress test ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScenarioForm:
    """The stress test's form as typed: numbers as text, the options empty when unused."""

    name: str
    hours: str
    withdrawal_percent: str
    withdrawal_hours: str
    outage_channel: str = ""
    outage_from: str = ""
    outage_to: str = ""
    shock_asset: str = ""
    shock_percent: str = ""


def _whole(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() and len(text) <= 6 else None


def scenario_body(form: ScenarioForm) -> tuple[dict[str, Any] | None, str | None]:
    """(the body of `POST /v1/stress`, None) from the form, or (None, the `treasury.*` key
    saying what to correct). Shares and shocks are exact decimal text (`"0.3"`, `"-0.2"`);
    the API checks the ranges (a share above 1, an hour beyond the scenario) and names the
    field (`invalid_scenario`)."""
    hours, withdrawal_hours = _whole(form.hours), _whole(form.withdrawal_hours)
    share = share_text(form.withdrawal_percent)
    if hours is None or withdrawal_hours is None or share is None:
        return None, "treasury.stress_fill"
    body: dict[str, Any] = {"name": form.name.strip()[:NAME_CHARS_MAX] or "console",
                            "hours": hours, "withdrawal_share": share,
                            "withdrawal_hours": withdrawal_hours, "outages": [],
                            "fx_shock": {}}
    if form.outage_channel:
        start, end = _whole(form.outage_from), _whole(form.outage_to)
        if start is None or end is None:
            return None, "treasury.stress_outage_hours"
        body["outages"].append({"channel": form.outage_channel, "from_hour": start,
                                "to_hour": end})
    if form.shock_asset:
        shock = share_text(form.shock_percent)
        if shock is None:
            return None, "treasury.stress_shock_percent"
        body["fx_shock"][form.shock_asset] = shock
    return body, None


def _asset_of(position: str) -> str:
    """`bank-a/USD` -> `USD` (the report's balances are by `channel/asset`)."""
    return position.rpartition("/")[2]


def stress_assets(report: Mapping[str, Any]) -> list[str]:
    """The assets of a stress report's hours, in the order of their first position."""
    seen: dict[str, None] = {}
    for hour in report.get("hours") or []:
        for position in hour.get("balances") or {}:
            seen.setdefault(_asset_of(str(position)))
    return list(seen)


def chart_asset(report: Mapping[str, Any], reporting: str) -> str | None:
    """The asset the chart shows first: the first position to run dry's, else the value at
    risk's, else the reporting currency, else the first there is."""
    assets = stress_assets(report)
    for candidate in ((report.get("first_dry") or {}).get("asset"),
                      (report.get("value_at_risk") or {}).get("asset"), reporting):
        if candidate in assets:
            return str(candidate)
    return assets[0] if assets else None


@dataclass(frozen=True, slots=True)
class StressSeries:
    """One asset of a stress report, hour by hour, as exact decimal text: its balance over
    every channel, what could not be paid, and the credit drawn."""

    asset: str
    hours: list[int]
    balance: list[str]
    shortfall: list[str]
    credit: list[str]


def _sum(amounts: Iterable[object]) -> str:
    total = sum((Decimal(str(a)) for a in amounts), Decimal(0))
    return format(total, "f")


def stress_series(report: Mapping[str, Any], asset: str) -> StressSeries:
    hours: list[int] = []
    balance: list[str] = []
    shortfall: list[str] = []
    credit: list[str] = []
    for hour in report.get("hours") or []:
        hours.append(int(hour.get("hour") or 0))
        balance.append(_sum(v for k, v in (hour.get("balances") or {}).items()
                            if _asset_of(str(k)) == asset))
        shortfall.append(_sum([(hour.get("shortfall") or {}).get(asset, "0")]))
        credit.append(_sum([(hour.get("credit_drawn") or {}).get(asset, "0")]))
    return StressSeries(asset, hours, balance, shortfall, credit)


def chart_value(text: str) -> float:
    """An amount for the chart's axis only: a chart draws floats; what is shown as a figure
    anywhere else is the exact text."""
    return float(Decimal(text))


def stress_chart(series: StressSeries, locale: Locale) -> dict[str, Any]:
    """ECharts options: the asset's balance as a line and its shortfall as bars, hour by
    hour; the credit drawn as a dashed line."""
    labels = [t("treasury.hour_label", locale, hour=h) for h in series.hours]
    names = (t("treasury.chart_balance", locale, asset=series.asset),
             t("treasury.chart_shortfall", locale, asset=series.asset),
             t("treasury.chart_credit", locale, asset=series.asset))
    return {"tooltip": {"trigger": "axis"}, "legend": {"bottom": 0},
            "grid": {"left": 100, "right": 20, "top": 20, "bottom": 50},
            "xAxis": {"type": "category", "data": labels},
            "yAxis": {"type": "value"},
            "series": [
                {"type": "line", "name": names[0], "data": [chart_value(v)
                                                             for v in series.balance],
                 "showSymbol": len(series.hours) < 3},
                {"type": "bar", "name": names[1], "itemStyle": {"color": "#dc2626"},
                 "data": [chart_value(v) for v in series.shortfall]},
                {"type": "line", "name": names[2], "lineStyle": {"type": "dashed"},
                 "data": [chart_value(v) for v in series.credit], "showSymbol": False}]}


def nonzero(amounts: Mapping[str, str] | None) -> dict[str, str]:
    """The entries of a per-asset table whose amount is not zero (`"0.00"` is nothing)."""
    return {code: text for code, text in (amounts or {}).items()
            if not is_zero(text)}
