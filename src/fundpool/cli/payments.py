"""`fundpool payment ...`: create payments and move them through their life.

    fundpool payment create --kind payout --asset USD --amount 300.00 --counterparty "Bob"
    fundpool payment act <id> screen          # the risk decision, as the engine takes it
    fundpool payment act <id> route --channel bank-a
    fundpool payment act <id> approve
    fundpool payment show <id>
    fundpool payment list --state routed
    fundpool payment batch payouts.csv --wait 30s     # check, create, dispatch a payout file
    fundpool payment routes <id>                      # each attempt's rail and candidates
    fundpool payment batches --channel bank-a         # batches sent, fees and savings

Each command takes the store options of `fundpool ledger`; those that create or move
payments also take the pool configuration (`--config`, `--pool`). Amounts are decimal text
at the asset's scale. `create`, `show` and `list` also act on a server with `--url` and
`--api-key` (cli/backend.py, cli/remote.py).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from fundpool import compose
from fundpool.cli.actor import local_actor
from fundpool.cli.options import (
    ApiKeyOption,
    DataDirOption,
    DbUrlOption,
    JsonOption,
    KeyOption,
    MetaOption,
    UrlOption,
    parse_duration,
    parse_meta,
)
from fundpool.cli.output import Output, emit_json, report_error, stdout_console
from fundpool.cli.pool_options import ConfigOption, PoolOption, config_path
from fundpool.cli.session import Session, session
from fundpool.cli.target import Where, open_backend
from fundpool.ledger.docs import amount_fields, format_minor, iso
from fundpool.payments.model import (
    Action,
    InvalidPayment,
    Payment,
    PaymentKind,
    PaymentState,
    UnknownPayment,
)
from fundpool.pool.config import load_config
from fundpool.runtime import SystemClock, system_ids

# What one command alone uses loads in it (the payout file and the dispatcher in `batch`, the
# router's records in `routes`): `payment list` starts without them.
if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress as RichProgress

    from fundpool.core.money import Asset
    from fundpool.payments.batch_payouts import PayoutFileResult, Progress
    from fundpool.payments.csv_batch import PayoutFile
    from fundpool.payments.dispatch import Dispatcher
    from fundpool.payments.records import RouteRecord
    from fundpool.payments.service import PaymentService
    from fundpool.routing.decision import RoutingDecision

app = typer.Typer(
    name="payment",
    help="Payments: deposits, payouts, internal and bridge transfers, through their life.",
    no_args_is_help=True,
)

ChannelOption = Annotated[
    str | None, typer.Option("--channel", help="The rail (for a transfer: its source).")
]
DestinationOption = Annotated[
    str | None,
    typer.Option("--to-channel", help="Destination channel of an internal or bridge transfer."),
]


def payment_doc(payment: Payment, s: Session) -> dict[str, object]:
    from fundpool.payments import docs as payment_docs

    return payment_docs.payment_doc(payment, s.assets().get(payment.asset))


def payment_table(doc: Mapping[str, Any]) -> Table:
    table = Table(title=f"payment {doc['id']}", title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for name in ("kind", "state", "asset", "amount", "fee", "channel", "destination_channel",
                 "destination", "counterparty", "reference", "approval_required",
                 "initiated_by", "created_at", "updated_at"):
        value = doc.get(name)
        if isinstance(value, Mapping):
            value = actor_text(value)
        if value is not None:
            table.add_row(name.replace("_", " "), str(value))
    return table


@app.command()
def create(
    kind: Annotated[PaymentKind, typer.Option("--kind", help="deposit, payout, internal, bridge")],
    asset: Annotated[str, typer.Option("--asset")],
    amount: Annotated[str, typer.Option("--amount", help="Decimal text at the asset's scale.")],
    channel: ChannelOption = None,
    to_channel: DestinationOption = None,
    counterparty: Annotated[str | None, typer.Option("--counterparty")] = None,
    reference: Annotated[str | None, typer.Option("--reference")] = None,
    destination: Annotated[str | None, typer.Option(
        "--destination", help="A payout's payee account: account number, IBAN or chain "
                              "address (required through --url).")] = None,
    key: KeyOption = None,
    meta: MetaOption = None,
    config: ConfigOption = None,
    pool: PoolOption = None,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Create a payment (state `initiated`). With --key, a retry returns the same payment."""
    metadata = parse_meta(meta)
    out = Output(as_json)
    with open_backend(Where(data_dir, db_url, url, api_key, config), out) as backend:
        doc = backend.create_payment(
            kind=kind, asset=asset, amount=amount, pool=pool, channel=channel,
            destination_channel=to_channel, counterparty=counterparty, reference=reference,
            metadata=metadata, key=key, destination=destination,
        )
        out.emit(doc, payment_table(doc))


@app.command()
def act(
    payment_id: Annotated[str, typer.Argument(help="The payment's id.")],
    action: Annotated[Action, typer.Argument(help="screen, route, approve, submit, settle, ...")],
    channel: ChannelOption = None,
    to_channel: DestinationOption = None,
    reason: Annotated[str | None, typer.Option("--reason")] = None,
    config: ConfigOption = None,
    pool: PoolOption = None,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move a payment one step; what the step posts is written with it, or nothing is. The
    step is recorded as the operating-system user's (four eyes: whoever created a payment
    that waits for approval may not approve it)."""
    from fundpool.payments.service import Step

    with session(data_dir, db_url, as_json) as s:
        if action is Action.CREATE:
            raise InvalidPayment("a payment is created with `fundpool payment create`")
        declared = load_config(config_path(config))
        payments = compose.payment_service(s.store, declared, declared.pool(pool))
        step = Step(payment_id, action, channel, to_channel, reason, actor=local_actor())
        if action is Action.APPROVE and \
                payments.get(payment_id).state is PaymentState.PENDING_APPROVAL:
            # A payment waiting for approvers is approved only by their signatures.
            from fundpool.approvals.model import SignatureRequired

            raise SignatureRequired("an approval is a signature: `fundpool approve "
                                    f"{payment_id} --key FILE`", payment_id=payment_id)
        if action is Action.SCREEN:
            # Screening is the risk decision: the active policy decides, as the engine would
            # (allow: screened; review or hold: held, with a case; block: rejected).
            from fundpool.risk.engine import screen_now

            engine = compose.risk_engine(s.store, declared, declared.pool(pool),
                                         clock=SystemClock(), ids=system_ids())
            payment = screen_now(engine, payments, payment_id, local_actor())
        else:
            # With risk control's part, as the API's (RiskService.step).
            payment = compose.risk_service(s.store, declared, lambda _pool: payments,
                                           clock=SystemClock()).step(payments, step)
        doc = payment_doc(payment, s)
        s.emit(doc, [payment_table(doc), Text(f"{action.value}: now {payment.state.value}")])


@app.command()
def show(
    payment_id: Annotated[str, typer.Argument(help="The payment's id.")],
    config: ConfigOption = None,
    pool: PoolOption = None,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """A payment and its timeline, with the ledger entries each step posted."""
    out = Output(as_json)
    with open_backend(Where(data_dir, db_url, url, api_key, config), out) as backend:
        doc = backend.payment(payment_id, pool)
        out.emit(doc, [payment_table(doc), timeline_table(doc["events"])])


def timeline_table(events: Iterable[Mapping[str, Any]]) -> Table:
    """A payment's events (`event_doc`s), oldest first."""
    timeline = Table(title="timeline", title_justify="left")
    for column in ("seq", "action", "from", "to", "at", "by", "entries"):
        timeline.add_column(column)
    for event in events:
        actor = event.get("actor")
        timeline.add_row(str(event["seq"]), event["action"], event["from"] or "", event["to"],
                         event["at"], "" if actor is None else actor_text(actor),
                         "\n".join(event["entries"]))
    return timeline


def actor_text(actor: Mapping[str, Any]) -> str:
    """Who, in a table cell: the name and the kind of principal."""
    return f"{actor.get('name') or actor.get('id')} ({actor.get('kind')})"


@app.command("list")
def list_payments(
    state: Annotated[PaymentState | None, typer.Option("--state")] = None,
    kind: Annotated[PaymentKind | None, typer.Option("--kind")] = None,
    asset: Annotated[str | None, typer.Option("--asset")] = None,
    channel: ChannelOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    after: Annotated[str | None, typer.Option("--after", help="Continue after this id.")] = None,
    config: ConfigOption = None,
    pool: PoolOption = None,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Payments, newest first, filtered; `--after <last id>` pages on."""
    out = Output(as_json)
    with open_backend(Where(data_dir, db_url, url, api_key, config), out) as backend:
        docs = backend.payments(pool=pool, state=state, kind=kind, asset=asset,
                                channel=channel, limit=limit, after=after)
        next_after = docs[-1]["id"] if len(docs) == limit else None
        out.emit({"payments": docs, "next_after": next_after}, payments_table(docs))


def payments_table(docs: list[dict[str, Any]]) -> Table:
    table = Table(title=f"{len(docs)} payments, newest first", title_justify="left")
    for column in ("id", "kind", "state", "asset", "amount", "fee", "channel", "counterparty"):
        table.add_column(column, justify="right" if column in ("amount", "fee") else "left")
    for doc in docs:
        table.add_row(*(str(doc.get(c) or "") for c in
                        ("id", "kind", "state", "asset", "amount", "fee", "channel",
                         "counterparty")))
    return table


# --- batch payouts from a CSV file ----------------------------------------------------------------

REPORT_ROWS_SHOWN_MAX = 50  # a larger file's report lists only its rows with errors
RESULT_ROWS_SHOWN_MAX = 50  # created payouts listed by line; --json lists every one
WAIT_TICK_S = 0.25  # how often a waiting batch ticks the dispatcher and reads its progress


def read_payout_file(path: Path) -> bytes:
    """The file's bytes, refusing one larger than a payout file may be before reading it."""
    from fundpool.payments.csv_batch import PAYOUT_CSV_BYTES_MAX, CsvTooLarge

    size = path.stat().st_size
    if size > PAYOUT_CSV_BYTES_MAX:
        raise CsvTooLarge(
            f"the file is {size} bytes; at most {PAYOUT_CSV_BYTES_MAX} are accepted",
            bytes=size,
            limit=PAYOUT_CSV_BYTES_MAX,
        )
    with path.open("rb") as file:
        return file.read(PAYOUT_CSV_BYTES_MAX + 1)  # a file that grew is refused by the parser


def validation_table(payouts: PayoutFile) -> list[Table | Text]:
    """Every row of a small file, else only the rows with errors: line, ok, and each error."""
    listed = [row for row in payouts.rows
              if not row.ok or len(payouts.rows) <= REPORT_ROWS_SHOWN_MAX]
    heading = Text(f"validation: {len(payouts.rows)} rows, {payouts.valid_count} valid, "
                   f"{payouts.invalid_count} with errors", style="bold")
    table = Table()
    for name in ("line", "ok", "column", "code", "message"):
        table.add_column(name, justify="right" if name == "line" else "left")
    for row in listed:
        if row.ok:
            table.add_row(str(row.line), "yes", "", "", "")
        for index, error in enumerate(row.errors):
            table.add_row(str(row.line) if index == 0 else "", "no" if index == 0 else "",
                          error.column or "(row)", error.code.value, error.message,
                          end_section=index == len(row.errors) - 1)
    shown: list[Table | Text] = [heading, table]
    if len(listed) < len(payouts.rows):
        shown.append(Text(f"{len(payouts.rows) - len(listed)} valid rows not listed "
                          "(--json lists every row)"))
    return shown


def result_table(result: PayoutFileResult) -> list[Table | Text]:
    created = [row for row in result.rows if row.payment_id is not None]
    states = Counter(row.state for row in created if row.state is not None)
    refused = Counter(row.error for row in result.rows if row.payment_id is None and row.error)
    heading = Text(f"created {len(created)} of {len(result.rows)} valid rows: "
                   + (", ".join(f"{s} {n}" for s, n in states.items()) or "none"), style="bold")
    table = Table()
    for name in ("line", "payment", "state", "error"):
        table.add_column(name, justify="right" if name == "line" else "left")
    for row in result.rows[:RESULT_ROWS_SHOWN_MAX]:
        table.add_row(str(row.line), row.payment_id or "", row.state or "", row.error or "")
    shown: list[Table | Text] = [heading, table]
    if len(result.rows) > RESULT_ROWS_SHOWN_MAX:
        shown.append(Text(f"{len(result.rows) - RESULT_ROWS_SHOWN_MAX} more rows "
                          "(--json lists every row)"))
    if refused:
        shown.append(Text("not created: " + ", ".join(f"{c} {n}" for c, n in refused.items()),
                          style="yellow"))
    if states.get(PaymentState.REJECTED.value):
        shown.append(Text("rejected: no rail could take the payout (limits, cut-off, "
                          "liquidity); `fundpool payment routes <id>` says why", style="yellow"))
    return shown


def progress_text(done: Progress) -> str:
    return (f"{done.finished} of {done.total} settled or final; "
            + ", ".join(f"{s} {n}" for s, n in sorted(done.by_state.items())))


def _bar(console: Console) -> RichProgress | None:
    """A progress bar on a terminal; elsewhere (a file, a pipe) only the end is printed."""
    if not console.is_terminal:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as RichProgress

    return RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[detail]}"), TimeElapsedColumn(),
                        console=console, transient=False)


def create_payouts(
    dispatcher: Dispatcher, payouts: PayoutFile, all_or_nothing: bool, console: Console | None
) -> PayoutFileResult:
    from fundpool.payments.batch_payouts import submit_payout_file

    bar = None if console is None else _bar(console)
    if bar is None:
        return submit_payout_file(dispatcher, payouts, all_or_nothing=all_or_nothing,
                                  actor=local_actor())
    with bar:
        task = bar.add_task("creating payouts", total=payouts.valid_count, detail="")

        def on_chunk(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return submit_payout_file(dispatcher, payouts, all_or_nothing=all_or_nothing,
                                  on_chunk=on_chunk, actor=local_actor())


def wait_for_payouts(
    payments: PaymentService,
    ids: list[str],
    wait_s: float,
    console: Console | None,
) -> Progress:
    """Watch the payouts until every one is settled or final, or `wait_s` has passed: the
    pool's engine (a `fundpool serve` on this store) sends them; this command never does, so
    that one engine alone sends a pool's payments (ADR 0016)."""
    from fundpool.payments.batch_payouts import progress

    deadline = time.monotonic() + wait_s
    bar = None if console is None else _bar(console)
    with bar or contextlib.nullcontext():
        task = None if bar is None else bar.add_task("waiting for the engine", total=len(ids),
                                                     detail="")
        while True:
            done = progress(payments, ids)
            if bar is not None and task is not None:
                bar.update(task, completed=done.finished, detail=progress_text(done))
            if done.done or time.monotonic() >= deadline:
                break
            time.sleep(WAIT_TICK_S)
    return done


@app.command()
def batch(
    file: Annotated[
        Path,
        typer.Argument(help="The payout file: CSV with payee, account, amount, asset, "
                            "reference and optionally channel.",
                       exists=True, dir_okay=False, readable=True),
    ],
    all_or_nothing: Annotated[
        bool, typer.Option("--all-or-nothing",
                           help="Create nothing unless every row is valid and goes through.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check the file and print the report only.")
    ] = False,
    wait: Annotated[
        str | None,
        typer.Option("--wait", help="Then watch for up to this long (30s, 5m) as the pool's "
                                    "engine (fundpool serve) carries them, until every payout "
                                    "is settled or final.",
                     show_default=False),
    ] = None,
    config: ConfigOption = None,
    pool: PoolOption = None,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Batch payouts from a CSV file: check every row, create the valid ones (routed and
    approved, or left for an approver); the pool's engine sends them."""
    from fundpool.payments.batch_payouts import PayoutFileHasErrors
    from fundpool.payments.csv_batch import parse_payout_csv
    from fundpool.payments.dispatch import IntakeRefused
    from fundpool.payments.docs import progress_doc

    wait_s = None if wait is None else parse_duration(wait, option="--wait")
    console = None if as_json else stdout_console()
    with session(data_dir, db_url, as_json) as s:
        declared = load_config(config_path(config))
        # Taken in here (screened, routed, approved or left for an approver); the pool's
        # engine sends them, never this command (--wait watches it do so).
        run = compose.dispatching(s.store, declared, declared.pool(pool))
        payouts = parse_payout_csv(read_payout_file(file), run.config, run.pool)
        doc: dict[str, object] = {"file": str(file), **payouts.report(), "dry_run": dry_run,
                                  "all_or_nothing": all_or_nothing}
        if console is not None:
            for renderable in validation_table(payouts):
                console.print(renderable)
        try:
            if all_or_nothing and payouts.invalid_count:
                raise PayoutFileHasErrors(
                    invalid_rows=payouts.invalid_count,
                    first_line=next(row.line for row in payouts.rows if not row.ok),
                )
            if dry_run:
                s.emit(doc, Text(f"dry run: nothing created ({payouts.valid_count} rows would "
                                 "be)"))
                return
            result = create_payouts(run.dispatcher, payouts, all_or_nothing, console)
        except (PayoutFileHasErrors, IntakeRefused) as error:
            if as_json:
                emit_json({**error.to_dict(), "report": payouts.report()})
            else:
                report_error(error, as_json=False)
            raise typer.Exit(2) from None
        doc["created"] = [
            {"line": r.line, "payment_id": r.payment_id, "state": r.state, "error": r.error}
            for r in result.rows
        ]
        human: list[Table | Text] = result_table(result)
        done: Progress | None = None
        if wait_s is not None:
            done = wait_for_payouts(run.payments, result.payment_ids, wait_s, console)
            human.append(Text(("all settled or final: " if done.done else
                               f"after {wait_s:g} s: ") + progress_text(done)))
            if not done.done:
                human.append(Text("the pool's engine sends them: is `fundpool serve` running "
                                  "on this store? what it has not settled goes on there",
                                  style="yellow"))
        else:
            human.append(Text("approved payouts wait for a dispatcher to send them "
                              "(--wait runs one here)"))
        doc["progress"] = None if done is None else progress_doc(done)
        s.emit(doc, human)


# --- what the dispatcher recorded ---------------------------------------------------------------


def _units(minor: float | None, asset: Asset | None) -> str:
    """A score in minor units (a float) shown in the asset's units."""
    if minor is None:
        return ""
    if asset is None:
        return f"{minor:.2f}"
    return f"{minor / 10**asset.scale:.{min(asset.scale, 6)}f}"


def candidates_table(
    route: RouteRecord, decision: RoutingDecision, asset: Asset | None
) -> list[Table | Text]:
    from fundpool.console.format import duration_text

    unit = "" if asset is None else f" ({asset.code})"
    heading = Text(f"attempt {route.attempt}, {iso(route.at_us)}: "
                   + (f"{decision.channel}" if decision.channel else "no eligible channel")
                   + (" (hedged)" if decision.hedged else ""), style="bold")
    table = Table()
    for name in ("channel", "eligible", f"fee{unit}", "latency", "p quoted", "p used",
                 f"expected cost{unit}"):
        table.add_column(name, justify="left" if name in ("channel", "eligible") else "right")
    for c in decision.candidates:
        used = c.sampled_success_probability
        table.add_row(
            c.channel + (" *" if c.channel == decision.channel else ""),
            "yes" if c.eligible else f"no: {c.reason}",
            "" if c.fee_minor is None else format_minor(c.fee_minor, asset),
            "" if c.latency_us is None else duration_text(c.latency_us),
            "" if c.quoted_success_probability is None else f"{c.quoted_success_probability:.3f}",
            "" if used is None else f"{used:.3f}",
            _units(c.expected_cost_minor, asset),
        )
    return [heading, table, Text(f"router ({decision.strategy}, scores in minor units): "
                                 f"{decision.summary()}")]


@app.command()
def routes(
    payment_id: Annotated[str, typer.Argument(help="The payment's id.")],
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """How a payment was routed: each attempt's rail, and every candidate with its scores."""
    from fundpool.payments.docs import route_decision, route_doc
    from fundpool.routing.decision import RoutingDecision

    with session(data_dir, db_url, as_json) as s:
        payment = compose.payment_records(s.store).payment(payment_id)
        if payment is None:
            raise UnknownPayment(payment_id=payment_id)
        asset = s.assets().get(payment.asset)
        found = compose.dispatch_reads(s.store).routes(payment_id)
        docs = [route_doc(route, asset) for route in found]
        amount = format_minor(payment.amount_minor, asset)
        human: list[Table | Text] = [Text(
            f"payment {payment.id}: {payment.kind.value} of {amount} {payment.asset}, now "
            f"{payment.state.value}; {len(found)} routes"
        )]
        for route in found:
            decision = route_decision(route)
            if isinstance(decision, RoutingDecision):
                human += candidates_table(route, decision, asset)
            else:
                human.append(Text(f"attempt {route.attempt}: {route.channel or '-'} ({decision})"))
        s.emit({"payment_id": payment.id, "asset": payment.asset, "routes": docs}, human)


@app.command()
def batches(
    channel: Annotated[str | None, typer.Option("--channel", help="Only this channel's.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Batches sent to the rails, newest first, with their fees and what batching saved."""
    with session(data_dir, db_url, as_json) as s:
        found = compose.dispatch_reads(s.store).batches(channel=channel, limit=limit)
        assets = s.assets()
        docs = []
        table = Table(title=f"{len(found)} batches, newest first", title_justify="left")
        for name in ("batch", "channel", "asset", "status", "items", "amount", "fee",
                     "single fee", "savings", "submitted", "rail ref"):
            table.add_column(name, justify="right" if name in (
                "items", "amount", "fee", "single fee", "savings") else "left")
        for b in found:
            asset = assets.get(b.asset)
            docs.append({
                "id": b.id, "channel": b.channel, "asset": b.asset, "status": b.status,
                "items": b.items, "rail_ref": b.rail_ref,
                **amount_fields("amount", b.amount_minor, asset),
                **amount_fields("fee", b.fee_minor, asset),
                **amount_fields("single_fee", b.single_fee_minor, asset),
                **amount_fields("savings", b.savings_minor, asset),
                "opened_at": iso(b.opened_at_us), "submitted_at": iso(b.submitted_at_us),
            })
            table.add_row(b.id, b.channel, b.asset, b.status, str(b.items),
                          *(format_minor(v, asset) for v in (b.amount_minor, b.fee_minor,
                                                             b.single_fee_minor,
                                                             b.savings_minor)),
                          iso(b.submitted_at_us), b.rail_ref or "")
        s.emit({"batches": docs}, table)
