"""`/v1/risk`: policies, the review queue, sanctions lists and screening, the party registry,
and each payment's risk decision.

A policy is written as a draft (`POST /risk/policies`, checked first: `invalid_policy` names
the line at fault and nothing is saved), shown as a diff against the active one, backtested
over the last days of payments, activated by someone other than its author
(`self_activation`, 403) and rolled back. The payment engine reads the active version before
every decision, so an activation applies to the next payment decided after it commits.

A case is claimed, commented, escalated, released (its payment goes back to `screened` and the
engine routes it) or rejected (its payment is rejected), each with its actor and a note; the
initiator of a payment never decides its case (`self_review`, 403). Every write goes through
the API's idempotency store (`Idempotency-Key`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from fundpool.auth.roles import P
from fundpool.payments.model import UnknownPayment
from fundpool.risk.service import RiskService, SelfActivation
from fundpool.server.v1.context import api_of
from fundpool.server.v1.idempotency import HEADER, idempotent_post
from fundpool.server.v1.models import Strict
from fundpool.server.v1.problems import PROBLEMS
from fundpool.server.v1.security import SecuredRouter, actor_of, needs

router = SecuredRouter(prefix="/risk", tags=["risk"])

IdempotencyHeader = Annotated[str | None, HEADER]
CasePath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
PaymentPath = Annotated[str, Path(min_length=1, max_length=64,
                                  pattern=r"^[A-Za-z0-9_.:-]+$")]
CASE_STATES = ("open", "claimed", "escalated", "released", "rejected")
VersionPath = Annotated[int, Path(ge=1, le=2**63 - 1)]


class PolicyIn(Strict):
    text: str = Field(min_length=1, max_length=256 * 1024,
                      description="The policy as YAML (or JSON), as docs/risk.md describes it.")
    note: str | None = Field(default=None, max_length=2_000)


class TotpIn(Strict):
    totp: str | None = Field(default=None, max_length=16,
                             description="The caller's current TOTP code.")


class BacktestIn(Strict):
    text: str = Field(min_length=1, max_length=256 * 1024)
    days: int = Field(default=7, ge=1, le=90)
    pool: str | None = Field(default=None, max_length=64)


class NoteIn(Strict):
    note: str | None = Field(default=None, max_length=2_000)


class ScreenIn(Strict):
    name: str = Field(max_length=10_000)
    threshold: int = Field(default=85, ge=50, le=100)


class ClearIn(Strict):
    name: str = Field(min_length=1, max_length=1_000)
    entry_id: str = Field(min_length=1, max_length=200)
    note: str = Field(min_length=1, max_length=2_000)


class ListIn(Strict):
    content: str = Field(min_length=1, description="The file's text: FollowTheMoney JSON "
                         "lines or OFAC SDN CSV.")
    format: Literal["ftm", "sdn"] | None = None


class PartyIn(Strict):
    kyc: Literal["none", "pending", "rejected", "expired", "verified"]
    country: str | None = Field(default=None, min_length=2, max_length=2)


def _risk(request: Request) -> RiskService:
    return api_of(request).risk


def _case_doc(request: Request, case_id: str) -> dict[str, Any]:
    api = api_of(request)
    risk = _risk(request)
    case = risk.case(case_id)
    doc = case.to_dict(api.clock.now_us())
    doc["notes"] = [n.to_dict() for n in risk.notes(case_id)]
    decision = risk.store.decision(case.payment_id)
    doc["decision"] = None if decision is None else decision.to_dict()
    return doc


# --- policies --------------------------------------------------------------------------------


@router.get("/policies", openapi_extra=needs(P.RISK_READ), responses=PROBLEMS)
def list_policies(request: Request) -> dict[str, Any]:
    """Every policy version, newest first (without their texts)."""
    with api_of(request).store_errors():
        return {"data": [p.to_dict(text=False) for p in _risk(request).policies()]}


@router.get("/policies/active", openapi_extra=needs(P.RISK_READ), responses=PROBLEMS)
def active_policy(request: Request) -> dict[str, Any]:
    """The active version with its text (`null` when none is active: every payment is
    allowed)."""
    with api_of(request).store_errors():
        found = _risk(request).store.active_policy()
    return {"policy": None if found is None else found.to_dict()}


@router.get("/policies/{version}", openapi_extra=needs(P.RISK_READ), responses=PROBLEMS)
def get_policy(version: VersionPath, request: Request) -> dict[str, Any]:
    """One version with its text and its diff against the active one."""
    risk = _risk(request)
    with api_of(request).store_errors():
        return {**risk.policy(version).to_dict(), "diff": risk.diff(version)}


@router.post("/policies/validate", openapi_extra=needs(P.RISK_READ), responses=PROBLEMS)
def validate_policy(body: PolicyIn, request: Request) -> dict[str, Any]:
    """Check a policy without saving it: its summary and its diff against the active one, or
    `invalid_policy` with the line at fault."""
    with api_of(request).store_errors():
        return _risk(request).validate(body.text)


@router.post("/policies/backtest", openapi_extra=needs(P.RISK_READ), responses=PROBLEMS)
def backtest_policy(body: BacktestIn, request: Request) -> dict[str, Any]:
    """Replay the last `days` of payments through the active policy and through `text`: the
    decisions that would change and each one's confusion matrix against known outcomes."""
    api = api_of(request)
    pool = api.pool(body.pool).id  # unknown_pool, 404
    with api.store_errors():
        return _risk(request).backtest(body.text, body.days, pool).to_dict()


@router.post("/policies", status_code=201, openapi_extra=needs(P.RISK_POLICY),
             responses=PROBLEMS)
def create_policy(body: PolicyIn, request: Request,
                  idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """Save a checked policy as the next version, a draft."""
    actor = actor_of(request)
    return idempotent_post(
        request, idempotency_key, body.model_dump(),
        lambda: _risk(request).draft(body.text, actor, body.note).to_dict(), status=201)


@router.post("/policies/{version}/activate", openapi_extra=needs(P.RISK_POLICY),
             responses=PROBLEMS)
def activate_policy(version: VersionPath, request: Request, body: TotpIn | None = None,
                    idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """Activate a draft, confirmed by the caller's TOTP code (`totp`); the version active
    before is retired. Never by its author, whatever their role (`self_activation`)."""
    actor = actor_of(request)
    api = api_of(request)

    def run() -> dict[str, Any]:
        found = _risk(request).policy(version)
        if found.created_by.who == actor.who:  # refused before a TOTP code is spent
            raise SelfActivation(version=version, author=found.created_by.name)
        api.approvals.confirm_totp(actor, None if body is None else body.totp,
                                   "risk.policy.activate")
        return _risk(request).activate(version, actor).to_dict()

    return idempotent_post(request, idempotency_key, {"version": version}, run)


@router.post("/policies/rollback", openapi_extra=needs(P.RISK_POLICY), responses=PROBLEMS)
def rollback_policy(request: Request, idempotency_key: IdempotencyHeader = None
                    ) -> JSONResponse:
    """Activate again the version active before the current one (which becomes a draft)."""
    actor = actor_of(request)
    return idempotent_post(request, idempotency_key, {},
                           lambda: _risk(request).rollback(actor).to_dict())


# --- decisions and cases ---------------------------------------------------------------------


@router.get("/decisions/{payment_id}", openapi_extra=needs(P.PAYMENTS_READ),
            responses=PROBLEMS)
def payment_decision(payment_id: PaymentPath, request: Request) -> dict[str, Any]:
    """A payment's risk decision: outcome, score, policy version, each group that fired with
    its conditions' inputs, screening hits; and its cases. `null` before it is screened."""
    risk = _risk(request)
    api = api_of(request)
    with api.store_errors():
        if api.payment_records.payment(payment_id) is None:
            raise UnknownPayment(payment_id=payment_id)
        found = risk.store.decision(payment_id)
        cases = risk.cases_of(payment_id)
    now = api_of(request).clock.now_us()
    return {"decision": None if found is None else found.to_dict(),
            "cases": [c.to_dict(now) for c in cases]}


@router.get("/cases", openapi_extra=needs(P.RISK_READ), responses=PROBLEMS)
def list_cases(
    request: Request,
    state: Annotated[list[Literal["open", "claimed", "escalated", "released", "rejected"]]
                     | None, Query()] = None,
    pool: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
) -> dict[str, Any]:
    """The review queue, the most urgent first (by SLA due time); `state` filters (default:
    open, claimed and escalated). `breached`: past its SLA and undecided."""
    api = api_of(request)
    states: list[str] = [str(s) for s in state] if state else ["open", "claimed", "escalated"]
    with api.store_errors():
        cases = _risk(request).cases(states=states, pool=pool, limit=limit)
    now = api.clock.now_us()
    return {"data": [c.to_dict(now) for c in cases]}


@router.get("/cases/{case_id}", openapi_extra=needs(P.RISK_READ), responses=PROBLEMS)
def get_case(case_id: CasePath, request: Request) -> dict[str, Any]:
    """A case with its notes and its payment's decision."""
    with api_of(request).store_errors():
        return _case_doc(request, case_id)


def _case_action(request: Request, case_id: str, action: str, body: NoteIn | None,
                 key: str | None) -> JSONResponse:
    actor = actor_of(request)
    note = None if body is None else body.note
    risk = _risk(request)
    api = api_of(request)

    def run() -> dict[str, Any]:
        with api.store_errors():
            if action == "claim":
                risk.claim(case_id, actor)
            elif action == "comment":
                risk.comment(case_id, actor, note)
            elif action == "escalate":
                risk.escalate(case_id, actor, note)
            elif action == "release":
                risk.release(case_id, actor, note)
            else:
                risk.reject(case_id, actor, note)
        if action == "release" and api.wake_engine is not None:
            api.wake_engine(risk.case(case_id).pool)
        return _case_doc(request, case_id)

    return idempotent_post(request, key, {"action": action, "note": note}, run)


@router.post("/cases/{case_id}/claim", openapi_extra=needs(P.PAYMENTS_REVIEW),
             responses=PROBLEMS)
def claim_case(case_id: CasePath, request: Request, body: NoteIn | None = None,
               idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """Take a case: others see who works it, and only its claimer decides it."""
    return _case_action(request, case_id, "claim", body, idempotency_key)


@router.post("/cases/{case_id}/comment", openapi_extra=needs(P.PAYMENTS_REVIEW),
             responses=PROBLEMS)
def comment_case(case_id: CasePath, request: Request, body: NoteIn | None = None,
                 idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """Add a note to a case."""
    return _case_action(request, case_id, "comment", body, idempotency_key)


@router.post("/cases/{case_id}/escalate", openapi_extra=needs(P.PAYMENTS_REVIEW),
             responses=PROBLEMS)
def escalate_case(case_id: CasePath, request: Request, body: NoteIn | None = None,
                  idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """Escalate a case, with a note saying why."""
    return _case_action(request, case_id, "escalate", body, idempotency_key)


@router.post("/cases/{case_id}/release", openapi_extra=needs(P.PAYMENTS_REVIEW),
             responses=PROBLEMS)
def release_case(case_id: CasePath, request: Request, body: NoteIn | None = None,
                 idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """Release the payment (back to `screened`; the engine routes it), with a note."""
    return _case_action(request, case_id, "release", body, idempotency_key)


@router.post("/cases/{case_id}/reject", openapi_extra=needs(P.PAYMENTS_REVIEW),
             responses=PROBLEMS)
def reject_case(case_id: CasePath, request: Request, body: NoteIn | None = None,
                idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """Reject the payment, with a note (confirmed fraud, for the backtests)."""
    return _case_action(request, case_id, "reject", body, idempotency_key)


# --- lists, screening, parties ---------------------------------------------------------------


@router.get("/lists", openapi_extra=needs(P.RISK_READ), responses=PROBLEMS)
def list_lists(request: Request) -> dict[str, Any]:
    """The sanctions lists loaded, and the false positives cleared."""
    risk = _risk(request)
    with api_of(request).store_errors():
        return {"data": [r.to_dict() for r in risk.store.lists()],
                "cleared": [c.to_dict() for c in risk.store.cleared()]}


@router.put("/lists/{name}", openapi_extra=needs(P.RISK_POLICY), responses=PROBLEMS)
def put_list(name: Annotated[str, Path(min_length=1, max_length=100,
                                       pattern=r"^[A-Za-z0-9_.-]+$")],
             body: ListIn, request: Request) -> dict[str, Any]:
    """Load or replace a sanctions list (a malformed or truncated file is refused whole:
    `invalid_sanctions_file` with the line; the old list stays). Every known counterparty is
    screened against it; the hits its previous version did not give are answered (`new_hits`)
    and raise a critical alert each (continuous screening)."""
    with api_of(request).store_errors():
        return _risk(request).load_list(name, body.content.encode(), actor_of(request),
                                        body.format).to_dict()


@router.post("/screen", openapi_extra=needs(P.RISK_READ), responses=PROBLEMS)
def screen_name(body: ScreenIn, request: Request) -> dict[str, Any]:
    """A name against the loaded lists, each hit with its score and why."""
    with api_of(request).store_errors():
        return {"hits": _risk(request).screen(body.name, body.threshold)}


@router.post("/cleared", status_code=201, openapi_extra=needs(P.RISK_POLICY),
             responses=PROBLEMS)
def clear_hit(body: ClearIn, request: Request) -> dict[str, Any]:
    """Clear a false positive: `name` no longer hits the list entry `entry_id`."""
    with api_of(request).store_errors():
        return _risk(request).clear_hit(body.name, body.entry_id, actor_of(request),
                                        body.note).to_dict()


@router.get("/limits", openapi_extra=needs(P.RISK_READ), responses=PROBLEMS)
def list_limits(request: Request) -> dict[str, Any]:
    """The limits automatic responses lowered (a policy group's `respond.lower_limit`), still
    in force: payouts per payee, initiator or destination above them are held."""
    with api_of(request).store_errors():
        return {"data": [r.to_dict() for r in _risk(request).limits()]}


@router.post("/limits/{limit_id}/lift", openapi_extra=needs(P.RISK_POLICY), responses=PROBLEMS)
def lift_limit(limit_id: CasePath, body: NoteIn, request: Request,
               idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """Lift a lowered limit before its time, with a note (`unknown_limit`, 404, when it is
    not in force)."""
    actor = actor_of(request)
    risk = _risk(request)

    def run() -> dict[str, Any]:
        risk.end_limit(limit_id, actor, body.note)
        return {"lifted": limit_id}

    return idempotent_post(request, idempotency_key, {"note": body.note}, run)


@router.get("/rings", openapi_extra=needs(P.RISK_READ), responses=PROBLEMS)
def list_rings(
    request: Request,
    minutes: Annotated[int, Query(ge=1, le=24 * 60)] = 30,
    min_payees: Annotated[int, Query(ge=2, le=1_000)] = 3,
    pool: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """Suspected fraud rings among the payouts of the last `minutes`: payees linked by the
    accounts, names, devices and IP addresses their payouts share, largest first."""
    api = api_of(request)
    chosen = api.pool(pool).id  # unknown_pool, 404
    with api.store_errors():
        rings = _risk(request).rings(minutes, chosen, min_payees)
    return {"data": [r.to_dict() for r in rings[:100]], "count": len(rings)}


@router.get("/parties", openapi_extra=needs(P.RISK_READ), responses=PROBLEMS)
def list_parties(request: Request) -> dict[str, Any]:
    with api_of(request).store_errors():
        return {"data": [p.to_dict() for p in _risk(request).store.parties()]}


@router.put("/parties/{name}", openapi_extra=needs(P.RISK_POLICY), responses=PROBLEMS)
def put_party(name: Annotated[str, Path(min_length=1, max_length=200)], body: PartyIn,
              request: Request) -> dict[str, Any]:
    """Record a counterparty's KYC/KYB state and country."""
    with api_of(request).store_errors():
        return _risk(request).set_party(name, body.kyc, body.country,
                                        actor_of(request)).to_dict()
