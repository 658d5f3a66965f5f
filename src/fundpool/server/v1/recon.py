"""`/v1/recon`: reconciliation of statements against the books (docs/reconciliation.md).
Reading needs `recon:read` (every role); changing needs `recon:write` (the cashier, the
admin); booking a difference is an adjustment and needs `ledger:adjust` on top.

    GET  /v1/recon/channels                    per channel: counts, latest balance check
    POST /v1/recon/imports?channel=&name=&format=&mapping=   the raw file as the body
    GET  /v1/recon/files?channel=
    POST /v1/recon/channels/{channel}/match    run matching again
    GET  /v1/recon/breaks?channel=&side=&state=   open breaks and ambiguous items, with age
    GET  /v1/recon/statements?channel=          with each one's balance check
    GET  /v1/recon/statements/{id}              its lines, each with where it stands
    POST /v1/recon/resolve                      {side, id, note, book}
    GET  /v1/recon/resolutions?channel=
    GET  /v1/recon/payments/{payment_id}        a payment's items and where they stand
    GET  /v1/recon/expected?channel=&state=
    POST /v1/recon/expected                     announce an incoming payment
    POST /v1/recon/expected/{id}/cancel
    GET  /v1/recon/mappings; PUT /v1/recon/mappings/{name}   saved CSV column mappings

A file that cannot be read is 400 `file_refused` (or `unknown_message`,
`balances_do_not_add_up`) naming the file and the place; the same file or statement twice is
409 `duplicate_statement`; nothing of a refused file is stored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from fundpool.auth.roles import P
from fundpool.core.money import format_amount, parse_amount
from fundpool.ledger.adjustments import AdjustmentPermissionRequired
from fundpool.ledger.docs import iso
from fundpool.recon.model import FileFormat, Side
from fundpool.reconciliation.model import (
    BalanceCheck,
    Expected,
    ExpectedState,
    FileRecord,
    Resolution,
    RunReport,
    State,
    StateRow,
    StoredLine,
    StoredStatement,
)
from fundpool.reconciliation.service import ReconService
from fundpool.server.v1.actors import actor_doc
from fundpool.server.v1.context import Api, api_of
from fundpool.server.v1.problems import PROBLEMS, parse_instant
from fundpool.server.v1.security import SecuredRouter, actor_of, needs, principal_of

router = SecuredRouter(prefix="/recon", tags=["reconciliation"])

CONFIG_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
PoolQuery = Annotated[str | None, Query(pattern=CONFIG_ID_PATTERN)]
ChannelQuery = Annotated[str | None, Query(pattern=CONFIG_ID_PATTERN)]
ChannelPath = Annotated[str, Path(pattern=CONFIG_ID_PATTERN)]
IdPath = Annotated[str, Path(min_length=1, max_length=200)]
LimitQuery = Annotated[int, Query(ge=1, le=1_000)]
IMPORT_PATH = "/v1/recon/imports"


def _recon(request: Request, pool: str | None) -> tuple[Api, ReconService]:
    api = api_of(request)
    return api, api.recon(pool)


def _amount(service: ReconService, asset: str, minor: int | None) -> str | None:
    if minor is None:
        return None
    return format_amount(minor, service.scales.get(asset, 0))


def file_doc(record: FileRecord) -> dict[str, Any]:
    return {"id": record.file_id, "channel": record.channel, "name": record.name,
            "format": record.format, "message": record.message, "sha256": record.sha256,
            "statements": record.statements, "lines": record.lines,
            "imported_at": iso(record.imported_at_us),
            "imported_by": actor_doc(record.imported_by)}


def statement_doc(service: ReconService, s: StoredStatement) -> dict[str, Any]:
    return {"id": s.id, "file_id": s.file_id, "channel": s.channel, "account": s.account,
            "asset": s.asset, "statement_id": s.statement_id, "sequence": s.sequence,
            "opening": _amount(service, s.asset, s.opening_minor),
            "opening_at": None if s.opening_at_us is None else iso(s.opening_at_us),
            "closing": _amount(service, s.asset, s.closing_minor),
            "closing_at": None if s.closing_at_us is None else iso(s.closing_at_us),
            "from": iso(s.first_at_us), "until": iso(s.last_at_us), "lines": s.lines}


def balance_doc(service: ReconService, check: BalanceCheck) -> dict[str, Any]:
    asset = check.statement.asset
    return {"statement": statement_doc(service, check.statement),
            "ledger_opening": _amount(service, asset, check.ledger_opening_minor),
            "ledger_closing": _amount(service, asset, check.ledger_closing_minor),
            "booked_after": _amount(service, asset, check.booked_after_minor),
            "opening_difference": _amount(service, asset, check.opening_difference_minor),
            "closing_difference": _amount(service, asset, check.closing_difference_minor),
            "open_lines": check.open_lines, "reconciled": check.reconciled}


def line_doc(service: ReconService, stored: StoredLine) -> dict[str, Any]:
    line = stored.line
    return {"id": line.line_id, "statement": stored.statement, "position": stored.position,
            "amount": _amount(service, line.asset, line.amount_minor),
            "amount_minor": str(line.amount_minor), "asset": line.asset,
            "booked_at": iso(line.booked_at_us), "value_at": iso(line.value_at_us),
            "status": line.status.value, "kind": line.kind.value,
            "end_to_end_id": line.end_to_end_id, "batch_ref": line.batch_ref,
            "bank_ref": line.bank_ref, "reference": line.reference,
            "counterparty": line.counterparty,
            "counterparty_account": line.counterparty_account, "reason": line.reason,
            "parts": list(line.parts)}


def state_doc(service: ReconService, row: StateRow, now_us: int,
              line: StoredLine | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "side": row.side.value, "id": row.id, "channel": row.channel, "state": row.state.value,
        "reason": row.reason, "match_id": row.match_id,
        "amount": _amount(service, row.asset, row.amount_minor),
        "amount_minor": str(row.amount_minor), "asset": row.asset, "at": iso(row.at_us),
        "age_days": row.age_days(now_us), "related": list(row.related),
        "payment_id": row.payment_id}
    if line is not None:
        doc["line"] = line_doc(service, line)
    return doc


def run_doc(run: RunReport) -> dict[str, Any]:
    return {"channel": run.channel, "lines": run.lines, "items": run.items,
            "matched_lines": run.matched_lines, "matched_items": run.matched_items,
            "ambiguous": run.ambiguous, "breaks": run.breaks,
            "expected_matched": run.expected_matched,
            "from": iso(run.since_us), "until": iso(run.until_us)}


def resolution_doc(service: ReconService, r: Resolution) -> dict[str, Any]:
    return {"id": r.id, "channel": r.channel, "side": r.side.value, "target": r.target,
            "action": r.action.value, "note": r.note,
            "amount": _amount(service, r.asset, r.amount_minor), "asset": r.asset,
            "entry_id": r.entry_id, "at": iso(r.at_us), "actor": actor_doc(r.actor)}


def expected_doc(service: ReconService, e: Expected) -> dict[str, Any]:
    return {"id": e.id, "channel": e.channel, "asset": e.asset,
            "amount_min": _amount(service, e.asset, e.amount_min_minor),
            "amount_max": _amount(service, e.asset, e.amount_max_minor),
            "from": iso(e.from_us), "until": iso(e.until_us), "reference": e.reference,
            "counterparty": e.counterparty, "state": e.state.value, "credit_id": e.credit_id,
            "created_at": iso(e.created_at_us), "created_by": actor_doc(e.created_by),
            "matched_at": None if e.matched_at_us is None else iso(e.matched_at_us)}


def open_docs(service: ReconService, rows: list[StateRow], now_us: int) -> list[dict[str, Any]]:
    lines = service.lines_of([r.id for r in rows if r.side is Side.STATEMENT])
    return [state_doc(service, r, now_us, lines.get(r.id)) for r in rows]


# --- reading --------------------------------------------------------------------------------


@router.get("/channels", openapi_extra=needs(P.RECON_READ), responses=PROBLEMS)
def list_channels(request: Request, pool: PoolQuery = None) -> list[dict[str, Any]]:
    """Each channel of the pool: how its lines and items stand, and its latest statement's
    balance check."""
    api, service = _recon(request, pool)
    with api.store_errors():
        summary = service.summary()
        out = []
        for channel_id in service.pool.channels:
            checks = service.balances(channel_id, limit=1)
            tolerance = service.tolerance(channel_id)
            out.append({"channel": channel_id, "counts": summary.get(channel_id, {}),
                        "tolerance": {"amount_minor": tolerance.amount_minor,
                                      "days": tolerance.days},
                        "latest": balance_doc(service, checks[0]) if checks else None})
    return out


@router.get("/files", openapi_extra=needs(P.RECON_READ), responses=PROBLEMS)
def list_files(request: Request, pool: PoolQuery = None, channel: ChannelQuery = None,
               limit: LimitQuery = 100) -> list[dict[str, Any]]:
    api, service = _recon(request, pool)
    with api.store_errors():
        return [file_doc(f) for f in service.store.files(service.pool.id, channel, limit)]


@router.get("/breaks", openapi_extra=needs(P.RECON_READ), responses=PROBLEMS)
def list_breaks(request: Request, pool: PoolQuery = None, channel: ChannelQuery = None,
                side: Side | None = None,
                state: Annotated[list[State] | None, Query()] = None,
                limit: LimitQuery = 500) -> list[dict[str, Any]]:
    """Open breaks and ambiguous items (or the states asked for), oldest first, with their
    age in days and, for a statement line, the line."""
    api, service = _recon(request, pool)
    with api.store_errors():
        rows = service.states(channel, states=state or [State.BREAK, State.AMBIGUOUS],
                              side=side, limit=limit)
        return open_docs(service, rows, api.clock.now_us())


@router.get("/statements", openapi_extra=needs(P.RECON_READ), responses=PROBLEMS)
def list_statements(request: Request, pool: PoolQuery = None, channel: ChannelQuery = None,
                    limit: LimitQuery = 100) -> list[dict[str, Any]]:
    """Statements, newest period first, each with its balance check against the ledger."""
    api, service = _recon(request, pool)
    with api.store_errors():
        return [balance_doc(service, c) for c in service.balances(channel, limit=limit)]


@router.get("/statements/{statement_id}", openapi_extra=needs(P.RECON_READ),
            responses=PROBLEMS)
def get_statement(statement_id: IdPath, request: Request,
                  pool: PoolQuery = None) -> dict[str, Any]:
    api, service = _recon(request, pool)
    now = api.clock.now_us()
    with api.store_errors():
        stored, lines, states = service.statement(statement_id)
        check = service.balance_check(stored)
    return {**balance_doc(service, check),
            "lines": [{**line_doc(service, s),
                       "state": (state_doc(service, states[s.line.line_id], now)
                                 if s.line.line_id in states else None)} for s in lines]}


@router.get("/resolutions", openapi_extra=needs(P.RECON_READ), responses=PROBLEMS)
def list_resolutions(request: Request, pool: PoolQuery = None, channel: ChannelQuery = None,
                     limit: LimitQuery = 100) -> list[dict[str, Any]]:
    api, service = _recon(request, pool)
    with api.store_errors():
        return [resolution_doc(service, r) for r in service.resolutions(channel, limit=limit)]


@router.get("/payments/{payment_id}", openapi_extra=needs(P.RECON_READ), responses=PROBLEMS)
def payment_state(payment_id: IdPath, request: Request,
                  pool: PoolQuery = None) -> dict[str, Any]:
    """Where the payment's book items stand: matched (with what), a break, or not yet
    reconciled (no statement has covered them)."""
    api, service = _recon(request, pool)
    with api.store_errors():
        rows = service.payment(payment_id)
    return {"payment_id": payment_id,
            "items": [state_doc(service, r, api.clock.now_us()) for r in rows],
            "state": _payment_state(rows)}


def _payment_state(rows: list[StateRow]) -> str:
    if not rows:
        return "unreconciled"
    if any(r.state in (State.BREAK, State.AMBIGUOUS) for r in rows):
        return "break" if any(r.state is State.BREAK for r in rows) else "ambiguous"
    return "matched" if all(r.state is State.MATCHED for r in rows) else "resolved"


# --- changing ---------------------------------------------------------------------------------


@router.post(IMPORT_PATH.removeprefix("/v1/recon"), status_code=201,
             openapi_extra={**needs(P.RECON_WRITE), "requestBody": {
                 "required": True, "content": {"application/octet-stream": {
                     "schema": {"type": "string", "format": "binary"}}}}},
             responses=PROBLEMS)
async def import_file(request: Request,
                      channel: Annotated[str, Query(pattern=CONFIG_ID_PATTERN)],
                      name: Annotated[str, Query(min_length=1, max_length=200)],
                      pool: PoolQuery = None, format: FileFormat | None = None,
                      mapping: Annotated[str | None, Query(max_length=100)] = None
                      ) -> dict[str, Any]:
    """Import a statement file (the raw body): camt.053/054, MT940, a chain transfer list, or
    CSV with a saved `mapping`; detected from its first bytes unless `format` says. Checked
    whole before anything is stored; then matching runs for the channel."""
    data = await request.body()
    api, service = _recon(request, pool)
    actor = actor_of(request)

    def run() -> dict[str, Any]:
        with api.store_errors():
            report = service.import_file(channel, data, name, actor=actor, format=format,
                                         mapping=mapping)
        return {"file": file_doc(report.file),
                "statements": [statement_doc(service, s) for s in report.statements],
                "run": run_doc(report.run)}

    return await run_in_threadpool(run)


@router.post("/channels/{channel}/match", openapi_extra=needs(P.RECON_WRITE),
             responses=PROBLEMS)
def match_channel(channel: ChannelPath, request: Request,
                  pool: PoolQuery = None) -> dict[str, Any]:
    """Match the channel's open lines and items again (new payments may have settled)."""
    api, service = _recon(request, pool)
    with api.store_errors():
        return run_doc(service.run(channel, actor=actor_of(request)))


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    side: Side
    id: str = Field(min_length=1, max_length=200)
    note: str = Field(max_length=2_000)
    book: bool = False


@router.post("/resolve", openapi_extra=needs(P.RECON_WRITE), responses=PROBLEMS)
def resolve(body: ResolveIn, request: Request, pool: PoolQuery = None) -> dict[str, Any]:
    """Close an open break or ambiguous item with a note; with `book`, post the difference
    as a ledger adjustment first (needs `ledger:adjust`)."""
    if body.book and P.LEDGER_ADJUST not in principal_of(request).permissions:
        raise AdjustmentPermissionRequired(permission=str(P.LEDGER_ADJUST))
    api, service = _recon(request, pool)
    with api.store_errors():
        resolution = service.resolve(body.side, body.id, note=body.note,
                                      actor=actor_of(request), book=body.book)
    return resolution_doc(service, resolution)


@router.get("/expected", openapi_extra=needs(P.RECON_READ), responses=PROBLEMS)
def list_expected(request: Request, pool: PoolQuery = None, channel: ChannelQuery = None,
                  state: ExpectedState | None = None,
                  limit: LimitQuery = 500) -> list[dict[str, Any]]:
    api, service = _recon(request, pool)
    with api.store_errors():
        return [expected_doc(service, e)
                for e in service.expected(channel, state=state, limit=limit)]


class ExpectedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: str = Field(pattern=CONFIG_ID_PATTERN)
    asset: str = Field(min_length=1, max_length=16)
    amount_min: str = Field(min_length=1, max_length=64)
    amount_max: str = Field(min_length=1, max_length=64)
    from_: str = Field(alias="from", max_length=64)
    until: str = Field(max_length=64)
    reference: str | None = Field(None, max_length=140)
    counterparty: str | None = Field(None, max_length=140)


@router.post("/expected", status_code=201, openapi_extra=needs(P.RECON_WRITE),
             responses=PROBLEMS)
def add_expected(body: ExpectedIn, request: Request, pool: PoolQuery = None) -> dict[str, Any]:
    """Announce an incoming payment: matched against credits as they arrive."""
    api, service = _recon(request, pool)
    scale = api.asset(body.asset).scale
    with api.store_errors():
        expected = service.expect(
            body.channel, asset=body.asset,
            amount_min_minor=parse_amount(body.amount_min, scale, asset=body.asset),
            amount_max_minor=parse_amount(body.amount_max, scale, asset=body.asset),
            from_us=parse_instant(body.from_), until_us=parse_instant(body.until),
            reference=body.reference, counterparty=body.counterparty,
            actor=actor_of(request))
    return expected_doc(service, expected)


@router.post("/expected/{expected_id}/cancel", openapi_extra=needs(P.RECON_WRITE),
             responses=PROBLEMS)
def cancel_expected(expected_id: IdPath, request: Request,
                    pool: PoolQuery = None) -> dict[str, str]:
    api, service = _recon(request, pool)
    with api.store_errors():
        service.cancel_expected(expected_id, actor=actor_of(request))
    return {"id": expected_id, "state": "cancelled"}


@router.get("/mappings", openapi_extra=needs(P.RECON_READ), responses=PROBLEMS)
def list_mappings(request: Request, pool: PoolQuery = None) -> list[dict[str, Any]]:
    api, service = _recon(request, pool)
    with api.store_errors():
        return [{"name": n, "text": t, "saved_at": iso(at)} for n, t, at in service.mappings()]


class MappingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=20_000)


@router.put("/mappings/{name}", openapi_extra=needs(P.RECON_WRITE), responses=PROBLEMS)
def save_mapping(name: Annotated[str, Path(pattern=CONFIG_ID_PATTERN)], body: MappingIn,
                 request: Request, pool: PoolQuery = None) -> dict[str, Literal["saved"] | str]:
    """Save a bank's CSV column mapping (YAML; refused naming the field when wrong)."""
    api, service = _recon(request, pool)
    with api.store_errors():
        service.save_mapping(name, body.text, actor=actor_of(request))
    return {"name": name, "state": "saved"}
