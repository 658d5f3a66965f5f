"""Approvals' values and errors: signing keys, the plan a waiting payment is held to, the
signatures and rejections given, delay windows, rule versions (docs/approvals.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fundpool.core.actor import Actor
from fundpool.core.errors import FundpoolError

NOTE_MAX = 500  # characters of an approver's note or a rejection's reason
KEY_NAME_MAX = 64
KEYS_PER_USER_MAX = 10


# --- errors ----------------------------------------------------------------------------------


class ApprovalError(FundpoolError):
    code = "approval_error"
    title = "the approval could not be taken"


class SignatureRequired(ApprovalError):
    code = "signature_required"
    title = "an approval is a signature: give key_id, signature and digest"


class InvalidSignature(ApprovalError):
    code = "invalid_signature"
    title = "the signature is not 64 bytes of base64"


class SignatureMismatch(ApprovalError):
    code = "signature_mismatch"
    title = "the signature does not verify with the key over this payment's digest"


class PaymentChanged(ApprovalError):
    code = "payment_changed"
    title = "the payment is not what was signed: read it again and sign what it is now"


class UnknownSigningKey(ApprovalError):
    code = "unknown_signing_key"
    title = "no active signing key of yours has this id"


class AlreadySigned(ApprovalError):
    code = "already_signed"
    title = "you have already signed or rejected this payment in this round"


class NotEligible(ApprovalError):
    code = "not_eligible"
    title = "you are not among the approvers this payment's stage asks for"


class NotWaiting(ApprovalError):
    code = "not_waiting"
    title = "this payment is not waiting for approval"


class NotCancellable(ApprovalError):
    code = "not_cancellable"
    title = "only the roles the rule names may cancel a payment in its delay window"


class InvalidPublicKey(ApprovalError):
    code = "invalid_public_key"
    title = "the public key is not an Ed25519 key (32 raw bytes in base64, or PEM)"


class KeyAlreadyRegistered(ApprovalError):
    code = "key_already_registered"
    title = "this public key is already registered"


class InvalidApprovalInput(ApprovalError):
    code = "invalid_approval_input"
    title = "the request is not valid"


class TotpRequired(ApprovalError):
    code = "totp_required"
    title = "this action needs a current TOTP code"


class TotpInvalid(ApprovalError):
    code = "totp_invalid"
    title = "the TOTP code is not valid"


class TotpExpired(ApprovalError):
    code = "totp_expired"
    title = "the TOTP code has expired: use the current one"


class TotpReused(ApprovalError):
    code = "totp_reused"
    title = "this TOTP code was already used: wait for the next one"


class TotpNotEnrolled(ApprovalError):
    code = "totp_not_enrolled"
    title = "enrol a TOTP authenticator first"


class TotpAlreadyEnrolled(ApprovalError):
    code = "totp_already_enrolled"
    title = "a TOTP authenticator is already enrolled"


class SelfActivation(ApprovalError):
    code = "self_activation"
    title = "the author of a version never votes for its activation"


class AlreadyVoted(ApprovalError):
    code = "already_voted"
    title = "you have already voted for this version"


class UnknownRulesVersion(ApprovalError):
    code = "unknown_rules_version"
    title = "no such approval rules version"


class NotAVoter(ApprovalError):
    code = "not_a_voter"
    title = "activating approval rules needs a role the governance names"


# --- values ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SigningKey:
    id: str  # first 16 hex digits of SHA-256 of the raw public key
    user_id: str
    username: str
    name: str
    public_key: bytes  # 32 raw bytes
    created_at_us: int
    revoked_at_us: int | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at_us is None


class RulesState(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    RETIRED = "retired"  # was active; a later version took its place


@dataclass(frozen=True, slots=True)
class RulesVersion:
    version: int
    text: str
    digest: str
    note: str | None
    state: RulesState
    created_at_us: int
    author: Actor
    activated_at_us: int | None = None
    retired_at_us: int | None = None


@dataclass(frozen=True, slots=True)
class Vote:
    version: int
    voter: Actor
    at_us: int


@dataclass(frozen=True, slots=True)
class Plan:
    """What a payment waiting for approval is held to in one round: its stages, and the facts
    its digest is of (pinned when it began to wait)."""

    payment_id: str
    round: int
    rules_version: int  # 0: no rules were active (the pool's thresholds)
    stages: tuple[Mapping[str, Any], ...]
    risk: Mapping[str, Any] | None
    totp_required: bool
    created_at_us: int


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class Signature:
    payment_id: str
    round: int
    stage: int
    decision: Decision
    approver: Actor
    key_id: str | None
    signature: bytes | None
    digest: bytes
    note: str | None
    at_us: int


class DelayState(StrEnum):
    WAITING = "waiting"
    RELEASED = "released"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Delay:
    payment_id: str
    pool: str
    round: int
    release_at_us: int
    state: DelayState
    cancellable_by: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ApprovalAction:
    """One approvals action, for the audit log: `approval_actions`."""

    at_us: int
    action: str
    object_kind: str
    object_id: str
    actor: Actor | None
    details: Mapping[str, Any] = field(default_factory=dict)
