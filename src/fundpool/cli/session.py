"""A command's store: opened from `--data-dir` / `--db-url` through the composition root, closed
when the command ends; a domain or database error on the way exits with code 2."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import typer

from fundpool import compose
from fundpool.cli.output import emit, report_error
from fundpool.core.errors import FundpoolError, StoreError, UnknownAsset
from fundpool.core.money import Asset
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger


@dataclass(slots=True)
class Session:
    """One command's view of the store, and where it prints."""

    store: LedgerStore
    json: bool
    _assets: dict[str, Asset] | None = None

    def ledger(self) -> Ledger:
        return compose.ledger(self.store)

    def assets(self) -> dict[str, Asset]:
        if self._assets is None:
            self._assets = {asset.code: asset for asset in self.store.assets()}
        return self._assets

    def asset(self, code: str) -> Asset:
        asset = self.assets().get(code)
        if asset is None:
            raise UnknownAsset(asset=code)
        return asset

    def emit(self, document: Mapping[str, object], human: Any = None) -> None:
        emit(document, human, self.json)


@contextmanager
def session(
    data_dir: Path | None, db_url: str | None, as_json: bool, *, initialise: bool = False
) -> Iterator[Session]:
    """Open the store for one command; turn domain and driver errors into exit code 2.

    Unless `initialise`, the store must already hold a ledger (`store_not_initialised`)."""
    try:
        try:
            store = compose.open_ledger_store(data_dir=data_dir, db_url=db_url)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="'--db-url'") from None
        try:
            if not initialise:
                store.head()  # raises store_not_initialised on an empty store
                compose.check_schema(store)
            yield Session(store, as_json)
        finally:
            store.close()
    except FundpoolError as error:
        report_error(error, as_json)
        raise typer.Exit(2) from None
    except Exception as error:
        if not isinstance(error, compose.store_errors()):
            raise
        report_error(StoreError(reason=f"{type(error).__name__}: {error}"), as_json)
        raise typer.Exit(2) from None


def describe_store(store: LedgerStore) -> str:
    """The store's URL without any password in it."""
    url = getattr(store, "url", None)
    if not isinstance(url, str):
        return type(store).__name__
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        if parts.port is not None:
            host += f":{parts.port}"
    except ValueError:
        return f"{url.partition(':')[0]}://?"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
