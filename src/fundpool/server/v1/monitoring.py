"""`/v1/monitoring`: the live figures, their time series and KPIs, alerts, SLOs, and the pool as
it stood at a past instant.

The figures, series and KPIs are read from the projections the server keeps current from the
outbox (monitoring/service.py), so they trail the ledger by the projection's lag, which every
figures answer states with its cursor. Each read takes one copy of the pool's projection and
computes everything from it, so the numbers of one answer agree with each other.

Amounts are exact decimal text at the asset's scale, with the minor units beside them; ratios
are decimal text too (monitoring/kpis.py `decimal_text`). Only latency percentiles in
milliseconds are JSON numbers: they are durations, never money.

Alerts live in the ledger's `alerts` table (stores/alerts_sql.py); acknowledging one writes the
row (with the caller as its actor: principal, roles, session or key, request id) and its
`alert.acknowledged` event in one ledger transaction, and goes through the API's idempotency
store (`Idempotency-Key`). SLOs are those of the last evaluation of the alert rules
(`Settings.alerts`), which the leading worker runs every `evaluate_every_s`.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any, Literal

import structlog
from fastapi import Header, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from fundpool.auth.roles import P
from fundpool.core.errors import FundpoolError
from fundpool.ledger.docs import iso
from fundpool.ledger.service import Ledger
from fundpool.monitoring.alerting.docs import templates_doc
from fundpool.monitoring.alerting.engine import AlertEngine, UnknownAlert, acknowledge
from fundpool.monitoring.alerting.ports import AlertRecord, AlertStore
from fundpool.monitoring.docs import figures_doc
from fundpool.monitoring.figures import (
    counter_series,
    gauge_series,
    heatmap,
    pool_figures,
    turnover,
)
from fundpool.monitoring.kpis import TEMPLATES, KpiContext, compute_kpis, decimal_text
from fundpool.monitoring.projection import (
    APPROVALS_WAITING,
    GAUGES,
    RESOLUTIONS,
    RETENTION_US,
    Projection,
)
from fundpool.monitoring.records import Cursor
from fundpool.monitoring.replay import replay_at
from fundpool.pool.config import PoolConfig
from fundpool.pool.docs import view_doc
from fundpool.server.v1.actors import ActorOut, actor_doc
from fundpool.server.v1.context import Api, api_of
from fundpool.server.v1.idempotency import HEADER, idempotent_post
from fundpool.server.v1.models import Strict
from fundpool.server.v1.pagination import (
    CursorQuery,
    InvalidCursor,
    LimitQuery,
    Page,
    make_cursor,
    read_cursor,
)
from fundpool.server.v1.problems import PROBLEMS, parse_instant
from fundpool.server.v1.security import SecuredRouter, actor_of, needs

log = structlog.get_logger(__name__)

router = SecuredRouter(prefix="/monitoring", tags=["monitoring"])

PoolPath = Annotated[str, Path(max_length=64, description="The pool's id.")]
AlertPath = Annotated[str, Path(max_length=64)]
IdempotencyHeader = Annotated[str | None, Header(
    alias=HEADER, max_length=255,
    description="Retry-safe: the same key with the same request returns the first answer.")]

HOUR_US = RESOLUTIONS["h"]
# The heatmap and turnover window: turnover averages the TOTAL over minute buckets, kept 3 days.
WINDOW_HOURS_MAX = RETENTION_US["m"] // HOUR_US
SERIES_POINTS_MAX = 3_600
RESOLUTION_CODES: dict[str, str] = {"second": "s", "minute": "m", "hour": "h"}
# A series without `from` covers this much before `to`: 600, 360 and 168 points.
SERIES_SPAN_DEFAULT_US: dict[str, int] = {"s": 600 * RESOLUTIONS["s"],
                                          "m": 6 * HOUR_US, "h": 7 * 24 * HOUR_US}
# A replay folds the pool's whole event log up to the instant in the request's worker thread:
# past this many events it is the CLI's job (`fundpool replay --at`), which has no time-out.
REPLAY_EVENTS_MAX = 500_000
REPLAY_CONCURRENT_MAX = 2
ALERT_STATES = ("firing", "acknowledged", "resolved", "active")
NOTE_CHARS_MAX = 500

_replays = threading.BoundedSemaphore(REPLAY_CONCURRENT_MAX)


class UnknownMetric(FundpoolError):
    code = "unknown_metric"
    title = "no such series metric"


class InvalidSeriesRange(FundpoolError):
    code = "invalid_series_range"
    title = "the series range is empty, reversed or holds too many points"


class ReplayTooLarge(FundpoolError):
    code = "replay_too_large"
    title = "the replay would fold more events than the API does in one request"


class ReplayBusy(FundpoolError):
    code = "replay_busy"
    title = "this worker is already running as many replays as it allows; retry shortly"


# --- wire models -----------------------------------------------------------------------------


class CursorOut(BaseModel):
    seq: int = Field(description="The pool's last event applied to the figures.")
    at: str | None = Field(description="When that event happened; null before any.")
    at_us: int
    pos: int = Field(description="The outbox position the in-process feed has reached (all "
                     "pools: read after the figures, it may be ahead of `seq`).")


class _FiguresDoc(BaseModel):
    """What `fundpool.monitoring.docs.figures_doc` holds: the live figures and a replay's."""

    pool: str
    at: str
    at_us: int
    view: dict[str, Any] = Field(description="The pool by state, as `GET /v1/pools/{pool}/view`"
                                 " (here from the projection or the event log).")
    available_ratio: dict[str, str | None] = Field(description="Per asset; `*`: the pool in "
                                                   "its reporting currency.")
    payments_by_state: dict[str, int]
    by_channel_state: list[dict[str, Any]] = Field(
        default_factory=list, description="Payments now in each state, per channel: "
        "`{channel, state, count}`.")
    pending: int
    failed: int
    returned: int
    in_flight: dict[str, Any]
    depth: list[dict[str, str]]
    latency: list[dict[str, Any]]
    fee_income_hourly: dict[str, list[dict[str, Any]]]
    events: dict[str, int]
    approvals: dict[str, Any] = Field(default_factory=dict, description=(
        "Payments waiting for an approver: `waiting`, `oldest_since_us`, `oldest_s` (seconds "
        "the longest has waited), `approved`, `p50_s` and `p95_s` (request-to-approval wait, "
        "seconds; null before any approval)."))


class FiguresOut(_FiguresDoc):
    heatmap: dict[str, Any]
    turnover: list[dict[str, Any]]
    lag: int = Field(description="The pool's events in the outbox not applied yet.")
    cursor: CursorOut


class SeriesPointOut(BaseModel):
    at: str
    at_us: int
    value: str = Field(description="Exact decimal text: whole units of the asset for an "
                       "amount, else a count.")
    value_minor: str | None = Field(None, description="The amount in minor units; null for "
                                    "a count.")


class SeriesOut(BaseModel):
    pool: str
    metric: str
    kind: Literal["gauge", "counter"]
    unit: str
    asset: str | None
    resolution: Literal["second", "minute", "hour"]
    from_: str = Field(alias="from")
    to: str
    retained_from: str = Field(description="Buckets older than this are no longer kept.")
    points: list[SeriesPointOut]


class MetricOut(BaseModel):
    metric: str
    kind: Literal["gauge", "counter"]
    unit: str


class KpiValueOut(BaseModel):
    kpi: str
    subject: str
    asset: str | None = None
    channel: str | None = None
    value: str | None = Field(description="Decimal text; null when there is nothing to "
                              "measure (`note` says why).")
    unit: str
    note: str | None


class KpisOut(BaseModel):
    pool: str
    at: str
    at_us: int
    enabled_by: Literal["rules", "defaults"] = Field(
        description="`rules`: the KPIs the alert rules switch on, with their parameters; "
        "`defaults`: every template with its defaults (no rules loaded).")
    kpis: list[KpiValueOut]


class KpiTemplateOut(BaseModel):
    id: str
    title: dict[str, str]
    description: str
    formula: str
    unit: str
    scope: str
    params: list[dict[str, Any]]
    alert: dict[str, Any]
    panel: dict[str, Any]


class AlertOut(BaseModel):
    id: str
    pool: str
    rule: str
    subject: str
    severity: str
    state: Literal["firing", "acknowledged", "resolved"]
    value: str | None
    summary: str
    fired_at: str
    fired_at_us: int
    acknowledged_at: str | None
    acknowledged_by: ActorOut | None = Field(description=(
        "Who acknowledged it: principal, roles, session or key, request id. An alert "
        "acknowledged before actors were kept: kind `unknown`, with the name it kept."))
    resolved_at: str | None


class AcknowledgeIn(Strict):
    note: str | None = Field(None, max_length=NOTE_CHARS_MAX, description=(
        "Why, or what is being done: written to the server's log with the acknowledgement "
        "(the alert's record keeps who and when)."))


class BurnRateOut(BaseModel):
    long: str
    short: str
    factor: str
    severity: str
    burn_long: str | None
    burn_short: str | None
    breached: bool


class SloOut(BaseModel):
    pool: str
    slo: str
    subject: str
    objective: str | None
    window: str
    good: int
    total: int
    sli: str | None
    error_budget: str | None
    budget_remaining: str | None = Field(description="Share of the error budget left; "
                                         "negative once overspent; null without events.")
    burn_rates: list[BurnRateOut]


class SlosOut(BaseModel):
    evaluated_at: str | None = Field(description="The evaluation these come from; null before "
                                     "the first one, or without rules.")
    rules_error: str | None = Field(description="Why the rules file did not load (the "
                                    "previous rules stay in force).")
    slos: list[SloOut]


class ReplayOut(_FiguresDoc):
    journal_seq: int = Field(description="The last journal entry at or before `at`.")
    events_applied: int
    agrees_with_journal: bool
    journal_view: dict[str, Any] = Field(description="The pool by state, from the journal.")


# --- helpers ---------------------------------------------------------------------------------


def _read(api: Api, pool: PoolConfig) -> tuple[Projection, Cursor]:
    with api.store_errors():
        return api.monitor.read(pool.id)


def _alerts(request: Request) -> tuple[Ledger, AlertStore]:
    """The ledger and alert table acknowledgements go through: the alert engine's when rules
    are configured, else one pair kept for the app."""
    engine: AlertEngine | None = getattr(request.app.state, "alerts", None)
    if engine is not None:
        return engine.ledger, engine.table
    kept: tuple[Ledger, AlertStore] | None = getattr(request.app.state, "alert_table", None)
    if kept is None:
        api = api_of(request)
        kept = (api.new_ledger(), api.alert_store)
        request.app.state.alert_table = kept
    return kept


def _alert_doc(record: AlertRecord) -> dict[str, object]:
    return {
        "id": record.id, "pool": record.pool, "rule": record.rule, "subject": record.subject,
        "severity": record.severity, "state": record.state, "value": record.value,
        "summary": record.summary, "fired_at": iso(record.fired_at_us),
        "fired_at_us": record.fired_at_us,
        "acknowledged_at": None if record.acknowledged_at_us is None
        else iso(record.acknowledged_at_us),
        "acknowledged_by": actor_doc(record.acknowledged_actor, record.acknowledged_by),
        "resolved_at": None if record.resolved_at_us is None else iso(record.resolved_at_us),
    }


def _metric(metric: str, assets: set[str]) -> tuple[Literal["gauge", "counter"], str | None]:
    """The kind of a series metric and the asset its values are amounts of (None: a count);
    `unknown_metric` when the name is not one the projection writes."""
    parts = metric.split("|")
    name = parts[0]
    if len(parts) == 2 and name in (*GAUGES, "fee", "inflow", "outflow"):
        return ("gauge" if name in GAUGES else "counter"), parts[1]
    if len(parts) == 3 and name == "flow":
        return "counter", parts[2]
    if len(parts) == 3 and name == "payments":
        return "counter", None
    if len(parts) == 1 and name == APPROVALS_WAITING:
        return "counter", None
    raise UnknownMetric(
        "series are total|ASSET, available|ASSET, fee|ASSET, inflow|ASSET, outflow|ASSET, "
        f"flow|CHANNEL|ASSET, payments|KIND|STATE or {APPROVALS_WAITING}", metric=metric,
        assets=sorted(assets))


def _unit(asset: str | None, known: set[str]) -> str:
    """`count`; an asset's code (values in its whole units); `CODE minor` for an asset the
    configuration does not declare (its scale unknown, values stay in minor units)."""
    if asset is None:
        return "count"
    return asset if asset in known else f"{asset} minor"


# --- figures, series, KPIs -------------------------------------------------------------------


@router.get("/pools/{pool}/figures", response_model=FiguresOut,
            openapi_extra=needs(P.MONITORING_READ), responses=PROBLEMS)
def get_figures(
    pool: PoolPath, request: Request,
    hours: Annotated[int, Query(ge=1, le=WINDOW_HOURS_MAX, description="Hours of the heatmap "
                                "and the turnover window.")] = 24,
) -> dict[str, object]:
    """The pool's live figures (what `fundpool monitor show --json` prints): the view by
    state, ratios, payments by state, in flight, depth, latency, fee income, the balance-change
    heatmap and turnover, with the projection's cursor and lag."""
    api = api_of(request)
    chosen = api.pool(pool)
    projection, cursor = _read(api, chosen)
    config = api.config
    rates = config.rates_for(chosen)
    at_us = api.clock.now_us()
    figures = pool_figures(config, chosen, rates, projection.cells, projection.series,
                           at_us=at_us)
    starts, channels, rows = heatmap(projection.series, config, chosen, rates, at_us=at_us,
                                     hours=hours)
    window_us = hours * HOUR_US
    doc = figures_doc(figures, config)
    doc["at"] = iso(at_us)
    doc["heatmap"] = {"hours_us": starts, "channels": channels,
                      "rows": [[str(v) for v in row] for row in rows],
                      "unit": f"{config.asset(chosen.reporting_currency).code} minor"}
    doc["turnover"] = [
        {"asset": t.asset, "window_hours": hours, "outflow": str(t.outflow),
         "inflow": str(t.inflow), "average_total": str(t.average_total),
         "rate": decimal_text(t.rate), "days": decimal_text(t.days),
         "inflow_days": decimal_text(t.inflow_days)}
        for t in (turnover(projection.series, a.asset.code, at_us=at_us, window_us=window_us)
                  for a in figures.view.assets)
    ]
    with api.store_errors():
        doc["lag"] = api.monitor.lag(chosen.id)
        position = api.monitor.feed.position()
    doc["cursor"] = {"seq": cursor.seq, "at": iso(cursor.at_us) if cursor.at_us else None,
                     "at_us": cursor.at_us, "pos": position}
    return doc


@router.get("/pools/{pool}/series", response_model=list[MetricOut],
            openapi_extra=needs(P.MONITORING_READ), responses=PROBLEMS)
def list_series(pool: PoolPath, request: Request) -> list[dict[str, object]]:
    """The series metrics the pool's projection holds, by name."""
    api = api_of(request)
    chosen = api.pool(pool)
    projection, _ = _read(api, chosen)
    assets = {a.code for a in api.config.assets}
    out: list[dict[str, object]] = []
    for metric in sorted({m for m, _, _ in projection.series}):
        kind, asset = _metric(metric, assets)
        out.append({"metric": metric, "kind": kind, "unit": _unit(asset, assets)})
    return out


@router.get("/pools/{pool}/series/{metric}", response_model=SeriesOut,
            openapi_extra=needs(P.MONITORING_READ), responses=PROBLEMS)
def get_series(
    pool: PoolPath, request: Request,
    metric: Annotated[str, Path(max_length=160, description=(
        "`total|ASSET` and `available|ASSET` (gauges: an empty bucket carries the value before "
        "it), `fee|ASSET`, `inflow|ASSET`, `outflow|ASSET`, `flow|CHANNEL|ASSET` (amounts per "
        "bucket), `payments|KIND|STATE` (transitions per bucket). `|` is `%7C` in a URL."))],
    resolution: Annotated[Literal["second", "minute", "hour"], Query(description=(
        "Bucket width; seconds are kept 2 hours, minutes 3 days, hours 90 days."))] = "minute",
    since: Annotated[str | None, Query(alias="from", max_length=64, description=(
        "ISO-8601 with a zone; default: 600 seconds, 6 hours or 7 days before `to`."))] = None,
    until: Annotated[str | None, Query(alias="to", max_length=64,
                                       description="ISO-8601 with a zone (exclusive); "
                                       "default: now.")] = None,
) -> dict[str, object]:
    """One metric of the pool's projection as a time series, oldest bucket first, at most
    3,600 points; values exact (decimal text)."""
    api = api_of(request)
    chosen = api.pool(pool)
    assets = {a.code: a for a in api.config.assets}
    kind, asset_code = _metric(metric, set(assets))
    res = RESOLUTION_CODES[resolution]
    width = RESOLUTIONS[res]
    until_us = api.clock.now_us() if until is None else parse_instant(until)
    since_us = until_us - SERIES_SPAN_DEFAULT_US[res] if since is None else parse_instant(since)
    start_us = since_us - since_us % width
    points_count = -(-(until_us - start_us) // width)
    if since_us >= until_us or points_count > SERIES_POINTS_MAX:
        raise InvalidSeriesRange(
            f"give `from` before `to`, at most {SERIES_POINTS_MAX} {resolution}s apart",
            points=max(points_count, 0), points_max=SERIES_POINTS_MAX)
    projection, _ = _read(api, chosen)
    read = gauge_series if kind == "gauge" else counter_series
    raw = read(projection.series, metric, res=res, since_us=since_us, until_us=until_us)
    asset = None if asset_code is None else assets.get(asset_code)
    points = [{"at": iso(bucket), "at_us": bucket,
               "value": str(value) if asset is None else asset.format(value),
               "value_minor": None if asset is None else str(value)} for bucket, value in raw]
    return {"pool": chosen.id, "metric": metric, "kind": kind,
            "unit": _unit(asset_code, set(assets)), "asset": asset_code,
            "resolution": resolution, "from": iso(since_us),
            "to": iso(until_us), "retained_from": iso(max(0, projection.prune_bounds()[res])),
            "points": points}


@router.get("/pools/{pool}/kpis", response_model=KpisOut,
            openapi_extra=needs(P.MONITORING_READ), responses=PROBLEMS)
def get_kpis(pool: PoolPath, request: Request) -> dict[str, object]:
    """The pool's KPI values now: those the alert rules switch on, or every template with its
    defaults when no rules are loaded."""
    api = api_of(request)
    chosen = api.pool(pool)
    projection, _ = _read(api, chosen)
    engine: AlertEngine | None = getattr(request.app.state, "alerts", None)
    rules = None if engine is None else engine.rules.current
    at_us = api.clock.now_us()
    context = KpiContext.of(api.config, chosen, projection.cells, projection.series,
                            at_us=at_us)
    values = compute_kpis(context, None if rules is None else rules.kpis)
    units = {t.id: t.unit for t in TEMPLATES}
    return {"pool": chosen.id, "at": iso(at_us), "at_us": at_us,
            "enabled_by": "defaults" if rules is None else "rules",
            "kpis": [{**v.to_dict(), "unit": units.get(v.kpi, "")} for v in values]}


@router.get("/kpis", response_model=list[KpiTemplateOut],
            openapi_extra=needs(P.MONITORING_READ), responses=PROBLEMS)
def list_kpi_templates() -> list[dict[str, object]]:
    """The KPI library: what each template measures, its formula, unit, parameters (with
    defaults), suggested alert and dashboard panel."""
    return templates_doc()


# --- alerts and SLOs -------------------------------------------------------------------------


@router.get("/alerts", response_model=Page[AlertOut], openapi_extra=needs(P.MONITORING_READ),
            responses=PROBLEMS)
def list_alerts(
    request: Request,
    state: Annotated[Literal["firing", "acknowledged", "resolved", "active"] | None, Query(
        description="`active`: firing or acknowledged; none: every alert.")] = None,
    severity: Annotated[Literal["info", "warning", "critical"] | None, Query()] = None,
    pool: Annotated[str | None, Query(max_length=64)] = None,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> dict[str, object]:
    """Alerts, newest first (by when they fired), a page at a time."""
    filters = {"state": state, "severity": severity, "pool": pool}
    after = read_cursor(cursor, "alerts", filters)
    if after is not None and not (isinstance(after, list) and len(after) == 2
                                  and type(after[0]) is int and isinstance(after[1], str)):
        raise InvalidCursor("the cursor is not valid")
    ledger, table = _alerts(request)
    with api_of(request).store_errors():
        table.ensure_now(ledger)
        records = table.records(state=state, severity=severity, pool=pool, limit=limit + 1,
                                before=None if after is None else (after[0], after[1]))
    page = records[:limit]
    more = len(records) > limit
    return {"data": [_alert_doc(r) for r in page],
            "next_cursor": make_cursor("alerts", filters, [page[-1].fired_at_us, page[-1].id])
            if more else None}


@router.get("/alerts/{alert_id}", response_model=AlertOut,
            openapi_extra=needs(P.MONITORING_READ), responses=PROBLEMS)
def get_alert(alert_id: AlertPath, request: Request) -> dict[str, object]:
    ledger, table = _alerts(request)
    with api_of(request).store_errors():
        table.ensure_now(ledger)
        record = table.get(alert_id)
    if record is None:
        raise UnknownAlert(alert_id=alert_id)
    return _alert_doc(record)


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertOut,
             openapi_extra=needs(P.ALERTS_ACKNOWLEDGE), responses=PROBLEMS)
def acknowledge_alert(alert_id: AlertPath, request: Request, body: AcknowledgeIn | None = None,
                      idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """Acknowledge a firing alert in the caller's name (the key's or the user's): its record,
    with the caller as its actor (principal, roles, session or key, request id), and an
    `alert.acknowledged` event, in one ledger transaction. 404 `unknown_alert`; 409
    `alert_not_firing` when it is already acknowledged or resolved."""
    api = api_of(request)
    actor = actor_of(request)
    note = None if body is None else body.note
    ledger, table = _alerts(request)

    def run() -> JSONResponse:
        record = acknowledge(ledger, table, alert_id, actor, at_us=api.clock.now_us())
        log.info("alert acknowledged by API", alert=alert_id, caller=actor.who, note=note)
        return JSONResponse(_alert_doc(record))

    return idempotent_post(request, idempotency_key, {"note": note}, run)


@router.get("/slos", response_model=SlosOut, openapi_extra=needs(P.MONITORING_READ),
            responses=PROBLEMS)
def list_slos(request: Request) -> dict[str, object]:
    """Each SLO of each pool as of the last evaluation of the alert rules: good and total
    events over its window, the SLI, the error budget left and the burn rates of its alerts.
    Empty without rules (`Settings.alerts`) or before the first evaluation."""
    engine: AlertEngine | None = getattr(request.app.state, "alerts", None)
    report = None if engine is None else engine.last_report
    return {"evaluated_at": None if report is None else iso(report.at_us),
            "rules_error": None if engine is None else engine.rules.last_error,
            "slos": [] if report is None else [s.to_dict() for s in report.slos]}


# --- replay ----------------------------------------------------------------------------------


@router.get("/replay", response_model=ReplayOut, openapi_extra=needs(P.MONITORING_READ),
            responses=PROBLEMS)
def get_replay(
    request: Request,
    at: Annotated[str, Query(max_length=64, description="ISO-8601 with a zone.")],
    pool: Annotated[str | None, Query(max_length=64, description="Default: the only pool.")]
    = None,
) -> dict[str, object]:
    """The pool as it stood at `at`, twice: from the journal (every balance as of the last
    entry at or before it) and folded from the event log up to it, and whether they agree.
    At most 500,000 events (`replay_too_large`; `fundpool replay --at` has no bound) and two
    replays at once per worker (`replay_busy`)."""
    api = api_of(request)
    chosen = api.pool(pool)
    at_us = parse_instant(at)
    if not _replays.acquire(blocking=False):
        raise ReplayBusy(replays_max=REPLAY_CONCURRENT_MAX)
    try:
        with api.store_errors():
            events = api.monitor.outbox.count_until(chosen.id, at_us)
            if events > REPLAY_EVENTS_MAX:
                raise ReplayTooLarge(events=events, events_max=REPLAY_EVENTS_MAX)
            result = replay_at(api.store, api.monitor.outbox, api.config, chosen, at_us)
    finally:
        _replays.release()
    doc = figures_doc(result.figures, api.config)
    doc.update({"at": iso(at_us), "journal_seq": result.journal_seq,
                "events_applied": result.events, "agrees_with_journal": result.agrees,
                "journal_view": view_doc(result.journal_view)})
    return doc
