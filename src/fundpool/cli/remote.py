"""The CLI on a remote server: `--url` / `--api-key` (or $FUNDPOOL_URL / $FUNDPOOL_API_KEY).

    fundpool ledger transfer --url http://127.0.0.1:8000 --api-key fpk_... \\
        --from world:bank-a --to pool:main:usd:bank-a:available --asset USD --amount 12.34 \\
        --reason "bank credit, statement line 7"      # an adjustment: needs ledger:adjust

The commands that take it: `ledger transfer | pending | post | void | reverse | balance |
history | verify`, `pool view`, `payment create | show | list`. Given `--url`, a command does
what it does on a store through the API client instead (`RemoteBackend`, the `Backend` of
cli/backend.py, on `fundpool.client`), and prints the same: the API answers with the documents
the local commands build (ledger/docs.py, payments/docs.py), rendered by the same functions.
An API error is the domain's error (client/errors.py), so it prints as a local one:
`error[<code>]: <detail>` and its facts on stderr, exit code 2.

Where the API's shape differs from the command's, this module makes up the difference:
- `balance` asks for the account and the assets as well, to filter by `--asset` and to show a
  single-asset account's zero balance as the local command does;
- `history --before SEQ` and `payment list --after ID` walk the pages (the API pages by
  cursor) past SEQ or ID;
- `pool view` without `--pool` shows the server's only pool, and names the channels as the
  server's configuration does (`--config` is not read);
- every write carries an idempotency key (the one of `--key`, else one drawn by the client),
  so a remote entry shows `idempotency_key` even without `--key`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from fundpool.cli.backend import PostingText
from fundpool.cli.output import report_error
from fundpool.client import Client, Posting
from fundpool.core.errors import AssetMismatch, FundpoolError, UnknownAsset
from fundpool.core.ledger.model import ZERO_BALANCE
from fundpool.core.money import Asset, AssetKind
from fundpool.ledger.docs import balance_fields, iso
from fundpool.ledger.verify import Problem, VerifyReport
from fundpool.payments.model import PaymentKind, PaymentState
from fundpool.pool.config import InvalidConfig
from fundpool.server.v1.models import EntryOut

# A command waits this long for an answer: `verify` reads the whole journal on the server.
CLI_TIMEOUT_S = 120.0
HISTORY_PAGE_MAX = 500  # entries per page when walking the history to `--before`


@dataclass(slots=True)
class RemoteBackend:
    """The commands' `Backend` on a server: one command's client of its API."""

    client: Client

    # --- the ledger --------------------------------------------------------------------------

    def transfer(self, postings: Sequence[PostingText], metadata: dict[str, str],
                 key: str | None, reason: str | None = None) -> dict[str, Any]:
        sent = [_posting(*text) for text in postings]
        return entry(self.client.transfer(sent, metadata, idempotency_key=key, reason=reason))

    def pending(self, posting: PostingText, timeout_s: int, metadata: dict[str, str],
                key: str | None, reason: str | None = None) -> dict[str, Any]:
        return entry(self.client.create_pending(_posting(*posting), timeout_s, metadata,
                                                idempotency_key=key, reason=reason))

    def post(self, pending_id: str, amount: str | None, metadata: dict[str, str],
             key: str | None, reason: str | None = None) -> dict[str, Any]:
        return entry(self.client.post_pending(pending_id, amount, metadata,
                                              idempotency_key=key, reason=reason))

    def void(self, pending_id: str, metadata: dict[str, str], key: str | None,
             reason: str | None = None) -> dict[str, Any]:
        return entry(self.client.void_pending(pending_id, metadata, idempotency_key=key,
                                              reason=reason))

    def reverse(self, entry_id: str, metadata: dict[str, str], key: str | None,
                reason: str | None = None) -> dict[str, Any]:
        return entry(self.client.reverse(entry_id, metadata, idempotency_key=key,
                                         reason=reason))

    def balance(self, address: str, asset: str | None, at_us: int | None
                ) -> dict[str, Any]:
        """The document of `fundpool ledger balance`: every asset the account holds (a
        single-asset account: its asset, zero when never posted), or `asset` only."""
        account = self.client.account(address)
        assets = {a.code: Asset(a.code, a.scale, AssetKind(a.kind))
                  for a in self.client.assets()}
        at = None if at_us is None else iso(at_us)
        found = self.client.balances(address, at)
        rows = {row.asset: row.model_dump(mode="json") for row in found.balances}
        if asset is not None:
            held = assets.get(asset)
            if held is None:
                raise UnknownAsset(asset=asset)
            if account.asset is not None and account.asset != held.code:
                raise AssetMismatch(address=address, account_asset=account.asset,
                                    asset=held.code)
            codes = [held.code]
        elif account.asset is not None:
            codes = [account.asset]
        else:
            codes = sorted(rows)
        listed = [rows.get(code)
                  or {"asset": code, **balance_fields(ZERO_BALANCE, assets.get(code))}
                  for code in codes]
        return {"address": address, "at": at, "as_of_seq": found.as_of_seq,
                "balances": listed}

    def history(self, address: str, asset: str | None, limit: int, before: int | None
                ) -> dict[str, Any]:
        """The document of `fundpool ledger history`: the `limit` newest entries (before
        `before`), one row per asset each changed."""
        if before is None:
            rows = [r.model_dump(mode="json")
                    for r in self.client.history(address, asset, limit=limit).data]
        else:
            rows = []
            seqs: set[int] = set()
            for row in self.client.iter_history(address, asset,
                                                limit=min(HISTORY_PAGE_MAX, max(limit, 1))):
                if row.seq >= before:
                    continue
                if row.seq not in seqs and len(seqs) == limit:
                    break
                seqs.add(row.seq)
                rows.append(row.model_dump(mode="json"))
        return {"address": address, "rows": rows,
                "next_before": rows[-1]["seq"] if len(rows) == limit else None}

    def verify(self) -> VerifyReport:
        found = self.client.verify()
        problem = None
        if found.problem is not None:
            seq, entry_id = found.problem.get("seq"), found.problem.get("entry_id")
            problem = Problem(seq if isinstance(seq, int) else 0,
                              entry_id if isinstance(entry_id, str) else None,
                              str(found.problem.get("reason", "")))
        return VerifyReport(found.ok, found.entries, found.head_seq, found.head_hash, problem)

    # --- the pool ----------------------------------------------------------------------------

    def pool_view(self, pool: str | None) -> dict[str, Any]:
        """The view of `pool`, or of the server's only pool (as `--pool` locally)."""
        if pool is None:
            pools = [p.id for p in self.client.pools()]
            if len(pools) != 1:
                raise InvalidConfig("the server has several pools: name one with --pool",
                                    source=self.client.url, pools=pools)
            pool = pools[0]
        return self.client.pool_view(pool).model_dump(mode="json")

    def channel_names(self) -> Callable[[str], str]:
        """A channel's name by its id, as the server's configuration says."""
        names = {channel.id: channel.name for channel in self.client.channels()}
        return lambda channel: names.get(channel, channel)

    # --- payments ----------------------------------------------------------------------------

    def create_payment(self, *, kind: PaymentKind, asset: str, amount: str, pool: str | None,
                       channel: str | None, destination_channel: str | None,
                       counterparty: str | None, reference: str | None,
                       metadata: dict[str, str], key: str | None,
                       destination: str | None = None) -> dict[str, Any]:
        created = self.client.create_payment(
            kind.value, asset, amount, pool=pool, channel=channel,
            destination_channel=destination_channel, counterparty=counterparty,
            reference=reference, metadata=metadata, idempotency_key=key,
            destination=destination)
        return created.model_dump(mode="json")

    def payment(self, payment_id: str, pool: str | None) -> dict[str, Any]:
        """The document of `fundpool payment show`: the payment and its events (`pool` is
        the server's business: a payment id names one payment across its pools)."""
        return self.client.payment(payment_id).model_dump(mode="json", by_alias=True)

    def payments(self, *, pool: str | None, state: PaymentState | None,
                 kind: PaymentKind | None, asset: str | None, channel: str | None, limit: int,
                 after: str | None) -> list[dict[str, Any]]:
        """`limit` payments, newest first, after the payment `after` (ids grow with time:
        the pages are walked past it)."""
        found: list[dict[str, Any]] = []
        for payment in self.client.iter_payments(
                pool, state=None if state is None else state.value,
                kind=None if kind is None else kind.value, asset=asset, channel=channel,
                limit=limit):
            if after is not None and payment.id >= after:
                continue
            found.append(payment.model_dump(mode="json"))
            if len(found) == limit:
                break
        return found


def _posting(source: str, destination: str, asset: str, amount: str) -> Posting:
    return Posting(source.strip(), destination.strip(), asset.strip(), amount.strip())


def entry(found: EntryOut) -> dict[str, Any]:
    """An entry as the local commands print it: the members the entry has (the API's model
    lists every member, null when the entry has none)."""
    return found.model_dump(mode="json", exclude_none=True)


@contextmanager
def open_remote(url: str, api_key: str | None, as_json: bool, *,
                data_dir: Path | None = None, db_url: str | None = None
                ) -> Iterator[RemoteBackend]:
    """The client of the server at `url` for one command; an API error (or none answering)
    prints as a local error and exits with 2."""
    if data_dir is not None or db_url is not None:
        raise typer.BadParameter("--url acts on a server: leave out --data-dir and --db-url",
                                 param_hint="'--url'")
    try:
        try:
            client = Client(url, api_key, timeout=CLI_TIMEOUT_S)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="'--url'") from None
        with client:
            yield RemoteBackend(client)
    except FundpoolError as error:
        report_error(error, as_json)
        raise typer.Exit(2) from None
