"""`fundpool alerts …`: KPI templates, alert rules and SLOs, and the alerts they raise.

`check FILE` validates a rules file (exit 2 with every problem, each naming its rule);
`eval` brings the projections up to date, evaluates the rules once on every pool and prints
what fired and what resolved; `list` shows the active alerts (`--all`: the history); `ack ID`
acknowledges one in the name of the operating-system user (`--by NAME`: the name shown, for
an on-call person acting through a shared account); `kpis` lists the KPI library. The rules
file is `--rules PATH`, else $FUNDPOOL_ALERTS, else ./alerts.yaml (docs/monitoring-alerts.md).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fundpool import compose
from fundpool.cli.actor import local_actor
from fundpool.cli.options import DataDirOption, DbUrlOption, JsonOption
from fundpool.cli.output import emit_json, log_to_stderr, stdout_console
from fundpool.cli.pool_options import ConfigOption, config_path
from fundpool.cli.session import session
from fundpool.ledger.docs import iso
from fundpool.monitoring.kpis import (
    TEMPLATES,
    KpiValue,
    decimal_text,
    format_duration,
    trimmed_text,
)
from fundpool.pool.config import load_config
from fundpool.runtime import SystemClock

if TYPE_CHECKING:
    from fundpool.monitoring.alerting.engine import EvaluationReport
    from fundpool.monitoring.alerting.ports import AlertRecord
    from fundpool.monitoring.alerting.rules import InvalidAlertRules

# fundpool.monitoring.alerting (pydantic models) is imported by the commands that need it: every
# other `fundpool` command would pay a third of a second to start otherwise.

ALERTS_ENV = "FUNDPOOL_ALERTS"
DEFAULT_RULES = "alerts.yaml"

app = typer.Typer(
    name="alerts",
    help="KPI templates, alert rules and SLOs, and the alerts they raise.",
    no_args_is_help=True,
)

RulesOption = Annotated[
    Path | None,
    typer.Option(
        "--rules",
        help=f"Alert rules (YAML; default: ${ALERTS_ENV}, then ./{DEFAULT_RULES}).",
        show_default=False,
    ),
]



@app.callback()
def main() -> None:
    """KPI templates, alert rules and SLOs, and the alerts they raise."""
    # Log lines (an alert fired, rules reloaded) go to stderr, so that --json stays one
    # document on stdout; only where lines go is set, the rest of structlog's settings stay.
    log_to_stderr()


def rules_path(option: Path | None) -> Path:
    return option or Path(os.environ.get(ALERTS_ENV) or DEFAULT_RULES)


def _invalid(error: InvalidAlertRules, as_json: bool) -> None:
    if as_json:
        emit_json(error.to_dict())
        return
    console = Console(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)
    console.print(Text.assemble(("error", "bold red"),
                                f"[{error.code}]: {error.facts.get('source', '')}"))
    errors = error.facts.get("errors")
    for line in errors if isinstance(errors, list) else [error.detail]:
        console.print(f"  - {line}")


@app.command()
def check(
    file: Annotated[Path, typer.Argument(help="The alert rules file (YAML).")],
    as_json: JsonOption = False,
) -> None:
    """Validate a rules file: exit 2 with every problem found, each naming its rule."""
    from fundpool.monitoring.alerting.rules import InvalidAlertRules, load_rules_file

    try:
        rules = load_rules_file(file)
    except InvalidAlertRules as error:
        _invalid(error, as_json)
        raise typer.Exit(2) from None
    summary = rules.summary()
    if as_json:
        emit_json({"ok": True, **summary})
        return
    burns = sum(len(s.burn_rates) for s in rules.slos)
    defaults = sum(1 for t in rules.thresholds if t.default_alert)
    console = stdout_console()
    console.print(Text(
        f"ok: {file}: {len(rules.kpis)} KPIs on, {len(rules.thresholds)} threshold rules "
        f"({defaults} KPI default alerts), {len(rules.slos)} SLOs with {burns} burn-rate "
        f"alerts", style="green"))
    table = Table(title="rules", title_justify="left")
    for column in ("id", "rule"):
        table.add_column(column)
    for spec in rules.thresholds:
        table.add_row(spec.id, spec.describe())
    for slo in rules.slos:
        for burn in slo.burn_rates:
            table.add_row(burn.rule_id(slo.id),
                          f"SLO {slo.id} {trimmed_text(slo.objective)} "
                          f"over {format_duration(slo.window_us)}: burn ≥ {burn.factor}× over "
                          f"{format_duration(burn.long_us)} and {format_duration(burn.short_us)}"
                          f" → {burn.severity}")
    console.print(table)


def alerts_table(title: str, records: Sequence[AlertRecord]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("id", "pool", "rule", "subject", "severity", "state", "value", "fired",
                   "acknowledged", "summary"):
        table.add_column(column)
    for r in records:
        acked = "" if r.acknowledged_at_us is None else (
            f"{iso(r.acknowledged_at_us)} by {r.acknowledged_by}")
        table.add_row(r.id, r.pool, r.rule, r.subject, r.severity, r.state, r.value or "",
                      iso(r.fired_at_us), acked, r.summary)
    return table


def kpi_table(pool: str, values: Sequence[KpiValue]) -> Table:
    units = {t.id: t.unit for t in TEMPLATES}
    table = Table(title=f"KPIs of pool {pool}", title_justify="left")
    for column in ("kpi", "subject", "value", "unit", "note"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for v in values:
        table.add_row(v.kpi, v.subject, decimal_text(v.value, 4) or "n/a",
                      units.get(v.kpi, ""), v.note or "")
    return table


def report_renderables(report: EvaluationReport) -> list[object]:
    out: list[object] = []
    if report.rules_error:
        out.append(Text(f"rules not reloaded, the previous ones stay: {report.rules_error}",
                        style="bold red"))
    out.append(Text(
        f"evaluated at {iso(report.at_us)}: fired {len(report.fired)}, resolved "
        f"{len(report.resolved)}, waiting for their 'for' {len(report.pending)}"))
    for pool, values in report.kpis.items():
        out.append(kpi_table(pool, values))
    if report.slos:
        table = Table(title="SLOs", title_justify="left")
        for column in ("pool", "slo", "subject", "objective", "window", "good/total", "sli",
                       "budget left", "burn rates (long / short ≥ factor)"):
            table.add_column(column)
        for s in report.slos:
            burns = "; ".join(
                f"{format_duration(b.long_us)} {decimal_text(b.long, 2) or 'n/a'} / "
                f"{format_duration(b.short_us)} {decimal_text(b.short, 2) or 'n/a'} "
                f"≥ {b.factor}{' FIRING' if b.breached else ''}" for b in s.burn_rates)
            table.add_row(s.pool, s.slo, s.subject, decimal_text(s.objective, 4) or "",
                          format_duration(s.window_us), f"{s.good}/{s.total}",
                          decimal_text(s.sli, 4) or "n/a",
                          decimal_text(s.budget_remaining, 4) or "n/a", burns)
        out.append(table)
    if report.pending:
        table = Table(title="waiting for their 'for'", title_justify="left")
        for column in ("pool", "rule", "subject", "severity", "for", "summary"):
            table.add_column(column)
        for o in report.pending:
            table.add_row(o.pool, o.rule, o.subject, o.severity, format_duration(o.for_us),
                          o.summary)
        out.append(table)
    if report.fired:
        out.append(alerts_table("fired", report.fired))
    if report.resolved:
        out.append(alerts_table("resolved", report.resolved))
    return out


@app.command("eval")
def evaluate(
    rules: RulesOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Apply the events not yet applied, evaluate the rules once, print what fired and what
    resolved (with the KPIs and SLOs as they stand)."""
    from fundpool.monitoring.alerting.reload import AlertRules

    with session(data_dir, db_url, as_json) as s:
        declared = load_config(config_path(config))
        holder = AlertRules(rules_path(rules))
        monitor = compose.monitor(s.store, declared)
        monitor.step()
        engine = compose.alert_engine(s.store, monitor, holder)
        report = engine.evaluate()
        active = engine.active()
        doc = {**report.to_dict(), "active": [a.to_dict() for a in active]}
        s.emit(doc, [*report_renderables(report),
                     Text(f"{len(active)} alerts active")])


@app.command("list")
def list_alerts(
    show_all: Annotated[bool, typer.Option(
        "--all", help="Every alert, resolved ones too, newest first.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many (with --all).")] = 100,
    pool: Annotated[str | None, typer.Option("--pool", help="Only this pool's.")] = None,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """The active alerts (firing or acknowledged); `--all` for the history."""
    with session(data_dir, db_url, as_json) as s:
        table = compose.alert_store(s.store)
        table.ensure_now(s.ledger())
        records = table.history(limit, pool) if show_all else table.active(pool)
        s.emit({"alerts": [r.to_dict() for r in records]},
               [alerts_table("alerts" if show_all else "active alerts", records),
                Text(f"{len(records)} alerts")])


@app.command()
def ack(
    alert_id: Annotated[str, typer.Argument(help="The alert's id.")],
    by: Annotated[str | None, typer.Option(
        "--by", help="The name shown for who acknowledges it (default: the operating-system "
        "user, who is recorded as the actor either way).")] = None,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Acknowledge a firing alert (an `alert.acknowledged` event with who did it)."""
    from fundpool.core.actor import Actor
    from fundpool.monitoring.alerting.engine import acknowledge

    actor = local_actor()
    if by is not None:
        actor = Actor(actor.kind, actor.id, by, actor.roles)
    with session(data_dir, db_url, as_json) as s:
        record = acknowledge(s.ledger(), compose.alert_store(s.store), alert_id, actor,
                             at_us=SystemClock().now_us())
        s.emit(record.to_dict(), Text(f"alert {record.id} ({record.rule}, {record.subject}) "
                                      f"acknowledged by {record.acknowledged_by}"))


@app.command()
def kpis(as_json: JsonOption = False) -> None:
    """The KPI library: formula, unit, parameters, default alert and panel of each."""
    from fundpool.monitoring.alerting.docs import templates_doc

    if as_json:
        emit_json({"kpis": templates_doc()})
        return
    table = Table(title="KPI templates", title_justify="left", show_lines=True)
    for column in ("id", "title", "formula", "unit", "params", "default alert", "panel"):
        table.add_column(column)
    for t in TEMPLATES:
        params = ", ".join(f"{p.name}={p.default_text()}" for p in t.params) or "-"
        wait = f" for {format_duration(t.alert.for_us)}" if t.alert.for_us else ""
        table.add_row(t.id, f"{t.title_en}\n{t.title_zh}", t.formula, t.unit, params,
                      f"{t.alert.op} {t.alert.threshold}{wait} → {t.alert.severity}",
                      f"{t.panel.type} ({t.panel.unit})")
    stdout_console().print(table)
