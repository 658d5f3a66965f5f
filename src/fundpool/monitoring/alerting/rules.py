"""The rules in force, compiled from a rules file (docs/monitoring-alerts.md).

`load_rules` reads the YAML, validates it against the schema (`schema.py`) and compiles it
into a `RuleSet`: threshold rules ready to evaluate (the enabled KPIs' default alerts among
them) and SLOs with their burn-rate alerts. A file that is not valid raises
`invalid_alert_rules` with one line per problem found, each naming the rule at fault.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from fundpool.core.errors import FundpoolError
from fundpool.monitoring.alerting.figures import FIGURES
from fundpool.monitoring.alerting.schema import RulesDocument, SuccessSli, parse_subject
from fundpool.monitoring.kpis import KPIS, KpiValue, format_duration, subject_of

RULES_FILE_BYTES_MAX = 1 << 20


class InvalidAlertRules(FundpoolError):
    code = "invalid_alert_rules"
    title = "the alert rules file is not valid"


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


def compile_rules(document: RulesDocument, digest: str, source: str) -> RuleSet:
    """A validated file's rules, ready to evaluate; `invalid_alert_rules` for what only the
    whole file shows (an id used twice, a rule on a KPI switched off, a burn-rate window
    longer than its SLO's)."""
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
    return compile_rules(document, digest, source)


def load_rules_file(path: str | Path) -> RuleSet:
    return load_rules(read_rules_text(Path(path)), source=str(path))


def read_rules_text(path: Path) -> str:
    """The text of a rules file, or `invalid_alert_rules` (too large, unreadable)."""
    try:
        if path.stat().st_size > RULES_FILE_BYTES_MAX:
            raise InvalidAlertRules(f"{path}: the file is larger than "
                                    f"{RULES_FILE_BYTES_MAX} bytes", source=str(path))
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        why = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise InvalidAlertRules(f"{path}: cannot be read: {why}", source=str(path),
                                errors=[f"cannot be read: {why}"]) from None

