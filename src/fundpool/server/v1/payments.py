"""`/v1/payments`: create payments, read them with their timelines, move them through review,
approval and cancellation, and take payout files (CSV) in.

Creation hands the `Idempotency-Key` to the payment service, which keeps it with the payment
in the same transaction: a retry with the same request answers 200, `Idempotent-Replayed:
true` and the payment as it stands; with another request, 409 `idempotency_conflict`. The
actions (cancel, approve, reject, hold, release) have no key in the domain and go through the
API's kept responses (idempotency.py), per caller.

A payout file (`POST /payments/batches`) is taken in as `fundpool payment batch` takes it:
the same row checks and codes (payments/csv_batch.py), the same intake (screen, route,
approve). Its `batch_id` is the first 16 hex digits of the file's SHA-256. Its rows are keyed
by reference, not by file, so which payments a file made cannot be found again from its
digest: the upload keeps that list (the file's manifest) in the API's response store, and
`GET /payments/batches/{batch_id}` reads the payments' states through it.

A payment is read from the store whatever its pool; an action runs on the service of the
payment's own pool. Routes that touch the store are plain `def`s, run in the thread pool.

Every creation and action records who did it (`actor_of(request)`: the user or key, its roles,
session or key id, and the request id): a payment's `initiated_by`, each event's `actor`. The
approvals service holds an approval to its rules and signatures (`/approve` is
`/v1/approvals/{id}/sign`: `self_approval`, `already_signed`, docs/approvals.md); the payment
service refuses a payout beyond the pool's available funds (`insufficient_funds`); the API
also requires a payout's `destination` (`destination_required`). A payment's detail shows, per
event, its own `shares` of the entries the event lists (one entry may sum a wave of payments,
ADR 0008).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Header, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, Field
from starlette.concurrency import run_in_threadpool

from fundpool.auth.roles import P
from fundpool.core.actor import Actor
from fundpool.core.errors import FundpoolError
from fundpool.core.ledger.model import is_storable_text
from fundpool.payments import export
from fundpool.payments.batch_payouts import PayoutFileHasErrors, progress, submit_payout_file
from fundpool.payments.csv_batch import PayoutFile, parse_payout_csv
from fundpool.payments.dispatch import Dispatcher, IntakeRefused
from fundpool.payments.docs import event_doc, payment_doc, progress_doc
from fundpool.payments.model import (
    Action,
    DestinationRequired,
    Payment,
    PaymentEvent,
    PaymentKind,
    PaymentRequest,
    PaymentState,
    Step,
    UnknownPayment,
)
from fundpool.payments.ports import LIST_LIMIT_MAX
from fundpool.payments.rules import TEXT_FIELD_LENGTH_MAX
from fundpool.payments.service import PaymentService
from fundpool.payments.shares import event_shares
from fundpool.pool.config import PoolConfig
from fundpool.server.problems import PROBLEM_JSON
from fundpool.server.v1.actors import ActorOut
from fundpool.server.v1.approvals import RejectIn, SignIn, sign_payment
from fundpool.server.v1.approvals import reject_payment as approver_rejects
from fundpool.server.v1.context import Api, api_of
from fundpool.server.v1.idempotency import HEADER, check_key, idempotent_post
from fundpool.server.v1.models import Amount, AssetCode, Metadata, Problem, Strict
from fundpool.server.v1.pagination import (
    CursorQuery,
    InvalidCursor,
    LimitQuery,
    Page,
    make_cursor,
    read_cursor,
)
from fundpool.server.v1.problems import PROBLEMS, parse_instant
from fundpool.server.v1.security import SecuredRouter, actor_of, needs

router = SecuredRouter(prefix="/payments", tags=["payments"])

CSV_MEDIA_TYPE = "text/csv"
BATCH_ID_HEX_CHARS = 16  # of the file's SHA-256: 64 bits, unique enough among one pool's files
# The kept manifests of payout files (which payments a file's rows are) live in the API's
# response store under this caller, per pool: no principal's caller id has this form.
BATCH_CALLER_PREFIX = "payout-file:"
ROW_ERRORS_IN_PROBLEM_MAX = 100  # rows with errors listed in an all-or-nothing refusal
ID_PATTERN = r"^[!-~]{1,64}$"  # printable ASCII: ids are UUIDs, config ids and codes
CONFIG_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"  # pool and channel ids (pool/config.py)

IdempotencyHeader = Annotated[str | None, Header(
    alias=HEADER, max_length=255,
    description="Retry-safe: the same key with the same request returns the original result.")]
PaymentPath = Annotated[str, Path(pattern=ID_PATTERN, description="The payment's id.")]
BatchPath = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$",
                                description="The `batch_id` the upload answered.")]
PoolQuery = Annotated[str | None, Query(pattern=CONFIG_ID_PATTERN,
                                        description="The pool; optional when there is one.")]
ChannelQuery = Annotated[str | None, Query(pattern=CONFIG_ID_PATTERN)]
AssetQuery = Annotated[str | None, Query(pattern=ID_PATTERN)]
ConfigId = Annotated[str, Field(pattern=CONFIG_ID_PATTERN)]


class ReasonRequired(FundpoolError):
    code = "reason_required"
    title = "this action needs a note saying why (`reason`)"


class UnknownPayoutBatch(FundpoolError):
    code = "unknown_payout_batch"
    title = "no payout file with this batch id was taken in for the pool"


# --- wire models -----------------------------------------------------------------------------


def _storable(value: str) -> str:
    if not is_storable_text(value):
        raise ValueError("text without NUL characters or unpaired surrogates")
    return value


Text = Annotated[str, Field(min_length=1, max_length=TEXT_FIELD_LENGTH_MAX),
                 AfterValidator(_storable)]


class PaymentIn(Strict):
    pool: ConfigId | None = Field(None, description="The pool; optional when there is one.")
    kind: PaymentKind
    asset: AssetCode
    amount: Amount = Field(description="Decimal text at the asset's scale.")
    channel: ConfigId | None = Field(None, description="The rail (a transfer's source); a "
                                     "payout may leave it to routing.")
    destination_channel: ConfigId | None = Field(None, description="Internal and bridge "
                                                 "transfers only.")
    destination: Text | None = Field(None, description="A payout's payee account: account "
                                     "number, IBAN or chain address (required for a "
                                     "payout). An EVM chain's is 0x and 40 hex digits; an "
                                     "IBAN is checked with its check digits.")
    counterparty: Text | None = None
    reference: Text | None = None
    metadata: Metadata = Field(default_factory=dict)


class ActionIn(Strict):
    reason: Text | None = Field(None, description="Kept with the payment's event.")


class PaymentOut(BaseModel):
    id: str
    pool: str
    kind: PaymentKind
    state: PaymentState
    asset: str
    amount: str
    amount_minor: str
    fee: str
    fee_minor: str
    channel: str | None
    destination_channel: str | None
    destination: str | None = Field(description="A payout's payee account or address.")
    counterparty: str | None
    reference: str | None
    approval_required: bool
    idempotency_key: str | None
    metadata: dict[str, str]
    created_at: str
    updated_at: str
    version: int = Field(description="How many events the payment has.")
    initiated_by: ActorOut | None = Field(description="Who created it; null for a payment "
                                          "created before actors were recorded.")


class ShareOut(BaseModel):
    entry_id: str
    source: str
    destination: str
    asset: str
    amount: str
    amount_minor: str


class PaymentEventOut(BaseModel):
    seq: int
    action: Action
    from_: PaymentState | None = Field(alias="from", description="Null for the creation.")
    to: PaymentState
    at: str
    entries: list[str] = Field(description="Ids of the ledger entries the step posted.")
    reason: str | None
    actor: ActorOut | None = Field(description="Who took the step (`engine` for the "
                                   "engine's own); null for a step recorded before actors "
                                   "were.")
    shares: list[ShareOut] = Field(description="This payment's own postings in those "
                                   "entries: an outbound approve, submit or settle entry may "
                                   "sum a wave of payments (ADR 0008).")


class PaymentDetailOut(PaymentOut):
    events: list[PaymentEventOut]


class RowErrorOut(BaseModel):
    column: str | None = Field(description="Null: the row as a whole.")
    code: str
    message: str
    cause: str | None = Field(description="The domain error under it, e.g. "
                              "`too_many_decimals` under `bad_amount`.")


class PayoutRowOut(BaseModel):
    line: int = Field(description="1-based line of the file (the header is line 1).")
    ok: bool
    errors: list[RowErrorOut]
    payment_id: str | None = Field(description="The row's payout (made now or by an earlier "
                                   "upload of the same reference).")
    state: PaymentState | None
    error: str | None = Field(description="Why a valid row's payout was not made, or stopped "
                              "(e.g. `no_eligible_channel`, `insufficient_liquidity`).")


class BatchProgressOut(BaseModel):
    batch_id: str
    pool: str
    total: int
    finished: int = Field(description="Settled, or in a final state.")
    done: bool
    by_state: dict[str, int]


class PayoutBatchOut(BaseModel):
    batch_id: str = Field(description="The first 16 hex digits of the file's SHA-256.")
    pool: str
    sha256: str
    dry_run: bool
    all_or_nothing: bool
    row_count: int
    valid_count: int
    invalid_count: int
    rows: list[PayoutRowOut]
    payment_ids: list[str]
    progress: BatchProgressOut | None = Field(description="Null on a dry run.")


# --- helpers ---------------------------------------------------------------------------------


def _doc(api: Api, payment: Payment) -> dict[str, object]:
    return payment_doc(payment, api.assets().get(payment.asset))


def _find(api: Api, payment_id: str) -> Payment:
    with api.store_errors():
        payment = api.payment_records.payment(payment_id)
    if payment is None:
        raise UnknownPayment(payment_id=payment_id)
    return payment


def _timeline(api: Api, payment: Payment) -> list[dict[str, object]]:
    """The payment's events, each with the actor and the payment's own shares of its
    entries (read from the ledger: one entry may sum a wave, ADR 0008)."""
    with api.store_errors():
        events: list[PaymentEvent] = api.payment_records.events(payment.id)
        ledger = api.ledger
        bodies = {}
        for entry_id in {e for event in events for e in event.entry_ids}:
            recorded = ledger.entry(entry_id)
            if recorded is not None:
                bodies[entry_id] = recorded.body
    asset = api.assets().get(payment.asset)
    shares = event_shares(payment, events, bodies)
    return [event_doc(event, mine, asset) for event, mine in zip(events, shares, strict=True)]


def _act(request: Request, payment_id: str, action: Action, body: ActionIn | None,
         key: str | None) -> JSONResponse:
    api = api_of(request)
    reason = None if body is None else body.reason
    actor = actor_of(request)

    def run() -> dict[str, object]:
        service = api.payments(_find(api, payment_id).pool)
        with api.store_errors():
            # With risk control's part: a payment its case holds is released from the case,
            # and a cancelled or rejected one closes its case (docs/risk.md).
            done = api.risk.step(service, Step(payment_id, action, reason=reason, actor=actor))
        _wake(api, done.pool)  # approved, released: the engine takes it on now
        return _doc(api, done)

    return idempotent_post(request, key, {"reason": reason}, run)


def _wake(api: Api, pool: str) -> None:
    """Tell the pool's engine, if it runs in this worker, that a payment waits for it (the
    leader elsewhere finds it on its next pass)."""
    if api.wake_engine is not None:
        api.wake_engine(pool)


# --- payout files ----------------------------------------------------------------------------
# Declared before `/{payment_id}`: `batches` is not a payment id.


def _dispatcher(api: Api, pool: PoolConfig) -> Dispatcher:
    """Intake as `fundpool payment batch` does it (compose.dispatching). The approved
    payouts are then the engine's to send (its rescan finds them; in this worker it is
    woken)."""
    return api.new_intake(api.payments(pool.id), pool)


def _keep_manifest(api: Api, pool: str, batch_id: str, payment_ids: list[str]) -> None:
    """Which payments the file's rows are, kept as the file's response in the API's response
    store (no table of its own): its rows are keyed by reference only, so the payments cannot
    be found again from the file's digest. A later upload of the same file replaces it."""
    caller = BATCH_CALLER_PREFIX + pool
    body = orjson.dumps({"payment_ids": payment_ids})
    with api.store_errors():
        api.idempotency.keep(caller, batch_id, 201, body, api.clock.now_us())


def _find_manifest(api: Api, pool: str, batch_id: str) -> list[str]:
    caller = BATCH_CALLER_PREFIX + pool
    with api.store_errors():
        found = api.idempotency.find(caller, batch_id)
    if found is None or found.state != "done" or found.body is None:
        raise UnknownPayoutBatch(batch_id=batch_id, pool=pool)
    ids: list[str] = orjson.loads(found.body)["payment_ids"]
    return ids


def _progress(api: Api, pool: str, batch_id: str, ids: list[str]) -> dict[str, object]:
    with api.store_errors():
        done = progress(api.payments(pool), ids)
    return {"batch_id": batch_id, "pool": pool, **progress_doc(done)}


def _refuse_file(payouts: PayoutFile) -> PayoutFileHasErrors:
    bad = [row for row in payouts.rows if not row.ok]
    return PayoutFileHasErrors(
        f"{len(bad)} rows have errors; nothing was created",
        invalid_rows=len(bad), first_line=bad[0].line,
        rows=[row.to_dict() for row in bad[:ROW_ERRORS_IN_PROBLEM_MAX]])


def _take_in(api: Api, data: bytes, pool_id: str | None, dry_run: bool,
             all_or_nothing: bool, actor: Actor) -> tuple[dict[str, object], int]:
    pool = api.pool(pool_id)
    payouts = parse_payout_csv(data, api.config, pool, bytes_max=api.settings.upload_max_bytes)
    batch_id = payouts.sha256[:BATCH_ID_HEX_CHARS]
    if all_or_nothing and payouts.invalid_count:
        raise _refuse_file(payouts)
    results: dict[int, dict[str, object]] = {}
    payment_ids: list[str] = []
    if not dry_run:
        valid = [row for row in payouts.rows if row.ok]
        try:
            with api.store_errors():
                result = submit_payout_file(_dispatcher(api, pool), payouts,
                                            all_or_nothing=all_or_nothing, actor=actor)
        except IntakeRefused as error:
            item = error.facts.get("item")
            line = valid[item].line if isinstance(item, int) and item < len(valid) else None
            raise IntakeRefused(error.detail, **error.facts, line=line) from None
        results = {row.line: {"payment_id": row.payment_id, "state": row.state,
                              "error": row.error} for row in result.rows}
        payment_ids = result.payment_ids
        _keep_manifest(api, pool.id, batch_id, payment_ids)
        _wake(api, pool.id)
    empty: dict[str, object] = {"payment_id": None, "state": None, "error": None}
    rows = [{**row.to_dict(), **results.get(row.line, empty)} for row in payouts.rows]
    report = payouts.report()
    doc: dict[str, object] = {
        "batch_id": batch_id, "pool": pool.id, "sha256": payouts.sha256, "dry_run": dry_run,
        "all_or_nothing": all_or_nothing, "row_count": report["row_count"],
        "valid_count": report["valid_count"], "invalid_count": report["invalid_count"],
        "rows": rows, "payment_ids": payment_ids,
        "progress": None if dry_run else _progress(api, pool.id, batch_id, payment_ids),
    }
    return doc, 200 if dry_run else 201


_CSV_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    CSV_MEDIA_TYPE: {"schema": {"type": "string", "description": (
        "A header row naming `payee`, `account` (or `address`), `amount`, `asset`, "
        "`reference` and optionally `channel`, then one payout per row. UTF-8 (or UTF-16 "
        "with a byte order mark); at most `upload_max_bytes` bytes and 10,000 rows.")}}}}}
_UPLOAD_PROBLEMS: dict[int | str, dict[str, Any]] = {
    **PROBLEMS,
    415: {"description": "The body is not `text/csv`.", "model": Problem,
          "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}},
}


@router.post("/batches", status_code=201, response_model=PayoutBatchOut,
             openapi_extra={**needs(P.PAYMENTS_CREATE), **_CSV_BODY},
             responses=_UPLOAD_PROBLEMS)
async def upload_payouts(
    request: Request, response: Response,
    pool: PoolQuery = None,
    dry_run: Annotated[bool, Query(description="Check the file and report; create "
                                   "nothing (200).")] = False,
    all_or_nothing: Annotated[bool, Query(description="Create nothing unless every row is "
                                          "valid and every payout can be routed and "
                                          "approved.")] = False,
    idempotency_key: IdempotencyHeader = None,
) -> dict[str, object]:
    """Batch payouts from a CSV file (the raw body), as `fundpool payment batch` takes them in:
    every row is checked (each error with its column and a stable code), and the valid rows'
    payouts are created, screened, routed and approved (or left pending approval) in one
    go. Rows with errors are reported and skipped, unless `all_or_nothing`.

    Retrying is safe without a key: each row is keyed by its reference in the domain, so an
    upload of the same file (or of a corrected one) never creates a row's payout twice, and
    a row changed after its payout was made is that row's `idempotency_conflict`. The
    `Idempotency-Key` header is checked for form only.

    `batch_id` is the first 16 hex digits of the file's SHA-256: the same file gives the same
    id. `GET /payments/batches/{batch_id}` follows its payouts."""
    check_key(idempotency_key)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != CSV_MEDIA_TYPE:
        raise HTTPException(415, f"send the payout file as {CSV_MEDIA_TYPE}")
    data = await request.body()
    doc, status = await run_in_threadpool(_take_in, api_of(request), data, pool, dry_run,
                                          all_or_nothing, actor_of(request))
    response.status_code = status
    return doc


@router.get("/batches/{batch_id}", response_model=BatchProgressOut,
            openapi_extra=needs(P.PAYMENTS_READ), responses=PROBLEMS)
def get_payout_batch(batch_id: BatchPath, request: Request,
                     pool: PoolQuery = None) -> dict[str, object]:
    """How far an uploaded file's payouts are: counts by state of the payments its rows made
    (at its last upload), and how many are settled or final."""
    api = api_of(request)
    pool_id = api.pool(pool).id
    return _progress(api, pool_id, batch_id, _find_manifest(api, pool_id, batch_id))


# --- the reconciliation export ---------------------------------------------------------------
# Declared before `/{payment_id}`: `export` is not a payment id.

_EXPORT_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"description": "The file, as an attachment (`Content-Disposition`).", "content": {
        export.CSV_MEDIA_TYPE: {"schema": {"type": "string"}},
        export.XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}},
    **PROBLEMS,
}


@router.get("/export", response_class=Response, openapi_extra=needs(P.PAYMENTS_READ),
            responses=_EXPORT_ANSWER)
def export_payments(
    request: Request,
    since: Annotated[str, Query(alias="from", max_length=64, description=(
        "ISO-8601 with a zone, e.g. 2026-11-01T00:00:00Z: the first instant of the period "
        "(included)."))],
    until: Annotated[str, Query(alias="to", max_length=64, description=(
        "ISO-8601 with a zone: the end of the period (excluded); at most 31 days after "
        "`from`."))],
    form: Annotated[export.ExportFormat, Query(alias="format")] = export.ExportFormat.CSV,
    pool: PoolQuery = None,
) -> Response:
    """The reconciliation export: one row per payment the pool created in [`from`, `to`),
    oldest first, as CSV (UTF-8, RFC 4180) or XLSX. Columns: payment_id, created_at, kind,
    state, asset, amount, fee, channel, counterparty, reference, updated_at, entry_ids (the
    ledger entries its steps posted). Every cell is text: amounts exact at the asset's
    scale; a cell a spreadsheet could read as a formula starts with `'`. At most 100,000
    payments (`export_too_large`) and 31 days (`invalid_period`)."""
    api = api_of(request)
    chosen = api.pool(pool)
    period = export.Period(parse_instant(since), parse_instant(until))
    with api.store_errors():
        # Fresh: another worker may have defined an asset since this one last read them.
        assets = api.assets(fresh=True)
        content = export.export_payments(api.payment_records, chosen.id, period, form,
                                         assets)
    name = export.file_name(chosen.id, period, form)
    return Response(content, media_type=form.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


# --- payments --------------------------------------------------------------------------------


@router.post("", status_code=201, response_model=PaymentOut,
             openapi_extra=needs(P.PAYMENTS_CREATE), responses=PROBLEMS)
def create_payment(body: PaymentIn, request: Request, response: Response,
                   idempotency_key: IdempotencyHeader = None) -> dict[str, object]:
    """Create a payment (state `initiated`), recorded as the caller's. A payout names its
    `destination` (`destination_required`); a payout or transfer larger than the pool holds
    available for its asset (on the rails that could pay it; a transfer's source) is
    `insufficient_funds` (409) with `requested_minor` and `available_minor`. With
    `Idempotency-Key`, a retry of the same request answers 200 with the payment as it now
    stands."""
    api = api_of(request)
    key = check_key(idempotency_key)
    service: PaymentService = api.payments(body.pool)
    asset = api.asset(body.asset)
    if body.kind is PaymentKind.PAYOUT and body.destination is None:
        raise DestinationRequired()
    payment_request = PaymentRequest(
        kind=body.kind, asset=asset.code, amount_minor=asset.parse(body.amount),
        channel=body.channel, destination_channel=body.destination_channel,
        counterparty=body.counterparty, reference=body.reference, metadata=body.metadata,
        destination=body.destination)
    # Created in a session of its own, so that whether the key was seen before is known
    # inside the same transaction that created (or found) the payment.
    with api.store_errors(), service.session(actor_of(request)) as session:
        (outcome,) = session.create([(payment_request, key)])
        if isinstance(outcome, FundpoolError):
            raise outcome
        replayed = outcome.id not in session.created
    _wake(api, outcome.pool)
    if replayed:
        # The payment as it stands now (read in that transaction), not as it was created.
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return _doc(api, outcome)


@router.get("", response_model=Page[PaymentOut], openapi_extra=needs(P.PAYMENTS_READ),
            responses=PROBLEMS)
def list_payments(
    request: Request,
    pool: PoolQuery = None,
    state: Annotated[PaymentState | None, Query()] = None,
    kind: Annotated[PaymentKind | None, Query()] = None,
    asset: AssetQuery = None,
    channel: ChannelQuery = None,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> dict[str, object]:
    """A pool's payments, newest first, a page at a time."""
    api = api_of(request)
    service = api.payments(pool)
    filters = {"pool": service.pool_id, "state": None if state is None else str(state),
               "kind": None if kind is None else str(kind), "asset": asset, "channel": channel}
    after = read_cursor(cursor, "payments", filters)
    if after is not None and not isinstance(after, str):
        raise InvalidCursor("the cursor is not valid")
    with api.store_errors():
        # One more than the page, to know whether another follows (the store reads at most
        # LIST_LIMIT_MAX: a full read of that many may be followed by an empty last page).
        found = service.list(state=state, kind=kind, asset=asset, channel=channel,
                             limit=limit + 1, after_id=after)
    page = found[:limit]
    more = len(found) > limit or len(found) >= LIST_LIMIT_MAX
    return {"data": [_doc(api, p) for p in page],
            "next_cursor": make_cursor("payments", filters, page[-1].id) if more and page
            else None}


@router.get("/{payment_id}", response_model=PaymentDetailOut,
            openapi_extra=needs(P.PAYMENTS_READ), responses=PROBLEMS)
def get_payment(payment_id: PaymentPath, request: Request) -> dict[str, object]:
    """A payment and its timeline: each step's actor, the ledger entries it posted, and the
    payment's own share of each (`shares`)."""
    api = api_of(request)
    payment = _find(api, payment_id)
    return {**_doc(api, payment), "events": _timeline(api, payment)}


@router.get("/{payment_id}/events", response_model=list[PaymentEventOut],
            openapi_extra=needs(P.PAYMENTS_READ), responses=PROBLEMS)
def get_payment_events(payment_id: PaymentPath, request: Request) -> list[dict[str, object]]:
    """The payment's timeline, oldest first (as in `GET /payments/{payment_id}`)."""
    api = api_of(request)
    return _timeline(api, _find(api, payment_id))


@router.post("/{payment_id}/cancel", response_model=PaymentOut,
             openapi_extra=needs(P.PAYMENTS_CANCEL), responses=PROBLEMS)
def cancel_payment(payment_id: PaymentPath, request: Request, body: ActionIn | None = None,
                   idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """Cancel a payment before it is submitted (an approved one's funds are released)."""
    return _act(request, payment_id, Action.CANCEL, body, idempotency_key)


@router.post("/{payment_id}/approve", openapi_extra=needs(P.PAYMENTS_APPROVE),
             responses=PROBLEMS)
def approve_payment(payment_id: PaymentPath, request: Request, body: SignIn | None = None,
                    idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """The same as `POST /v1/approvals/{payment_id}/sign`: an approval is a signature
    (`signature_required` without one; docs/approvals.md). Four eyes: its initiator may not
    (`self_approval`, 403); a second signature by one approver is `already_signed` (409); a
    payment not waiting is `not_waiting` (409)."""
    return sign_payment(request, payment_id, body, idempotency_key)


@router.post("/{payment_id}/reject", response_model=PaymentOut,
             openapi_extra=needs(P.PAYMENTS_REVIEW), responses=PROBLEMS)
def reject_payment(payment_id: PaymentPath, request: Request, body: ActionIn | None = None,
                   idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """Reject a payment before any funds are locked for it."""
    return _act(request, payment_id, Action.REJECT, body, idempotency_key)


@router.post("/{payment_id}/decline", openapi_extra=needs(P.PAYMENTS_APPROVE),
             responses=PROBLEMS)
def decline_payment(payment_id: PaymentPath, request: Request, body: ActionIn | None = None,
                    idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """An approver's no, the same as `POST /v1/approvals/{payment_id}/reject`: reject a
    payment waiting for approval, with a note saying why (`reason_required` without one).
    Only a payment waiting for approval (`not_waiting` otherwise), by one of its approvers."""
    reason = None if body is None else body.reason
    if reason is None:
        raise ReasonRequired()
    return approver_rejects(request, payment_id, RejectIn(reason=reason), idempotency_key)


@router.post("/{payment_id}/hold", response_model=PaymentOut,
             openapi_extra=needs(P.PAYMENTS_REVIEW), responses=PROBLEMS)
def hold_payment(payment_id: PaymentPath, request: Request, body: ActionIn | None = None,
                 idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """Hold a new or screened payment for review (a new one held by hand is still decided by
    the risk policy when it is released)."""
    return _act(request, payment_id, Action.HOLD, body, idempotency_key)


@router.post("/{payment_id}/release", response_model=PaymentOut,
             openapi_extra=needs(P.PAYMENTS_REVIEW), responses=PROBLEMS)
def release_payment(payment_id: PaymentPath, request: Request, body: ActionIn | None = None,
                    idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """Release a held payment back to `screened`; one a risk case holds is released from its
    case (`risk_case_open`, 409, names the case)."""
    return _act(request, payment_id, Action.RELEASE, body, idempotency_key)
