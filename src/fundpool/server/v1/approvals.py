"""`/v1/approvals`, `/v1/approval-rules`, `/v1/me/...` and `/v1/signing-keys`: signed
approvals (docs/approvals.md).

An approval is an Ed25519 signature over the digest the approval's document names
(`GET /v1/approvals/{id}`: `digest`), by a key the approver registered with a TOTP code. The
service checks everything (the signer is not the initiator, has not signed this round, is
among the stage's approvers, the key is theirs, the signature verifies, the payment is what was
signed); the last signature approves the payment or begins its delay window. Rules are drafted
and activated by a quorum of voters other than their author, each with a TOTP code.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from fundpool.approvals.model import RulesVersion, Signature, SigningKey
from fundpool.approvals.rules import Governance
from fundpool.approvals.service import ApprovalService, ApprovalView
from fundpool.auth.roles import P
from fundpool.core.actor import Actor
from fundpool.payments.docs import payment_doc
from fundpool.server.v1.context import Api, api_of
from fundpool.server.v1.idempotency import HEADER, idempotent_post
from fundpool.server.v1.models import Strict
from fundpool.server.v1.problems import PROBLEMS
from fundpool.server.v1.security import SecuredRouter, actor_of, needs

router = SecuredRouter(tags=["approvals"])

IdempotencyHeader = Annotated[str | None, HEADER]
PaymentPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
KeyPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
VersionPath = Annotated[int, Path(ge=1, le=2**63 - 1)]
Totp = Annotated[str | None, Field(default=None, max_length=16,
                                   description="A current TOTP code (6 digits).")]


class SignIn(Strict):
    key_id: str | None = Field(default=None, max_length=64)
    signature: str | None = Field(default=None, max_length=200,
                                  description="Base64 of the 64-byte Ed25519 signature.")
    digest: str | None = Field(default=None, max_length=128,
                               description="The digest signed (hex), as the approval showed it.")
    totp: Totp = None
    note: str | None = Field(default=None, max_length=500)


class RejectIn(Strict):
    reason: str | None = Field(default=None, max_length=500)
    key_id: str | None = Field(default=None, max_length=64)
    signature: str | None = Field(default=None, max_length=200)


class CancelIn(Strict):
    reason: str | None = Field(default=None, max_length=500)


class KeyIn(Strict):
    public_key: str = Field(min_length=1, max_length=4096,
                            description="Base64 of the 32 raw bytes, or PEM.")
    name: str = Field(default="key", max_length=64)
    totp: Totp = None


class TotpIn(Strict):
    totp: Totp = None


class RulesIn(Strict):
    text: str = Field(min_length=1, max_length=256 * 1024)
    note: str | None = Field(default=None, max_length=500)


# --- documents -------------------------------------------------------------------------------


def _approvals(request: Request) -> ApprovalService:
    return api_of(request).approvals


def _signature_doc(signature: Signature) -> dict[str, Any]:
    return {"who": signature.approver.who, "name": signature.approver.name,
            "key_id": signature.key_id, "at_us": signature.at_us,
            "decision": signature.decision.value, "note": signature.note,
            "signature": None if signature.signature is None
            else signature.signature.hex()}


def key_doc(key: SigningKey) -> dict[str, Any]:
    import base64

    return {"id": key.id, "name": key.name, "user_id": key.user_id, "username": key.username,
            "public_key": base64.b64encode(key.public_key).decode("ascii"),
            "created_at_us": key.created_at_us, "revoked_at_us": key.revoked_at_us}


def view_doc(api: Api, view: ApprovalView, actor: Actor | None,
             keys: list[SigningKey] | None = None) -> dict[str, Any]:
    payment = view.payment
    doc: dict[str, Any] = {
        "payment": payment_doc(payment, api.assets().get(payment.asset)),
        "round": view.round,
        "rules_version": None if view.plan is None else view.plan.rules_version,
        "risk": None if view.plan is None else view.plan.risk,
        "digest": view.digest.hex(), "document": dict(view.document), "state": view.state,
        "stage": view.stage,
        "stages": [{**v.stage.to_doc(), "eligible": v.eligible, "done": v.done,
                    "signed": [_signature_doc(s) for s in v.signed]} for v in view.stages],
        "rejections": [_signature_doc(s) for s in view.rejections],
        "delay": None if view.delay is None else {
            "release_at_us": view.delay.release_at_us, "state": view.delay.state.value,
            "cancellable_by": list(view.delay.cancellable_by)},
        "totp_required": bool(view.plan and view.plan.totp_required),
    }
    if actor is not None:
        doc["you"] = view.you(actor, api.approvals.signing_keys(actor) if keys is None
                              else keys)
    return doc


def version_doc(service: ApprovalService, version: RulesVersion,
                governance: Governance | None = None) -> dict[str, Any]:
    governance = governance or service.governance()
    return {"version": version.version, "state": version.state.value, "text": version.text,
            "digest": version.digest, "note": version.note, "author": version.author.shown(),
            "created_at_us": version.created_at_us,
            "activated_at_us": version.activated_at_us, "retired_at_us": version.retired_at_us,
            "votes": [{"name": v.voter.name, "who": v.voter.who, "at_us": v.at_us}
                      for v in service.store.votes(version.version)],
            "quorum": governance.quorum, "quorum_roles": list(governance.roles)}


# --- approvals -------------------------------------------------------------------------------


@router.get("/approvals", openapi_extra=needs(P.PAYMENTS_READ), responses=PROBLEMS)
def inbox(request: Request, pool: Annotated[str | None, Query(max_length=64)] = None,
          limit: Annotated[int, Query(ge=1, le=500)] = 200) -> dict[str, Any]:
    """The payments waiting for approval, oldest first, each with its stages, who signed,
    its digest, and what the caller may do (`you`)."""
    api = api_of(request)
    pool_id = api.pool(pool).id
    actor = actor_of(request)
    with api.store_errors():
        views = api.approvals.inbox(pool_id, limit)
        keys = api.approvals.signing_keys(actor)
        return {"items": [view_doc(api, v, actor, keys) for v in views]}


@router.get("/approvals/{payment_id}", openapi_extra=needs(P.PAYMENTS_READ),
            responses=PROBLEMS)
def approval(payment_id: PaymentPath, request: Request) -> dict[str, Any]:
    """One payment's approval: the document and digest to sign, its stages and signatures."""
    api = api_of(request)
    actor = actor_of(request)
    with api.store_errors():
        return view_doc(api, api.approvals.view(payment_id, actor), actor)


def sign_payment(request: Request, payment_id: str, body: SignIn | None,
                 key: str | None) -> JSONResponse:
    api = api_of(request)
    actor = actor_of(request)
    body = body or SignIn()

    def run() -> dict[str, Any]:
        with api.store_errors():
            view = api.approvals.sign(payment_id, actor, key_id=body.key_id,
                                      signature=body.signature, digest=body.digest,
                                      code=body.totp, note=body.note)
            return view_doc(api, view, actor)

    return idempotent_post(request, key, body.model_dump(), run)


@router.post("/approvals/{payment_id}/sign", openapi_extra=needs(P.PAYMENTS_APPROVE),
             responses=PROBLEMS)
def sign(payment_id: PaymentPath, request: Request, body: SignIn | None = None,
         idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """Sign a payment waiting for approval with a registered key: `signature` is the
    Ed25519 signature of the 32 bytes `digest` spells. The last signature of the last stage
    approves it (or begins its delay window)."""
    return sign_payment(request, payment_id, body, idempotency_key)


def reject_payment(request: Request, payment_id: str, body: RejectIn | None,
                   key: str | None) -> JSONResponse:
    api = api_of(request)
    actor = actor_of(request)
    body = body or RejectIn()

    def run() -> dict[str, Any]:
        with api.store_errors():
            view = api.approvals.reject(payment_id, actor, body.reason, key_id=body.key_id,
                                        signature=body.signature)
            return view_doc(api, view, actor)

    return idempotent_post(request, key, body.model_dump(), run)


@router.post("/approvals/{payment_id}/reject", openapi_extra=needs(P.PAYMENTS_APPROVE),
             responses=PROBLEMS)
def reject(payment_id: PaymentPath, request: Request, body: RejectIn | None = None,
           idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """An eligible approver's no, with the reason: the payment is rejected."""
    return reject_payment(request, payment_id, body, idempotency_key)


@router.post("/approvals/{payment_id}/cancel", openapi_extra=needs(P.PAYMENTS_READ),
             responses=PROBLEMS)
def cancel(payment_id: PaymentPath, request: Request, body: CancelIn | None = None,
           idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """Cancel an approved payment during its delay window: a role the rule names
    (`not_cancellable`, 403, otherwise)."""
    api = api_of(request)
    actor = actor_of(request)
    body = body or CancelIn()

    def run() -> dict[str, Any]:
        with api.store_errors():
            return view_doc(api, api.approvals.cancel(payment_id, actor, body.reason), actor)

    return idempotent_post(request, idempotency_key, body.model_dump(), run)


# --- my keys and TOTP ------------------------------------------------------------------------


@router.get("/me/totp", openapi_extra=needs(P.PAYMENTS_READ), responses=PROBLEMS)
def my_totp(request: Request) -> dict[str, Any]:
    """Whether the caller has a TOTP authenticator enrolled (or an enrolment begun)."""
    api = api_of(request)
    with api.store_errors():
        return api.approvals.totp_state(actor_of(request))


@router.post("/me/totp", openapi_extra=needs(P.PAYMENTS_READ), responses=PROBLEMS)
def begin_totp(request: Request) -> dict[str, Any]:
    """Begin TOTP enrolment: the secret (shown this once) and its otpauth URI; the first good
    code, with a key's registration, confirms it. Refused once enrolled."""
    api = api_of(request)
    with api.store_errors():
        return api.approvals.begin_totp(actor_of(request))


@router.get("/me/signing-keys", openapi_extra=needs(P.PAYMENTS_READ), responses=PROBLEMS)
def my_keys(request: Request) -> dict[str, Any]:
    api = api_of(request)
    with api.store_errors():
        return {"data": [key_doc(k) for k in api.approvals.signing_keys(actor_of(request))]}


@router.post("/me/signing-keys", status_code=201, openapi_extra=needs(P.PAYMENTS_READ),
             responses=PROBLEMS)
def register_key(body: KeyIn, request: Request) -> JSONResponse:
    """Register an Ed25519 public key to sign approvals with, confirmed by a TOTP code."""
    api = api_of(request)
    with api.store_errors():
        key = api.approvals.register_key(actor_of(request), body.public_key, body.name,
                                         body.totp)
    return JSONResponse(key_doc(key), status_code=201)


@router.post("/me/signing-keys/{key_id}/revoke", openapi_extra=needs(P.PAYMENTS_READ),
             responses=PROBLEMS)
def revoke_key(key_id: KeyPath, request: Request, body: TotpIn | None = None
               ) -> dict[str, Any]:
    api = api_of(request)
    with api.store_errors():
        key = api.approvals.revoke_key(actor_of(request), key_id,
                                       None if body is None else body.totp)
    return key_doc(key)


@router.get("/signing-keys", openapi_extra=needs(P.KEYS_READ), responses=PROBLEMS)
def every_key(request: Request) -> dict[str, Any]:
    """Every approver's signing keys (public keys only: the server never holds a private
    one)."""
    api = api_of(request)
    with api.store_errors():
        return {"data": [key_doc(k) for k in api.approvals.signing_keys()]}


# --- rules -----------------------------------------------------------------------------------


@router.get("/approval-rules", openapi_extra=needs(P.PAYMENTS_READ), responses=PROBLEMS)
def rule_versions(request: Request) -> dict[str, Any]:
    """Every version, newest first."""
    api = api_of(request)
    service = api.approvals
    with api.store_errors():
        governance = service.governance()  # once: the active version's, for every row
        return {"data": [version_doc(service, v, governance)
                         for v in service.store.versions()]}


@router.post("/approval-rules/validate", openapi_extra=needs(P.APPROVALS_RULES),
             responses=PROBLEMS)
def validate_rules(body: RulesIn, request: Request) -> dict[str, Any]:
    """Check rules without saving them (`invalid_approval_rules` names the line)."""
    api = api_of(request)
    with api.store_errors():
        return api.approvals.validate(body.text)


@router.post("/approval-rules", status_code=201, openapi_extra=needs(P.APPROVALS_RULES),
             responses=PROBLEMS)
def draft_rules(body: RulesIn, request: Request,
                idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """Save checked rules as the next version, a draft: nothing changes until a quorum
    activates it."""
    api = api_of(request)
    actor = actor_of(request)

    def run() -> dict[str, Any]:
        with api.store_errors():
            return version_doc(api.approvals, api.approvals.draft(body.text, actor, body.note))

    return idempotent_post(request, idempotency_key, body.model_dump(), run, status=201)


@router.get("/approval-rules/{version}", openapi_extra=needs(P.PAYMENTS_READ),
            responses=PROBLEMS)
def rule_version(version: VersionPath, request: Request) -> dict[str, Any]:
    api = api_of(request)
    service = api.approvals
    with api.store_errors():
        found = service.store.version(version)
        if found is None:
            from fundpool.approvals.model import UnknownRulesVersion

            raise UnknownRulesVersion(version=version)
        return {**version_doc(service, found), "diff": service.diff(version, None)}


@router.get("/approval-rules/{version}/diff", openapi_extra=needs(P.PAYMENTS_READ),
            responses=PROBLEMS)
def rule_diff(version: VersionPath, request: Request,
              against: Annotated[int | None, Query(ge=1)] = None) -> dict[str, Any]:
    api = api_of(request)
    with api.store_errors():
        return {"diff": api.approvals.diff(version, against)}


@router.post("/approval-rules/{version}/approve", openapi_extra=needs(P.APPROVALS_RULES),
             responses=PROBLEMS)
def vote_rules(version: VersionPath, request: Request, body: TotpIn | None = None
               ) -> dict[str, Any]:
    """A vote to activate a draft, with a TOTP code; the quorum's last vote activates it.
    Never by its author (`self_activation`)."""
    api = api_of(request)
    with api.store_errors():
        found = api.approvals.vote(version, actor_of(request),
                                   None if body is None else body.totp)
        return version_doc(api.approvals, found)
