"""The options of the commands that read the pool's configuration: `--config` (or
$FUNDPOOL_CONFIG) and `--pool`.

Apart from cli/options.py because `--config` names the configuration's defaults, which live
with the configuration (pool/config.py): a command that needs no pool does not load it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from fundpool.pool.config import CONFIG_ENV, DEFAULT_CONFIG

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


def config_path(option: Path | None) -> Path:
    return option or Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)
