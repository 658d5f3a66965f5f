"""`fundpool monitor …` and `fundpool replay`: the live figures, and the pool as it was.

`monitor show` brings the projections up to date with the outbox (the in-process bus) and
prints the pool's figures; `monitor rebuild` forgets them and folds the whole event log again.
`replay --at T` rebuilds the pool view from the journal and the projections from the event log
as of T and checks that they agree; `replay --from A --to B --speed N` plays a window's events
again, N times faster than they happened, as JSON lines.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from fundpool import compose
from fundpool.cli.options import DataDirOption, DbUrlOption, JsonOption
from fundpool.cli.pool import view_tables
from fundpool.cli.pool_options import ConfigOption, PoolOption, config_path
from fundpool.cli.session import session
from fundpool.events.model import encode
from fundpool.monitoring.docs import figures_doc
from fundpool.monitoring.figures import PoolFigures, heatmap, turnover
from fundpool.monitoring.kpis import decimal_text
from fundpool.monitoring.replay import parse_instant, replay_at, replay_window
from fundpool.pool.config import load_config
from fundpool.pool.docs import view_doc

app = typer.Typer(
    name="monitor",
    help="Live figures of the pool, kept from its events.",
    no_args_is_help=True,
)


def latency_table(figures: PoolFigures) -> Table:
    table = Table(title="latency by channel and stage (ms)", title_justify="left")
    for column in ("channel", "stage", "count", "p50", "p90", "p99"):
        table.add_column(column, justify="left" if column in ("channel", "stage") else "right")
    for f in figures.latency:
        table.add_row(f.channel, f.stage, str(f.count), f"{f.p50_us / 1000:.1f}",
                      f"{f.p90_us / 1000:.1f}", f"{f.p99_us / 1000:.1f}")
    return table


def summary_text(figures: PoolFigures) -> Text:
    ratio = decimal_text(figures.available_ratio.get("*"), 4)
    return Text(
        f"available ratio {ratio or 'n/a'} · in flight {figures.in_flight_count} · "
        f"pending {figures.pending_count} · failed {figures.failed_count} · "
        f"returned {figures.returned_count} · events "
        f"{sum(figures.events.values())}"
    )


@app.command()
def show(
    pool: PoolOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    hours: Annotated[int, typer.Option(help="Hours of the heatmap and turnover window.")] = 24,
    as_json: JsonOption = False,
) -> None:
    """Apply the events not yet applied, then print the pool's live figures."""
    with session(data_dir, db_url, as_json) as s:
        declared = load_config(config_path(config))
        chosen = declared.pool(pool)
        monitor = compose.monitor(s.store, declared)
        monitor.step()
        figures = monitor.figures(chosen.id)
        projection = monitor.snapshot(chosen.id)
        starts, channels, rows = heatmap(projection.series, declared, chosen,
                                         declared.rates_for(chosen), at_us=figures.at_us,
                                         hours=hours)
        window = hours * 3_600_000_000
        turnovers = [turnover(projection.series, a.asset.code, at_us=figures.at_us,
                              window_us=window) for a in figures.view.assets]
        doc = figures_doc(figures, declared)
        doc["heatmap"] = {"hours_us": starts, "channels": channels, "rows": rows,
                          "unit": f"{declared.asset(chosen.reporting_currency).code} minor"}
        doc["turnover"] = [
            {"asset": t.asset, "window_hours": hours, "outflow": str(t.outflow),
             "inflow": str(t.inflow), "average_total": str(t.average_total),
             "rate": decimal_text(t.rate), "days": decimal_text(t.days),
             "inflow_days": decimal_text(t.inflow_days)}
            for t in turnovers
        ]
        doc["lag"] = monitor.lag(chosen.id)
        s.emit(doc, [*view_tables(figures.view, declared), summary_text(figures),
                     latency_table(figures)])


@app.command()
def rebuild(
    pool: PoolOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Forget the projections and fold the whole event log again."""
    with session(data_dir, db_url, as_json) as s:
        declared = load_config(config_path(config))
        monitor = compose.monitor(s.store, declared)
        report = monitor.rebuild()
        s.emit({"applied": report.applied, "rejected": report.rejected,
                "ignored": report.ignored},
               Text(f"projections rebuilt from {report.applied} events"))


def replay(
    at: Annotated[str | None, typer.Option(
        "--at", help="Rebuild the pool as of this instant (ISO 8601 with zone).")] = None,
    since: Annotated[str | None, typer.Option(
        "--from", help="Play the events from this instant …")] = None,
    until: Annotated[str | None, typer.Option("--to", help="… to this one.")] = None,
    speed: Annotated[float, typer.Option(
        help="Play N times faster than the events happened (0: at once).")] = 60.0,
    pool: PoolOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """The pool as it stood at a past instant (`--at`), or a past window played again."""
    if (at is None) == (since is None or until is None):
        raise typer.BadParameter("give either --at, or both --from and --to")
    with session(data_dir, db_url, as_json) as s:
        declared = load_config(config_path(config))
        chosen = declared.pool(pool)
        outbox = compose.outbox(s.store)
        if at is not None:
            result = replay_at(s.store, outbox, declared, chosen, parse_instant(at))
            doc = figures_doc(result.figures, declared)
            doc.update({"journal_seq": result.journal_seq, "events_applied": result.events,
                        "agrees_with_journal": result.agrees,
                        "journal_view": view_doc(result.journal_view)})
            verdict = Text(
                f"as of {at}: journal entry {result.journal_seq}, {result.events} events; "
                + ("projection agrees with the journal" if result.agrees
                   else "PROJECTION DISAGREES WITH THE JOURNAL"),
                style="green" if result.agrees else "bold red",
            )
            s.emit(doc, [*view_tables(result.figures.view, declared),
                         summary_text(result.figures), verdict])
            if not result.agrees:
                raise typer.Exit(1)
            return
        for event in replay_window(outbox, chosen.id, since_us=parse_instant(since or ""),
                                   until_us=parse_instant(until or ""), speed=speed):
            typer.echo(encode(event).decode())

