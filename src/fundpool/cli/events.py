"""`fundpool events …`: the outbox on NATS JetStream, and consumers that keep projections.

    fundpool events relay --nats nats://127.0.0.1:4222          # publish the outbox, until Ctrl-C
    fundpool events relay --once                                # publish what is there, then exit
    fundpool events relay --from 0 --once                       # publish everything again
    fundpool events consume --nats nats://127.0.0.1:4222        # apply every pool's stream
    fundpool events consume --projections postgresql://…?schema=proj --pool main --until-idle 5
    fundpool events status [--nats URL]                         # how far each is behind

`relay` takes the ledger store options of `fundpool ledger` (its outbox and its cursor live
there). `consume` keeps the projections in `--projections URL` (default: beside the ledger
store); started several times on one PostgreSQL projection schema, the processes share the
pools between them and take over those of one that dies. On SQLite one process consumes; a
second waits until the first exits. Both stop cleanly on Ctrl-C or SIGTERM. Log lines go to
stderr; `--json` prints one document on stdout at the end. The relay, the consumer and the
stores they use come from the composition root (`fundpool.compose`).
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from fundpool import compose
from fundpool.cli.options import DataDirOption, DbUrlOption, JsonOption
from fundpool.cli.output import emit_json, log_to_stderr, report_error, stdout_console
from fundpool.cli.session import session
from fundpool.core.errors import FundpoolError, StoreError
from fundpool.ledger.ports import LedgerStore

app = typer.Typer(
    name="events",
    help="The outbox on NATS JetStream: relay it, consume it into projections, show the lag.",
    no_args_is_help=True,
)

NatsOption = Annotated[
    str,
    typer.Option("--nats", envvar="FUNDPOOL_NATS_URL", help="NATS server URL."),
]
PrefixOption = Annotated[
    str,
    typer.Option("--prefix", help="Subject prefix (streams are named <PREFIX>_<pool>)."),
]
ProjectionsOption = Annotated[
    str | None,
    typer.Option("--projections",
                 help="Projection store: sqlite:///PATH or postgresql://…?schema=NAME "
                      "(default: the ledger store's database).",
                 show_default=False),
]
NameOption = Annotated[str, typer.Option("--name", help="The relay's cursor name.")]



@app.callback()
def main() -> None:
    """The outbox on NATS JetStream: relay it, consume it into projections, show the lag."""
    # Log lines go to stderr so that --json stays one document on stdout.
    log_to_stderr()


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by Ctrl-C or SIGTERM, so a run ends between two batches."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_args: stop.set())
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def reported(as_json: bool) -> Iterator[None]:
    """Domain and driver errors as their message and exit code 2 (as `session` does)."""
    try:
        yield
    except FundpoolError as error:
        report_error(error, as_json)
        raise typer.Exit(2) from None
    except compose.store_errors() as error:
        report_error(StoreError(reason=f"{type(error).__name__}: {error}"), as_json)
        raise typer.Exit(2) from None


def projections_of(store: LedgerStore | None, option: str | None) -> str:
    if option:
        return compose.projection_url(option)
    if store is None:
        raise typer.BadParameter("give --projections, or the ledger store it is beside",
                                 param_hint="'--projections'")
    return compose.projection_url_beside(store)


# --- relay -----------------------------------------------------------------------------------


def relay_doc(report: compose.RelayReport, outbox_last: int) -> dict[str, object]:
    return {**asdict(report), "outbox_last_pos": outbox_last,
            "lag": max(0, outbox_last - report.pos)}


@app.command()
def relay(
    nats_url: NatsOption = compose.DEFAULT_NATS_URL,
    once: Annotated[bool, typer.Option("--once", help="Publish what the outbox holds, then "
                                                      "exit.")] = False,
    from_pos: Annotated[int | None, typer.Option(
        "--from", min=0, help="Publish again after this outbox position: the cursor is moved "
        "back first (consumers count what they already have as duplicates).",
        show_default=False)] = None,
    name: NameOption = compose.RELAY_CURSOR,
    prefix: PrefixOption = compose.DEFAULT_PREFIX,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Publish the outbox to JetStream, in order, saving the cursor after each page is
    acknowledged; runs until Ctrl-C unless --once."""
    with session(data_dir, db_url, as_json) as s, stop_on_signals() as stop:
        relay = compose.nats_relay(s.store, nats_url, name=name, prefix=prefix)
        if from_pos is not None:
            relay.save_cursor(from_pos)

        async def run() -> compose.RelayReport:
            try:
                return await relay.run(once=once, stop=stop)
            finally:
                await relay.close()

        report = asyncio.run(run())
        last = relay.outbox.last_pos()
        s.emit(relay_doc(report, last), Text(
            f"relay {name}: published {report.published:,} "
            f"(already stored {report.duplicates:,}) in {report.batches:,} pages; "
            f"cursor {report.pos:,} of {last:,}"))


# --- consume ---------------------------------------------------------------------------------


@app.command()
def consume(
    nats_url: NatsOption = compose.DEFAULT_NATS_URL,
    projections: ProjectionsOption = None,
    pool: Annotated[list[str] | None, typer.Option(
        "--pool", help="A pool to consume; repeat for several (default: every pool with a "
                       "stream, looked up again every second).", show_default=False)] = None,
    until_idle: Annotated[float | None, typer.Option(
        "--until-idle", help="Exit after this many seconds without a message.",
        show_default=False)] = None,
    durable_prefix: Annotated[str, typer.Option(
        "--durable-prefix", help="Durable consumer name prefix.")] = compose.DURABLE_PREFIX,
    ack_wait: Annotated[float, typer.Option(
        "--ack-wait", help="Seconds before an unacknowledged message comes again.")]
        = compose.ACK_WAIT_S,
    batch: Annotated[int, typer.Option(
        "--batch", min=1, help="Messages asked for per pull request.")] = compose.PULL_BATCH,
    prefix: PrefixOption = compose.DEFAULT_PREFIX,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Apply the pools' streams to the projections, each event once; runs until Ctrl-C."""
    if projections:
        url = compose.projection_url(projections)
    else:
        with session(data_dir, db_url, as_json) as s:
            url = projections_of(s.store, None)
    with reported(as_json), stop_on_signals() as stop:
        consumer = compose.nats_consumer(url, nats_url, pools=pool or None,
                                         durable_prefix=durable_prefix, prefix=prefix,
                                         ack_wait_s=ack_wait, batch=batch)
        report = asyncio.run(consumer.run(until_idle_s=until_idle, stop=stop))
    document = {**asdict(report), "durable": consumer.durable}
    if as_json:
        emit_json(document)
        return
    stdout_console().print(Text(
        f"consumer {consumer.durable}: applied {report.applied:,}, duplicates "
        f"{report.duplicates:,}, rejected {report.rejected:,}, redelivered later "
        f"{report.redelivered:,}, dropped {report.terminated:,}, in {report.commits:,} "
        f"commits" + (f"; blocked: {report.blocked}" if report.blocked else "")))


# --- status ----------------------------------------------------------------------------------


@app.command()
def status(
    nats_url: Annotated[str | None, typer.Option(
        "--nats", envvar="FUNDPOOL_NATS_URL",
        help="Also show each stream's messages and the durable's backlog.",
        show_default=False)] = None,
    projections: ProjectionsOption = None,
    name: NameOption = compose.RELAY_CURSOR,
    durable_prefix: Annotated[str, typer.Option(
        "--durable-prefix", help="Durable consumer name prefix.")] = compose.DURABLE_PREFIX,
    prefix: PrefixOption = compose.DEFAULT_PREFIX,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """The relay's cursor against the outbox, and each pool's projection against its head."""
    with session(data_dir, db_url, as_json) as s:
        outbox = compose.outbox(s.store)
        last, relayed, heads = outbox.last_pos(), outbox.cursor(name), outbox.heads()
        url = projections_of(s.store, projections)
        store = compose.projection_store_at(url)
        try:
            cursors = {pool: store.cursor(pool) for pool in sorted(heads)}
        finally:
            store.close()
        durable = compose.durable_name(url, durable_prefix)
        nats_state: dict[str, dict[str, Any]] = {}
        if nats_url:
            nats_state = compose.stream_status(nats_url, durable, sorted(heads), prefix=prefix)
        pools: list[dict[str, Any]] = []
        for pool, head in sorted(heads.items()):
            cursor = cursors[pool]
            pools.append({"pool": pool, "head": head, "projected": cursor.seq,
                          "lag": head - cursor.seq, "duplicates": cursor.duplicates,
                          "ignored": cursor.ignored, "rejected": cursor.rejected,
                          **({"nats": nats_state[pool]} if pool in nats_state else {})})
        document = {"relay": {"name": name, "pos": relayed, "outbox_last_pos": last,
                              "lag": last - relayed},
                    "durable": durable, "pools": pools}
        table = Table(title=f"projections (durable {durable})", title_justify="left")
        for column in ("pool", "head", "projected", "lag", "duplicates", "rejected",
                       *(("stream msgs", "pending", "ack pending") if nats_url else ())):
            table.add_column(column, justify="left" if column == "pool" else "right")
        for row in pools:
            extra: tuple[str, ...] = ()
            if nats_url:
                state = row.get("nats") or {}
                extra = tuple("" if state.get(k) is None else f"{state[k]:,}"
                              for k in ("messages", "pending", "ack_pending"))
            table.add_row(str(row["pool"]), f"{row['head']:,}", f"{row['projected']:,}",
                          f"{row['lag']:,}", f"{row['duplicates']:,}", f"{row['rejected']:,}",
                          *extra)
        s.emit(document, [Text(f"relay {name}: cursor {relayed:,} of {last:,} "
                               f"(lag {last - relayed:,})"), table])
