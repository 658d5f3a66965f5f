"""Errors as RFC 9457 problem details (`application/problem+json`).

Every error the server returns has one shape:

    {"type": "/problems/insufficient_funds", "title": "...", "status": 409,
     "detail": "...", "code": "insufficient_funds", "facts": {...}}

`code` is the domain error's stable code (core/errors.py), the same the CLI prints; `facts` are
its keyword facts, kept in an object of their own so that a fact named `type` or `status` (an
event's type, say) can never shadow a member the RFC defines. The `type` URI is relative to the
server; it identifies the problem and is not meant to be fetched.

A database driver's error (what a store raises when its database fails) is `store_error` (503):
the server does not know the drivers, so the composition root hands their error classes in
(`DriverErrors`, on the worker's `Api` and to `create_app`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http import HTTPStatus
from typing import ClassVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from fundpool.core.errors import FundpoolError, StoreError

log = structlog.get_logger(__name__)

# The error classes of the database drivers the stores use (sqlite3.Error, psycopg.Error).
DriverErrors = tuple[type[BaseException], ...]

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_PREFIX = "/problems/"

# The HTTP status of a domain error, by code; a code not listed is a request the domain refused
# (400). The API work adds its codes here; the status never changes the code.
STATUS_BY_CODE: dict[str, int] = {
    "invariant_violation": 500,
    "store_error": 503,
    "store_not_initialised": 503,
    "projection_lagging": 503,
    "unknown_asset": 404,
    "unknown_account": 404,
    "unknown_transaction": 404,
    "unknown_pending": 404,
    "insufficient_funds": 409,
    "balance_above_maximum": 409,
    "idempotency_conflict": 409,
    "already_reversed": 409,
    "pending_already_finished": 409,
    "pending_expired": 409,
    "account_already_open": 409,
    "asset_already_defined": 409,
    # the API's own
    "authentication_failed": 401,
    "unauthenticated": 401,
    "invalid_credentials": 401,
    "key_expired": 401,
    "key_revoked": 401,
    "session_expired": 401,
    "user_disabled": 401,
    "forbidden": 403,
    "csrf_failed": 403,
    # a raw posting on a pool's or merchant's account without ledger:adjust (its reason
    # missing is a request the domain refused: 400 adjustment_reason_required)
    "adjustment_permission_required": 403,
    "unknown_pool": 404,
    "unknown_payment": 404,
    "unknown_key": 404,
    "unknown_user": 404,
    "user_exists": 409,
    "key_not_rotatable": 409,
    "illegal_transition": 409,
    "idempotency_in_progress": 409,
    "payload_too_large": 413,
    "too_many_requests": 429,
    # payments, payout files and channels
    "approval_required": 409,
    "self_approval": 403,  # four eyes: the initiator may never approve, whatever their role
    "approver_unknown": 403,
    "already_approved_by_you": 409,
    "intake_refused": 409,
    "csv_too_large": 413,
    "unknown_payout_batch": 404,
    "unknown_channel": 404,
    # monitoring
    "unknown_alert": 404,
    "alert_not_firing": 409,
    "unknown_metric": 404,
    "replay_busy": 429,
    # risk control
    "invalid_policy": 400,
    "unknown_policy": 404,
    "policy_not_draft": 409,
    "self_activation": 403,  # maker-checker: the author of a policy never activates it
    "nothing_to_roll_back": 409,
    "unknown_case": 404,
    "unknown_limit": 404,
    "risk_case_open": 409,
    "case_closed": 409,
    "case_changed": 409,
    "claimed_by_other": 409,
    "self_review": 403,  # the initiator of a payment never decides its risk case
    "invalid_risk_input": 400,
    "invalid_sanctions_file": 400,
    # approvals (docs/approvals.md)
    "signature_required": 400,
    "invalid_signature": 400,
    "signature_mismatch": 403,
    "payment_changed": 409,
    "unknown_signing_key": 403,
    "already_signed": 409,
    "not_eligible": 403,
    "not_waiting": 409,
    "not_cancellable": 403,
    "invalid_public_key": 400,
    "key_already_registered": 409,
    "invalid_approval_input": 400,
    "invalid_approval_rules": 400,
    "unknown_rules_version": 404,
    "already_voted": 409,
    "not_a_voter": 403,
    "totp_required": 403,
    "totp_invalid": 403,
    "totp_expired": 403,
    "totp_reused": 403,
    "totp_not_enrolled": 403,
    "totp_already_enrolled": 409,
    "self_grant": 403,  # nobody grants themselves a role
    # the audit log (docs/audit.md)
    "audit_seq_out_of_range": 404,
    "audit_sizes_out_of_order": 400,
    "audit_size_out_of_range": 400,
    "no_audit_checkpoint": 409,
    "invalid_audit_range": 400,
    "audit_key_error": 503,
    # reconciliation (docs/reconciliation.md)
    "file_refused": 400,
    "unknown_message": 400,
    "balances_do_not_add_up": 400,
    "invalid_account": 400,
    "invalid_csv_mapping": 400,
    "duplicate_statement": 409,
    "recon_not_open": 409,
    "recon_note_required": 400,
    "recon_nothing_to_book": 409,
    "recon_not_found": 404,
    "invalid_expected_payment": 400,
    # the treasury desk (docs/treasury.md)
    "fx_quote_unknown": 404,
    "fx_quote_expired": 409,
    "fx_quote_not_open": 409,
    "fx_rate_unknown": 422,
    "invalid_fx_quote": 400,
    "fx_no_channel_for_asset": 400,
    "rates_unavailable": 503,
    "invalid_rates": 503,
    "invalid_split_rule": 400,
    "split_percentages_exceed_whole": 400,
    "split_rule_unknown": 404,
    "cyclic_tiers": 400,
    "empty_tier": 400,
    "unknown_tier": 400,
    "tiers_not_ordered": 400,
    "invalid_waterfall": 400,
    "invalid_obligation": 400,
    "unknown_participant": 400,
    "invalid_netting": 400,
    "desk_conflict": 409,
    "invalid_band": 400,
    "invalid_sweep_rule": 400,
    "sweep_pending": 409,
    "stale_balances": 409,
    "sweep_would_breach_minimum": 409,
    "invalid_route": 400,
    "invalid_credit_facility": 400,
    "credit_limit_exceeded": 409,
    "invalid_scenario": 400,
    "plan_unknown": 404,
    "plan_not_open": 409,
    "plan_self_approval": 403,
    "plan_outdated": 409,
    "invalid_treasury_config": 400,
}
# Codes of the errors the HTTP layer itself raises (no domain error behind them).
HTTP_CODES: dict[int, str] = {
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
}


class ProjectionLagging(FundpoolError):
    """The projections are further behind the outbox than the server accepts to be ready."""

    code: ClassVar[str] = "projection_lagging"
    title: ClassVar[str] = "the live figures are too far behind the ledger's events"


def problem(
    status: int, code: str, title: str, detail: str | None = None,
    facts: Mapping[str, object] | None = None,
) -> JSONResponse:
    body: dict[str, object] = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "detail": detail or title,
        "code": code,
    }
    if facts:
        body["facts"] = dict(facts)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def error_problem(error: FundpoolError) -> JSONResponse:
    return problem(STATUS_BY_CODE.get(error.code, 400), error.code, error.title, error.detail,
                   error.facts)


def store_failure(error: BaseException) -> StoreError:
    return StoreError(reason=f"{type(error).__name__}: {error}")


@contextmanager
def store_errors(driver_errors: DriverErrors) -> Iterator[None]:
    """Turn a database driver's error into `store_error` (503), an answer rather than an
    unexpected failure: a route that reads the store says so when the store is down."""
    try:
        yield
    except driver_errors as error:
        raise store_failure(error) from error


def install_problem_handlers(app: FastAPI, driver_errors: DriverErrors) -> None:
    """Make every error the app returns a problem document with a code."""

    async def on_domain_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, FundpoolError)
        return error_problem(error)

    async def on_http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        status = error.status_code
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "error"
        code = HTTP_CODES.get(status, phrase.lower().replace(" ", "_").replace("-", "_"))
        detail = error.detail if isinstance(error.detail, str) else phrase
        response = problem(status, code, phrase, detail)
        if error.headers:
            response.headers.update(error.headers)
        return response

    async def on_invalid_request(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        errors = [
            {"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", "")),
             "type": str(e.get("type", ""))}
            for e in error.errors()
        ]
        if any(e["type"] == "json_invalid" for e in errors):
            return problem(400, "malformed_json", "the body is not valid JSON",
                           facts={"errors": errors})
        return problem(422, "invalid_request", "the request is not valid",
                       facts={"errors": errors})

    async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
        if isinstance(error, driver_errors):
            return error_problem(store_failure(error))
        # The detail of an unexpected failure stays in the server's log: it may name a store
        # URL. (`fundpool serve` renders tracebacks without local variables.)
        log.error("unexpected_error", path=request.url.path, error=type(error).__name__,
                  exc_info=error)
        return problem(500, "internal_error", "the server failed unexpectedly")

    app.add_exception_handler(FundpoolError, on_domain_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_invalid_request)
    app.add_exception_handler(Exception, on_unexpected)
