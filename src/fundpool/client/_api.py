"""The API's methods, written once for both clients: each builds the `Call` of one route.

A method decorated `@endpoint` is, on `Client`, a method that sends the call and returns its
typed answer; on `AsyncClient`, a coroutine method (`_core.py`). `@pages` makes the iterator
over every item of a list, page after page.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import TypeAdapter

from fundpool.client._core import (
    Call,
    Page,
    Runner,
    adapter,
    amount_text,
    endpoint,
    instant_text,
    pages,
    query,
    segment,
)
from fundpool.client.approvals import ApprovalsEndpoints
from fundpool.client.risk import (
    ActivePolicyOut,
    BacktestOut,
    CaseDetailOut,
    CasesOut,
    LiftedOut,
    LimitsOut,
    LoadedListOut,
    PartiesOut,
    PaymentRiskOut,
    PoliciesOut,
    PolicyCheckOut,
    PolicyVersionOut,
    RingsOut,
    RiskListsOut,
    ScreenOut,
)
from fundpool.server.v1.auth import (
    AuthChangeOut,
    KeyOut,
    MeOut,
    NewKeyOut,
    SessionOut,
    UserOut,
)
from fundpool.server.v1.models import (
    AccountOut,
    AccountResult,
    AssetOut,
    AssetResult,
    BalancesOut,
    BatchOut,
    EntryOut,
    HistoryRowOut,
    PendingOut,
    VerifyOut,
)

# The models of the routes that import the CLI's renderers are imported when first used.
if TYPE_CHECKING:
    from fundpool.server.v1.channels import ChannelBatchOut, ChannelOut, RouteDecisionOut
    from fundpool.server.v1.monitoring import (
        AlertOut,
        FiguresOut,
        KpisOut,
        KpiTemplateOut,
        MetricOut,
        ReplayOut,
        SeriesOut,
        SlosOut,
    )
    from fundpool.server.v1.payments import (
        BatchProgressOut,
        PaymentDetailOut,
        PaymentEventOut,
        PaymentOut,
        PayoutBatchOut,
    )
    from fundpool.server.v1.pool import PoolOut, PoolViewOut

LEDGER = "/v1/ledger"
PAYMENTS = "/v1/payments"
MONITORING = "/v1/monitoring"
RISK = "/v1/risk"
AUDIT = "/v1/audit"
RECON = "/v1/recon"
FX = "/v1/fx"
NETTING = "/v1/netting"
LIQUIDITY = "/v1/liquidity"
_AUDIT_DOC: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])
_RECON_DOC: TypeAdapter[dict[str, Any]] = _AUDIT_DOC
_RECON_DOCS: TypeAdapter[list[dict[str, Any]]] = TypeAdapter(list[dict[str, Any]])
_TREASURY_DOC = _AUDIT_DOC
_TREASURY_DOCS = _RECON_DOCS
STATEMENT_MEDIA_TYPE = "application/octet-stream"
CSV_MEDIA_TYPE = "text/csv"
PENDING_TIMEOUT_S_DEFAULT = 3600
PAGE_SIZE_DEFAULT = 100

_ASSET_RESULT = TypeAdapter(AssetResult)
_ASSETS = TypeAdapter(list[AssetOut])
_ACCOUNT_RESULT = TypeAdapter(AccountResult)
_ACCOUNT = TypeAdapter(AccountOut)
_ACCOUNTS = TypeAdapter(Page[AccountOut])
_BALANCES = TypeAdapter(BalancesOut)
_HISTORY = TypeAdapter(Page[HistoryRowOut])
_ENTRY = TypeAdapter(EntryOut)
_ENTRIES = TypeAdapter(Page[EntryOut])
_BATCH = TypeAdapter(BatchOut)
_PENDING = TypeAdapter(PendingOut)
_PENDINGS = TypeAdapter(Page[PendingOut])
_VERIFY = TypeAdapter(VerifyOut)
_SESSION = TypeAdapter(SessionOut)
_ME = TypeAdapter(MeOut)
_KEYS = TypeAdapter(list[KeyOut])
_KEY = TypeAdapter(KeyOut)
_NEW_KEY = TypeAdapter(NewKeyOut)
_USERS = TypeAdapter(list[UserOut])
_USER = TypeAdapter(UserOut)
_AUTH_CHANGES = TypeAdapter(Page[AuthChangeOut])
_NOTHING = TypeAdapter(type(None))
_BYTES = TypeAdapter(bytes)
EXPORT_MEDIA_TYPES = ("text/csv, "
                      "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@dataclass(frozen=True, slots=True)
class Posting:
    """One leg of a transfer. `amount` is decimal text at the asset's scale or a Decimal;
    never a float (TypeError)."""

    source: str
    destination: str
    asset: str
    amount: str | Decimal

    def __post_init__(self) -> None:
        amount_text(self.amount)


PostingLike = Posting | Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class BatchTransfer:
    """One transfer of `transfer_batch`, with its own metadata and idempotency key."""

    postings: Sequence[PostingLike]
    metadata: Mapping[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None
    reason: str | None = None  # an adjustment's (see `transfer`)


def new_key() -> str:
    """A fresh idempotency key: one per logical call, kept by its retries."""
    return str(uuid.uuid4())


def obligation_bodies(obligations: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Obligations (netting's, a waterfall's) with each `amount` as the API's decimal text."""
    return [{**o, "amount": amount_text(o.get("amount"), f"obligations[{i}].amount")}
            for i, o in enumerate(obligations)]


def posting_body(posting: PostingLike) -> dict[str, str]:
    if isinstance(posting, Posting):
        source, destination, asset, amount = (posting.source, posting.destination,
                                              posting.asset, posting.amount)
    elif isinstance(posting, Mapping):
        missing = {"source", "destination", "asset", "amount"} - posting.keys()
        if missing:
            raise ValueError(f"a posting needs {', '.join(sorted(missing))}")
        source, destination, asset, amount = (posting["source"], posting["destination"],
                                              posting["asset"], posting["amount"])
    else:
        raise TypeError(f"a posting is a Posting or a mapping, not {type(posting).__name__}")
    return {"source": str(source), "destination": str(destination), "asset": str(asset),
            "amount": amount_text(amount, f"the amount of {source} -> {destination}")}


def _metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    return dict(metadata or {})


def _with_reason(body: dict[str, Any], reason: str | None) -> dict[str, Any]:
    """The body with an adjustment's `reason`, sent only when given."""
    return body if reason is None else {**body, "reason": reason}


class Endpoints(ApprovalsEndpoints, Runner):
    """Every route of `/v1`, as methods of `Client` and `AsyncClient` (the approvals routes'
    from `approvals.ApprovalsEndpoints`)."""

    def _post(self, path: str, body: object, result: TypeAdapter[Any],
              idempotency_key: str | None) -> Call[Any]:
        return Call("POST", path, result, body=body,
                    idempotency_key=idempotency_key or new_key())

    # --- assets and accounts -----------------------------------------------------------------

    @endpoint
    def define_asset(self, code: str, scale: int,
                     kind: Literal["fiat", "stablecoin", "crypto", "cbdc"], *,
                     idempotency_key: str | None = None) -> Call[AssetResult]:
        """Define an asset (again with the same scale and kind: `status` "unchanged")."""
        return self._post(f"{LEDGER}/assets", {"code": code, "scale": scale, "kind": kind},
                          _ASSET_RESULT, idempotency_key)

    @endpoint
    def assets(self) -> Call[list[AssetOut]]:
        """Every asset, by code."""
        return Call("GET", f"{LEDGER}/assets", _ASSETS)

    @endpoint
    def open_account(self, address: str, asset: str | None = None, *,
                     allow_negative: bool | None = None,
                     min_balance: str | Decimal | None = None,
                     max_balance: str | Decimal | None = None,
                     metadata: Mapping[str, str] | None = None,
                     idempotency_key: str | None = None) -> Call[AccountResult]:
        """Open an account (again with the same flags: `status` "unchanged")."""
        body: dict[str, object] = {"address": address, "asset": asset,
                                   "allow_negative": allow_negative,
                                   "metadata": _metadata(metadata)}
        for name, bound in (("min_balance", min_balance), ("max_balance", max_balance)):
            if bound is not None:
                text = amount_text(bound, name)
                body[name] = text
        return self._post(f"{LEDGER}/accounts", body, _ACCOUNT_RESULT, idempotency_key)

    @endpoint
    def account(self, address: str) -> Call[AccountOut]:
        return Call("GET", f"{LEDGER}/accounts/{segment(address)}", _ACCOUNT)

    def _accounts(self, prefix: str | None = None, asset: str | None = None, *,
                  sort: Literal["address", "-address"] = "address",
                  limit: int = PAGE_SIZE_DEFAULT, cursor: str | None = None
                  ) -> Call[Page[AccountOut]]:
        """Accounts by address (`prefix`: only addresses starting so)."""
        return Call("GET", f"{LEDGER}/accounts", _ACCOUNTS,
                    query(prefix=prefix, asset=asset, sort=sort, limit=limit, cursor=cursor))

    accounts = endpoint(_accounts)
    iter_accounts = pages(_accounts)

    @endpoint
    def balances(self, address: str, at: str | datetime | None = None) -> Call[BalancesOut]:
        """The account's balances now, or as they stood at `at` (ISO-8601 with a zone, or an
        aware datetime)."""
        return Call("GET", f"{LEDGER}/accounts/{segment(address)}/balances", _BALANCES,
                    query(at=None if at is None else instant_text(at)))

    def _history(self, address: str, asset: str | None = None, *,
                 limit: int = PAGE_SIZE_DEFAULT, cursor: str | None = None
                 ) -> Call[Page[HistoryRowOut]]:
        """The account's balance changes, newest first (a page holds `limit` whole entries)."""
        return Call("GET", f"{LEDGER}/accounts/{segment(address)}/history", _HISTORY,
                    query(asset=asset, limit=limit, cursor=cursor))

    history = endpoint(_history)
    iter_history = pages(_history)

    # --- transactions ------------------------------------------------------------------------

    @endpoint
    def transfer(self, postings: Sequence[PostingLike],
                 metadata: Mapping[str, str] | None = None,
                 idempotency_key: str | None = None, *,
                 reason: str | None = None) -> Call[EntryOut]:
        """Move funds now: every posting applies, or none does. A retry with the same key
        answers with the original entry (`status` "replayed"). Touching an account of a pool
        or a merchant makes it an adjustment: it needs `ledger:adjust` and a `reason`."""
        if isinstance(postings, Posting | Mapping):
            raise TypeError("postings is a sequence of postings: wrap the one in a list")
        body = {"postings": [posting_body(p) for p in postings],
                "metadata": _metadata(metadata)}
        return self._post(f"{LEDGER}/transactions", _with_reason(body, reason), _ENTRY,
                          idempotency_key)

    @endpoint
    def transfer_batch(self, transfers: Sequence[BatchTransfer | Sequence[PostingLike]],
                       idempotency_key: str | None = None) -> Call[BatchOut]:
        """Many transfers in one request; each applies or fails on its own (its result says
        which: `errors.error_from_problem(item.error.model_dump())` makes it an exception).
        Transfer `i` without a key of its own is keyed `<idempotency_key>:<i>`."""
        items: list[dict[str, object]] = []
        for transfer in transfers:
            if not isinstance(transfer, BatchTransfer):
                transfer = BatchTransfer(list(transfer))
            item: dict[str, object] = {
                "postings": [posting_body(p) for p in transfer.postings],
                "metadata": _metadata(transfer.metadata)}
            if transfer.idempotency_key is not None:
                item["idempotency_key"] = transfer.idempotency_key
            if transfer.reason is not None:
                item["reason"] = transfer.reason
            items.append(item)
        return self._post(f"{LEDGER}/transactions/batch", {"transfers": items}, _BATCH,
                          idempotency_key)

    @endpoint
    def transaction(self, entry_id: str) -> Call[EntryOut]:
        return Call("GET", f"{LEDGER}/transactions/{segment(entry_id)}", _ENTRY)

    def _transactions(self, *, sort: Literal["seq", "-seq"] = "-seq",
                      limit: int = PAGE_SIZE_DEFAULT, cursor: str | None = None
                      ) -> Call[Page[EntryOut]]:
        """The journal (`-seq`: newest first)."""
        return Call("GET", f"{LEDGER}/transactions", _ENTRIES,
                    query(sort=sort, limit=limit, cursor=cursor))

    transactions = endpoint(_transactions)
    iter_transactions = pages(_transactions)

    @endpoint
    def reverse(self, entry_id: str, metadata: Mapping[str, str] | None = None,
                idempotency_key: str | None = None, *,
                reason: str | None = None) -> Call[EntryOut]:
        """Undo a posted transfer with an entry that moves every posting back."""
        return self._post(f"{LEDGER}/transactions/{segment(entry_id)}/reversal",
                          _with_reason({"metadata": _metadata(metadata)}, reason), _ENTRY,
                          idempotency_key)

    # --- two-phase transfers -----------------------------------------------------------------

    @endpoint
    def create_pending(self, posting: PostingLike, timeout_s: int = PENDING_TIMEOUT_S_DEFAULT,
                       metadata: Mapping[str, str] | None = None,
                       idempotency_key: str | None = None, *,
                       reason: str | None = None) -> Call[EntryOut]:
        """Reserve funds; post or void them later, or let the reservation expire."""
        body = {"posting": posting_body(posting), "timeout_s": timeout_s,
                "metadata": _metadata(metadata)}
        return self._post(f"{LEDGER}/pendings", _with_reason(body, reason), _ENTRY,
                          idempotency_key)

    @endpoint
    def post_pending(self, pending_id: str, amount: str | Decimal | None = None,
                     metadata: Mapping[str, str] | None = None,
                     idempotency_key: str | None = None, *,
                     reason: str | None = None) -> Call[EntryOut]:
        """Post a reservation, all of it or `amount` of it (the rest is released)."""
        body = {"amount": None if amount is None else amount_text(amount),
                "metadata": _metadata(metadata)}
        return self._post(f"{LEDGER}/pendings/{segment(pending_id)}/post",
                          _with_reason(body, reason), _ENTRY, idempotency_key)

    @endpoint
    def void_pending(self, pending_id: str, metadata: Mapping[str, str] | None = None,
                     idempotency_key: str | None = None, *,
                     reason: str | None = None) -> Call[EntryOut]:
        """Release a reservation without moving anything."""
        return self._post(f"{LEDGER}/pendings/{segment(pending_id)}/void",
                          _with_reason({"metadata": _metadata(metadata)}, reason), _ENTRY,
                          idempotency_key)

    @endpoint
    def pending(self, pending_id: str) -> Call[PendingOut]:
        return Call("GET", f"{LEDGER}/pendings/{segment(pending_id)}", _PENDING)

    def _pendings(self, state: str | None = None, *, limit: int = PAGE_SIZE_DEFAULT,
                  cursor: str | None = None) -> Call[Page[PendingOut]]:
        """Reservations, newest first (`state`: pending, posted, voided, expired)."""
        return Call("GET", f"{LEDGER}/pendings", _PENDINGS,
                    query(state=state, limit=limit, cursor=cursor))

    pendings = endpoint(_pendings)
    iter_pendings = pages(_pendings)

    @endpoint
    def verify(self) -> Call[VerifyOut]:
        """Re-check the hash chain and every balance against the journal (reads it all)."""
        return Call("GET", f"{LEDGER}/verify", _VERIFY)

    # --- pools -------------------------------------------------------------------------------

    @endpoint
    def pools(self) -> Call[list[PoolOut]]:
        """The pools of the server's configuration."""
        from fundpool.server.v1.pool import PoolOut

        return Call("GET", "/v1/pools", adapter(list[PoolOut]))

    @endpoint
    def pool_view(self, pool_id: str, at: str | datetime | None = None,
                  seq: int | None = None) -> Call[PoolViewOut]:
        """The pool by state per asset and channel, per asset, and in the reporting currency
        (the document `fundpool pool view --json` prints): now, or as it stood at `at`
        (ISO-8601 with a zone, or an aware datetime) or right after journal entry `seq`.
        Give at most one of them."""
        from fundpool.server.v1.pool import PoolViewOut

        return Call("GET", f"/v1/pools/{segment(pool_id)}/view", adapter(PoolViewOut),
                    query(at=None if at is None else instant_text(at), seq=seq))

    # --- who is calling, and credentials -----------------------------------------------------

    @endpoint
    def me(self) -> Call[MeOut]:
        """Who the credentials belong to, and what they may do."""
        return Call("GET", "/v1/me", _ME)

    @endpoint
    def login(self, username: str, password: str) -> Call[SessionOut]:
        """Log in as a console user; the client sends the session's token from then on."""
        return Call("POST", "/v1/sessions", _SESSION,
                    body={"username": username, "password": password},
                    then=lambda session: self.use_token(session.token))

    @endpoint
    def logout(self) -> Call[None]:
        """End the session; the client goes back to the key it was made with."""
        return Call("DELETE", "/v1/sessions/current", _NOTHING,
                    then=lambda _: self.use_token(self.key))

    @endpoint
    def keys(self) -> Call[list[KeyOut]]:
        """Every API key, without its secret."""
        return Call("GET", "/v1/keys", _KEYS)

    @endpoint
    def create_key(self, name: str, roles: Sequence[str], *,
                   scopes: Sequence[str] | None = None, expires_at: str | datetime | None = None,
                   idempotency_key: str | None = None) -> Call[NewKeyOut]:
        """A new API key; its secret (`token`) is in this answer only."""
        body = {"name": name, "roles": list(roles),
                "scopes": None if scopes is None else list(scopes),
                "expires_at": None if expires_at is None else instant_text(expires_at)}
        return self._post("/v1/keys", body, _NEW_KEY, idempotency_key)

    @endpoint
    def rotate_key(self, key_id: str, grace_s: int = 0, *,
                   idempotency_key: str | None = None) -> Call[NewKeyOut]:
        """A new secret for the key's roles; the old one works `grace_s` seconds more."""
        return self._post(f"/v1/keys/{segment(key_id)}/rotate", {"grace_s": grace_s},
                          _NEW_KEY, idempotency_key)

    @endpoint
    def revoke_key(self, key_id: str, *, idempotency_key: str | None = None) -> Call[KeyOut]:
        """Revoke a key at once (every worker stops trusting it within `auth_cache_s`)."""
        return self._post(f"/v1/keys/{segment(key_id)}/revoke", None, _KEY, idempotency_key)

    @endpoint
    def users(self) -> Call[list[UserOut]]:
        return Call("GET", "/v1/users", _USERS)

    @endpoint
    def create_user(self, username: str, password: str, roles: Sequence[str], *,
                    idempotency_key: str | None = None) -> Call[UserOut]:
        """A console user (the password: at least 12 characters)."""
        body = {"username": username, "password": password, "roles": list(roles)}
        return self._post("/v1/users", body, _USER, idempotency_key)

    @endpoint
    def disable_user(self, username: str, *, idempotency_key: str | None = None
                     ) -> Call[UserOut]:
        """Disable a user and end their sessions."""
        return self._post(f"/v1/users/{segment(username)}/disable", None, _USER,
                          idempotency_key)

    def _auth_changes(self, *, target_kind: Literal["key", "user"] | None = None,
                      target_id: str | None = None, limit: int = PAGE_SIZE_DEFAULT,
                      cursor: str | None = None) -> Call[Page[AuthChangeOut]]:
        """Who changed which key or user, and when, newest first (each with its actor and
        the request id of the call that made it)."""
        return Call("GET", "/v1/auth/changes", _AUTH_CHANGES,
                    query(target_kind=target_kind, target_id=target_id, limit=limit,
                          cursor=cursor))

    auth_changes = endpoint(_auth_changes)
    iter_auth_changes = pages(_auth_changes)

    # --- payments ----------------------------------------------------------------------------

    @endpoint
    def create_payment(self, kind: Literal["deposit", "payout", "internal", "bridge"],
                       asset: str, amount: str | Decimal, *, pool: str | None = None,
                       channel: str | None = None, destination_channel: str | None = None,
                       counterparty: str | None = None, reference: str | None = None,
                       metadata: Mapping[str, str] | None = None,
                       idempotency_key: str | None = None,
                       destination: str | None = None) -> Call[PaymentOut]:
        """Create a payment (state `initiated`); a retry with the same key answers with the
        payment as it now stands. A payout names its `destination` (the payee's account
        number, IBAN or chain address)."""
        from fundpool.server.v1.payments import PaymentOut

        body = {"pool": pool, "kind": kind, "asset": asset, "amount": amount_text(amount),
                "channel": channel, "destination_channel": destination_channel,
                "counterparty": counterparty, "reference": reference,
                "metadata": _metadata(metadata), "destination": destination}
        return self._post(PAYMENTS, body, adapter(PaymentOut), idempotency_key)

    @endpoint
    def payment(self, payment_id: str) -> Call[PaymentDetailOut]:
        """A payment and its timeline, with the ledger entries each step posted."""
        from fundpool.server.v1.payments import PaymentDetailOut

        return Call("GET", f"{PAYMENTS}/{segment(payment_id)}", adapter(PaymentDetailOut))

    @endpoint
    def payment_events(self, payment_id: str) -> Call[list[PaymentEventOut]]:
        from fundpool.server.v1.payments import PaymentEventOut

        return Call("GET", f"{PAYMENTS}/{segment(payment_id)}/events",
                    adapter(list[PaymentEventOut]))

    def _payments(self, pool: str | None = None, *, state: str | None = None,
                  kind: str | None = None, asset: str | None = None,
                  channel: str | None = None, limit: int = PAGE_SIZE_DEFAULT,
                  cursor: str | None = None) -> Call[Page[PaymentOut]]:
        """A pool's payments, newest first."""
        from fundpool.server.v1.payments import PaymentOut

        return Call("GET", PAYMENTS, adapter(Page[PaymentOut]),
                    query(pool=pool, state=state, kind=kind, asset=asset, channel=channel,
                          limit=limit, cursor=cursor))

    payments = endpoint(_payments)
    iter_payments = pages(_payments)

    def _act(self, payment_id: str, action: str, reason: str | None,
             idempotency_key: str | None) -> Call[PaymentOut]:
        from fundpool.server.v1.payments import PaymentOut

        return self._post(f"{PAYMENTS}/{segment(payment_id)}/{action}", {"reason": reason},
                          adapter(PaymentOut), idempotency_key)

    @endpoint
    def cancel_payment(self, payment_id: str, reason: str | None = None, *,
                       idempotency_key: str | None = None) -> Call[PaymentOut]:
        """Cancel a payment before it is submitted."""
        return self._act(payment_id, "cancel", reason, idempotency_key)

    @endpoint
    def reject_payment(self, payment_id: str, reason: str | None = None, *,
                       idempotency_key: str | None = None) -> Call[PaymentOut]:
        return self._act(payment_id, "reject", reason, idempotency_key)

    @endpoint
    def hold_payment(self, payment_id: str, reason: str | None = None, *,
                     idempotency_key: str | None = None) -> Call[PaymentOut]:
        return self._act(payment_id, "hold", reason, idempotency_key)

    @endpoint
    def release_payment(self, payment_id: str, reason: str | None = None, *,
                        idempotency_key: str | None = None) -> Call[PaymentOut]:
        return self._act(payment_id, "release", reason, idempotency_key)

    @endpoint
    def upload_payouts(self, payouts: bytes | str | Path, *, pool: str | None = None,
                       dry_run: bool = False, all_or_nothing: bool = False,
                       idempotency_key: str | None = None) -> Call[PayoutBatchOut]:
        """Batch payouts from a CSV file (its bytes, its text, or its path): every row
        checked, the valid ones created, routed and approved. Sending it again never pays a
        row twice (each row is keyed by its reference)."""
        from fundpool.server.v1.payments import PayoutBatchOut

        if isinstance(payouts, Path):
            payouts = payouts.read_bytes()
        data = payouts.encode() if isinstance(payouts, str) else payouts
        return Call("POST", f"{PAYMENTS}/batches", adapter(PayoutBatchOut),
                    query(pool=pool, dry_run=str(dry_run).lower(),
                          all_or_nothing=str(all_or_nothing).lower()),
                    content=(data, CSV_MEDIA_TYPE), idempotency_key=idempotency_key or new_key())

    @endpoint
    def payout_batch(self, batch_id: str, pool: str | None = None) -> Call[BatchProgressOut]:
        """How far an uploaded file's payouts are."""
        from fundpool.server.v1.payments import BatchProgressOut

        return Call("GET", f"{PAYMENTS}/batches/{segment(batch_id)}",
                    adapter(BatchProgressOut), query(pool=pool))

    @endpoint
    def export_payments(self, from_: str | datetime, to: str | datetime,
                        format: Literal["csv", "xlsx"], pool: str | None = None
                        ) -> Call[bytes]:
        """The reconciliation export of the payments the pool created in [`from_`, `to`)
        (ISO-8601 with a zone, or aware datetimes; at most 31 days): the file's bytes, CSV
        or XLSX, one row per payment, oldest first."""
        return Call("GET", f"{PAYMENTS}/export", _BYTES,
                    query(**{"from": instant_text(from_), "to": instant_text(to)},
                          format=format, pool=pool),
                    accept=EXPORT_MEDIA_TYPES)

    # --- channels ----------------------------------------------------------------------------

    @endpoint
    def channels(self, pool: str | None = None) -> Call[list[ChannelOut]]:
        """The configured rails (or a pool's): fees, limits, cut-off windows."""
        from fundpool.server.v1.channels import ChannelOut

        return Call("GET", "/v1/channels", adapter(list[ChannelOut]), query(pool=pool))

    @endpoint
    def channel(self, channel_id: str) -> Call[ChannelOut]:
        from fundpool.server.v1.channels import ChannelOut

        return Call("GET", f"/v1/channels/{segment(channel_id)}", adapter(ChannelOut))

    def _route_decisions(self, payment_id: str | None = None, channel: str | None = None, *,
                         limit: int = PAGE_SIZE_DEFAULT, cursor: str | None = None
                         ) -> Call[Page[RouteDecisionOut]]:
        """Routing decisions, one per attempt, with every candidate's scores."""
        from fundpool.server.v1.channels import RouteDecisionOut

        return Call("GET", "/v1/channels/decisions", adapter(Page[RouteDecisionOut]),
                    query(payment_id=payment_id, channel=channel, limit=limit, cursor=cursor))

    route_decisions = endpoint(_route_decisions)
    iter_route_decisions = pages(_route_decisions)

    def _channel_batches(self, channel: str | None = None, *, limit: int = PAGE_SIZE_DEFAULT,
                         cursor: str | None = None) -> Call[Page[ChannelBatchOut]]:
        """Batches sent to the rails, with their fees and what batching saved."""
        from fundpool.server.v1.channels import ChannelBatchOut

        return Call("GET", "/v1/channels/batches", adapter(Page[ChannelBatchOut]),
                    query(channel=channel, limit=limit, cursor=cursor))

    channel_batches = endpoint(_channel_batches)
    iter_channel_batches = pages(_channel_batches)

    # --- monitoring --------------------------------------------------------------------------

    @endpoint
    def figures(self, pool: str, hours: int = 24) -> Call[FiguresOut]:
        """The pool's live figures (`fundpool monitor show --json`)."""
        from fundpool.server.v1.monitoring import FiguresOut

        return Call("GET", f"{MONITORING}/pools/{segment(pool)}/figures", adapter(FiguresOut),
                    query(hours=hours))

    @endpoint
    def series_metrics(self, pool: str) -> Call[list[MetricOut]]:
        from fundpool.server.v1.monitoring import MetricOut

        return Call("GET", f"{MONITORING}/pools/{segment(pool)}/series",
                    adapter(list[MetricOut]))

    @endpoint
    def series(self, pool: str, metric: str, *,
               resolution: Literal["second", "minute", "hour"] = "minute",
               since: str | datetime | None = None, until: str | datetime | None = None
               ) -> Call[SeriesOut]:
        """One metric as a time series (`metric` such as `total|USD`)."""
        from fundpool.server.v1.monitoring import SeriesOut

        bounds = {"from": None if since is None else instant_text(since),
                  "to": None if until is None else instant_text(until)}
        return Call("GET", f"{MONITORING}/pools/{segment(pool)}/series/{segment(metric)}",
                    adapter(SeriesOut), query(resolution=resolution, **bounds))

    @endpoint
    def kpis(self, pool: str) -> Call[KpisOut]:
        from fundpool.server.v1.monitoring import KpisOut

        return Call("GET", f"{MONITORING}/pools/{segment(pool)}/kpis", adapter(KpisOut))

    @endpoint
    def kpi_templates(self) -> Call[list[KpiTemplateOut]]:
        from fundpool.server.v1.monitoring import KpiTemplateOut

        return Call("GET", f"{MONITORING}/kpis", adapter(list[KpiTemplateOut]))

    def _alerts(self, state: Literal["firing", "acknowledged", "resolved", "active"] | None
                = None, *, severity: str | None = None, pool: str | None = None,
                limit: int = PAGE_SIZE_DEFAULT, cursor: str | None = None
                ) -> Call[Page[AlertOut]]:
        """Alerts, newest first (`active`: firing or acknowledged)."""
        from fundpool.server.v1.monitoring import AlertOut

        return Call("GET", f"{MONITORING}/alerts", adapter(Page[AlertOut]),
                    query(state=state, severity=severity, pool=pool, limit=limit,
                          cursor=cursor))

    alerts = endpoint(_alerts)
    iter_alerts = pages(_alerts)

    @endpoint
    def alert(self, alert_id: str) -> Call[AlertOut]:
        from fundpool.server.v1.monitoring import AlertOut

        return Call("GET", f"{MONITORING}/alerts/{segment(alert_id)}", adapter(AlertOut))

    @endpoint
    def acknowledge_alert(self, alert_id: str, note: str | None = None, *,
                          idempotency_key: str | None = None) -> Call[AlertOut]:
        """Acknowledge a firing alert in the caller's name."""
        from fundpool.server.v1.monitoring import AlertOut

        return self._post(f"{MONITORING}/alerts/{segment(alert_id)}/acknowledge",
                          {"note": note}, adapter(AlertOut), idempotency_key)

    @endpoint
    def slos(self) -> Call[SlosOut]:
        from fundpool.server.v1.monitoring import SlosOut

        return Call("GET", f"{MONITORING}/slos", adapter(SlosOut))

    @endpoint
    def replay(self, at: str | datetime, pool: str | None = None) -> Call[ReplayOut]:
        """The pool as it stood at `at`, from the journal and from the event log."""
        from fundpool.server.v1.monitoring import ReplayOut

        return Call("GET", f"{MONITORING}/replay", adapter(ReplayOut),
                    query(at=instant_text(at), pool=pool))

    # --- the audit log (docs/audit.md) ------------------------------------------------------

    @endpoint
    def audit_entries(self, *, actor: str | None = None, object_kind: str | None = None,
                      object_id: str | None = None, action: str | None = None,
                      from_: str | datetime | None = None, to: str | datetime | None = None,
                      limit: int = PAGE_SIZE_DEFAULT, cursor: str | None = None
                      ) -> Call[dict[str, Any]]:
        """Audit entries, oldest first: `data` and `next_cursor` (pass it as `cursor`)."""
        return Call("GET", f"{AUDIT}/entries", _AUDIT_DOC, query(
            actor=actor, object_kind=object_kind, object_id=object_id, action=action,
            to=None if to is None else instant_text(to), limit=limit, cursor=cursor,
            **{"from": None if from_ is None else instant_text(from_)}))

    @endpoint
    def audit_entry(self, seq: int) -> Call[dict[str, Any]]:
        """One entry with its inclusion proof against the latest checkpoint."""
        return Call("GET", f"{AUDIT}/entries/{int(seq)}", _AUDIT_DOC)

    @endpoint
    def audit_checkpoints(self, *, limit: int = PAGE_SIZE_DEFAULT, cursor: str | None = None
                          ) -> Call[dict[str, Any]]:
        """Signed checkpoints, newest first."""
        return Call("GET", f"{AUDIT}/checkpoints", _AUDIT_DOC, query(limit=limit,
                                                                   cursor=cursor))

    @endpoint
    def audit_latest_checkpoint(self) -> Call[dict[str, Any]]:
        return Call("GET", f"{AUDIT}/checkpoints/latest", _AUDIT_DOC)

    @endpoint
    def audit_consistency(self, first: int, second: int) -> Call[dict[str, Any]]:
        return Call("GET", f"{AUDIT}/consistency", _AUDIT_DOC,
                    query(first=int(first), second=int(second)))

    @endpoint
    def audit_status(self) -> Call[dict[str, Any]]:
        """The log's size, latest checkpoint, lag behind its sources, last verification."""
        return Call("GET", f"{AUDIT}/status", _AUDIT_DOC)

    @endpoint
    def audit_verify(self) -> Call[dict[str, Any]]:
        """Verify the whole log now: `ok` and every finding, named."""
        return self._post(f"{AUDIT}/verify", None, _AUDIT_DOC, None)

    @endpoint
    def audit_public_key(self) -> Call[dict[str, Any]]:
        return Call("GET", f"{AUDIT}/public-key", _AUDIT_DOC)

    # --- reconciliation (docs/reconciliation.md) --------------------------------------------

    @endpoint
    def recon_channels(self, pool: str | None = None) -> Call[list[dict[str, Any]]]:
        """Each channel of the pool: its lines' and items' counts by side and state, its
        tolerance, and its latest statement's balance check."""
        return Call("GET", f"{RECON}/channels", _RECON_DOCS, query(pool=pool))

    @endpoint
    def recon_import(self, data: bytes | str | Path, channel: str, name: str, *,
                     pool: str | None = None,
                     format: Literal["camt.053", "camt.054", "mt940", "csv", "chain"] | None
                     = None, mapping: str | None = None,
                     idempotency_key: str | None = None) -> Call[dict[str, Any]]:
        """Import a statement file (its bytes, its text, or its path) for `channel`: checked
        whole before anything is stored, then matched. `file`, `statements` and `run`."""
        if isinstance(data, Path):
            data = data.read_bytes()
        body = data.encode() if isinstance(data, str) else data
        return Call("POST", f"{RECON}/imports", _RECON_DOC,
                    query(channel=channel, name=name, pool=pool, format=format,
                          mapping=mapping),
                    content=(body, STATEMENT_MEDIA_TYPE),
                    idempotency_key=idempotency_key or new_key())

    @endpoint
    def recon_files(self, channel: str | None = None, *, pool: str | None = None,
                    limit: int = PAGE_SIZE_DEFAULT) -> Call[list[dict[str, Any]]]:
        """The files imported, newest first."""
        return Call("GET", f"{RECON}/files", _RECON_DOCS,
                    query(channel=channel, pool=pool, limit=limit))

    @endpoint
    def recon_match(self, channel: str, *, pool: str | None = None,
                    idempotency_key: str | None = None) -> Call[dict[str, Any]]:
        """Match the channel's open lines and items again: the run's counts."""
        return self._post(f"{RECON}/channels/{segment(channel)}/match", None, _RECON_DOC,
                          idempotency_key).with_params(**query(pool=pool))

    @endpoint
    def recon_breaks(self, channel: str | None = None, *,
                     side: Literal["statement", "books"] | None = None,
                     states: Sequence[str] | None = None, pool: str | None = None,
                     limit: int = 500) -> Call[list[dict[str, Any]]]:
        """Open breaks and ambiguous items (or the `states` asked for), oldest first, each
        with its age in days and, on the statement side, its line."""
        return Call("GET", f"{RECON}/breaks", _RECON_DOCS,
                    query(channel=channel, side=side, state=list(states or ()), pool=pool,
                          limit=limit))

    @endpoint
    def recon_statements(self, channel: str | None = None, *, pool: str | None = None,
                         limit: int = PAGE_SIZE_DEFAULT) -> Call[list[dict[str, Any]]]:
        """Statements, newest period first, each with its balance check against the
        ledger."""
        return Call("GET", f"{RECON}/statements", _RECON_DOCS,
                    query(channel=channel, pool=pool, limit=limit))

    @endpoint
    def recon_statement(self, statement_id: str, *, pool: str | None = None
                        ) -> Call[dict[str, Any]]:
        """One statement with its balance check and its lines, each with where it stands."""
        return Call("GET", f"{RECON}/statements/{segment(statement_id)}", _RECON_DOC,
                    query(pool=pool))

    @endpoint
    def recon_resolve(self, side: Literal["statement", "books"], target: str, note: str, *,
                      book: bool = False, pool: str | None = None,
                      idempotency_key: str | None = None) -> Call[dict[str, Any]]:
        """Close an open break or ambiguous item with a note; with `book`, post the
        difference as a ledger adjustment first (`ledger:adjust` too)."""
        return self._post(f"{RECON}/resolve",
                          {"side": side, "id": target, "note": note, "book": book},
                          _RECON_DOC, idempotency_key).with_params(**query(pool=pool))

    @endpoint
    def recon_resolutions(self, channel: str | None = None, *, pool: str | None = None,
                          limit: int = PAGE_SIZE_DEFAULT) -> Call[list[dict[str, Any]]]:
        return Call("GET", f"{RECON}/resolutions", _RECON_DOCS,
                    query(channel=channel, pool=pool, limit=limit))

    @endpoint
    def recon_payment(self, payment_id: str, *, pool: str | None = None
                      ) -> Call[dict[str, Any]]:
        """Where a payment's book items stand: `state` (unreconciled, matched, break,
        ambiguous, resolved) and its `items`."""
        return Call("GET", f"{RECON}/payments/{segment(payment_id)}", _RECON_DOC,
                    query(pool=pool))

    @endpoint
    def recon_expected(self, channel: str | None = None, *,
                       state: Literal["open", "matched", "cancelled"] | None = None,
                       pool: str | None = None, limit: int = 500
                       ) -> Call[list[dict[str, Any]]]:
        """Expected (announced) incoming payments."""
        return Call("GET", f"{RECON}/expected", _RECON_DOCS,
                    query(channel=channel, state=state, pool=pool, limit=limit))

    @endpoint
    def recon_expect(self, channel: str, asset: str, amount_min: str | Decimal,
                     amount_max: str | Decimal, from_: str | datetime, until: str | datetime,
                     *, reference: str | None = None, counterparty: str | None = None,
                     pool: str | None = None, idempotency_key: str | None = None
                     ) -> Call[dict[str, Any]]:
        """Announce an incoming payment, matched against credits as they arrive."""
        body = {"channel": channel, "asset": asset,
                "amount_min": amount_text(amount_min, "amount_min"),
                "amount_max": amount_text(amount_max, "amount_max"),
                "from": instant_text(from_), "until": instant_text(until),
                "reference": reference, "counterparty": counterparty}
        return self._post(f"{RECON}/expected", body, _RECON_DOC,
                          idempotency_key).with_params(**query(pool=pool))

    @endpoint
    def recon_cancel_expected(self, expected_id: str, *, pool: str | None = None,
                              idempotency_key: str | None = None) -> Call[dict[str, Any]]:
        return self._post(f"{RECON}/expected/{segment(expected_id)}/cancel", None,
                          _RECON_DOC, idempotency_key).with_params(**query(pool=pool))

    @endpoint
    def recon_mappings(self, *, pool: str | None = None) -> Call[list[dict[str, Any]]]:
        """The saved CSV column mappings (name, YAML text, when saved)."""
        return Call("GET", f"{RECON}/mappings", _RECON_DOCS, query(pool=pool))

    @endpoint
    def recon_save_mapping(self, name: str, text: str, *, pool: str | None = None
                           ) -> Call[dict[str, Any]]:
        """Save a bank's CSV column mapping (YAML; refused naming the field when wrong)."""
        return Call("PUT", f"{RECON}/mappings/{segment(name)}", _RECON_DOC, query(pool=pool),
                    body={"text": text})

    # --- the treasury desk (docs/treasury.md) -------------------------------------------------
    # Documents as the API gives them (server/v1/treasury.py, desk/docs.py): amounts are
    # decimal text in their asset.

    @endpoint
    def fx_rates(self, *, pool: str | None = None) -> Call[dict[str, Any]]:
        """The pool's pairs at their mid rates, the desk's spread and its quotes' lifetime."""
        return Call("GET", f"{FX}/rates", _TREASURY_DOC, query(pool=pool))

    @endpoint
    def create_fx_quote(self, sell: str, buy: str, *, sell_amount: str | Decimal | None = None,
                        buy_amount: str | Decimal | None = None,
                        sell_channel: str | None = None, buy_channel: str | None = None,
                        pool: str | None = None, idempotency_key: str | None = None
                        ) -> Call[dict[str, Any]]:
        """A quote for selling `sell_amount` of `sell` (or buying `buy_amount` of `buy`): the
        rate with the desk's spread, open until `expires_at`. Give exactly one amount."""
        body: dict[str, Any] = {"sell": sell, "buy": buy}
        for name, amount in (("sell_amount", sell_amount), ("buy_amount", buy_amount)):
            if amount is not None:
                body[name] = amount_text(amount, name)
        for name, channel in (("sell_channel", sell_channel), ("buy_channel", buy_channel)):
            if channel is not None:
                body[name] = channel
        return self._post(f"{FX}/quotes", body, _TREASURY_DOC,
                          idempotency_key).with_params(**query(pool=pool))

    @endpoint
    def fx_quotes(self, *, pool: str | None = None, limit: int = 50
                  ) -> Call[list[dict[str, Any]]]:
        """The pool's quotes, newest first, each in its state (open, executed, expired, …)."""
        return Call("GET", f"{FX}/quotes", _TREASURY_DOCS, query(pool=pool, limit=limit))

    @endpoint
    def fx_quote(self, quote_id: str, *, pool: str | None = None) -> Call[dict[str, Any]]:
        return Call("GET", f"{FX}/quotes/{segment(quote_id)}", _TREASURY_DOC, query(pool=pool))

    @endpoint
    def accept_fx_quote(self, quote_id: str, *, pool: str | None = None,
                        idempotency_key: str | None = None) -> Call[dict[str, Any]]:
        """Lock the quote's rate and convert (one ledger entry): the quote `executed`, with
        its `entry_id`. An expired one is refused (`fx_quote_expired`), nothing converted."""
        return self._post(f"{FX}/quotes/{segment(quote_id)}/accept", None, _TREASURY_DOC,
                          idempotency_key).with_params(**query(pool=pool))

    @endpoint
    def fx_pnl(self, *, pool: str | None = None) -> Call[dict[str, Any]]:
        """Realised and unrealised P&L per pair, in the reporting currency."""
        return Call("GET", f"{FX}/pnl", _TREASURY_DOC, query(pool=pool))

    @endpoint
    def split_rules(self, *, pool: str | None = None) -> Call[list[dict[str, Any]]]:
        return Call("GET", "/v1/splits/rules", _TREASURY_DOCS, query(pool=pool))

    @endpoint
    def split_preview(self, amount: str | Decimal, asset: str, *, rule_id: str | None = None,
                      rule: Mapping[str, Any] | None = None, pool: str | None = None
                      ) -> Call[dict[str, Any]]:
        """How `amount` would be shared by the configured rule `rule_id` (or a `rule` given
        whole): each party's share and their total. Nothing is booked."""
        body: dict[str, Any] = {"amount": amount_text(amount), "asset": asset}
        if rule_id is not None:
            body["rule_id"] = rule_id
        if rule is not None:
            body["rule"] = dict(rule)
        return Call("POST", "/v1/splits/preview", _TREASURY_DOC, query(pool=pool), body=body)

    @endpoint
    def waterfall_preview(self, asset: str, available: str | Decimal,
                          tiers: Sequence[Mapping[str, Any]],
                          obligations: Sequence[Mapping[str, Any]], *,
                          pool: str | None = None) -> Call[dict[str, Any]]:
        """`available` paid to `obligations` (`id`, `creditor`, `tier`, `amount` as decimal
        text) tier by tier, senior first (`tiers`: `name`, `after`): paid and owed per
        obligation and per tier. Nothing is booked."""
        body = {"asset": asset, "available": amount_text(available, "available"),
                "tiers": [dict(tier) for tier in tiers],
                "obligations": obligation_bodies(obligations)}
        return Call("POST", "/v1/waterfall/preview", _TREASURY_DOC, query(pool=pool),
                    body=body)

    @endpoint
    def netting_participants(self, *, pool: str | None = None) -> Call[list[dict[str, Any]]]:
        """Merchants and partners, each with its balance per asset."""
        return Call("GET", f"{NETTING}/participants", _TREASURY_DOCS, query(pool=pool))

    @endpoint
    def record_obligations(self, obligations: Sequence[Mapping[str, Any]], *,
                           pool: str | None = None, idempotency_key: str | None = None
                           ) -> Call[list[dict[str, Any]]]:
        """Queue obligations (`payer`, `payee`, `asset`, `amount`, `reference`) for their
        asset's next netting cycle: all or none."""
        return self._post(f"{NETTING}/obligations", obligation_bodies(obligations), _TREASURY_DOCS,
                          idempotency_key).with_params(**query(pool=pool))

    @endpoint
    def netting_obligations(self, asset: str | None = None, *, pool: str | None = None,
                            limit: int = 200) -> Call[list[dict[str, Any]]]:
        """The queued obligations, first come first."""
        return Call("GET", f"{NETTING}/obligations", _TREASURY_DOCS,
                    query(asset=asset, pool=pool, limit=limit))

    @endpoint
    def run_netting_cycle(self, asset: str, *, pool: str | None = None,
                          idempotency_key: str | None = None) -> Call[dict[str, Any]]:
        """Net the queued obligations of `asset` and settle the net positions."""
        return self._post(f"{NETTING}/cycles", {"asset": asset}, _TREASURY_DOC,
                          idempotency_key).with_params(**query(pool=pool))

    @endpoint
    def netting_cycles(self, *, pool: str | None = None, limit: int = 50
                       ) -> Call[list[dict[str, Any]]]:
        return Call("GET", f"{NETTING}/cycles", _TREASURY_DOCS, query(pool=pool, limit=limit))

    @endpoint
    def liquidity(self, *, pool: str | None = None) -> Call[dict[str, Any]]:
        """Every position (channel, asset) with its available balance and its band."""
        return Call("GET", LIQUIDITY, _TREASURY_DOC, query(pool=pool))

    @endpoint
    def propose_plan(self, *, pool: str | None = None, idempotency_key: str | None = None
                     ) -> Call[dict[str, Any]]:
        """A rebalancing plan from the live balances, explained; executed at once when within
        the `auto_execute` limits, else waiting for another person's approval."""
        return self._post(f"{LIQUIDITY}/plans", None, _TREASURY_DOC,
                          idempotency_key).with_params(**query(pool=pool))

    @endpoint
    def liquidity_plans(self, *, pool: str | None = None, limit: int = 20
                        ) -> Call[list[dict[str, Any]]]:
        return Call("GET", f"{LIQUIDITY}/plans", _TREASURY_DOCS, query(pool=pool, limit=limit))

    @endpoint
    def liquidity_plan(self, plan_id: str, *, pool: str | None = None) -> Call[dict[str, Any]]:
        return Call("GET", f"{LIQUIDITY}/plans/{segment(plan_id)}", _TREASURY_DOC,
                    query(pool=pool))

    @endpoint
    def approve_plan(self, plan_id: str, *, pool: str | None = None,
                     idempotency_key: str | None = None) -> Call[dict[str, Any]]:
        """Approve another person's plan: it is executed as payments at once."""
        return self._post(f"{LIQUIDITY}/plans/{segment(plan_id)}/approve", None,
                          _TREASURY_DOC, idempotency_key).with_params(**query(pool=pool))

    @endpoint
    def reject_plan(self, plan_id: str, note: str = "", *, pool: str | None = None,
                    idempotency_key: str | None = None) -> Call[dict[str, Any]]:
        return self._post(f"{LIQUIDITY}/plans/{segment(plan_id)}/reject", {"note": note},
                          _TREASURY_DOC, idempotency_key).with_params(**query(pool=pool))

    @endpoint
    def sweeps(self, *, pool: str | None = None, limit: int = 50) -> Call[dict[str, Any]]:
        """The sweep rules and their latest runs."""
        return Call("GET", f"{LIQUIDITY}/sweeps", _TREASURY_DOC, query(pool=pool, limit=limit))

    @endpoint
    def run_sweeps(self, *, pool: str | None = None, idempotency_key: str | None = None
                   ) -> Call[list[dict[str, Any]]]:
        """Run every sweep rule now: each rule's outcome."""
        return self._post(f"{LIQUIDITY}/sweeps/run", None, _TREASURY_DOCS,
                          idempotency_key).with_params(**query(pool=pool))

    @endpoint
    def credit_lines(self, *, pool: str | None = None) -> Call[list[dict[str, Any]]]:
        """Each credit line: its limit, what is owed, the headroom, interest and rate."""
        return Call("GET", f"{LIQUIDITY}/credit", _TREASURY_DOCS, query(pool=pool))

    @endpoint
    def run_credit(self, *, pool: str | None = None, idempotency_key: str | None = None
                   ) -> Call[list[dict[str, Any]]]:
        """Accrue the days passed, then draw or repay every credit line, now."""
        return self._post(f"{LIQUIDITY}/credit/run", None, _TREASURY_DOCS,
                          idempotency_key).with_params(**query(pool=pool))

    @endpoint
    def stress(self, scenario: Mapping[str, Any], *, pool: str | None = None
               ) -> Call[dict[str, Any]]:
        """Run a scenario (`name`, `hours`, `withdrawal_share` as decimal text, …) on the
        pool's live state: the report, hour by hour."""
        return Call("POST", "/v1/stress", _TREASURY_DOC, query(pool=pool), body=dict(scenario))

    @endpoint
    def treasury_actions(self, *, pool: str | None = None, limit: int = 100
                         ) -> Call[list[dict[str, Any]]]:
        """The desk's trail, newest first."""
        return Call("GET", "/v1/treasury/actions", _TREASURY_DOCS,
                    query(pool=pool, limit=limit))

    # --- risk control ------------------------------------------------------------------------

    @endpoint
    def risk_policies(self) -> Call[PoliciesOut]:
        """Every policy version, newest first (without their texts)."""
        return Call("GET", f"{RISK}/policies", adapter(PoliciesOut))

    @endpoint
    def active_risk_policy(self) -> Call[ActivePolicyOut]:
        """The active version with its text (`policy` None: every payment is allowed)."""
        return Call("GET", f"{RISK}/policies/active", adapter(ActivePolicyOut))

    @endpoint
    def risk_policy(self, version: int) -> Call[PolicyVersionOut]:
        """One version with its text and its diff against the active one."""
        return Call("GET", f"{RISK}/policies/{int(version)}", adapter(PolicyVersionOut))

    @endpoint
    def validate_risk_policy(self, text: str) -> Call[PolicyCheckOut]:
        """Check a policy without saving it: its summary and diff, or `InvalidPolicy` with
        the line at fault (`facts["line"]`)."""
        return self._post(f"{RISK}/policies/validate", {"text": text}, adapter(PolicyCheckOut),
                          None)

    @endpoint
    def backtest_risk_policy(self, text: str, days: int = 7, pool: str | None = None
                             ) -> Call[BacktestOut]:
        """The last `days` of payments through the active policy and through `text`."""
        return self._post(f"{RISK}/policies/backtest",
                          {"text": text, "days": days, "pool": pool}, adapter(BacktestOut),
                          None)

    @endpoint
    def draft_risk_policy(self, text: str, note: str | None = None, *,
                          idempotency_key: str | None = None) -> Call[PolicyVersionOut]:
        """Save a checked policy as the next version, a draft."""
        return self._post(f"{RISK}/policies", {"text": text, "note": note},
                          adapter(PolicyVersionOut), idempotency_key)

    @endpoint
    def activate_risk_policy(self, version: int, totp: str | None = None, *,
                             idempotency_key: str | None = None) -> Call[PolicyVersionOut]:
        """Activate a draft with the caller's current TOTP code (never by its author, whatever
        their role)."""
        return self._post(f"{RISK}/policies/{int(version)}/activate",
                          None if totp is None else {"totp": totp},
                          adapter(PolicyVersionOut), idempotency_key)

    @endpoint
    def rollback_risk_policy(self, *, idempotency_key: str | None = None
                             ) -> Call[PolicyVersionOut]:
        """Activate again the version active before the current one."""
        return self._post(f"{RISK}/policies/rollback", None, adapter(PolicyVersionOut),
                          idempotency_key)

    @endpoint
    def risk_decision(self, payment_id: str) -> Call[PaymentRiskOut]:
        """A payment's risk decision (None before it is screened) and its cases."""
        return Call("GET", f"{RISK}/decisions/{segment(payment_id)}", adapter(PaymentRiskOut))

    @endpoint
    def risk_cases(self, states: Sequence[str] | None = None, *, pool: str | None = None,
                   limit: int = PAGE_SIZE_DEFAULT) -> Call[CasesOut]:
        """The review queue, the most urgent first (`states`: default open, claimed and
        escalated)."""
        return Call("GET", f"{RISK}/cases", adapter(CasesOut),
                    query(state=list(states or ()), pool=pool, limit=limit))

    @endpoint
    def risk_case(self, case_id: str) -> Call[CaseDetailOut]:
        """A case with its notes and its payment's risk decision."""
        return Call("GET", f"{RISK}/cases/{segment(case_id)}", adapter(CaseDetailOut))

    @endpoint
    def act_on_risk_case(self, case_id: str,
                         action: Literal["claim", "comment", "escalate", "release", "reject"],
                         note: str | None = None, *, idempotency_key: str | None = None
                         ) -> Call[CaseDetailOut]:
        """Claim, comment, escalate, release or reject a case (a note is required for all
        but a claim); the case as it then stands."""
        return self._post(f"{RISK}/cases/{segment(case_id)}/{action}", {"note": note},
                          adapter(CaseDetailOut), idempotency_key)

    @endpoint
    def risk_lists(self) -> Call[RiskListsOut]:
        """The sanctions lists loaded, and the false positives cleared."""
        return Call("GET", f"{RISK}/lists", adapter(RiskListsOut))

    @endpoint
    def load_risk_list(self, name: str, content: str,
                       format: Literal["ftm", "sdn"] | None = None) -> Call[LoadedListOut]:
        """Load or replace a sanctions list (FollowTheMoney JSON lines or OFAC SDN CSV)."""
        return Call("PUT", f"{RISK}/lists/{segment(name)}", adapter(LoadedListOut),
                    body={"content": content, "format": format})

    @endpoint
    def screen_name(self, name: str, threshold: int = 85) -> Call[ScreenOut]:
        """A name against the loaded lists, each hit with its score and why."""
        return self._post(f"{RISK}/screen", {"name": name, "threshold": threshold},
                          adapter(ScreenOut), None)

    @endpoint
    def risk_parties(self) -> Call[PartiesOut]:
        """The party registry: each counterparty's KYC/KYB state and country."""
        return Call("GET", f"{RISK}/parties", adapter(PartiesOut))

    @endpoint
    def risk_rings(self, minutes: int = 30, min_payees: int = 3, pool: str | None = None
                   ) -> Call[RingsOut]:
        """Suspected fraud rings among the payouts of the last `minutes`: payees linked by the
        accounts, names, devices and IP addresses their payouts share, largest first."""
        return Call("GET", f"{RISK}/rings", adapter(RingsOut),
                    query(minutes=minutes, min_payees=min_payees, pool=pool))

    @endpoint
    def risk_limits(self) -> Call[LimitsOut]:
        """The limits automatic responses lowered, still in force."""
        return Call("GET", f"{RISK}/limits", adapter(LimitsOut))

    @endpoint
    def lift_risk_limit(self, limit_id: str, note: str, *, idempotency_key: str | None = None
                        ) -> Call[LiftedOut]:
        """Lift a lowered limit before its time, with a note saying why (`unknown_limit`
        when it is no longer in force)."""
        return self._post(f"{RISK}/limits/{segment(limit_id)}/lift", {"note": note},
                          adapter(LiftedOut), idempotency_key)
