"""`fundpool ledger ...`: the ledger's commands.

Each command opens the store named by `--db-url` / `--data-dir` (or $FUNDPOOL_DB_URL /
$FUNDPOOL_DATA_DIR), does one thing and prints it: rich tables for people, one JSON document on
stdout with `--json`. Amounts go in and come out as exact decimal text at the asset's scale; JSON
adds the minor units as strings (`"posted": "12.34", "posted_minor": "1234"`), which stay exact in
any JSON reader.

A domain error prints `error[<code>]: <detail>` and its facts on stderr (with `--json`: the
error's `to_dict()` on stdout) and exits with 2, as typer does for bad usage. `verify` and
`rebuild` exit with 1 when they find a problem.

With `--url` (or $FUNDPOOL_URL) and `--api-key`, the money-moving and reading commands
(transfer, pending, post, void, reverse, balance, history, verify) act on a fundpool server
through its API instead of a store, and print the same: each asks a `Backend` (cli/backend.py)
for its document, the store's services or the server's API, and renders it.

The accounts of pools and merchants are moved by the services that own them. A raw posting
that touches one (`pool:…`, `merchant:…`, `exposure:…`) is an adjustment: it needs `--reason`,
and is recorded with the reason and its actor: on a local store the operating-system user
running the command (the operator of the machine), through the API the key's principal, which
also needs the permission `ledger:adjust`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from fundpool.cli.backend import PostingText
from fundpool.cli.options import (
    ApiKeyOption,
    DataDirOption,
    DbUrlOption,
    JsonOption,
    KeyOption,
    MetaOption,
    UrlOption,
    parse_instant,
    parse_meta,
    parse_signed,
)
from fundpool.cli.output import Output
from fundpool.cli.session import describe_store, session
from fundpool.cli.target import Where, open_backend
from fundpool.core.errors import InvalidAccount
from fundpool.core.ledger.model import Account
from fundpool.core.money import Asset, AssetKind
from fundpool.ledger.docs import amount_fields, balance_fields, entry_doc

if TYPE_CHECKING:
    from fundpool.ledger.verify import BalanceDifference, VerifyReport

ReasonOption = Annotated[
    str | None,
    typer.Option(
        "--reason",
        help="Why: records the posting as an adjustment with you as its actor. Needed when it "
        "touches an account of a pool or a merchant (pool:…, merchant:…, exposure:…).",
        show_default=False,
    ),
]

app = typer.Typer(
    name="ledger",
    help="The double-entry ledger: assets, accounts, transfers, balances, verification.",
    no_args_is_help=True,
)


# --- what the commands print -------------------------------------------------------------------


def entry_tables(doc: Mapping[str, Any], title: str) -> list[Table]:
    facts = Table(title=title, show_header=False, title_justify="left", box=None)
    facts.add_column(style="bold")
    facts.add_column(overflow="fold")
    if doc.get("status") == "replayed":
        facts.add_row("status", "replayed: this idempotency key's original entry")
    for name in ("seq", "id", "kind", "at", "hash", "reverses", "pending_id", "expires_at"):
        if doc.get(name) is not None:
            facts.add_row(name, str(doc[name]))
    for name in ("posted", "released"):
        if name in doc:
            facts.add_row(name, str(doc[name]))
    reservation = doc.get("reservation")
    if reservation is not None:
        facts.add_row(
            "reservation",
            f"{reservation['amount']} {reservation['asset']} "
            f"{reservation['source']} -> {reservation['destination']}",
        )
    if doc.get("idempotency_key"):
        facts.add_row("key", str(doc["idempotency_key"]))
    adjustment = doc.get("adjustment")
    if adjustment is not None:
        actor = adjustment.get("actor") or {}
        facts.add_row("adjustment", str(adjustment.get("reason")))
        facts.add_row("by", f"{actor.get('name', 'unknown')} ({actor.get('kind', '?')})")
    for key, value in sorted((doc.get("metadata") or {}).items()):
        facts.add_row(f"meta {key}", value)
    tables = [facts]
    postings = doc.get("postings") or []
    if postings:
        table = Table(title="postings", title_justify="left")
        table.add_column("from")
        table.add_column("to")
        table.add_column("asset")
        table.add_column("amount", justify="right", overflow="fold")
        for posting in postings:
            table.add_row(
                posting["source"], posting["destination"], posting["asset"], posting["amount"]
            )
        tables.append(table)
    return tables


# --- commands --------------------------------------------------------------------------------


@app.command()
def init(
    data_dir: DataDirOption = None, db_url: DbUrlOption = None, as_json: JsonOption = False
) -> None:
    """Create the ledger's schema in the store (safe to run again)."""
    with session(data_dir, db_url, as_json, initialise=True) as s:
        s.store.initialise()
        head = s.store.head()
        where = describe_store(s.store)
        doc = {"initialised": True, "store": where, "head_seq": head.seq,
               "head_hash": head.hash.hex()}
        s.emit(doc, Text(f"ledger ready at {where} (head seq {head.seq})"))


@app.command("asset")
def define_asset(
    code: Annotated[str, typer.Argument(help="Asset code: USD, USDT, ETH, USDT.TRON ...")],
    scale: Annotated[int, typer.Option("--scale", help="Decimals of one minor unit (0-18).")],
    kind: Annotated[AssetKind, typer.Option("--kind", help="fiat, stablecoin, crypto or cbdc.")],
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Define an asset. Definitions are permanent; repeating one exactly changes nothing."""
    with session(data_dir, db_url, as_json) as s:
        asset = Asset(code, scale, kind)
        recorded = s.ledger().define_asset(asset)
        asset_doc = {"code": asset.code, "scale": asset.scale, "kind": asset.kind.value}
        status = "unchanged" if recorded is None else "applied"
        entry = None if recorded is None else entry_doc(recorded, {asset.code: asset})
        doc = {"status": status, "asset": asset_doc, "entry": entry}
        said = "defined" if recorded is not None else "already defined, unchanged"
        line = Text(f"asset {asset.code} {said}: scale {asset.scale}, {asset.kind.value}")
        s.emit(doc, [line, *([] if entry is None else entry_tables(entry, "entry")[:1])])


@app.command("account")
def open_account(
    address: Annotated[str, typer.Argument(help="pool:main:usd:bank-a:available, world:bank-a")],
    asset: Annotated[
        str | None, typer.Option("--asset", help="Hold only this asset (needed for --min/--max).")
    ] = None,
    allow_negative: Annotated[
        bool | None,
        typer.Option(
            "--allow-negative/--no-allow-negative",
            help="May the balance go below zero? Default: yes for world: accounts, else no.",
            show_default=False,
        ),
    ] = None,
    min_text: Annotated[
        str | None, typer.Option("--min", help="Lowest available balance, e.g. -500.00.")
    ] = None,
    max_text: Annotated[
        str | None, typer.Option("--max", help="Highest posted + pending-in balance.")
    ] = None,
    meta: MetaOption = None,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Open an account. Repeating an identical open changes nothing."""
    metadata = parse_meta(meta)
    with session(data_dir, db_url, as_json) as s:
        held = None if asset is None else s.asset(asset)
        if held is None and (min_text is not None or max_text is not None):
            raise InvalidAccount(
                "--min and --max are amounts of one asset: give --asset too", address=address
            )
        account = Account(
            address=address,
            asset=None if held is None else held.code,
            allow_negative=allow_negative,
            min_balance_minor=None if min_text is None or held is None
            else parse_signed(held, min_text),
            max_balance_minor=None if max_text is None or held is None
            else parse_signed(held, max_text),
            metadata=metadata,
        )
        recorded = s.ledger().open_account(account)
        account_doc: dict[str, object] = {
            "address": account.address,
            "asset": account.asset,
            "allow_negative": account.allow_negative,
        }
        for name, bound in (("min", account.min_balance_minor), ("max", account.max_balance_minor)):
            account_doc.update(
                {name: None, f"{name}_minor": None} if bound is None
                else amount_fields(name, bound, held)
            )
        account_doc["metadata"] = dict(account.metadata)
        entry = None if recorded is None else entry_doc(recorded, s.assets())
        doc = {"status": "unchanged" if recorded is None else "applied",
               "account": account_doc, "entry": entry}
        table = Table(title=f"account {account.address}", show_header=False,
                      title_justify="left", box=None)
        table.add_column(style="bold")
        table.add_column()
        table.add_row("status", "opened" if recorded is not None else "already open, unchanged")
        table.add_row("asset", account.asset or "any")
        table.add_row("allow negative", "yes" if account.allow_negative else "no")
        for name in ("min", "max"):
            if account_doc[name] is not None:
                table.add_row(name, str(account_doc[name]))
        for key, value in sorted(account.metadata.items()):
            table.add_row(f"meta {key}", value)
        if entry is not None:
            table.add_row("entry", f"seq {entry['seq']} {entry['id']}")
        s.emit(doc, table)


@app.command()
def transfer(
    source: Annotated[str | None, typer.Option("--from", help="Source account.")] = None,
    destination: Annotated[str | None, typer.Option("--to", help="Destination account.")] = None,
    asset: Annotated[str | None, typer.Option("--asset", help="Asset code.")] = None,
    amount: Annotated[
        str | None, typer.Option("--amount", help="Decimal amount at the asset's scale.")
    ] = None,
    posting: Annotated[
        list[str] | None,
        typer.Option(
            "--posting",
            help="Another posting as SRC,DST,ASSET,AMOUNT; repeat for several. All postings of "
            "one transfer apply together or not at all.",
            show_default=False,
        ),
    ] = None,
    key: KeyOption = None,
    meta: MetaOption = None,
    reason: ReasonOption = None,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Move funds now: one posting (--from/--to/--asset/--amount) and/or --posting ones.

    Touching an account of a pool or a merchant is an adjustment: give --reason."""
    metadata = parse_meta(meta)
    single = (source, destination, asset, amount)
    if any(v is not None for v in single) and not all(v is not None for v in single):
        raise typer.BadParameter("--from, --to, --asset and --amount go together")
    texts: list[PostingText] = []
    if source is not None and destination is not None and asset is not None and amount is not None:
        texts.append((source, destination, asset, amount))
    for item in posting or ():
        parts = item.split(",")
        if len(parts) != 4:
            raise typer.BadParameter(
                f"{item!r} is not SRC,DST,ASSET,AMOUNT", param_hint="'--posting'"
            )
        texts.append((parts[0], parts[1], parts[2], parts[3]))
    if not texts:
        raise typer.BadParameter("give --from/--to/--asset/--amount or at least one --posting")
    out = Output(as_json)
    with open_backend(Where(data_dir, db_url, url, api_key), out) as backend:
        doc = backend.transfer(texts, metadata, key, reason)
        out.emit(doc, entry_tables(doc, "transfer"))


@app.command()
def pending(
    source: Annotated[str, typer.Option("--from", help="Source account.")],
    destination: Annotated[str, typer.Option("--to", help="Destination account.")],
    asset: Annotated[str, typer.Option("--asset", help="Asset code.")],
    amount: Annotated[str, typer.Option("--amount", help="Decimal amount to reserve.")],
    timeout: Annotated[
        int, typer.Option("--timeout", help="Seconds until the reservation expires.")
    ] = 3600,
    key: KeyOption = None,
    meta: MetaOption = None,
    reason: ReasonOption = None,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Reserve funds (two-phase transfer): post, void or let it expire later."""
    metadata = parse_meta(meta)
    out = Output(as_json)
    with open_backend(Where(data_dir, db_url, url, api_key), out) as backend:
        doc = backend.pending((source, destination, asset, amount), timeout, metadata, key,
                              reason)
        out.emit(doc, entry_tables(doc, "pending transfer"))


@app.command()
def post(
    pending_id: Annotated[str, typer.Argument(help="The pending transfer's id.")],
    amount: Annotated[
        str | None, typer.Option("--amount", help="Post only this much; the rest is released.")
    ] = None,
    key: KeyOption = None,
    meta: MetaOption = None,
    reason: ReasonOption = None,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Post a pending transfer, in full or in part."""
    metadata = parse_meta(meta)
    out = Output(as_json)
    with open_backend(Where(data_dir, db_url, url, api_key), out) as backend:
        doc = backend.post(pending_id, amount, metadata, key, reason)
        out.emit(doc, entry_tables(doc, "pending transfer posted"))


@app.command()
def void(
    pending_id: Annotated[str, typer.Argument(help="The pending transfer's id.")],
    key: KeyOption = None,
    meta: MetaOption = None,
    reason: ReasonOption = None,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Void a pending transfer: its reservation is released, nothing moves."""
    metadata = parse_meta(meta)
    out = Output(as_json)
    with open_backend(Where(data_dir, db_url, url, api_key), out) as backend:
        doc = backend.void(pending_id, metadata, key, reason)
        out.emit(doc, entry_tables(doc, "pending transfer voided"))


@app.command()
def reverse(
    transaction_id: Annotated[str, typer.Argument(help="The transfer's entry id.")],
    key: KeyOption = None,
    meta: MetaOption = None,
    reason: ReasonOption = None,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Undo a posted transfer with a new transfer that points at it (once)."""
    metadata = parse_meta(meta)
    out = Output(as_json)
    with open_backend(Where(data_dir, db_url, url, api_key), out) as backend:
        doc = backend.reverse(transaction_id, metadata, key, reason)
        out.emit(doc, entry_tables(doc, "reversal"))


@app.command()
def balance(
    address: Annotated[str, typer.Argument(help="Account address.")],
    asset: Annotated[str | None, typer.Option("--asset", help="Only this asset.")] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="As it stood at this time (ISO-8601, e.g. 2026-11-24T10:00Z)."),
    ] = None,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """An account's balances: posted, pending out, pending in and available."""
    at_us = None if at is None else parse_instant(at)
    out = Output(as_json)
    with open_backend(Where(data_dir, db_url, url, api_key), out) as backend:
        doc = backend.balance(address, asset, at_us)
        out.emit(doc, balance_human(doc))


def balance_human(doc: Mapping[str, Any]) -> list[Any] | Text:
    """`balance`'s document as a heading and a table."""
    address, rows = doc["address"], doc["balances"]
    when = "now" if doc["at"] is None else f"at {doc['at']}"
    heading = Text(f"{address} {when} (as of entry {doc['as_of_seq']})", style="bold")
    table = Table()
    table.add_column("asset")
    for name in ("posted", "pending out", "pending in", "available"):
        table.add_column(name, justify="right", overflow="fold")
    for row in rows:
        table.add_row(
            row["asset"], row["posted"], row["pending_out"], row["pending_in"], row["available"]
        )
    return [heading, table] if rows else Text(f"{address} holds no balance {when}")


@app.command()
def history(
    address: Annotated[str, typer.Argument(help="Account address.")],
    asset: Annotated[str | None, typer.Option("--asset", help="Only this asset.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Rows to show.")] = 20,
    before: Annotated[
        int | None, typer.Option("--before", help="Only entries before this seq (paging).")
    ] = None,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """An account's balance changes, newest first."""
    out = Output(as_json)
    with open_backend(Where(data_dir, db_url, url, api_key), out) as backend:
        doc = backend.history(address, asset, limit, before)
        out.emit(doc, history_human(doc))


def history_human(doc: Mapping[str, Any]) -> list[Any]:
    """`history`'s document as a table, and how to see more."""
    address, docs = doc["address"], doc["rows"]
    table = Table(title=f"history of {address}", title_justify="left")
    table.add_column("seq", justify="right")
    table.add_column("at", no_wrap=True)
    table.add_column("kind")
    table.add_column("asset")
    for name in ("posted Δ", "pending out Δ", "pending in Δ", "posted", "available"):
        table.add_column(name, justify="right", overflow="fold")
    table.add_column("entry", no_wrap=True)
    for d in docs:
        table.add_row(
            str(d["seq"]), str(d["at"]), str(d["kind"]), str(d["asset"]),
            _signed(str(d["posted_change"])), _signed(str(d["pending_out_change"])),
            _signed(str(d["pending_in_change"])), str(d["posted"]), str(d["available"]),
            str(d["entry_id"]),
        )
    human: list[Any] = [table if docs else Text(f"no history for {address}")]
    if doc["next_before"] is not None:
        human.append(Text(f"more: --before {doc['next_before']}"))
    return human


def _signed(text: str) -> str:
    return text if text.startswith("-") or text.strip("0.") == "" else f"+{text}"


def verify_lines(report: VerifyReport) -> list[Text]:
    if report.ok:
        return [
            Text.assemble(("ok", "bold green"), f": {report.entries} entries checked"),
            Text(f"head seq  {report.head_seq}"),
            Text(f"head hash {report.head_hash}"),
        ]
    problem = report.problem
    assert problem is not None
    entry = f" ({problem.entry_id})" if problem.entry_id else ""
    return [
        Text.assemble(("FAILED", "bold red"), f" at entry seq {problem.seq}{entry}"),
        Text(f"reason: {problem.reason}"),
        Text(f"entries checked before it: {report.entries}; last good head seq "
             f"{report.head_seq}, hash {report.head_hash}"),
    ]


@app.command("verify")
def verify_command(
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Check the hash chain, every entry's legs, and the balance and pending tables.

    Exit code 0 when everything agrees, 1 at the first problem (printed with its entry)."""
    out = Output(as_json)
    with open_backend(Where(data_dir, db_url, url, api_key), out) as backend:
        report = backend.verify()
        out.emit(report.to_dict(), list(verify_lines(report)))
    if not report.ok:
        raise typer.Exit(1)


def _difference_doc(
    difference: BalanceDifference, assets: Mapping[str, Asset]
) -> dict[str, Any]:
    held = assets.get(difference.asset)
    return {
        "address": difference.address,
        "asset": difference.asset,
        "stored": None if difference.stored is None else balance_fields(difference.stored, held),
        "journal": balance_fields(difference.replayed, held),
    }


@app.command("rebuild")
def rebuild_command(
    write: Annotated[
        bool, typer.Option("--write", help="Rewrite the balance table from the journal.")
    ] = False,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare the balance table with the journal; with --write, repair it.

    Exit code 1 when differences remain unwritten or the journal itself does not verify."""
    from fundpool.ledger.verify import rebuild

    with session(data_dir, db_url, as_json) as s:
        report = rebuild(s.store, write=write)
        assets = s.assets()
        differences = [_difference_doc(d, assets) for d in report.differences]
        doc = {
            "journal": report.verify.to_dict(),
            "differences": differences,
            "written": report.written,
        }
        human: list[Any] = []
        if not report.verify.ok:
            human.append(Text("the journal does not verify; balances are not rewritten:"))
            human.extend(verify_lines(report.verify))
        if differences:
            table = Table(title="balance table vs journal", title_justify="left")
            table.add_column("account")
            table.add_column("asset")
            for name in ("stored posted", "journal posted", "stored pending out",
                         "journal pending out", "stored pending in", "journal pending in"):
                table.add_column(name, justify="right", overflow="fold")
            for d in differences:
                stored: Mapping[str, str] = d["stored"] or {}
                journal: Mapping[str, str] = d["journal"]
                table.add_row(
                    str(d["address"]), str(d["asset"]),
                    stored.get("posted", "missing"), journal["posted"],
                    stored.get("pending_out", "missing"), journal["pending_out"],
                    stored.get("pending_in", "missing"), journal["pending_in"],
                )
            human.append(table)
        if report.written:
            human.append(Text(f"rewrote the balance table: {len(differences)} difference(s) "
                              "repaired"))
        elif differences and report.verify.ok:
            human.append(Text(f"{len(differences)} difference(s); run with --write to repair"))
        elif report.verify.ok:
            human.append(Text(f"balance table matches the journal ({report.verify.entries} "
                              "entries)"))
        s.emit(doc, human)
    if not report.verify.ok or (differences and not report.written):
        raise typer.Exit(1)
