"""`fundpool pool ...`: the fund pool as a configuration declares it.

`init` makes the ledger hold the configured assets and accounts (safe to run again; only what
is new is added). `view` shows the pool by state per asset and channel, with TOTAL in the
reporting currency. The configuration is `--config PATH`, else $FUNDPOOL_CONFIG, else
./fundpool.toml. `view --url URL --api-key KEY` shows a server's pool (its API) instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from fundpool.cli.options import ApiKeyOption, DataDirOption, DbUrlOption, JsonOption, UrlOption
from fundpool.cli.output import Output
from fundpool.cli.pool_options import ConfigOption, PoolOption, config_path
from fundpool.cli.session import describe_store, session
from fundpool.cli.target import Where, open_backend
from fundpool.pool.config import FundpoolConfig, load_config
from fundpool.pool.docs import view_doc
from fundpool.pool.setup import init_pool
from fundpool.pool.view import FIGURES, PoolView

app = typer.Typer(
    name="pool",
    help="The fund pool: set it up from its configuration and view it by state.",
    no_args_is_help=True,
)

LABELS = {
    "available": "available",
    "locked": "locked",
    "in_transit": "in transit",
    "pending_settlement": "pending settlement",
    "fees": "fee income",
}


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
        report = init_pool(s.ledger(), declared)
        from fundpool.compose import prepare_desk

        for pool in declared.pools:  # the accounts its treasury desk credits (splits, netting)
            prepare_desk(s.store, declared, pool)
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
    out = Output(as_json)
    with open_backend(Where(data_dir, db_url, url, api_key, config), out) as backend:
        doc = backend.pool_view(pool)
        out.emit(doc, doc_tables(doc, backend.channel_names()))


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
