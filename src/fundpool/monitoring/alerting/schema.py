"""The alert rules file as pydantic models: what a rules file may say (docs/monitoring-alerts.md).

Which KPI templates are on, with their parameters and default alerts; threshold rules on a KPI
or a named figure; SLOs with multi-window, multi-burn-rate alerts. Unknown keys are errors.
Checks that need the whole file (ids used twice, a burn-rate window longer than its SLO's) are
the compiler's (`rules.py`).
"""

from __future__ import annotations

import difflib
import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from fundpool.monitoring.alerting.figures import FIGURES
from fundpool.monitoring.kpis import (
    DAY_US,
    KINDS,
    KPIS,
    SERIES_WINDOW_MAX_US,
    format_duration,
    latency_bound_us,
    parse_duration_us,
)
from fundpool.payments.model import PaymentState

SUMMARY_CHARS_MAX = 500

# The Google SRE workbook's multi-window, multi-burn-rate alerts for a 30-day SLO: 2% of the
# budget in an hour pages, 5% in six hours warns, 10% in three days is worth a ticket.
DEFAULT_BURN_RATES: tuple[dict[str, object], ...] = (
    {"long": "1h", "short": "5m", "factor": "14.4", "severity": "critical"},
    {"long": "6h", "short": "30m", "factor": "6", "severity": "warning"},
    {"long": "3d", "short": "6h", "factor": "1", "severity": "info"},
)

_SUBJECT_PART = re.compile(r"^(asset|channel):([A-Za-z0-9][A-Za-z0-9._-]{0,63})$")


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
            problem = spec.subject_problem(filters)
            if problem is not None:
                raise ValueError(f"subject {self.subject!r} never matches: {problem}")
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

