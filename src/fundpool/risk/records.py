"""What risk control keeps: policy versions, decisions, cases and their notes, sanctions lists,
cleared false positives, the party registry. Plain values, written and read through the port
the risk package declares (`risk.ports.RiskStore`) and kept by a store in its own tables
(`stores/risk_sql.py`, the `risk` component's migrations)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fundpool.core.actor import Actor


class PolicyState(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    RETIRED = "retired"  # was active once; a rollback activates it again


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    version: int
    text: str
    digest: str  # sha256 of the text
    state: PolicyState
    created_at_us: int
    created_by: Actor
    note: str | None = None
    activated_at_us: int | None = None
    activated_by: Actor | None = None

    def to_dict(self, *, text: bool = True) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "version": self.version, "digest": self.digest, "state": self.state.value,
            "note": self.note, "created_at_us": self.created_at_us,
            "created_by": self.created_by.shown(), "activated_at_us": self.activated_at_us,
            "activated_by": None if self.activated_by is None else self.activated_by.shown(),
        }
        if text:
            doc["text"] = self.text
        return doc


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """The risk decision on one payment, with why: the policy version (None: no policy was
    active), each group that fired with the inputs of its conditions, the screening hits."""

    payment_id: str
    pool: str
    policy_version: int | None
    outcome: str
    score: int
    detail: Mapping[str, Any]  # {"fired": [...], "hits": [...], "subject": {...}}
    at_us: int
    channel: str | None = None  # the rail the caller named when it was decided

    def to_dict(self) -> dict[str, Any]:
        return {"payment_id": self.payment_id, "pool": self.pool,
                "policy_version": self.policy_version, "outcome": self.outcome,
                "score": self.score, "at_us": self.at_us, **self.detail}


class CaseState(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    ESCALATED = "escalated"
    RELEASED = "released"  # the payment goes on
    REJECTED = "rejected"  # the payment is rejected

    @property
    def closed(self) -> bool:
        return self in (CaseState.RELEASED, CaseState.REJECTED)


@dataclass(frozen=True, slots=True)
class CaseRecord:
    id: str
    pool: str
    payment_id: str
    kind: str  # review | hold (the decision's outcome)
    state: CaseState
    summary: str  # the decision's reason
    opened_at_us: int
    due_at_us: int  # the SLA: decided by then
    version: int = 1
    claimed_by: Actor | None = None
    claimed_at_us: int | None = None
    decided_at_us: int | None = None
    decided_by: Actor | None = None
    decision: str | None = None  # release | reject, with the note in the case's notes

    def to_dict(self, now_us: int | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id, "pool": self.pool, "payment_id": self.payment_id,
            "kind": self.kind, "state": self.state.value, "summary": self.summary,
            "opened_at_us": self.opened_at_us, "due_at_us": self.due_at_us,
            "version": self.version,
            "claimed_by": None if self.claimed_by is None else self.claimed_by.shown(),
            "claimed_at_us": self.claimed_at_us, "decided_at_us": self.decided_at_us,
            "decided_by": None if self.decided_by is None else self.decided_by.shown(),
            "decision": self.decision,
        }
        if now_us is not None:
            doc["breached"] = not self.state.closed and now_us > self.due_at_us
        return doc


@dataclass(frozen=True, slots=True)
class CaseNote:
    case_id: str
    seq: int
    at_us: int
    actor: Actor
    action: str  # opened | claimed | commented | escalated | released | rejected
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "at_us": self.at_us, "actor": self.actor.shown(),
                "action": self.action, "note": self.note}


@dataclass(frozen=True, slots=True)
class ListRecord:
    """A loaded sanctions list: its name, the content's sha256, its format and size."""

    name: str
    version: str
    format: str  # ftm | sdn
    entries: int
    loaded_at_us: int
    loaded_by: Actor

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "format": self.format,
                "entries": self.entries, "loaded_at_us": self.loaded_at_us,
                "loaded_by": self.loaded_by.shown()}


@dataclass(frozen=True, slots=True)
class Cleared:
    """A screening hit a risk officer cleared as a false positive: this (normalised) name
    against this list entry no longer hits."""

    query: str
    entry_id: str
    at_us: int
    actor: Actor
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "entry_id": self.entry_id, "at_us": self.at_us,
                "actor": self.actor.shown(), "note": self.note}


@dataclass(frozen=True, slots=True)
class PartyRecord:
    """A counterparty in the registry: its KYC/KYB state and country."""

    name: str
    kyc: str
    country: str | None
    updated_at_us: int
    updated_by: Actor

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kyc": self.kyc, "country": self.country,
                "updated_at_us": self.updated_at_us, "updated_by": self.updated_by.shown()}


@dataclass(frozen=True, slots=True)
class PastPayment:
    """A payment of the look-back, as the features are rebuilt from it."""

    id: str
    kind: str
    asset: str
    amount: int
    at_us: int
    payee: str | None
    initiator: str | None
    destination: str | None
    reference: str | None
    state: str
    channel: str | None = None
    outcome: str | None = None  # its risk decision (as the features replay decisions)
    decided_at_us: int = 0
    country: str | None = None  # its `country` metadata


@dataclass(frozen=True, slots=True)
class RiskSignal:
    """Something risk control wants in the alert bar while it holds (the alert engine fires
    it, and resolves it once it no longer comes): payments waiting for review, payments on
    hold, cases past their SLA, a payment blocked by a sanctions hit."""

    pool: str
    rule: str  # risk.review_queue | risk.holds | risk.sla_breach | risk.sanctions_block
    subject: str  # risk:review | risk:hold | risk:breached | payment:<id>
    severity: str  # info | warning | critical
    count: int
    summary: str


@dataclass(frozen=True, slots=True)
class ResponseRecord:
    """What a group did when it fired, beside its score or outcome: a graded alert
    (`kind` alert, `severity`), or a limit lowered until `until_us` (`kind` limit: payouts per
    `per` = `key` in `asset` above `max_minor` are held)."""

    id: str
    pool: str
    payment_id: str
    group: str
    kind: str  # alert | limit
    at_us: int
    severity: str | None = None
    per: str | None = None
    key: str | None = None
    asset: str | None = None
    max_minor: int | None = None
    until_us: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "pool": self.pool, "payment_id": self.payment_id,
                "group": self.group, "kind": self.kind, "at_us": self.at_us,
                "severity": self.severity, "per": self.per, "key": self.key,
                "asset": self.asset,
                "max_minor": None if self.max_minor is None else str(self.max_minor),
                "until_us": self.until_us}
