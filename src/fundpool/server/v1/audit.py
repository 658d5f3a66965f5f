"""`/v1/audit`: the audit log as a transparency log (docs/audit.md), for `audit:read` (the
auditor's and the admin's).

    GET  /v1/audit/entries?actor=&object_kind=&object_id=&action=&from=&to=&limit=&cursor=
    GET  /v1/audit/entries/{seq}          the entry with its inclusion proof (latest checkpoint)
    GET  /v1/audit/checkpoints            signed checkpoints, newest first (cursor pages)
    GET  /v1/audit/checkpoints/latest
    GET  /v1/audit/consistency?first=&second=
    GET  /v1/audit/status                 size, latest checkpoint, lag, last verification
    POST /v1/audit/verify                 recompute and check everything; the findings
    GET  /v1/audit/export?from=&to=       JSON lines (tools/verify_audit_export.py checks it)
    GET  /v1/audit/public-key

A seq past the log or its latest checkpoint is 404 `audit_seq_out_of_range`; sizes out of
order 400 `audit_sizes_out_of_order`; a size past the log 400 `audit_size_out_of_range`; no
checkpoint yet 409 `no_audit_checkpoint`; an empty export range 400 `invalid_audit_range`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.responses import StreamingResponse

from fundpool.audit.ports import Search
from fundpool.audit.service import AuditService
from fundpool.auth.roles import P
from fundpool.server.v1.context import api_of
from fundpool.server.v1.pagination import CursorQuery, LimitQuery, make_cursor, read_cursor
from fundpool.server.v1.problems import PROBLEMS, parse_instant
from fundpool.server.v1.security import SecuredRouter, needs

router = SecuredRouter(prefix="/audit", tags=["audit"])

SeqPath = Annotated[int, Path(ge=0, le=2**63 - 1)]
SizeQuery = Annotated[int, Query(ge=0, le=2**63 - 1)]
TimeQuery = Annotated[str | None, Query(max_length=64, description="ISO-8601 with a zone.")]
TextQuery = Annotated[str | None, Query(max_length=200)]


def _audit(request: Request) -> AuditService:
    return api_of(request).audit


@router.get("/entries", openapi_extra=needs(P.AUDIT_READ), responses=PROBLEMS)
def list_entries(request: Request, actor: TextQuery = None, object_kind: TextQuery = None,
                 object_id: TextQuery = None, action: TextQuery = None,
                 from_: Annotated[str | None, Query(alias="from", max_length=64)] = None,
                 to: TimeQuery = None, limit: LimitQuery = 100,
                 cursor: CursorQuery = None) -> dict[str, Any]:
    """Entries oldest first, a page at a time: by actor (an id, a name, or kind:id), object
    (kind, id), action, and time (from and to, inclusive)."""
    filters = {"actor": actor, "object_kind": object_kind, "object_id": object_id,
               "action": action, "from": from_, "to": to}
    after = read_cursor(cursor, "audit_entries", filters, int)
    search = Search(actor=actor, object_kind=object_kind, object_id=object_id, action=action,
                    from_us=None if from_ is None else parse_instant(from_),
                    to_us=None if to is None else parse_instant(to), after_seq=after,
                    limit=limit + 1)
    with api_of(request).store_errors():
        found = _audit(request).entries(search)
    page = found[:limit]
    return {"data": [e.to_dict() for e in page],
            "next_cursor": make_cursor("audit_entries", filters, page[-1].seq)
            if len(found) > limit else None}


@router.get("/entries/{seq}", openapi_extra=needs(P.AUDIT_READ), responses=PROBLEMS)
def get_entry(seq: SeqPath, request: Request) -> dict[str, Any]:
    """One entry, with its inclusion proof against the latest checkpoint."""
    with api_of(request).store_errors():
        return _audit(request).inclusion(seq)


@router.get("/checkpoints", openapi_extra=needs(P.AUDIT_READ), responses=PROBLEMS)
def list_checkpoints(request: Request, limit: LimitQuery = 100,
                     cursor: CursorQuery = None) -> dict[str, Any]:
    """Signed checkpoints, newest first."""
    before = read_cursor(cursor, "audit_checkpoints", {}, int)
    with api_of(request).store_errors():
        every = _audit(request).store.checkpoints()
    shown = [c for c in reversed(every) if before is None or c.size < before]
    page = shown[:limit]
    return {"data": [c.to_dict() for c in page],
            "next_cursor": make_cursor("audit_checkpoints", {}, page[-1].size)
            if len(shown) > limit else None}


@router.get("/checkpoints/latest", openapi_extra=needs(P.AUDIT_READ), responses=PROBLEMS)
def latest_checkpoint(request: Request) -> dict[str, Any]:
    with api_of(request).store_errors():
        return _audit(request).latest().to_dict()


@router.get("/consistency", openapi_extra=needs(P.AUDIT_READ), responses=PROBLEMS)
def consistency(first: SizeQuery, second: SizeQuery, request: Request) -> dict[str, Any]:
    """The consistency proof between the trees of sizes `first` and `second`."""
    with api_of(request).store_errors():
        return _audit(request).consistency(first, second)


@router.get("/status", openapi_extra=needs(P.AUDIT_READ), responses=PROBLEMS)
def status(request: Request) -> dict[str, Any]:
    with api_of(request).store_errors():
        return _audit(request).status()


@router.post("/verify", openapi_extra=needs(P.AUDIT_READ), responses=PROBLEMS)
def verify(request: Request) -> dict[str, Any]:
    """Recompute every leaf, node and checkpointed root, check the signatures and the
    consistency between checkpoints: the findings, each named (read-only: no
    Idempotency-Key needed)."""
    with api_of(request).store_errors():
        return _audit(request).verify().to_dict()


JSONL = "application/jsonl"
_EXPORT_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"description": "The export, as an attachment (`Content-Disposition`): JSON lines "
          "(docs/audit.md).", "content": {JSONL: {"schema": {"type": "string"}}}},
    **PROBLEMS,
}


@router.get("/export", response_class=StreamingResponse, openapi_extra=needs(P.AUDIT_READ),
            responses=_EXPORT_ANSWER)
def export(request: Request,
           from_: Annotated[int | None, Query(alias="from", ge=0)] = None,
           to: Annotated[int | None, Query(ge=1, description="Excluded.")] = None,
           from_time: TimeQuery = None, to_time: TimeQuery = None) -> StreamingResponse:
    """The entries from seq `from` to `to` (or from_time / to_time) as JSON lines."""
    audit = _audit(request)
    with api_of(request).store_errors():
        first = from_ if from_ is not None else (
            0 if from_time is None else audit.store.seq_at(parse_instant(from_time) - 1))
        end = to if to is not None else (
            None if to_time is None else audit.store.seq_at(parse_instant(to_time)))
        lines = audit.export(first, end)
        head = next(lines)  # the range's errors are raised here, before any byte is sent

    def body() -> Any:
        yield head
        yield from lines

    return StreamingResponse(body(), media_type=JSONL,
                             headers={"Content-Disposition":
                                      'attachment; filename="audit-export.jsonl"'})


@router.get("/public-key", openapi_extra=needs(P.AUDIT_READ), responses=PROBLEMS)
def public_key(request: Request) -> dict[str, Any]:
    return _audit(request).public_key()
