"""The options the commands share, and how their text is read.

Every command that opens a store takes `--data-dir` / `--db-url` (or $FUNDPOOL_DATA_DIR /
$FUNDPOOL_DB_URL) and `--json`; those that act on a server too take `--url` / `--api-key` (or
$FUNDPOOL_URL / $FUNDPOOL_API_KEY); those that need the pool take `--config` / `--pool`
(cli/pool_options.py). Text
that does not read (an instant without its zone, `--meta` without `=`, a rate such as `fast`)
is a usage error naming its option: exit code 2, as typer does for any bad usage.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from fundpool.core.money import Asset
from fundpool.ledger.docs import EPOCH

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Directory of the embedded SQLite ledger (default: $FUNDPOOL_DATA_DIR, then ./data).",
        show_default=False,
    ),
]
DbUrlOption = Annotated[
    str | None,
    typer.Option(
        "--db-url",
        help="Store URL: sqlite:///PATH or postgresql://... (default: $FUNDPOOL_DB_URL).",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout instead of tables.")
]
KeyOption = Annotated[
    str | None,
    typer.Option("--key", help="Idempotency key: a retry with the same body returns the original."),
]
MetaOption = Annotated[
    list[str] | None,
    typer.Option("--meta", help="Metadata as KEY=VALUE; repeat for several.", show_default=False),
]
UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="FUNDPOOL_URL",
        help="Act on the fundpool server at this URL (its API) instead of a store.",
        show_default=False,
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="FUNDPOOL_API_KEY",
        help="API key (fpk_...) or session token for --url.",
        show_default=False,
    ),
]
# --- values at the edges ---------------------------------------------------------------------


def parse_instant(text: str) -> int:
    """ISO-8601 with an offset (or Z) to microseconds since the epoch, exactly."""
    try:
        instant = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO-8601 time such as 2026-11-24T10:00:00Z", param_hint="'--at'"
        ) from None
    if instant.tzinfo is None:
        raise typer.BadParameter(
            "give the time zone, e.g. 2026-11-24T10:00:00Z", param_hint="'--at'"
        )
    return (instant - EPOCH) // timedelta(microseconds=1)


def parse_signed(asset: Asset, text: str) -> int:
    """Decimal text that may be negative (a credit line's minimum), exactly at the scale."""
    stripped = text.strip()
    if stripped.startswith("-"):
        return -asset.parse(stripped[1:])
    return asset.parse(stripped)


def parse_meta(items: Sequence[str] | None) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="'--meta'")
        metadata[key] = value
    return metadata


def parse_rate(text: str, *, option: str = "--rate") -> float:
    """Payments a second from `200/s`, `200` (a second), `6000/m` or `90000/h` (sim/pace.py)."""
    from fundpool.sim import pace

    try:
        return pace.parse_rate(text)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint=f"'{option}'") from None


def parse_duration(text: str, *, option: str = "--duration") -> float:
    """Seconds from `30s`, `5m`, `1h` or `90` (seconds) (sim/pace.py)."""
    from fundpool.sim import pace

    try:
        return pace.parse_duration(text)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint=f"'{option}'") from None
