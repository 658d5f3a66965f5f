"""The answers of the approvals routes as typed values, and their methods (docs/approvals.md,
server/v1/approvals.py): the inbox, one payment's approval (what to sign, its stages and
signatures), signing, rejecting and cancelling, the caller's signing keys and TOTP enrolment,
and the approval rules' versions.

The routes answer plain documents; these models read them for the client, the CLI and the
console. Fields the server adds later are ignored, never refused, so an older client still
reads a newer server. `ApprovalOut.payment` is the payment as `GET /v1/payments/{id}` shows it,
kept as its document (`payment_model()` reads it as the payments routes' own model).

The methods are those of `ApprovalsEndpoints`, a base of `Endpoints` (`_api.py`): on `Client`
each sends its call and returns the answer, on `AsyncClient` each is a coroutine.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, TypeAdapter

from fundpool.client._core import Call, Runner, adapter, endpoint, query, segment

if TYPE_CHECKING:
    from fundpool.server.v1.payments import PaymentDetailOut, PaymentOut

APPROVALS = "/v1/approvals"
ME = "/v1/me"
RULES = "/v1/approval-rules"


class SignedOut(BaseModel):
    """A signature given on a stage (or a rejection's signature): who, with which key, when,
    and whether it still verifies over the payment as it is now."""

    who: str = Field("", description="The approver's principal (`user:<id>`).")
    name: str = ""
    key_id: str | None = None
    at_us: int = 0
    decision: str = Field("approve", description="approve | reject")
    note: str | None = Field(None, description="The approver's note; a rejection's reason.")
    valid: bool = True


class StageOut(BaseModel):
    """One stage of a payment's approval: M (`approvers`) of N (`eligible`) must sign."""

    rule_id: str | None = None
    name: str = ""
    approvers: int = 1
    eligible: int | None = None
    roles: list[str] = Field(default_factory=list)
    group: str | None = None
    members: list[str] = Field(default_factory=list)
    delay_s: int = 0
    cancellable_by: list[str] = Field(default_factory=list)
    signed: list[SignedOut] = Field(default_factory=list)
    done: bool = False


class DelayOut(BaseModel):
    release_at_us: int
    state: str = Field("waiting", description="waiting | released | cancelled")
    cancellable_by: list[str] = Field(default_factory=list)


class YouOut(BaseModel):
    """What the caller may do: sign (or why not), and the ids of their active keys."""

    may_sign: bool = False
    why_not: str | None = Field(None, description="self_approval | already_signed | "
                                "not_eligible | no_signing_key | not_waiting")
    keys: list[str] = Field(default_factory=list)


class ApprovalOut(BaseModel):
    payment: dict[str, Any]
    round: int | None = None
    rules_version: int | None = Field(None, description="0: none active when it was created; "
                                      "null: it never waited.")
    risk: dict[str, Any] | None = None
    digest: str = Field(description="What to sign: the 32 bytes this hex spells.")
    document: dict[str, Any] = Field(default_factory=dict)
    state: str = Field(description="waiting | delayed | approved | rejected | cancelled | "
                       "ended")
    stage: int | None = None
    stages: list[StageOut] = Field(default_factory=list)
    rejections: list[SignedOut] = Field(default_factory=list, description="Each with its "
                                        "reason as `note`.")
    delay: DelayOut | None = None
    totp_required: bool = False
    you: YouOut = Field(default_factory=YouOut)

    @property
    def payment_id(self) -> str:
        return str(self.payment.get("id") or self.document.get("payment") or "")

    def payment_model(self) -> PaymentDetailOut | PaymentOut:
        """The payment as the payments routes' model (with its timeline when it came with
        one)."""
        from fundpool.server.v1.payments import PaymentDetailOut, PaymentOut

        if "events" in self.payment:
            return adapter(PaymentDetailOut).validate_python(self.payment)
        return adapter(PaymentOut).validate_python(self.payment)


class ApprovalsOut(BaseModel):
    items: list[ApprovalOut]
    next_cursor: str | None = None


class SigningKeyOut(BaseModel):
    id: str
    name: str
    user_id: str | None = None
    username: str | None = None
    public_key: str
    created_at_us: int
    revoked_at_us: int | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at_us is None


class TotpOut(BaseModel):
    """A TOTP enrolment begun (`secret`, `uri`), or whether one is confirmed."""

    secret: str | None = None
    uri: str | None = None
    enrolled: bool = False
    pending: bool = Field(False, description="An enrolment begun, not confirmed yet.")


class RulesVoteOut(BaseModel):
    name: str
    at_us: int


class RulesVersionOut(BaseModel):
    version: int
    state: str = Field(description="draft | active | retired | superseded")
    text: str | None = None
    note: str | None = None
    author: dict[str, Any] | None = None
    created_at_us: int
    activated_at_us: int | None = None
    votes: list[RulesVoteOut] = Field(default_factory=list)
    quorum: int | None = None
    quorum_roles: list[str] = Field(default_factory=list)


def _unwrap(answer: object) -> object:
    """A list as the routes give it: bare, or as `{"data": [...]}`."""
    if isinstance(answer, dict):
        return answer.get("data", answer.get("items", []))
    return answer


_KEYS: TypeAdapter[list[SigningKeyOut]] = TypeAdapter(
    Annotated[list[SigningKeyOut], BeforeValidator(_unwrap)])
_VERSIONS: TypeAdapter[list[RulesVersionOut]] = TypeAdapter(
    Annotated[list[RulesVersionOut], BeforeValidator(_unwrap)])


def _post(path: str, body: object, result: TypeAdapter[Any],
          idempotency_key: str | None) -> Call[Any]:
    return Call("POST", path, result, body=body,
                idempotency_key=idempotency_key or str(uuid.uuid4()))


class ApprovalsEndpoints(Runner):
    """The approvals routes, as methods of `Client` and `AsyncClient` (through `Endpoints`)."""

    # --- the inbox and one payment's approval ----------------------------------------------

    @endpoint
    def approvals(self, pool: str | None = None, *, limit: int | None = None
                  ) -> Call[ApprovalsOut]:
        """The payments waiting for approval (those in their delay window too), each with
        its stages, what to sign, and what the caller may do (at most `limit`, 1–500)."""
        return Call("GET", APPROVALS, adapter(ApprovalsOut), query(pool=pool, limit=limit))

    @endpoint
    def approval(self, payment_id: str) -> Call[ApprovalOut]:
        """One payment's approval: its digest and document, stages, signatures, delay."""
        return Call("GET", f"{APPROVALS}/{segment(payment_id)}", adapter(ApprovalOut))

    @endpoint
    def sign_approval(self, payment_id: str, key_id: str, signature: str, digest: str, *,
                      totp: str | None = None, note: str | None = None,
                      idempotency_key: str | None = None) -> Call[ApprovalOut]:
        """Approve: `signature` (base64) is the approver's Ed25519 signature of `digest`
        (the hex the approval gives) with their registered key `key_id`."""
        body: dict[str, object] = {"key_id": key_id, "signature": signature, "digest": digest}
        if totp is not None:
            body["totp"] = totp
        if note is not None:
            body["note"] = note
        return _post(f"{APPROVALS}/{segment(payment_id)}/sign", body, adapter(ApprovalOut),
                     idempotency_key)

    @endpoint
    def reject_approval(self, payment_id: str, reason: str, *, key_id: str | None = None,
                        signature: str | None = None, idempotency_key: str | None = None
                        ) -> Call[ApprovalOut]:
        """An approver's no, with the reason; signed when `key_id` and `signature` are given
        (of the digest of the document with `decision` "reject")."""
        body: dict[str, object] = {"reason": reason}
        if key_id is not None and signature is not None:
            body.update(key_id=key_id, signature=signature)
        return _post(f"{APPROVALS}/{segment(payment_id)}/reject", body, adapter(ApprovalOut),
                     idempotency_key)

    @endpoint
    def cancel_approval(self, payment_id: str, reason: str | None = None, *,
                        idempotency_key: str | None = None) -> Call[ApprovalOut]:
        """Cancel an approved payment in its delay window (a role the rule names)."""
        body = {"reason": reason} if reason is not None else {}
        return _post(f"{APPROVALS}/{segment(payment_id)}/cancel", body, adapter(ApprovalOut),
                     idempotency_key)

    # --- my signing keys and TOTP --------------------------------------------------------------

    @endpoint
    def my_signing_keys(self) -> Call[list[SigningKeyOut]]:
        """The caller's signing keys, revoked ones too."""
        return Call("GET", f"{ME}/signing-keys", _KEYS)

    @endpoint
    def totp_status(self) -> Call[TotpOut]:
        return Call("GET", f"{ME}/totp", adapter(TotpOut))

    @endpoint
    def begin_totp(self, *, idempotency_key: str | None = None) -> Call[TotpOut]:
        """Begin TOTP enrolment: a secret and its otpauth URI; the first key registered with a
        code confirms it."""
        return _post(f"{ME}/totp", None, adapter(TotpOut), idempotency_key)

    @endpoint
    def register_signing_key(self, public_key: str, name: str, totp: str, *,
                             idempotency_key: str | None = None) -> Call[SigningKeyOut]:
        """Register an Ed25519 public key (base64 of the 32 raw bytes, or PEM)."""
        return _post(f"{ME}/signing-keys",
                     {"public_key": public_key, "name": name, "totp": totp},
                     adapter(SigningKeyOut), idempotency_key)

    @endpoint
    def revoke_signing_key(self, key_id: str, totp: str, *,
                           idempotency_key: str | None = None) -> Call[SigningKeyOut]:
        return _post(f"{ME}/signing-keys/{segment(key_id)}/revoke", {"totp": totp},
                     adapter(SigningKeyOut), idempotency_key)

    @endpoint
    def signing_keys(self) -> Call[list[SigningKeyOut]]:
        """Every approver's keys (`keys:read`)."""
        return Call("GET", "/v1/signing-keys", _KEYS)

    # --- approval rules --------------------------------------------------------------------

    @endpoint
    def approval_rules(self) -> Call[list[RulesVersionOut]]:
        """The versions, newest first."""
        return Call("GET", RULES, _VERSIONS)

    @endpoint
    def approval_rules_version(self, version: int) -> Call[RulesVersionOut]:
        return Call("GET", f"{RULES}/{int(version)}", adapter(RulesVersionOut))

    @endpoint
    def approval_rules_diff(self, version: int, against: int | None = None
                            ) -> Call[dict[str, Any]]:
        return Call("GET", f"{RULES}/{int(version)}/diff", adapter(dict[str, Any]),
                    query(against=against))

    @endpoint
    def validate_approval_rules(self, text: str) -> Call[dict[str, Any]]:
        return _post(f"{RULES}/validate", {"text": text}, adapter(dict[str, Any]), None)

    @endpoint
    def draft_approval_rules(self, text: str, note: str | None = None, *,
                             idempotency_key: str | None = None) -> Call[RulesVersionOut]:
        return _post(RULES, {"text": text, "note": note}, adapter(RulesVersionOut),
                     idempotency_key)

    @endpoint
    def approve_approval_rules(self, version: int, totp: str, *,
                               idempotency_key: str | None = None) -> Call[RulesVersionOut]:
        """A vote for the activation of `version` (never by its author)."""
        return _post(f"{RULES}/{int(version)}/approve", {"totp": totp},
                     adapter(RulesVersionOut), idempotency_key)
