"""`/v1/ledger`: assets, accounts, transactions (transfers, pending, reversals), balances at any
point in time, history and verification.

Writes go through the worker's `LedgerWriter` (group commit) and answer 201 with the entry, or
200 with `Idempotent-Replayed: true` and the original entry when the `Idempotency-Key` was
used before with the same request (the ledger's own keys: kept in the same transaction as the
entry). Reads are plain functions, run in the thread pool.

A raw posting that touches an account of a pool or a merchant is an adjustment
(ledger/adjustments.py): besides the route's permission it needs `ledger:adjust` and a
`reason`, and is recorded with both and the caller as its actor. The check runs before anything
is written, so a refused request changes nothing; the routes that may need it say so in the
OpenAPI document (`x-adjustment-permission`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from fundpool.auth.roles import P
from fundpool.core.errors import (
    FundpoolError,
    IdempotencyConflict,
    InvalidAccount,
    UnknownPending,
    UnknownTransaction,
)
from fundpool.core.ledger.model import (
    Account,
    Command,
    CreatePending,
    PendingState,
    PostPending,
    Reverse,
    Transfer,
    VoidPending,
)
from fundpool.core.money import Asset, AssetKind
from fundpool.ledger.adjustments import Adjustable, checked, touched, with_original_actor
from fundpool.ledger.docs import amount_fields, balance_fields, entry_doc, iso
from fundpool.ledger.service import find_account, recorded_from_stored, seq_at
from fundpool.ledger.verify import verify
from fundpool.pool.ownership import owned_by_service
from fundpool.server.v1.context import Api, api_of
from fundpool.server.v1.idempotency import HEADER, check_key, idempotent_post
from fundpool.server.v1.models import (
    AccountIn,
    AccountOut,
    AccountResult,
    AssetIn,
    AssetOut,
    AssetResult,
    BalancesOut,
    BatchOut,
    EntryOut,
    HistoryRowOut,
    NoteIn,
    PendingIn,
    PendingOut,
    PostPendingIn,
    TransferBatchIn,
    TransferIn,
    VerifyOut,
)
from fundpool.server.v1.pagination import CursorQuery, LimitQuery, Page, make_cursor, read_cursor
from fundpool.server.v1.problems import PROBLEMS, entry_answer, json_answer, parse_instant
from fundpool.server.v1.security import SecuredRouter, actor_of, needs, principal_of

router = SecuredRouter(prefix="/ledger", tags=["ledger"])

IdempotencyHeader = Annotated[str | None, Header(
    alias=HEADER, max_length=255,
    description="Retry-safe: the same key with the same request returns the original result.")]
AtQuery = Annotated[str | None, Query(
    max_length=64, description="ISO-8601 with a zone, e.g. 2026-11-24T10:00:00Z: the state "
    "as it stood then (every entry made at or before it).")]
AddressPath = Annotated[str, Path(max_length=256)]
IdPath = Annotated[str, Path(max_length=64)]
# The OpenAPI extension naming the permission a route's adjustments need besides its own.
ADJUSTMENT_PERMISSION_KEY = "x-adjustment-permission"


def needs_adjusting(permission: P) -> dict[str, object]:
    """The `openapi_extra` of a route taking raw postings: its own permission, and
    `ledger:adjust` for those that touch an account of a pool or a merchant."""
    return {**needs(permission), ADJUSTMENT_PERMISSION_KEY: str(P.LEDGER_ADJUST)}


# --- helpers ---------------------------------------------------------------------------------


def _signed(asset: Asset, text: str) -> int:
    return -asset.parse(text[1:]) if text.startswith("-") else asset.parse(text)


def _may_adjust(request: Request) -> bool:
    return P.LEDGER_ADJUST in principal_of(request).permissions


async def _as_recorded(api: Api, request: Request, command: Adjustable,
                       reason: str | None) -> Adjustable:
    """`command` as the ledger records it: an adjustment when it touches an account a
    service owns or carries a reason; raises, before anything is written, when the caller may
    not make it or gave no reason."""
    if isinstance(command, Transfer | CreatePending):
        accounts = touched(command, api.ledger)
    else:  # a post, void or reversal reads its reservation or entry
        def read() -> frozenset[str]:
            with api.store_errors():
                return touched(command, api.ledger)

        accounts = await anyio.to_thread.run_sync(read)
    return checked(command, accounts, owned=owned_by_service, may_adjust=_may_adjust(request),
                   reason=reason, actor=actor_of(request))


async def _retried(api: Api, command: Command, error: FundpoolError) -> Command | None:
    """An adjustment's retry that the ledger took for another request only because its actor
    names a new request id: the command again with the original's actor, or None."""
    if not isinstance(error, IdempotencyConflict) or not isinstance(
            command, Transfer | CreatePending | PostPending | VoidPending | Reverse):
        return None
    original_id = str(error.facts.get("original_entry_id"))

    def read() -> Command | None:
        with api.store_errors():
            return with_original_actor(command, api.ledger.entry(original_id))

    return await anyio.to_thread.run_sync(read)


async def _one(api: Api, command: Command) -> Response:
    """Write one command; 201 with its entry, or 200 with the original entry on a replay.

    The answer is rendered here (orjson) rather than validated again against `EntryOut` by
    FastAPI: the hot path of the API, and `entry_doc` is what the schema describes."""
    (result,) = await api.write([command])
    if result.error is not None:
        again = await _retried(api, command, result.error)
        if again is None:
            raise result.error
        (result,) = await api.write([again])
        if result.error is not None:
            raise result.error
    recorded = api.ledger.recorded(result)
    if recorded is None:  # pragma: no cover - money commands always record an entry
        raise FundpoolError("the command recorded no entry")
    return entry_answer(recorded, api.assets())


def _account_doc(account: Account, assets: Mapping[str, Asset]) -> dict[str, object]:
    held = assets.get(account.asset) if account.asset else None
    doc: dict[str, object] = {"address": account.address, "asset": account.asset,
                              "allow_negative": bool(account.allow_negative)}
    for name, bound in (("min", account.min_balance_minor), ("max", account.max_balance_minor)):
        doc.update({name: None, f"{name}_minor": None} if bound is None
                   else amount_fields(name, bound, held))
    doc["metadata"] = dict(account.metadata)
    return doc


def _pending_doc(pending: Any, assets: Mapping[str, Asset]) -> dict[str, object]:
    asset = assets.get(pending.asset)
    return {"id": pending.id, "state": str(pending.state), "source": pending.source,
            "destination": pending.destination, "asset": pending.asset,
            **amount_fields("amount", pending.amount_minor, asset),
            **amount_fields("posted", pending.posted_amount_minor, asset),
            "expires_at": iso(pending.expires_at_us), "created_seq": pending.created_seq,
            "finished_seq": pending.finished_seq}


# --- assets and accounts ---------------------------------------------------------------------


@router.get("/assets", response_model=list[AssetOut], openapi_extra=needs(P.LEDGER_READ),
            responses=PROBLEMS)
def list_assets(request: Request) -> list[dict[str, object]]:
    """Every asset the ledger holds, by code."""
    api = api_of(request)
    with api.store_errors():
        assets = api.store.assets()
    return [{"code": a.code, "scale": a.scale, "kind": str(a.kind)}
            for a in sorted(assets, key=lambda a: a.code)]


@router.post("/assets", status_code=201, response_model=AssetResult,
             openapi_extra=needs(P.LEDGER_WRITE), responses=PROBLEMS)
def define_asset(body: AssetIn, request: Request,
                 idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """Define an asset. Defining it again with the same scale and kind changes nothing (200);
    with another, 409 `asset_already_defined`."""
    api = api_of(request)
    asset = Asset(body.code, body.scale, AssetKind(body.kind))

    def run() -> JSONResponse:
        recorded = api.ledger.define_asset(asset)
        api.assets(fresh=True)
        return json_answer({"status": "applied" if recorded is not None else "unchanged",
                            "asset": {"code": asset.code, "scale": asset.scale,
                                      "kind": str(asset.kind)}},
                           201 if recorded is not None else 200)

    return idempotent_post(request, idempotency_key, body.model_dump(mode="json"), run)


@router.get("/accounts", response_model=Page[AccountOut], openapi_extra=needs(P.LEDGER_READ),
            responses=PROBLEMS)
def list_accounts(
    request: Request,
    prefix: Annotated[str | None, Query(max_length=256,
                                        description="Only addresses starting so.")] = None,
    asset: Annotated[str | None, Query(max_length=32, description="Only accounts of this "
                                       "asset.")] = None,
    sort: Annotated[Literal["address", "-address"], Query()] = "address",
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> dict[str, object]:
    """Accounts by address (`-address`: descending), a page at a time."""
    api = api_of(request)
    filters = {"prefix": prefix, "asset": asset, "sort": sort}
    after = read_cursor(cursor, "accounts", filters, str)
    with api.store_errors():
        found = api.store.accounts(prefix, asset=asset, after=after,
                                   descending=sort.startswith("-"), limit=limit + 1)
        assets = api.assets()
    page = found[:limit]
    more = len(found) > limit
    return {"data": [_account_doc(a, assets) for a in page],
            "next_cursor": make_cursor("accounts", filters, page[-1].address) if more else None}


@router.post("/accounts", status_code=201, response_model=AccountResult,
             openapi_extra=needs(P.LEDGER_WRITE), responses=PROBLEMS)
def open_account(body: AccountIn, request: Request,
                 idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """Open an account. Opening it again with the same flags changes nothing (200)."""
    api = api_of(request)
    held = None if body.asset is None else api.asset(body.asset)
    if held is None and (body.min_balance is not None or body.max_balance is not None):
        raise InvalidAccount("min_balance and max_balance need the account's asset")
    account = Account(
        address=body.address,
        asset=None if held is None else held.code,
        allow_negative=body.allow_negative,
        min_balance_minor=None if body.min_balance is None or held is None
        else _signed(held, body.min_balance),
        max_balance_minor=None if body.max_balance is None or held is None
        else _signed(held, body.max_balance),
        metadata=body.metadata,
    )

    def run() -> JSONResponse:
        recorded = api.ledger.open_account(account)
        opened = find_account(api.store, account.address)
        return json_answer({"status": "applied" if recorded is not None else "unchanged",
                            "account": _account_doc(opened, api.assets())},
                           201 if recorded is not None else 200)

    return idempotent_post(request, idempotency_key, body.model_dump(mode="json"), run)


@router.get("/accounts/{address}", response_model=AccountOut,
            openapi_extra=needs(P.LEDGER_READ), responses=PROBLEMS)
def get_account(address: AddressPath, request: Request) -> dict[str, object]:
    api = api_of(request)
    with api.store_errors():
        return _account_doc(find_account(api.store, address), api.assets())


@router.get("/accounts/{address}/balances", response_model=BalancesOut,
            openapi_extra=needs(P.LEDGER_READ), responses=PROBLEMS)
def get_balances(address: AddressPath, request: Request, at: AtQuery = None
                 ) -> dict[str, object]:
    """The account's balance in each asset it holds, now or at `at`."""
    api = api_of(request)
    with api.store_errors():
        assets = api.assets()
        head = api.store.head()
        if at is None:
            balances = api.ledger.balances(address)
            as_of = head.seq
        else:
            at_us = parse_instant(at)
            as_of = seq_at(api.store, at_us)
            balances = {code: api.store.balance_at(address, code, as_of)
                        for code in sorted(api.ledger.balances(address))}
    rows = [{"asset": code, **balance_fields(balance, assets.get(code))}
            for code, balance in sorted(balances.items())]
    return {"address": address, "at": at, "as_of_seq": as_of, "balances": rows}


@router.get("/accounts/{address}/history", response_model=Page[HistoryRowOut],
            openapi_extra=needs(P.LEDGER_READ), responses=PROBLEMS)
def get_history(
    address: AddressPath, request: Request,
    asset: Annotated[str | None, Query(max_length=32)] = None,
    limit: LimitQuery = 100, cursor: CursorQuery = None,
) -> dict[str, object]:
    """The account's balance changes, newest first; a page holds whole entries."""
    api = api_of(request)
    filters = {"address": address, "asset": asset}
    before = read_cursor(cursor, "history", filters, int)
    with api.store_errors():
        rows = api.ledger.history(address, asset=asset, limit=limit, before_seq=before)
        assets = api.assets()
    docs = []
    for code, row in rows:
        held = assets.get(code)
        docs.append({
            "seq": row.seq, "entry_id": row.entry_id, "kind": row.kind.value,
            "at": iso(row.at_us), "asset": code,
            **amount_fields("posted_change", row.posted_change_minor, held),
            **amount_fields("pending_out_change", row.pending_out_change_minor, held),
            **amount_fields("pending_in_change", row.pending_in_change_minor, held),
            **balance_fields(row.balance, held),
        })
    entries = {row.seq for _, row in rows}
    more = len(entries) >= limit and bool(rows)
    return {"data": docs,
            "next_cursor": make_cursor("history", filters, rows[-1][1].seq) if more else None}


# --- transactions ----------------------------------------------------------------------------


@router.get("/transactions", response_model=Page[EntryOut], openapi_extra=needs(P.LEDGER_READ),
            responses=PROBLEMS)
def list_transactions(
    request: Request,
    sort: Annotated[Literal["seq", "-seq"], Query(description="`-seq`: newest first.")] = "-seq",
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> dict[str, object]:
    """The journal, a page at a time: every entry (transfers, pending, reversals, accounts)."""
    api = api_of(request)
    filters = {"sort": sort}
    after = read_cursor(cursor, "transactions", filters, int)
    with api.store_errors():
        head = api.store.head().seq
        if sort == "seq":
            start = 1 if after is None else after + 1
            stored = list(api.store.entries(start, min(head, start + limit - 1)))
        else:
            end = head if after is None else after - 1
            stored = list(api.store.entries(max(1, end - limit + 1), end))[::-1]
        assets = api.assets()
    docs = [entry_doc(recorded_from_stored(s), assets) for s in stored]
    for doc in docs:
        doc["status"] = "applied"
    last = stored[-1].seq if stored else None
    more = last is not None and (last < head if sort == "seq" else last > 1)
    return {"data": docs,
            "next_cursor": make_cursor("transactions", filters, last) if more else None}


@router.post("/transactions", status_code=201, response_model=EntryOut,
             openapi_extra=needs_adjusting(P.LEDGER_WRITE), responses=PROBLEMS)
async def create_transfer(
        body: TransferIn, request: Request, idempotency_key: IdempotencyHeader = None
) -> Response:
    """Move funds now: every posting applies, or none does. A transfer touching an account of
    a pool or a merchant is an adjustment: it needs `ledger:adjust` (else 403
    `adjustment_permission_required`) and a `reason` (else 400 `adjustment_reason_required`)."""
    api = api_of(request)
    postings = tuple(api.posting(p) for p in body.postings)
    command = Transfer(postings, body.metadata, check_key(idempotency_key))
    return await _one(api, await _as_recorded(api, request, command, body.reason))


@router.post("/transactions/batch", status_code=200, response_model=BatchOut,
             openapi_extra=needs_adjusting(P.LEDGER_WRITE), responses=PROBLEMS)
async def create_transfers(
        body: TransferBatchIn, request: Request, idempotency_key: IdempotencyHeader = None
) -> Response:
    """Many transfers in one request and one ledger batch. Each applies or fails on its own
    (its result says which); with the header, transfer `i` without a key of its own gets
    `<key>:<i>`, so retrying the whole request replays what was applied and nothing twice.
    An adjustment among them without `ledger:adjust` or its `reason` refuses the whole request
    (403 `adjustment_permission_required`, 400 `adjustment_reason_required`, the facts naming
    its `index`), and nothing is written."""
    api = api_of(request)
    key = check_key(idempotency_key)
    if len(body.transfers) > api.settings.batch_size_max:
        from fundpool.core.errors import BatchTooLarge

        raise BatchTooLarge(count=len(body.transfers), limit=api.settings.batch_size_max)
    assets = api.assets()
    commands: list[Command] = []
    for index, item in enumerate(body.transfers):
        item_key = item.idempotency_key or (None if key is None else f"{key}:{index}")
        command = Transfer(tuple(api.posting(p) for p in item.postings), item.metadata,
                           item_key)
        try:
            commands.append(await _as_recorded(api, request, command, item.reason))
        except FundpoolError as refused:
            refused.facts["index"] = index
            raise
    results = await api.write(commands)
    retries = {index: await _retried(api, commands[index], result.error)
               for index, result in enumerate(results) if result.error is not None}
    retried = {index: command for index, command in retries.items() if command is not None}
    if retried:
        for index, result in zip(retried, await api.write(list(retried.values())), strict=True):
            results[index] = result
    from fundpool.server.problems import PROBLEM_TYPE_PREFIX, STATUS_BY_CODE

    items: list[dict[str, object]] = []
    counts = {"applied": 0, "replayed": 0, "rejected": 0}
    for index, result in enumerate(results):
        counts[str(result.status)] = counts.get(str(result.status), 0) + 1
        if result.error is not None:
            error = result.error
            items.append({"index": index, "ok": False, "error": {
                "type": PROBLEM_TYPE_PREFIX + error.code, "title": error.title,
                "status": STATUS_BY_CODE.get(error.code, 400), "detail": error.detail,
                "code": error.code, "facts": error.facts or None}})
            continue
        recorded = api.ledger.recorded(result)
        items.append({"index": index, "ok": True,
                      "entry": None if recorded is None else entry_doc(recorded, assets)})
    return json_answer({"applied": counts["applied"], "replayed": counts["replayed"],
                           "rejected": counts["rejected"], "results": items})


@router.get("/transactions/{entry_id}", response_model=EntryOut,
            openapi_extra=needs(P.LEDGER_READ), responses=PROBLEMS)
def get_transaction(entry_id: IdPath, request: Request) -> dict[str, object]:
    api = api_of(request)
    with api.store_errors():
        recorded = api.ledger.entry(entry_id)
        if recorded is None:
            raise UnknownTransaction(transaction_id=entry_id)
        doc = entry_doc(recorded, api.assets())
    doc["status"] = "applied"
    return doc


@router.post("/transactions/{entry_id}/reversal", status_code=201, response_model=EntryOut,
             openapi_extra=needs_adjusting(P.LEDGER_REVERSE), responses=PROBLEMS)
async def reverse_transaction(
        entry_id: IdPath, request: Request, body: NoteIn | None = None,
        idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Undo a posted transfer with an entry that moves every posting back (an adjustment,
    with `ledger:adjust` and a `reason`, when they touch an account of a pool or a merchant)."""
    api = api_of(request)
    metadata = {} if body is None else body.metadata
    command = Reverse(entry_id, metadata, check_key(idempotency_key))
    return await _one(api, await _as_recorded(api, request, command,
                                              None if body is None else body.reason))


# --- two-phase transfers ---------------------------------------------------------------------


@router.get("/pendings", response_model=Page[PendingOut], openapi_extra=needs(P.LEDGER_READ),
            responses=PROBLEMS)
def list_pendings(
    request: Request,
    state: Annotated[PendingState | None, Query()] = None,
    limit: LimitQuery = 100, cursor: CursorQuery = None,
) -> dict[str, object]:
    """Reservations by id, newest first."""
    api = api_of(request)
    filters = {"state": None if state is None else str(state)}
    after = read_cursor(cursor, "pendings", filters, str)
    with api.store_errors():
        found = api.store.pendings_page(state, before=after, limit=limit + 1)
        assets = api.assets()
    page = found[:limit]
    more = len(found) > limit
    return {"data": [_pending_doc(p, assets) for p in page],
            "next_cursor": make_cursor("pendings", filters, page[-1].id) if more else None}


@router.post("/pendings", status_code=201, response_model=EntryOut,
             openapi_extra=needs_adjusting(P.LEDGER_WRITE), responses=PROBLEMS)
async def create_pending(
        body: PendingIn, request: Request, idempotency_key: IdempotencyHeader = None
) -> Response:
    """Reserve funds: post or void them later, or let the reservation expire (an adjustment,
    with `ledger:adjust` and a `reason`, when it touches an account of a pool or a merchant)."""
    api = api_of(request)
    posting = api.posting(body.posting)
    command = CreatePending(posting, body.timeout_s, body.metadata, check_key(idempotency_key))
    return await _one(api, await _as_recorded(api, request, command, body.reason))


@router.get("/pendings/{pending_id}", response_model=PendingOut,
            openapi_extra=needs(P.LEDGER_READ), responses=PROBLEMS)
def get_pending(pending_id: IdPath, request: Request) -> dict[str, object]:
    api = api_of(request)
    with api.store_errors():
        pending = api.ledger.pending(pending_id)
        if pending is None:
            raise UnknownPending(pending_id=pending_id)
        return _pending_doc(pending, api.assets())


@router.post("/pendings/{pending_id}/post", status_code=201, response_model=EntryOut,
             openapi_extra=needs_adjusting(P.LEDGER_WRITE), responses=PROBLEMS)
async def post_pending(
        pending_id: IdPath, request: Request, body: PostPendingIn | None = None,
        idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Post a reservation, all of it or `amount` of it (the rest is released)."""
    api = api_of(request)
    amount_minor = None
    metadata: dict[str, str] = {}
    if body is not None:
        metadata = body.metadata
        if body.amount is not None:
            pending = api.ledger.pending(pending_id)
            if pending is None:
                raise UnknownPending(pending_id=pending_id)
            amount_minor = api.asset(pending.asset).parse(body.amount)
    command = PostPending(pending_id, amount_minor, metadata, check_key(idempotency_key))
    return await _one(api, await _as_recorded(api, request, command,
                                              None if body is None else body.reason))


@router.post("/pendings/{pending_id}/void", status_code=201, response_model=EntryOut,
             openapi_extra=needs_adjusting(P.LEDGER_WRITE), responses=PROBLEMS)
async def void_pending(
        pending_id: IdPath, request: Request, body: NoteIn | None = None,
        idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Release a reservation without moving anything (an adjustment, with `ledger:adjust` and
    a `reason`, when it holds an account of a pool or a merchant: releasing it frees their
    money)."""
    api = api_of(request)
    metadata = {} if body is None else body.metadata
    command = VoidPending(pending_id, metadata, check_key(idempotency_key))
    return await _one(api, await _as_recorded(api, request, command,
                                              None if body is None else body.reason))


# --- the chain -------------------------------------------------------------------------------


@router.get("/verify", response_model=VerifyOut, openapi_extra=needs(P.LEDGER_VERIFY),
            responses=PROBLEMS)
def verify_ledger(request: Request) -> dict[str, object]:
    """Re-check the whole hash chain and every balance against the journal (reads it all)."""
    api = api_of(request)
    with api.store_errors():
        report = verify(api.store)
    problem = None if report.problem is None else {
        "seq": report.problem.seq, "entry_id": report.problem.entry_id,
        "reason": report.problem.reason}
    return {"ok": report.ok, "entries": report.entries, "head_seq": report.head_seq,
            "head_hash": report.head_hash, "problem": problem}
