"""`fundpool payment ...`: create payments and move them through their life.

    fundpool payment create --kind payout --asset USD --amount 300.00 --counterparty "Bob"
    fundpool payment act <id> screen
    fundpool payment act <id> route --channel bank-a
    fundpool payment act <id> approve
    fundpool payment show <id>
    fundpool payment list --state routed

Each command takes the pool configuration (`--config`, `--pool`) and the store options of
`fundpool ledger`; amounts are decimal text at the asset's scale.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from fundpool.cli.ledger import (
    DataDirOption,
    DbUrlOption,
    JsonOption,
    KeyOption,
    MetaOption,
    Session,
    amount_fields,
    iso,
    parse_meta,
    session,
)
from fundpool.cli.pool import ConfigOption, PoolOption, config_path
from fundpool.ledger.service import Ledger
from fundpool.payments.model import (
    Action,
    InvalidPayment,
    Payment,
    PaymentEvent,
    PaymentKind,
    PaymentRequest,
    PaymentState,
)
from fundpool.payments.service import PaymentService, Step
from fundpool.pool.config import load_config
from fundpool.runtime import SystemClock, system_ids
from fundpool.stores import payment_store

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


def service(s: Session, config: ConfigOption, pool: PoolOption) -> PaymentService:
    declared = load_config(config_path(config))
    chosen = declared.pool(pool)
    ledger = Ledger(s.store, SystemClock(), system_ids())
    return PaymentService(ledger, payment_store(s.store), declared, chosen, system_ids())


def payment_doc(payment: Payment, s: Session) -> dict[str, object]:
    asset = s.assets().get(payment.asset)
    return {
        "id": payment.id,
        "pool": payment.pool,
        "kind": payment.kind.value,
        "state": payment.state.value,
        "asset": payment.asset,
        **amount_fields("amount", payment.amount_minor, asset),
        **amount_fields("fee", payment.fee_minor, asset),
        "channel": payment.channel,
        "destination_channel": payment.destination_channel,
        "counterparty": payment.counterparty,
        "reference": payment.reference,
        "approval_required": payment.approval_required,
        "idempotency_key": payment.idempotency_key,
        "metadata": dict(payment.metadata),
        "created_at": iso(payment.created_at_us),
        "updated_at": iso(payment.updated_at_us),
        "version": payment.version,
    }


def event_doc(event: PaymentEvent) -> dict[str, object]:
    return {
        "seq": event.seq,
        "action": event.action.value,
        "from": None if event.from_state is None else event.from_state.value,
        "to": event.to_state.value,
        "at": iso(event.at_us),
        "entries": list(event.entry_ids),
        "reason": event.reason,
    }


def payment_table(doc: dict[str, object]) -> Table:
    table = Table(title=f"payment {doc['id']}", title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for name in ("kind", "state", "asset", "amount", "fee", "channel", "destination_channel",
                 "counterparty", "reference", "approval_required", "created_at", "updated_at"):
        value = doc.get(name)
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
    key: KeyOption = None,
    meta: MetaOption = None,
    config: ConfigOption = None,
    pool: PoolOption = None,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a payment (state `initiated`). With --key, a retry returns the same payment."""
    metadata = parse_meta(meta)
    with session(data_dir, db_url, as_json) as s:
        payments = service(s, config, pool)
        request = PaymentRequest(
            kind=kind,
            asset=asset,
            amount_minor=s.asset(asset).parse(amount),
            channel=channel,
            destination_channel=to_channel,
            counterparty=counterparty,
            reference=reference,
            metadata=metadata,
        )
        doc = payment_doc(payments.create(request, idempotency_key=key), s)
        s.emit(doc, payment_table(doc))


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
    """Move a payment one step; what the step posts is written with it, or nothing is."""
    with session(data_dir, db_url, as_json) as s:
        if action is Action.CREATE:
            raise InvalidPayment("a payment is created with `fundpool payment create`")
        payments = service(s, config, pool)
        payment = payments.act(Step(payment_id, action, channel, to_channel, reason))
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
) -> None:
    """A payment and its timeline, with the ledger entries each step posted."""
    with session(data_dir, db_url, as_json) as s:
        payments = service(s, config, pool)
        payment = payments.get(payment_id)
        history = payments.events(payment_id)
        doc = {**payment_doc(payment, s), "events": [event_doc(e) for e in history]}
        timeline = Table(title="timeline", title_justify="left")
        for column in ("seq", "action", "from", "to", "at", "entries"):
            timeline.add_column(column)
        for event in history:
            timeline.add_row(
                str(event.seq),
                event.action.value,
                "" if event.from_state is None else event.from_state.value,
                event.to_state.value,
                iso(event.at_us),
                "\n".join(event.entry_ids),
            )
        s.emit(doc, [payment_table(doc), timeline])


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
) -> None:
    """Payments, newest first, filtered; `--after <last id>` pages on."""
    with session(data_dir, db_url, as_json) as s:
        payments = service(s, config, pool)
        found = payments.list(
            state=state, kind=kind, asset=asset, channel=channel, limit=limit, after_id=after
        )
        docs = [payment_doc(p, s) for p in found]
        table = Table(title=f"{len(docs)} payments, newest first", title_justify="left")
        for column in ("id", "kind", "state", "asset", "amount", "fee", "channel", "counterparty"):
            table.add_column(column, justify="right" if column in ("amount", "fee") else "left")
        for doc in docs:
            table.add_row(*(str(doc.get(c) or "") for c in
                            ("id", "kind", "state", "asset", "amount", "fee", "channel",
                             "counterparty")))
        next_after = docs[-1]["id"] if len(docs) == limit else None
        s.emit({"payments": docs, "next_after": next_after}, table)
