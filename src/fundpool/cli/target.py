"""Where a command acts: a store on this machine, or a fundpool server through its API.

    out = Output(as_json)
    with open_backend(Where(data_dir, db_url, url, api_key), out) as backend:
        doc = backend.transfer(postings, metadata, key)
        out.emit(doc, entry_tables(doc, "transfer"))

`open_backend` chooses, once, from the options: with `--url` the server's API
(`RemoteBackend`, cli/remote.py), else the services the composition root builds on the store
(`LocalBackend`, cli/local.py); both are the `Backend` of cli/backend.py. Either turns a
domain error into its printed form and exit code 2.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from fundpool.cli.backend import Backend
from fundpool.cli.local import open_local
from fundpool.cli.output import Output


@dataclass(frozen=True, slots=True)
class Where:
    """The options that say where a command acts: a store (`--data-dir`, `--db-url`, with the
    pool configuration `--config`) or a server (`--url`, `--api-key`)."""

    data_dir: Path | None = None
    db_url: str | None = None
    url: str | None = None
    api_key: str | None = None
    config: Path | None = None


def open_backend(where: Where, out: Output) -> AbstractContextManager[Backend]:
    """The backend for one command: the server's API given `--url`, else the local store.
    The API client loads only then: a local command starts without httpx."""
    if where.url is not None:
        from fundpool.cli.remote import open_remote

        return open_remote(where.url, where.api_key, out.json, data_dir=where.data_dir,
                           db_url=where.db_url)
    return open_local(where.data_dir, where.db_url, out.json, config=where.config)
