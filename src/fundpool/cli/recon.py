"""`fundpool recon ...`: reconciliation of statements against the books, on a local store
(docs/reconciliation.md).

    fundpool recon import statement.xml --channel bank-a      # camt.053/054, MT940, chain JSON
    fundpool recon import export.csv --channel bank-a --mapping bank-a-csv
    fundpool recon match --channel bank-a                     # run matching again
    fundpool recon breaks [--channel bank-a] [--side statement]
    fundpool recon resolve statement <line id> --note "bank fee, agreed" [--book]
    fundpool recon balances [--channel bank-a]
    fundpool recon expect --channel bank-a --asset USD --min 990.00 --max 1010.00 \\
        --from 2026-12-07T00:00:00Z --until 2026-12-10T00:00:00Z --reference INV-42
    fundpool recon expected [--channel bank-a]
    fundpool recon mapping-save bank-a-csv mapping.yaml

Exit code 2 with the error's code on a refusal (a file that cannot be read names the place).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from fundpool import compose
from fundpool.cli.actor import local_actor
from fundpool.cli.options import DataDirOption, DbUrlOption, JsonOption, parse_instant
from fundpool.cli.output import log_to_stderr
from fundpool.cli.pool_options import ConfigOption, PoolOption, config_path
from fundpool.cli.session import Session, session
from fundpool.core.money import format_amount, parse_amount
from fundpool.ledger.docs import iso
from fundpool.pool.config import load_config
from fundpool.recon.model import FileFormat, Side
from fundpool.reconciliation.model import State

if TYPE_CHECKING:
    from fundpool.reconciliation.model import BalanceCheck, RunReport, StateRow
    from fundpool.reconciliation.service import ReconService

app = typer.Typer(name="recon", no_args_is_help=True,
                  help="Reconciliation: import statements, match, breaks, resolve, balances.")

ChannelOption = Annotated[str, typer.Option("--channel", help="The channel (bank account).")]
ChannelFilter = Annotated[str | None, typer.Option("--channel", help="Only this channel.")]


@app.callback()
def main() -> None:
    """Reconciliation: import statements, match, breaks, resolve, balances."""
    log_to_stderr()


def _service(s: Session, config: Path | None, pool: str | None) -> ReconService:
    declared = load_config(config_path(config))
    return compose.recon_service(s.store, declared, declared.pool(pool))


def _money(service: ReconService, asset: str, minor: int | None) -> str:
    return "-" if minor is None else f"{format_amount(minor, service.scales[asset])} {asset}"


def _run_doc(run: RunReport) -> dict[str, object]:
    return {"channel": run.channel, "lines": run.lines, "items": run.items,
            "matched_lines": run.matched_lines, "matched_items": run.matched_items,
            "ambiguous": run.ambiguous, "breaks": run.breaks,
            "expected_matched": run.expected_matched}


def _run_text(run: RunReport) -> str:
    return (f"{run.channel}: {run.lines} open line(s) against {run.items} book item(s): "
            f"{run.matched_lines} line(s) matched with {run.matched_items} item(s), "
            f"{run.ambiguous} ambiguous, {run.breaks} break(s), "
            f"{run.expected_matched} expected payment(s) arrived")


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    channel: ChannelOption,
    format: Annotated[FileFormat | None, typer.Option(
        "--format", help="Say the format instead of detecting it.")] = None,
    mapping: Annotated[str | None, typer.Option(
        "--mapping", help="The saved CSV column mapping to read a CSV file with.")] = None,
    config: ConfigOption = None, pool: PoolOption = None, data_dir: DataDirOption = None,
    db_url: DbUrlOption = None, as_json: JsonOption = False,
) -> None:
    """Import a statement file (checked whole first), then match the channel."""
    with session(data_dir, db_url, as_json) as s:
        service = _service(s, config, pool)
        report = service.import_file(channel, file.read_bytes(), file.name,
                                     actor=local_actor(), format=format, mapping=mapping)
        doc = {"file_id": report.file.file_id, "format": report.file.format,
               "message": report.file.message,
               "statements": [st.statement_id for st in report.statements],
               "lines": report.file.lines, "run": _run_doc(report.run)}
        s.emit(doc, [f"imported {file.name} ({report.file.message}): "
                     f"{len(report.statements)} statement(s), {report.file.lines} line(s)",
                     _run_text(report.run)])


@app.command("match")
def match(channel: ChannelOption, config: ConfigOption = None, pool: PoolOption = None,
          data_dir: DataDirOption = None, db_url: DbUrlOption = None,
          as_json: JsonOption = False) -> None:
    """Match the channel's open lines and items again."""
    with session(data_dir, db_url, as_json) as s:
        run = _service(s, config, pool).run(channel, actor=local_actor())
        s.emit(_run_doc(run), _run_text(run))


def _row_doc(service: ReconService, row: StateRow, now_us: int) -> dict[str, object]:
    return {"side": row.side.value, "id": row.id, "channel": row.channel,
            "state": row.state.value, "reason": row.reason,
            "amount": format_amount(row.amount_minor, service.scales[row.asset]),
            "asset": row.asset, "at": iso(row.at_us), "age_days": row.age_days(now_us),
            "related": list(row.related), "payment_id": row.payment_id}


@app.command("breaks")
def breaks(channel: ChannelFilter = None, side: Annotated[Side | None, typer.Option(
        "--side", help="statement or books.")] = None,
        limit: Annotated[int, typer.Option("--limit", min=1, max=1_000)] = 200,
        config: ConfigOption = None, pool: PoolOption = None, data_dir: DataDirOption = None,
        db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """Open breaks and ambiguous items, oldest first, with their age."""
    with session(data_dir, db_url, as_json) as s:
        service = _service(s, config, pool)
        rows = service.states(channel, states=[State.BREAK, State.AMBIGUOUS], side=side,
                              limit=limit)
        now = service.clock.now_us()
        table = Table("side", "id", "channel", "state", "reason", "amount", "age (days)",
                      "related")
        for row in rows:
            table.add_row(row.side.value, row.id, row.channel, row.state.value,
                          row.reason or "", _money(service, row.asset, row.amount_minor),
                          str(row.age_days(now)), " ".join(row.related[:3]))
        s.emit({"breaks": [_row_doc(service, r, now) for r in rows]},
               table if rows else "no open breaks")


@app.command("resolve")
def resolve(side: Annotated[Side, typer.Argument(help="statement or books.")],
            target: Annotated[str, typer.Argument(help="The line's or item's id.")],
            note: Annotated[str, typer.Option("--note", help="Why (kept with the action).")],
            book: Annotated[bool, typer.Option(
                "--book", help="Book the difference as a ledger adjustment.")] = False,
            config: ConfigOption = None, pool: PoolOption = None,
            data_dir: DataDirOption = None, db_url: DbUrlOption = None,
            as_json: JsonOption = False) -> None:
    """Close a break or an ambiguous item with a note, or book its difference."""
    with session(data_dir, db_url, as_json) as s:
        service = _service(s, config, pool)
        r = service.resolve(side, target, note=note, actor=local_actor(), book=book)
        doc = {"id": r.id, "action": r.action.value, "target": r.target,
               "amount": format_amount(r.amount_minor, service.scales[r.asset]),
               "asset": r.asset, "entry_id": r.entry_id}
        s.emit(doc, f"{r.action.value}: {r.side.value} {r.target}"
               + (f" ({_money(service, r.asset, r.amount_minor)} booked as entry "
                  f"{r.entry_id})" if r.entry_id else ""))


def _check_doc(service: ReconService, c: BalanceCheck) -> dict[str, object]:
    s = c.statement
    return {"statement": s.statement_id, "id": s.id, "channel": s.channel, "asset": s.asset,
            "opening": s.opening_minor, "closing": s.closing_minor,
            "ledger_opening": c.ledger_opening_minor, "ledger_closing": c.ledger_closing_minor,
            "booked_after": c.booked_after_minor,
            "opening_difference": c.opening_difference_minor,
            "closing_difference": c.closing_difference_minor, "open_lines": c.open_lines,
            "reconciled": c.reconciled}


@app.command("balances")
def balances(channel: ChannelFilter = None, config: ConfigOption = None,
             pool: PoolOption = None, data_dir: DataDirOption = None,
             db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """Each statement's balances against the ledger's at the statement's times."""
    with session(data_dir, db_url, as_json) as s:
        service = _service(s, config, pool)
        checks = service.balances(channel)
        table = Table("channel", "statement", "closing", "ledger", "difference", "open lines",
                      "reconciled")
        for c in checks:
            st = c.statement
            ledger = (None if c.ledger_closing_minor is None
                      else c.ledger_closing_minor + c.booked_after_minor)
            table.add_row(st.channel, st.statement_id,
                          _money(service, st.asset, st.closing_minor),
                          _money(service, st.asset, ledger),
                          _money(service, st.asset, c.closing_difference_minor),
                          str(c.open_lines), "yes" if c.reconciled else "no")
        s.emit({"balances": [_check_doc(service, c) for c in checks]},
               table if checks else "no statements")


@app.command("expect")
def expect(channel: ChannelOption,
           asset: Annotated[str, typer.Option("--asset")],
           amount_min: Annotated[str, typer.Option("--min", help="Smallest amount expected.")],
           amount_max: Annotated[str, typer.Option("--max", help="Largest amount expected.")],
           since: Annotated[str, typer.Option("--from", help="ISO-8601 with a zone.")],
           until: Annotated[str, typer.Option("--until", help="ISO-8601 with a zone.")],
           reference: Annotated[str | None, typer.Option("--reference")] = None,
           counterparty: Annotated[str | None, typer.Option("--counterparty")] = None,
           config: ConfigOption = None, pool: PoolOption = None,
           data_dir: DataDirOption = None, db_url: DbUrlOption = None,
           as_json: JsonOption = False) -> None:
    """Announce an incoming payment: matched against credits as they arrive."""
    with session(data_dir, db_url, as_json) as s:
        service = _service(s, config, pool)
        scale = service.scales[asset]
        e = service.expect(channel, asset=asset,
                           amount_min_minor=parse_amount(amount_min, scale, asset=asset),
                           amount_max_minor=parse_amount(amount_max, scale, asset=asset),
                           from_us=parse_instant(since), until_us=parse_instant(until),
                           reference=reference, counterparty=counterparty,
                           actor=local_actor())
        s.emit({"id": e.id, "state": e.state.value}, f"expected payment {e.id} is open")


@app.command("expected")
def expected(channel: ChannelFilter = None, config: ConfigOption = None,
             pool: PoolOption = None, data_dir: DataDirOption = None,
             db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """Expected payments and whether they arrived."""
    with session(data_dir, db_url, as_json) as s:
        service = _service(s, config, pool)
        found = service.expected(channel)
        table = Table("id", "channel", "amount", "from", "until", "reference", "state",
                      "credit")
        for e in found:
            table.add_row(e.id, e.channel,
                          f"{_money(service, e.asset, e.amount_min_minor)} .. "
                          f"{_money(service, e.asset, e.amount_max_minor)}",
                          iso(e.from_us), iso(e.until_us), e.reference or "", e.state.value,
                          e.credit_id or "")
        s.emit({"expected": [{"id": e.id, "channel": e.channel, "state": e.state.value,
                              "credit_id": e.credit_id, "reference": e.reference}
                             for e in found]}, table if found else "none")


@app.command("mapping-save")
def mapping_save(name: str,
                 file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
                 config: ConfigOption = None, pool: PoolOption = None,
                 data_dir: DataDirOption = None, db_url: DbUrlOption = None,
                 as_json: JsonOption = False) -> None:
    """Save a bank's CSV column mapping (YAML)."""
    with session(data_dir, db_url, as_json) as s:
        _service(s, config, pool).save_mapping(name, file.read_text(encoding="utf-8"),
                                               actor=local_actor())
        s.emit({"name": name, "state": "saved"}, f"mapping {name} saved")
