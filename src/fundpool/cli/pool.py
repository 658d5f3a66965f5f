"""`fundpool pool ...`: the fund pool as a configuration declares it.

`init` makes the ledger hold the configured assets and accounts (safe to run again; only what
is new is added). `view` shows the pool by state per asset and channel, with TOTAL in the
reporting currency. The configuration is `--config PATH`, else $FUNDPOOL_CONFIG, else
./fundpool.toml. `view --url URL --api-key KEY` shows a server's pool (its API) instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from fundpool.cli.ledger import (
    ApiKeyOption,
    DataDirOption,
    DbUrlOption,
    JsonOption,
    UrlOption,
    describe_store,
    remote_session,
    session,
)
from fundpool.ledger.service import Ledger
from fundpool.pool.config import CONFIG_ENV, DEFAULT_CONFIG, FundpoolConfig, load_config
from fundpool.pool.docs import view_doc
from fundpool.pool.setup import init_pool
from fundpool.pool.view import FIGURES, PoolView, pool_view
from fundpool.runtime import SystemClock, system_ids

app = typer.Typer(
    name="pool",
    help="The fund pool: set it up from its configuration and view it by state.",
    no_args_is_help=True,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help=f"Pool configuration (TOML; default: ${CONFIG_ENV}, then ./{DEFAULT_CONFIG}).",
        show_default=False,
    ),
]
PoolOption = Annotated[
    str | None,
    typer.Option("--pool", help="Pool id (needed when the configuration has several)."),
]
LABELS = {
    "available": "available",
    "locked": "locked",
    "in_transit": "in transit",
    "pending_settlement": "pending settlement",
    "fees": "fee income",
}


def config_path(option: Path | None) -> Path:
    return option or Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


@app.command()
def init(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create the ledger if needed and open every configured asset and account."""
    with session(data_dir, db_url, as_json, initialise=True) as s:
        declared = load_config(config_path(config))
        s.store.initialise()
        report = init_pool(Ledger(s.store, SystemClock(), system_ids()), declared)
        pools = [p.id for p in declared.pools]
        where = describe_store(s.store)
        doc = {
            "store": where,
            "config": declared.source,
            "pools": pools,
            "added": report.added,
            "unchanged": report.unchanged,
        }
        s.emit(
            doc,
            Text(
                f"pool {', '.join(pools)} ready at {where}: "
                f"{report.added} added, {report.unchanged} already there"
            ),
        )


@app.command()
def view(
    pool: PoolOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """The pool by state: per asset and channel, per asset, and in the reporting currency."""
    if url is not None:
        with remote_session(url, api_key, as_json, data_dir, db_url) as r:
            doc = r.pool_view(pool)
            r.emit(doc, doc_tables(doc, r.channel_names()))
        return
    with session(data_dir, db_url, as_json) as s:
        declared = load_config(config_path(config))
        chosen = declared.pool(pool)
        shown = pool_view(s.store, declared, chosen, declared.rates_for(chosen))
        s.emit(view_doc(shown), view_tables(shown, declared))


def view_tables(shown: PoolView, declared: FundpoolConfig) -> list[Table | Text]:
    return doc_tables(view_doc(shown), lambda channel: declared.channel(channel).name)


def doc_tables(
    doc: Mapping[str, Any], channel_name: Callable[[str], str]
) -> list[Table | Text]:
    """The view's document (`view_doc`, or the API's answer) as a table by state."""
    table = Table(
        title=f"pool {doc['pool']}: by state (TOTAL = available + locked + in transit + "
        f"pending settlement), as of entry {doc['as_of_seq']}",
        title_justify="left",
    )
    table.add_column("asset")
    table.add_column("channel")
    for name in (*FIGURES[:4], "total", "fees"):
        table.add_column("TOTAL" if name == "total" else LABELS[name], justify="right",
                         overflow="fold")

    def row(asset: str, channel: str, figures: Mapping[str, str]) -> list[str]:
        return [asset, channel, *(figures[n] for n in (*FIGURES[:4], "total", "fees"))]

    for view in doc["assets"]:
        for channel, figures in view["channels"].items():
            table.add_row(*row(view["asset"], channel_name(channel), figures))
        table.add_row(*row(view["asset"], "all channels", view["total"]), end_section=True)
    reporting = doc["reporting_currency"]
    table.add_row(*row(f"in {reporting}", "all assets", doc["reporting_total"]), style="bold")
    notes: list[Table | Text] = [table]
    if doc["missing_rates"]:
        notes.append(
            Text(
                "no rate to " + reporting + " for " + ", ".join(doc["missing_rates"])
                + ": left out of the reporting total",
                style="yellow",
            )
        )
    return notes
