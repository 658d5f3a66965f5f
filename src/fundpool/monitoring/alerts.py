"""Alert rules and SLOs as data, and the life of an alert (docs/monitoring-alerts.md).

- **Rules file** (YAML, validated with pydantic): which KPI templates are on, with their
  parameters and default alerts; threshold rules on a KPI or a named figure; SLOs with
  multi-window, multi-burn-rate alerts. `load_rules` turns it into a `RuleSet`, or raises
  `invalid_alert_rules` with one line per problem, each naming the rule at fault.
- **Hot reload**: `AlertRules` holds the rules in force and checks the file on every
  evaluation (`check()`, or `reload()`). A file that does not load leaves the rules in force
  as they were; the problem is kept in `last_error` and logged.
- **The alert life**: `AlertEngine.evaluate()` computes every rule for every pool; a condition
  that has held for its rule's `for` fires an alert (one per rule and subject while it is
  active), an acknowledgement is recorded with who made it, and a condition that no longer
  holds (or can no longer be computed) resolves it. Each step is a row change in the `alerts`
  table and an `alert.fired|acknowledged|resolved` event, written in the same ledger
  transaction, so the outbox has exactly the steps the table has.

What is kept in memory only: when a condition that has not fired yet was first seen to hold
(the `for` wait). After a restart the wait begins again, so a restart delays a firing by at
most its `for`, and never fires one early.
"""

from __future__ import annotations

import difflib
import hashlib
import operator
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal

import structlog
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from fundpool.core.clock import Clock, IdSource
from fundpool.core.errors import FundpoolError
from fundpool.events.model import AlertChanged, Event
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger, LedgerTransaction
from fundpool.monitoring.feed import Follower
from fundpool.monitoring.kpis import (
    DAY_US,
    KINDS,
    KPIS,
    MINUTE_US,
    SERIES_WINDOW_MAX_US,
    KpiContext,
    KpiValue,
    compute_kpis,
    decimal_text,
    format_duration,
    latency_bound_us,
    parse_duration_us,
    subject_of,
    trimmed_text,
    units,
)
from fundpool.monitoring.projection import SECOND_US
from fundpool.monitoring.service import Monitor
from fundpool.payments.model import PaymentState

log = structlog.get_logger(__name__)

RULES_FILE_BYTES_MAX = 1 << 20
HISTORY_LIMIT_MAX = 1_000
ACTOR_CHARS_MAX = 64
SUMMARY_CHARS_MAX = 500
# A latency SLO reads the cumulative histogram at each evaluation and keeps one sample a
# minute at most, for as long as its longest window (docs/monitoring-alerts.md).
SAMPLE_SPACING_US = MINUTE_US
SAMPLE_SLACK_US = DAY_US
DEFAULT_INTERVAL_S = 15.0  # how often a server evaluates the rules: Prometheus' usual scrape
STATES = ("firing", "acknowledged", "resolved")
ACTIVE_STATES = ("firing", "acknowledged")

# The Google SRE workbook's multi-window, multi-burn-rate alerts for a 30-day SLO: 2% of the
# budget in an hour pages, 5% in six hours warns, 10% in three days is worth a ticket.
DEFAULT_BURN_RATES: tuple[dict[str, object], ...] = (
    {"long": "1h", "short": "5m", "factor": "14.4", "severity": "critical"},
    {"long": "6h", "short": "30m", "factor": "6", "severity": "warning"},
    {"long": "3d", "short": "6h", "factor": "1", "severity": "info"},
)

_ACTOR = re.compile(r"^[\w.@+-][\w .@+-]{0,63}$")
_SUBJECT_PART = re.compile(r"^(asset|channel):([A-Za-z0-9][A-Za-z0-9._-]{0,63})$")


class InvalidAlertRules(FundpoolError):
    code = "invalid_alert_rules"
    title = "the alert rules file is not valid"


class UnknownAlert(FundpoolError):
    code = "unknown_alert"
    title = "no such alert"


class AlertNotFiring(FundpoolError):
    code = "alert_not_firing"
    title = "only a firing alert can be acknowledged"


class InvalidActor(FundpoolError):
    code = "invalid_actor"
    title = "who acknowledges an alert is a name of 1-64 letters, digits, spaces or .@+-_"


# --- the rules file: pydantic models ---------------------------------------------------------


def _duration(value: object) -> int:
    return parse_duration_us(value)


def _positive_duration(value: object) -> int:
    micros = parse_duration_us(value)
    if micros == 0:
        raise ValueError("a window is longer than 0")
    return micros


Duration = Annotated[int, BeforeValidator(_duration)]
Window = Annotated[int, BeforeValidator(_positive_duration)]
Severity = Literal["info", "warning", "critical"]
Op = Literal["<", "<=", ">", ">=", "==", "!="]
RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
Threshold = Annotated[Decimal, Field(allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AlertOverride(_Model):
    """A KPI's default alert, changed where given; `alert: false` switches it off."""

    enabled: bool = True
    op: Op | None = None
    value: Threshold | None = None
    severity: Severity | None = None
    for_: Duration | None = Field(None, alias="for")


class KpiSettings(_Model):
    enabled: bool = True
    params: dict[str, Any] = Field(default_factory=dict)
    alert: AlertOverride = Field(default_factory=lambda: AlertOverride.model_validate({}))

    @field_validator("alert", mode="before")
    @classmethod
    def _switch(cls, value: object) -> object:
        return {"enabled": value} if isinstance(value, bool) else value


class ThresholdRule(_Model):
    """`kpi` or `figure` compared with `value` by `op`, for each subject it has."""

    id: RuleId
    kpi: str | None = None
    figure: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    pool: str | None = None
    subject: str = "*"
    op: Op
    value: Threshold
    for_: Duration = Field(0, alias="for")
    severity: Severity
    summary: Annotated[str, StringConstraints(max_length=SUMMARY_CHARS_MAX)] | None = None
    enabled: bool = True

    @model_validator(mode="after")
    def _check(self) -> ThresholdRule:
        if (self.kpi is None) == (self.figure is None):
            raise ValueError("a rule has exactly one of 'kpi' or 'figure'")
        filters = parse_subject(self.subject)
        if self.kpi is not None:
            if self.kpi not in KPIS:
                raise ValueError(f"unknown KPI {self.kpi!r}; known: {', '.join(KPIS)}")
            KPIS[self.kpi].parse_params(self.params)
        else:
            spec = FIGURES.get(self.figure or "")
            if spec is None:
                raise ValueError(f"unknown figure {self.figure!r}; known: {', '.join(FIGURES)}")
            spec.parse_params(self.params)
            if spec.kind == "amount" and (filters is None or "asset" not in filters):
                raise ValueError(
                    f"figure {self.figure} is an amount: its subject must name the asset "
                    "(e.g. 'asset:USD' or 'asset:USD,channel:bank-a'), whose units the value "
                    "is in")
        return self


class SuccessSli(_Model):
    """Good events: payments of `kind` reaching a `good` state; bad: reaching a `bad` one."""

    type: Literal["success"]
    kind: str = "payout"
    good: list[str] = Field(default_factory=lambda: ["settled"])
    bad: list[str] = Field(default_factory=lambda: ["failed", "returned"])

    @model_validator(mode="after")
    def _check(self) -> SuccessSli:
        if self.kind not in ("*", *KINDS):
            raise ValueError(f"kind is one of {['*', *KINDS]} (got {self.kind!r})")
        states = [s.value for s in PaymentState]
        for name, chosen in (("good", self.good), ("bad", self.bad)):
            if not chosen:
                raise ValueError(f"{name} lists at least one payment state")
            unknown = [s for s in chosen if s not in states]
            if unknown:
                raise ValueError(f"{name}: unknown payment states {unknown}; known: {states}")
        both = sorted(set(self.good) & set(self.bad))
        if both:
            raise ValueError(f"a state is good or bad, not both: {both}")
        return self


class LatencySli(_Model):
    """Good events: payments that ended `stage` through `channel` (`*`: any) within
    `threshold`, which must be a latency histogram bound so that the count is exact."""

    type: Literal["latency"]
    channel: str = "*"
    stage: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{0,31}$")] = "end_to_end"
    threshold: Window

    @field_validator("threshold")
    @classmethod
    def _bound(cls, value: int) -> int:
        latency_bound_us(value)
        return value


class BurnRateAlert(_Model):
    """Fire when the error budget burns at `factor` times the sustainable rate over both the
    `long` and the `short` window."""

    long: Window
    short: Window
    factor: Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
    severity: Severity

    @model_validator(mode="after")
    def _check(self) -> BurnRateAlert:
        if self.short >= self.long:
            raise ValueError(
                f"the short window ({format_duration(self.short)}) must be shorter than the "
                f"long one ({format_duration(self.long)})")
        return self


class Slo(_Model):
    id: RuleId
    title: Annotated[str, StringConstraints(max_length=200)] | None = None
    sli: Annotated[SuccessSli | LatencySli, Field(discriminator="type")]
    objective: Annotated[Decimal, Field(gt=0, lt=1, allow_inf_nan=False)]
    window: Window = 30 * DAY_US
    pool: str | None = None
    burn_rates: list[BurnRateAlert] | None = None
    enabled: bool = True

    @field_validator("window")
    @classmethod
    def _window(cls, value: int) -> int:
        if value > SERIES_WINDOW_MAX_US:
            raise ValueError(
                f"an SLO window is at most {format_duration(SERIES_WINDOW_MAX_US)} (the "
                "hour series' retention)")
        return value


class RulesDocument(_Model):
    version: Literal[1] = 1
    kpis: dict[str, KpiSettings] = Field(default_factory=dict)
    rules: list[ThresholdRule] = Field(default_factory=list)
    slos: list[Slo] = Field(default_factory=list)
    burn_rates: list[BurnRateAlert] = Field(
        default_factory=lambda: [BurnRateAlert.model_validate(b) for b in DEFAULT_BURN_RATES])

    @field_validator("kpis")
    @classmethod
    def _known(cls, value: dict[str, KpiSettings]) -> dict[str, KpiSettings]:
        problems: list[str] = []
        for kpi_id, settings in value.items():
            template = KPIS.get(kpi_id)
            if template is None:
                near = difflib.get_close_matches(kpi_id, list(KPIS), n=1)
                hint = f" (did you mean {near[0]}?)" if near else ""
                problems.append(f"unknown KPI {kpi_id!r}{hint}; known: {', '.join(KPIS)}")
                continue
            try:
                template.parse_params(settings.params)
            except ValueError as error:
                problems.append(f"{kpi_id}.params: {error}")
        if problems:
            raise ValueError("; ".join(problems))
        return value


# --- figures a rule may name ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FigureSpec:
    """A named figure of `PoolFigures`: `kind` is ratio, amount (in whole units of the asset),
    count or seconds."""

    name: str
    kind: str
    description: str
    takes_stage: bool = False

    def parse_params(self, given: Mapping[str, object]) -> dict[str, object]:
        known = ["stage"] if self.takes_stage else []
        out: dict[str, object] = {"stage": "end_to_end"} if self.takes_stage else {}
        for name, raw in given.items():
            if name not in known:
                raise ValueError(f"figure {self.name} has no parameter {name!r}"
                                 + (f"; its parameters: {', '.join(known)}" if known
                                    else "; it takes no parameters"))
            out[name] = KPIS["settlement_latency_p99"].param("stage").parse(raw)
        return out


FIGURES: dict[str, FigureSpec] = {f.name: f for f in (
    FigureSpec("available_ratio", "ratio", "available / TOTAL, per asset and for the pool"),
    FigureSpec("depth", "amount", "available per asset and channel"),
    FigureSpec("available", "amount", "available per asset"),
    FigureSpec("total", "amount", "TOTAL per asset"),
    FigureSpec("in_flight_amount", "amount", "amount of payments in flight, per asset"),
    FigureSpec("pending_count", "count", "payments waiting (initiated … pending approval)"),
    FigureSpec("failed_count", "count", "payments in the failed state"),
    FigureSpec("returned_count", "count", "payments in the returned state"),
    FigureSpec("in_flight_count", "count", "payments approved, submitted or cleared"),
    FigureSpec("latency_p50", "seconds", "median latency of a stage, per channel", True),
    FigureSpec("latency_p90", "seconds", "90th percentile latency of a stage, per channel",
               True),
    FigureSpec("latency_p99", "seconds", "99th percentile latency of a stage, per channel",
               True),
    FigureSpec("lag_events", "count", "events of the pool not yet applied to its projection"),
)}


def figure_values(name: str, ctx: KpiContext, params: Mapping[str, object],
                  lag_events: int = 0) -> list[KpiValue]:
    """A named figure's values, one per subject, exact."""
    figures = ctx.figures
    if name == "available_ratio":
        return [KpiValue(name, v, None if k == "*" else k) for k, v in
                figures.available_ratio.items()]
    assets = {view.asset.code: view.asset for view in figures.view.assets}
    if name == "depth":
        return [KpiValue(name, units(assets[a], v), a, c) for (a, c), v in
                figures.depth.items()]
    if name in ("available", "total"):
        return [KpiValue(name, units(view.asset, getattr(view.total, name)), view.asset.code)
                for view in figures.view.assets]
    if name == "in_flight_amount":
        return [KpiValue(name, units(asset, figures.in_flight_amount.get(code, 0)), code)
                for code, asset in assets.items()]
    if name in ("pending_count", "failed_count", "returned_count", "in_flight_count"):
        return [KpiValue(name, Fraction(getattr(figures, name)))]
    if name == "lag_events":
        return [KpiValue(name, Fraction(lag_events))]
    if name.startswith("latency_p"):
        field_name = f"{name[len('latency_'):]}_us"
        stage = params.get("stage", "end_to_end")
        return [KpiValue(name, Fraction(getattr(f, field_name), SECOND_US), channel=f.channel)
                for f in figures.latency if f.stage == stage and f.count > 0]
    raise KeyError(name)


# --- compiled rules ---------------------------------------------------------------------------


def parse_subject(text: str) -> dict[str, str] | None:
    """A rule's subject filter: `*` (None: every subject), `pool`, or `asset:X`,
    `channel:Y`, `asset:X,channel:Y`. ValueError says what is wrong."""
    text = text.strip()
    if text == "*":
        return None
    if text == "pool":
        return {}
    out: dict[str, str] = {}
    for part in text.split(","):
        match = _SUBJECT_PART.match(part.strip())
        if match is None or match.group(1) in out:
            raise ValueError(
                f"subject {text!r} is not one of '*', 'pool', 'asset:CODE', 'channel:ID' or "
                "'asset:CODE,channel:ID'")
        out[match.group(1)] = match.group(2)
    return out


def subject_matches(filters: Mapping[str, str] | None, value: KpiValue) -> bool:
    if filters is None:
        return True
    labels = value.labels()
    if not filters:
        return not labels
    return all(labels.get(k) == v for k, v in filters.items())


@dataclass(frozen=True, slots=True)
class ThresholdSpec:
    """A threshold rule ready to evaluate (a rule of the file, or a KPI's default alert)."""

    id: str
    source: str  # kpi | figure
    name: str
    params: Mapping[str, object]
    op: str
    threshold: Decimal
    for_us: int
    severity: str
    subject: Mapping[str, str] | None = None
    subject_text: str = "*"
    pool: str | None = None
    summary: str | None = None
    default_alert: bool = False

    def describe(self) -> str:
        wait = f" for {format_duration(self.for_us)}" if self.for_us else ""
        return (f"{self.source} {self.name} {self.op} {self.threshold}{wait} "
                f"→ {self.severity} (subject {self.subject_text})")


@dataclass(frozen=True, slots=True)
class BurnRateSpec:
    long_us: int
    short_us: int
    factor: Decimal
    severity: str

    def rule_id(self, slo: str) -> str:
        return f"{slo}/burn-{format_duration(self.long_us)}-{format_duration(self.short_us)}"


@dataclass(frozen=True, slots=True)
class SloSpec:
    id: str
    title: str
    sli: str  # success | latency
    objective: Fraction
    window_us: int
    burn_rates: tuple[BurnRateSpec, ...]
    pool: str | None = None
    kind: str = "payout"  # success
    good: tuple[str, ...] = ("settled",)
    bad: tuple[str, ...] = ("failed", "returned")
    channel: str = "*"  # latency
    stage: str = "end_to_end"
    threshold_us: int = 0

    @property
    def error_budget(self) -> Fraction:
        return 1 - self.objective

    @property
    def subject(self) -> str:
        return subject_of(channel=None if self.channel == "*" else self.channel)

    def longest_us(self) -> int:
        return max([self.window_us, *(b.long_us for b in self.burn_rates)])


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The rules in force: enabled KPIs with their parameters, threshold rules (the KPIs'
    default alerts among them), SLOs. `digest` is the sha256 of the file's text."""

    kpis: Mapping[str, Mapping[str, object]]
    thresholds: tuple[ThresholdSpec, ...]
    slos: tuple[SloSpec, ...]
    digest: str
    source: str

    def rule_ids(self) -> set[str]:
        return {t.id for t in self.thresholds} | {
            b.rule_id(s.id) for s in self.slos for b in s.burn_rates}

    def summary(self) -> dict[str, object]:
        return {
            "source": self.source, "digest": self.digest,
            "kpis": {k: {n: _param_text(v) for n, v in p.items()} for k, p in self.kpis.items()},
            "rules": [t.describe() for t in self.thresholds],
            "slos": [{"id": s.id, "sli": s.sli, "objective": str(_decimal(s.objective)),
                      "window": format_duration(s.window_us),
                      "error_budget": str(_decimal(s.error_budget)),
                      "burn_rates": [b.rule_id(s.id) + f" ≥ {b.factor}× → {b.severity}"
                                     for b in s.burn_rates]}
                     for s in self.slos],
        }


def _decimal(value: Fraction) -> Decimal:
    return Decimal(value.numerator) / Decimal(value.denominator)


def _param_text(value: object) -> str:
    if isinstance(value, Fraction):
        return str(_decimal(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return format_duration(value)
    return str(value)


def _compile(document: RulesDocument, digest: str, source: str) -> RuleSet:
    errors: list[str] = []
    kpis: dict[str, dict[str, object]] = {}
    thresholds: list[ThresholdSpec] = []
    for kpi_id, settings in document.kpis.items():
        template = KPIS[kpi_id]  # known and its parameters valid: RulesDocument checked
        params = template.parse_params(settings.params)
        if not settings.enabled:
            continue
        kpis[kpi_id] = params
        alert = settings.alert
        if alert.enabled:
            default = template.alert
            thresholds.append(ThresholdSpec(
                id=kpi_id, source="kpi", name=kpi_id, params=params,
                op=alert.op or default.op,
                threshold=default.threshold if alert.value is None else alert.value,
                for_us=default.for_us if alert.for_ is None else alert.for_,
                severity=alert.severity or default.severity, default_alert=True))
    disabled = {k for k, s in document.kpis.items() if not s.enabled}
    for index, rule in enumerate(document.rules):
        where = f"rules[{index}] {rule.id!r}"
        if not rule.enabled:
            continue
        if rule.kpi is not None:
            if rule.kpi in disabled:
                errors.append(f"{where}: KPI {rule.kpi} is switched off in 'kpis'")
                continue
            template = KPIS[rule.kpi]
            base = kpis.get(rule.kpi, template.defaults())
            given = template.parse_params(rule.params)
            params = {**base, **{k: given[k] for k in rule.params}}
        else:
            params = FIGURES[rule.figure or ""].parse_params(rule.params)
        thresholds.append(ThresholdSpec(
            id=rule.id, source="kpi" if rule.kpi else "figure",
            name=rule.kpi or rule.figure or "", params=params, op=rule.op,
            threshold=rule.value, for_us=rule.for_, severity=rule.severity,
            subject=parse_subject(rule.subject), subject_text=rule.subject, pool=rule.pool,
            summary=rule.summary))
    slos: list[SloSpec] = []
    for index, slo in enumerate(document.slos):
        where = f"slos[{index}] {slo.id!r}"
        if not slo.enabled:
            continue
        burns = slo.burn_rates if slo.burn_rates is not None else document.burn_rates
        for burn in burns:
            if burn.long > slo.window:
                errors.append(
                    f"{where}: burn-rate window {format_duration(burn.long)} is longer than "
                    f"the SLO window {format_duration(slo.window)}; give the SLO its own "
                    "burn_rates")
        specs = tuple(BurnRateSpec(b.long, b.short, b.factor, b.severity) for b in burns)
        sli = slo.sli
        common: dict[str, Any] = {
            "id": slo.id, "title": slo.title or slo.id, "objective": Fraction(slo.objective),
            "window_us": slo.window, "burn_rates": specs, "pool": slo.pool}
        if isinstance(sli, SuccessSli):
            slos.append(SloSpec(sli="success", kind=sli.kind, good=tuple(sli.good),
                                bad=tuple(sli.bad), **common))
        else:
            slos.append(SloSpec(sli="latency", channel=sli.channel, stage=sli.stage,
                                threshold_us=sli.threshold, **common))
    ids: dict[str, str] = {}
    for rule_id, origin in [
        *((t.id, "KPI default alert" if t.default_alert else "rule") for t in thresholds),
        *((s.id, "SLO") for s in slos),
        *((b.rule_id(s.id), f"burn-rate alert of SLO {s.id}") for s in slos
          for b in s.burn_rates),
    ]:
        if rule_id in ids:
            errors.append(f"id {rule_id!r} is used twice ({ids[rule_id]} and {origin}); "
                          "a rule on a KPI with a default alert needs its own id")
        ids[rule_id] = origin
    if errors:
        raise InvalidAlertRules(f"{source}: " + "; ".join(errors), source=source,
                                errors=errors)
    return RuleSet(kpis, tuple(thresholds), tuple(slos), digest, source)


def _location(loc: Sequence[int | str], raw: object) -> str:
    """`rules[2] 'usd-depth'.severity` from pydantic's ('rules', 2, 'severity')."""
    text = ""
    node: Any = raw
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                text += f" {node['id']!r}"
        else:
            if isinstance(node, dict) and part not in node and part in ("success", "latency"):
                continue  # the tag of a discriminated union, not a key of the file
            text += f".{part}" if text else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return text or "(top level)"


def _messages(error: ValidationError, raw: object) -> list[str]:
    out: list[str] = []
    for item in error.errors():
        message = str(item["msg"]).removeprefix("Value error, ")
        given = item.get("input")
        if item["type"] not in ("value_error", "missing") and (
                isinstance(given, str | int | float | Decimal) and not isinstance(given, bool)):
            message += f" (got {given!r})"
        out.append(f"{_location(item['loc'], raw)}: {message}")
    return out


def _yaml_problem(error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return (f"line {mark.line + 1}, column {mark.column + 1}: "
                f"{error.problem or error.context or 'cannot be parsed'}")
    return " ".join(str(error).split())


def load_rules(text: str, *, source: str = "<rules>") -> RuleSet:
    """The rules of a YAML text, or `invalid_alert_rules` listing every problem found."""
    if len(text.encode()) > RULES_FILE_BYTES_MAX:
        raise InvalidAlertRules(f"{source}: the file is larger than "
                                f"{RULES_FILE_BYTES_MAX} bytes", source=source)
    digest = hashlib.sha256(text.encode()).hexdigest()
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        detail = _yaml_problem(error)
        raise InvalidAlertRules(f"{source}: not valid YAML at {detail}", source=source,
                                errors=[f"not valid YAML at {detail}"]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidAlertRules(
            f"{source}: the file is a mapping with the keys version, kpis, rules, slos, "
            f"burn_rates (got {type(raw).__name__})", source=source,
            errors=["the file is a mapping with the keys version, kpis, rules, slos, "
                    f"burn_rates (got {type(raw).__name__})"])
    try:
        document = RulesDocument.model_validate(raw)
    except ValidationError as error:
        messages = _messages(error, raw)
        raise InvalidAlertRules(f"{source}: " + "; ".join(messages), source=source,
                                errors=messages) from None
    return _compile(document, digest, source)


def load_rules_file(path: str | Path) -> RuleSet:
    return load_rules(_read(Path(path)), source=str(path))


def _read(path: Path) -> str:
    try:
        if path.stat().st_size > RULES_FILE_BYTES_MAX:
            raise InvalidAlertRules(f"{path}: the file is larger than "
                                    f"{RULES_FILE_BYTES_MAX} bytes", source=str(path))
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        why = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise InvalidAlertRules(f"{path}: cannot be read: {why}", source=str(path),
                                errors=[f"cannot be read: {why}"]) from None


# --- hot reload -------------------------------------------------------------------------------


class AlertRules:
    """The rules in force, from a file checked again on every `check()` (the engine calls it
    at each evaluation): a changed file is loaded; one that does not load leaves the rules in
    force unchanged, with the problem in `last_error` (and logged once per bad version).

    `strict` (the default): the first load must succeed, or `invalid_alert_rules` is raised.
    Otherwise the holder starts with no rules (`current` is None) and the error kept."""

    def __init__(self, path: str | Path | None = None, *, text: str | None = None,
                 strict: bool = True) -> None:
        if (path is None) == (text is None):
            raise ValueError("AlertRules takes a path or a text")
        self.path = None if path is None else Path(path)
        self.current: RuleSet | None = None
        self.last_error: str | None = None
        self.reloads = 0  # new rule sets taken after the first
        self._lock = threading.Lock()
        self._bad_digest: str | None = None
        if text is not None:
            self.current = load_rules(text)
            return
        try:
            self._take(self._load())
        except InvalidAlertRules as error:
            if strict:
                raise
            self._fail(error)

    def _load(self) -> RuleSet:
        assert self.path is not None
        return load_rules_file(self.path)

    def _take(self, rules: RuleSet) -> None:
        if self.current is not None:
            self.reloads += 1
        self.current = rules
        self.last_error = None
        self._bad_digest = None

    def _fail(self, error: InvalidAlertRules) -> None:
        self.last_error = error.detail
        log.error("alert rules not loaded; the rules in force stay", source=str(self.path),
                  error=error.detail, rules_in_force=None if self.current is None else
                  self.current.digest[:12])

    @property
    def loaded(self) -> bool:
        return self.current is not None

    def check(self) -> bool:
        """Load the file again if its content changed; True when new rules were taken."""
        if self.path is None:
            return False
        with self._lock:
            try:
                text = _read(self.path)
            except InvalidAlertRules as error:
                if self.last_error != error.detail:
                    self._fail(error)
                return False
            digest = hashlib.sha256(text.encode()).hexdigest()
            if self.current is not None and digest == self.current.digest:
                self.last_error = None  # a broken edit undone
                self._bad_digest = None
                return False
            if digest == self._bad_digest:
                return False
            try:
                rules = load_rules(text, source=str(self.path))
            except InvalidAlertRules as error:
                self._bad_digest = digest
                self._fail(error)
                return False
            self._take(rules)
            log.info("alert rules loaded", source=str(self.path), digest=digest[:12],
                     rules=len(rules.thresholds), slos=len(rules.slos))
            return True

    def reload(self) -> bool:
        """Load the file now (same as `check`: an unchanged file is not parsed again)."""
        return self.check()


# --- the alerts table ---------------------------------------------------------------------------

_ALERT_TABLE = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT {collate} PRIMARY KEY,
    pool TEXT {collate} NOT NULL,
    rule TEXT {collate} NOT NULL,
    subject TEXT {collate} NOT NULL,
    severity TEXT NOT NULL,
    state TEXT NOT NULL,
    value TEXT,
    summary TEXT NOT NULL,
    fired_at_us {bigint} NOT NULL,
    acknowledged_at_us {bigint},
    acknowledged_by TEXT,
    resolved_at_us {bigint}
){strict}"""
_ALERT_INDEXES = (
    # At most one active alert per pool, rule and subject, even with two engines at once.
    "CREATE UNIQUE INDEX IF NOT EXISTS alerts_active ON alerts (pool, rule, subject) "
    "WHERE state <> 'resolved'",
    "CREATE INDEX IF NOT EXISTS alerts_by_time ON alerts (fired_at_us)",
)
_SAMPLE_TABLE = """
CREATE TABLE IF NOT EXISTS alert_sli_samples (
    pool TEXT {collate} NOT NULL,
    slo TEXT {collate} NOT NULL,
    at_us {bigint} NOT NULL,
    good {bigint} NOT NULL,
    total {bigint} NOT NULL,
    PRIMARY KEY (pool, slo, at_us)
){strict}"""

SQLITE_ALERTS_SCHEMA: tuple[str, ...] = (
    _ALERT_TABLE.format(collate="", bigint="INTEGER", strict=" STRICT"),
    *_ALERT_INDEXES,
    _SAMPLE_TABLE.format(collate="", bigint="INTEGER", strict=" STRICT, WITHOUT ROWID"),
)
POSTGRES_ALERTS_SCHEMA: tuple[str, ...] = (
    _ALERT_TABLE.format(collate='COLLATE "C"', bigint="BIGINT", strict=""),
    *_ALERT_INDEXES,
    _SAMPLE_TABLE.format(collate='COLLATE "C"', bigint="BIGINT", strict=""),
)
ALERT_COLUMNS = ("id, pool, rule, subject, severity, state, value, summary, fired_at_us, "
                 "acknowledged_at_us, acknowledged_by, resolved_at_us")


@dataclass(frozen=True, slots=True)
class AlertRecord:
    id: str
    pool: str
    rule: str
    subject: str
    severity: str
    state: str  # firing | acknowledged | resolved
    value: str | None  # the figure when it fired, as decimal text
    summary: str
    fired_at_us: int
    acknowledged_at_us: int | None = None
    acknowledged_by: str | None = None
    resolved_at_us: int | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def to_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in ALERT_COLUMNS.split(", ")}


def _record(row: Sequence[Any]) -> AlertRecord:
    (alert_id, pool, rule, subject, severity, state, value, summary, fired, acked, by,
     resolved) = row
    return AlertRecord(alert_id, pool, rule, subject, severity, state, value, summary,
                       int(fired), None if acked is None else int(acked), by,
                       None if resolved is None else int(resolved))


def _mark_of(store: LedgerStore) -> str:
    from fundpool.stores.sqlite import SqliteStore

    return "?" if isinstance(store, SqliteStore) else "%s"


class AlertStore:
    """The `alerts` table (and the latency SLOs' samples) in the ledger's database: created on
    first use through a ledger transaction, read through the store, written inside ledger
    transactions beside the events that report each change."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store
        self.mark = _mark_of(store)
        # Both stores answer `query(sql, params)` on their read connection.
        self._query: Callable[[str, Sequence[Any]], list[Any]] = getattr(store, "query")  # noqa: B009
        self._ready = False

    def ensure(self, transaction: LedgerTransaction) -> None:
        """Create the tables if they are not there (once per AlertStore; see `transaction`)."""
        if self._ready:
            return
        connection = _connection(transaction)
        for statement in (SQLITE_ALERTS_SCHEMA if self.mark == "?" else POSTGRES_ALERTS_SCHEMA):
            connection.execute(statement)
        self._ready = True

    @contextmanager
    def transaction(self, ledger: Ledger) -> Iterator[LedgerTransaction]:
        """A ledger transaction with the tables created in it first; if it rolls back, they
        are created again next time."""
        was_ready = self._ready
        try:
            with ledger.transaction() as transaction:
                self.ensure(transaction)
                yield transaction
        except BaseException:
            self._ready = was_ready
            raise

    def ensure_now(self, ledger: Ledger) -> None:
        if not self._ready:
            with self.transaction(ledger):
                pass

    # --- reads (committed state) ---

    def active(self, pool: str | None = None) -> list[AlertRecord]:
        return self.records(state="active", pool=pool)

    def history(self, limit: int = 100, pool: str | None = None) -> list[AlertRecord]:
        return self.records(pool=pool, limit=max(1, min(limit, HISTORY_LIMIT_MAX)))

    def records(
        self, *, state: str | None = None, severity: str | None = None,
        pool: str | None = None, limit: int | None = None,
        before: tuple[int, str] | None = None,
    ) -> list[AlertRecord]:
        """Alerts newest first (by when they fired, then id). `state` "active" is firing or
        acknowledged; `before` = (fired_at_us, id) of the last one seen, for the next page."""
        m = self.mark
        where: list[str] = []
        params: list[Any] = []
        if state == "active":
            where.append("state <> 'resolved'")
        elif state is not None:
            where.append(f"state = {m}")
            params.append(state)
        if severity is not None:
            where.append(f"severity = {m}")
            params.append(severity)
        if pool is not None:
            where.append(f"pool = {m}")
            params.append(pool)
        if before is not None:
            where.append(f"(fired_at_us < {m} OR (fired_at_us = {m} AND id < {m}))")
            params += [before[0], before[0], before[1]]
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        bound = ""
        if limit is not None:
            bound = f" LIMIT {m}"
            params.append(limit)
        rows = self._query(f"SELECT {ALERT_COLUMNS} FROM alerts {clause}"
                           f"ORDER BY fired_at_us DESC, id DESC{bound}", tuple(params))
        return [_record(r) for r in rows]

    def get(self, alert_id: str) -> AlertRecord | None:
        rows = self._query(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE id = {self.mark}", (alert_id,))
        return _record(rows[0]) if rows else None

    # --- inside a ledger transaction ---

    def active_in(self, transaction: LedgerTransaction) -> list[AlertRecord]:
        rows = _connection(transaction).execute(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE state <> 'resolved'").fetchall()
        return [_record(r) for r in rows]

    def get_in(self, transaction: LedgerTransaction, alert_id: str) -> AlertRecord | None:
        rows = _connection(transaction).execute(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE id = {self.mark}", (alert_id,)
        ).fetchall()
        return _record(rows[0]) if rows else None

    def insert(self, transaction: LedgerTransaction, record: AlertRecord) -> None:
        marks = ", ".join([self.mark] * 12)
        _connection(transaction).execute(
            f"INSERT INTO alerts ({ALERT_COLUMNS}) VALUES ({marks})",
            tuple(record.to_dict().values()))

    def update(self, transaction: LedgerTransaction, record: AlertRecord) -> None:
        m = self.mark
        _connection(transaction).execute(
            f"UPDATE alerts SET state = {m}, acknowledged_at_us = {m}, acknowledged_by = {m}, "
            f"resolved_at_us = {m} WHERE id = {m}",
            (record.state, record.acknowledged_at_us, record.acknowledged_by,
             record.resolved_at_us, record.id))

    def sample(self, transaction: LedgerTransaction, pool: str, slo: str, at_us: int,
               good: int, total: int, keep_us: int) -> None:
        """Record the cumulative (good, total) of a latency SLO, at most once a minute, and
        drop samples no window reaches any more."""
        m = self.mark
        connection = _connection(transaction)
        row = connection.execute(
            f"SELECT max(at_us) FROM alert_sli_samples WHERE pool = {m} AND slo = {m}",
            (pool, slo)).fetchone()
        last = None if row is None or row[0] is None else int(row[0])
        if last is None or at_us - last >= SAMPLE_SPACING_US:
            connection.execute(
                f"INSERT INTO alert_sli_samples (pool, slo, at_us, good, total) "
                f"VALUES ({m}, {m}, {m}, {m}, {m})", (pool, slo, at_us, good, total))
        connection.execute(
            f"DELETE FROM alert_sli_samples WHERE pool = {m} AND slo = {m} AND at_us < {m}",
            (pool, slo, at_us - keep_us - SAMPLE_SLACK_US))

    def sample_at(self, transaction: LedgerTransaction, pool: str, slo: str,
                  at_us: int) -> tuple[int, int, int] | None:
        """(at, good, total) of the last sample at or before `at_us`, else the first one
        (a window longer than the samples kept so far); None without samples."""
        m = self.mark
        connection = _connection(transaction)
        row = connection.execute(
            f"SELECT at_us, good, total FROM alert_sli_samples WHERE pool = {m} AND slo = {m} "
            f"AND at_us <= {m} ORDER BY at_us DESC LIMIT 1", (pool, slo, at_us)).fetchone()
        if row is None:
            row = connection.execute(
                f"SELECT at_us, good, total FROM alert_sli_samples WHERE pool = {m} "
                f"AND slo = {m} ORDER BY at_us LIMIT 1", (pool, slo)).fetchone()
        return None if row is None else (int(row[0]), int(row[1]), int(row[2]))


def _connection(transaction: LedgerTransaction) -> Any:
    return getattr(transaction.session, "connection")  # noqa: B009 - both stores have it


# --- evaluation -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observation:
    """One rule on one subject at one instant. `breached` is False when the value is None
    (nothing to measure): no data never fires, and resolves what was firing."""

    pool: str
    rule: str
    subject: str
    severity: str
    value: Fraction | None
    value_text: str | None
    breached: bool
    for_us: int
    summary: str

    def to_dict(self) -> dict[str, object]:
        return {"pool": self.pool, "rule": self.rule, "subject": self.subject,
                "severity": self.severity, "value": self.value_text,
                "breached": self.breached, "for": format_duration(self.for_us),
                "summary": self.summary}


@dataclass(frozen=True, slots=True)
class BurnRate:
    long_us: int
    short_us: int
    factor: Decimal
    severity: str
    long: Fraction | None  # the burn rate over the long window (None: no event in it)
    short: Fraction | None

    @property
    def breached(self) -> bool:
        return (self.long is not None and self.short is not None
                and self.long >= self.factor and self.short >= self.factor)


@dataclass(frozen=True, slots=True)
class SloStatus:
    """An SLO over its window: good and total events, the SLI, and the error budget left
    (1 − bad / (error budget × total); negative once overspent)."""

    pool: str
    slo: str
    subject: str
    objective: Fraction
    window_us: int
    good: int
    total: int
    burn_rates: tuple[BurnRate, ...]

    @property
    def sli(self) -> Fraction | None:
        return None if self.total == 0 else Fraction(self.good, self.total)

    @property
    def error_budget(self) -> Fraction:
        return 1 - self.objective

    @property
    def budget_remaining(self) -> Fraction | None:
        if self.total == 0:
            return None
        return 1 - Fraction(self.total - self.good, self.total) / self.error_budget

    def to_dict(self) -> dict[str, object]:
        return {
            "pool": self.pool, "slo": self.slo, "subject": self.subject,
            "objective": decimal_text(self.objective), "window": format_duration(self.window_us),
            "good": self.good, "total": self.total, "sli": decimal_text(self.sli),
            "error_budget": decimal_text(self.error_budget),
            "budget_remaining": decimal_text(self.budget_remaining),
            "burn_rates": [
                {"long": format_duration(b.long_us), "short": format_duration(b.short_us),
                 "factor": str(b.factor), "severity": b.severity,
                 "burn_long": decimal_text(b.long, 4), "burn_short": decimal_text(b.short, 4),
                 "breached": b.breached} for b in self.burn_rates],
        }


def burn_rate(good: int, total: int, objective: Fraction) -> Fraction | None:
    """How fast the error budget burns: the error rate over the rate the objective allows
    (1 = exactly the budget over the SLO window). None without events."""
    if total <= 0:
        return None
    return Fraction(total - good, total) / (1 - objective)


@dataclass(slots=True)
class EvaluationReport:
    at_us: int
    fired: list[AlertRecord] = field(default_factory=list)
    resolved: list[AlertRecord] = field(default_factory=list)
    pending: list[Observation] = field(default_factory=list)  # breached, waiting for `for`
    observations: list[Observation] = field(default_factory=list)
    kpis: dict[str, list[KpiValue]] = field(default_factory=dict)  # per pool
    slos: list[SloStatus] = field(default_factory=list)
    rules_error: str | None = None
    rules_digest: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "at_us": self.at_us,
            "fired": [a.to_dict() for a in self.fired],
            "resolved": [a.to_dict() for a in self.resolved],
            "pending": [o.to_dict() for o in self.pending],
            "breached": [o.to_dict() for o in self.observations if o.breached],
            "kpis": {pool: [v.to_dict() for v in values] for pool, values in self.kpis.items()},
            "slos": [s.to_dict() for s in self.slos],
            "rules_error": self.rules_error,
            "rules_digest": self.rules_digest,
        }


_OPS: dict[str, Callable[[Fraction, Fraction], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}


def _compare(value: Fraction, op: str, threshold: Decimal) -> bool:
    return _OPS[op](value, Fraction(threshold))


_UNITS = {"ratio": "", "days": " days", "seconds": " s", "bps": " bp", "amount": "",
          "count": ""}


class AlertEngine:
    """Evaluates the rules in force on every pool of the monitor's configuration and keeps
    each alert's life in the ledger's database. Thread-safe: one evaluation or
    acknowledgement at a time."""

    def __init__(self, ledger: Ledger, monitor: Monitor, rules: AlertRules, *,
                 ids: IdSource | None = None, clock: Clock | None = None) -> None:
        if ids is None:
            from fundpool.runtime import system_ids

            ids = system_ids()
        self.ledger = ledger
        self.monitor = monitor
        self.rules = rules
        self.ids = ids
        self.clock = clock or monitor.clock
        self.table = AlertStore(ledger.store)
        self._pending: dict[tuple[str, str, str], int] = {}  # (pool, rule, subject) -> since
        self._lock = threading.RLock()
        self._follower: Follower | None = None
        self.last_report: EvaluationReport | None = None

    # --- running ---

    def follow(self, *, interval_s: float = DEFAULT_INTERVAL_S) -> AlertEngine:
        """Evaluate every `interval_s` in a background thread (a failed evaluation is logged
        and the next one tries again); `last_report` holds the latest."""
        self._follower = Follower(self.evaluate, interval_s=interval_s,
                                  name="fundpool-alerts").start()
        return self

    def stop(self) -> None:
        if self._follower is not None:
            self._follower.stop()
            self._follower = None

    # --- reads ---

    def active(self, pool: str | None = None) -> list[AlertRecord]:
        self.table.ensure_now(self.ledger)
        return self.table.active(pool)

    def history(self, limit: int = 100, pool: str | None = None) -> list[AlertRecord]:
        self.table.ensure_now(self.ledger)
        return self.table.history(limit, pool)

    def get(self, alert_id: str) -> AlertRecord | None:
        self.table.ensure_now(self.ledger)
        return self.table.get(alert_id)

    def context(self, pool_id: str | None = None, at_us: int | None = None) -> KpiContext:
        """One pool's figures and series now (or at `at_us`), for KPIs and rules."""
        pool = self.monitor.pool(pool_id)
        snapshot = self.monitor.snapshot(pool.id)
        return KpiContext.of(self.monitor.config, pool, snapshot.cells, snapshot.series,
                             at_us=self.clock.now_us() if at_us is None else at_us)

    def kpis(self, pool_id: str | None = None, at_us: int | None = None) -> list[KpiValue]:
        """The enabled KPIs' values now (every KPI's, with defaults, before rules load)."""
        rules = self.rules.current
        return compute_kpis(self.context(pool_id, at_us), None if rules is None else rules.kpis)

    # --- acknowledging ---

    def acknowledge(self, alert_id: str, actor: str) -> AlertRecord:
        return acknowledge(self.ledger, self.table, alert_id, actor,
                           at_us=self.clock.now_us())

    # --- evaluating ---

    def evaluate(self, at_us: int | None = None) -> EvaluationReport:
        with self._lock:
            self.rules.check()
            at = self.clock.now_us() if at_us is None else at_us
            rules = self.rules.current
            report = EvaluationReport(at, rules_error=self.rules.last_error,
                                      rules_digest=None if rules is None else rules.digest)
            if rules is None:
                self.last_report = report
                return report
            contexts: dict[str, KpiContext] = {}
            for pool in self.monitor.config.pools:
                contexts[pool.id] = context = self.context(pool.id, at)
                report.kpis[pool.id] = [
                    v for kpi_id, params in rules.kpis.items()
                    for v in KPIS[kpi_id].evaluate(context, params)]
                for spec in rules.thresholds:
                    if spec.pool is None or spec.pool == pool.id:
                        report.observations.extend(self._threshold(pool.id, context, spec))
            with self.table.transaction(self.ledger) as transaction:
                for pool_id, context in contexts.items():
                    for slo in rules.slos:
                        if slo.pool is None or slo.pool == pool_id:
                            status = self._slo(transaction, pool_id, context, slo, at)
                            report.slos.append(status)
                            report.observations.extend(_burn_observations(slo, status))
                self._apply(transaction, report, at)
            for record in report.fired:
                log.warning("alert fired", alert=record.id, pool=record.pool, rule=record.rule,
                            subject=record.subject, severity=record.severity,
                            value=record.value)
            for record in report.resolved:
                log.info("alert resolved", alert=record.id, pool=record.pool, rule=record.rule,
                         subject=record.subject)
            self.last_report = report
            return report

    def _threshold(self, pool: str, ctx: KpiContext, spec: ThresholdSpec) -> list[Observation]:
        if spec.source == "kpi":
            template = KPIS[spec.name]
            values = template.evaluate(ctx, spec.params)
            title, unit = template.title_en, template.unit
        else:
            lag = self.monitor.lag(pool) if spec.name == "lag_events" else 0
            values = figure_values(spec.name, ctx, spec.params, lag)
            title, unit = spec.name, FIGURES[spec.name].kind
        scales = {a.code: a.scale for a in ctx.assets()}
        out: list[Observation] = []
        for value in values:
            if not subject_matches(spec.subject, value):
                continue
            places = scales.get(value.asset or "", 6) if unit == "amount" else 6
            text = trimmed_text(value.value, max(places, 6))
            breached = value.value is not None and _compare(value.value, spec.op,
                                                            spec.threshold)
            if spec.summary is not None:
                summary = (spec.summary.replace("{value}", text or "n/a")
                           .replace("{threshold}", str(spec.threshold))
                           .replace("{subject}", value.subject).replace("{rule}", spec.id))
            elif value.value is None:
                summary = f"{title} ({value.subject}): no data ({value.note or 'no value'})"
            else:
                shown = f"{text}{_UNITS.get(unit, '')}"
                summary = (f"{title} ({value.subject}) is {shown}, "
                           f"{'' if breached else 'not '}{spec.op} {spec.threshold}")
            out.append(Observation(pool, spec.id, value.subject, spec.severity, value.value,
                                   text, breached, spec.for_us, summary))
        return out

    def _slo(self, transaction: LedgerTransaction, pool: str, ctx: KpiContext,
             slo: SloSpec, at: int) -> SloStatus:
        if slo.sli == "success":
            def counts(window_us: int) -> tuple[int, int]:
                since = at - window_us
                good = sum(ctx.index.payments(slo.kind, s, since_us=since, until_us=at)
                           for s in slo.good)
                bad = sum(ctx.index.payments(slo.kind, s, since_us=since, until_us=at)
                          for s in slo.bad)
                return good, good + bad
        else:
            bound = latency_bound_us(slo.threshold_us)
            good_now = total_now = 0
            for figures in ctx.figures.latency:
                if figures.stage == slo.stage and slo.channel in ("*", figures.channel):
                    good_now += sum(figures.buckets[:bound + 1])
                    total_now += figures.count
            self.table.sample(transaction, pool, slo.id, at, good_now, total_now,
                              slo.longest_us())

            def counts(window_us: int) -> tuple[int, int]:
                base = self.table.sample_at(transaction, pool, slo.id, at - window_us)
                if base is None:
                    return 0, 0
                _, good, total = base
                if total_now < total:  # the projection was rebuilt: counting starts again
                    return good_now, total_now
                return good_now - good, total_now - total

        good, total = counts(slo.window_us)
        burns = []
        for spec in slo.burn_rates:
            long_good, long_total = counts(spec.long_us)
            short_good, short_total = counts(spec.short_us)
            burns.append(BurnRate(spec.long_us, spec.short_us, spec.factor, spec.severity,
                                  burn_rate(long_good, long_total, slo.objective),
                                  burn_rate(short_good, short_total, slo.objective)))
        return SloStatus(pool, slo.id, slo.subject, slo.objective, slo.window_us, good, total,
                         tuple(burns))

    def _apply(self, transaction: LedgerTransaction, report: EvaluationReport,
               at: int) -> None:
        """Fire what has held long enough, resolve what no longer holds; one event each."""
        evaluated = {pool.id for pool in self.monitor.config.pools}
        active = {(a.pool, a.rule, a.subject): a for a in self.table.active_in(transaction)}
        seen: set[tuple[str, str, str]] = set()
        events: list[Event] = []
        for observation in report.observations:
            key = (observation.pool, observation.rule, observation.subject)
            seen.add(key)
            if not observation.breached:
                self._pending.pop(key, None)
                current = active.get(key)
                if current is not None:
                    resolved = _resolved(current, at)
                    self.table.update(transaction, resolved)
                    events.append(_event(resolved, transaction.at_us, observation.summary,
                                         observation.value_text))
                    report.resolved.append(resolved)
                continue
            if key in active:
                continue
            since = self._pending.setdefault(key, at)
            if at - since < observation.for_us:
                report.pending.append(observation)
                continue
            self._pending.pop(key, None)
            record = AlertRecord(self.ids.new_id(at), observation.pool, observation.rule,
                                 observation.subject, observation.severity, "firing",
                                 observation.value_text, observation.summary, at)
            self.table.insert(transaction, record)
            events.append(_event(record, transaction.at_us, record.summary, record.value))
            report.fired.append(record)
        # Active alerts nothing observed this time (rule removed, subject gone) resolve too.
        for key, current in active.items():
            if key in seen or current.pool not in evaluated:
                continue
            resolved = _resolved(current, at)
            self.table.update(transaction, resolved)
            events.append(_event(resolved, transaction.at_us,
                                 f"{current.rule} ({current.subject}): no longer evaluated "
                                 "(rule removed or subject gone)", None))
            report.resolved.append(resolved)
        for key in [k for k in self._pending if k not in seen]:
            del self._pending[key]
        transaction.emit(events)


def _burn_observations(slo: SloSpec, status: SloStatus) -> list[Observation]:
    out: list[Observation] = []
    for spec, burn in zip(slo.burn_rates, status.burn_rates, strict=True):
        long_text, short_text = trimmed_text(burn.long, 4), trimmed_text(burn.short, 4)
        objective = f"{trimmed_text(slo.objective)} over {format_duration(slo.window_us)}"
        summary = (
            f"SLO {slo.title} ({objective}): "
            f"error budget burning {long_text or 'n/a'}× over {format_duration(spec.long_us)} "
            f"and {short_text or 'n/a'}× over {format_duration(spec.short_us)} "
            f"({'at or above' if burn.breached else 'below'} {spec.factor}×)")
        out.append(Observation(status.pool, spec.rule_id(slo.id), slo.subject, spec.severity,
                               burn.long, long_text, burn.breached, 0, summary))
    return out


def _resolved(record: AlertRecord, at: int) -> AlertRecord:
    return AlertRecord(record.id, record.pool, record.rule, record.subject, record.severity,
                       "resolved", record.value, record.summary, record.fired_at_us,
                       record.acknowledged_at_us, record.acknowledged_by, max(at,
                                                                              record.fired_at_us))


def _step(record: AlertRecord) -> int:
    """The number of this step in the alert's life: fired 1, acknowledged 2, resolved 2 or
    3 (after an acknowledgement); the event id is `<alert id>:<step>`."""
    if record.state == "firing":
        return 1
    if record.state == "acknowledged":
        return 2
    return 3 if record.acknowledged_at_us is not None else 2


def _event(record: AlertRecord, at_us: int, summary: str, value: str | None) -> Event:
    kind = {"firing": "alert.fired", "acknowledged": "alert.acknowledged",
            "resolved": "alert.resolved"}[record.state]
    data = AlertChanged(record.id, record.rule, record.severity, record.subject, summary,
                        value, record.acknowledged_by if kind == "alert.acknowledged" else None)
    return Event(f"{record.id}:{_step(record)}", kind, record.pool, at_us, data)


def acknowledge(ledger: Ledger, table: AlertStore, alert_id: str, actor: str, *,
                at_us: int) -> AlertRecord:
    """Acknowledge a firing alert for `actor`: the row and its `alert.acknowledged` event in
    one ledger transaction. `unknown_alert`, `alert_not_firing`, `invalid_actor` otherwise."""
    actor = actor.strip()
    if not _ACTOR.match(actor):
        raise InvalidActor(actor=actor[:ACTOR_CHARS_MAX])
    with table.transaction(ledger) as transaction:
        current = table.get_in(transaction, alert_id)
        if current is None:
            raise UnknownAlert(alert_id=alert_id)
        if current.state != "firing":
            raise AlertNotFiring(alert_id=alert_id, state=current.state,
                                 acknowledged_by=current.acknowledged_by)
        record = AlertRecord(current.id, current.pool, current.rule, current.subject,
                             current.severity, "acknowledged", current.value, current.summary,
                             current.fired_at_us, max(at_us, current.fired_at_us), actor)
        table.update(transaction, record)
        transaction.emit([_event(record, transaction.at_us,
                                 f"acknowledged by {actor}: {current.summary}",
                                 current.value)])
    log.info("alert acknowledged", alert=alert_id, by=actor)
    return record


def templates_doc() -> list[dict[str, object]]:
    """The KPI library as JSON-ready documents (for `fundpool alerts kpis --json`, the API)."""
    return [t.to_dict() for t in KPIS.values()]


def figures_doc() -> list[dict[str, object]]:
    return [{"name": f.name, "kind": f.kind, "description": f.description,
             "params": ["stage"] if f.takes_stage else []} for f in FIGURES.values()]
