"""The answers of `/v1/risk` as typed values (docs/risk.md, server/v1/risk.py).

The risk routes answer plain documents (`PolicyVersion.to_dict()`, `CaseRecord.to_dict()` …);
these models read them for the client, the CLI and the console. Fields the server adds later
are ignored, never refused, so an older client still reads a newer server. Amounts are minor
units as the records keep them (`amount_minor` text in a backtest; integers in a decision's
condition inputs, which are the figures the rules compared).

A case's own document has `decision` (`release` | `reject`, once decided); the one of
`GET /risk/cases/{id}` puts the payment's risk decision under that name instead (its state
says what the case's decision was), hence two models.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from fundpool.server.v1.actors import ActorOut


class PolicyVersionOut(BaseModel):
    version: int
    digest: str
    state: str = Field(description="draft | active | retired")
    note: str | None = None
    created_at_us: int
    created_by: ActorOut
    activated_at_us: int | None = None
    activated_by: ActorOut | None = None
    text: str | None = Field(None, description="Absent from the list of versions.")
    diff: list[str] | None = Field(None, description="Unified diff against the active "
                                   "version (one version's answer only).")


class PoliciesOut(BaseModel):
    data: list[PolicyVersionOut]


class ActivePolicyOut(BaseModel):
    policy: PolicyVersionOut | None = Field(description="None: no policy is active, every "
                                            "payment is allowed.")


class PolicyCheckOut(BaseModel):
    """A policy that passed the checks: what it holds and how it differs from the active."""

    valid: bool
    summary: dict[str, Any]
    diff: list[str]
    active_version: int | None = None


class BacktestChangeOut(BaseModel):
    payment_id: str
    active: str
    draft: str
    payee: str | None = None
    amount_minor: str
    asset: str
    draft_groups: list[str] = Field(default_factory=list)


class ConfusionOut(BaseModel):
    """Flagged (not `allow`) against labelled: fraud (tp, fn) or good (fp, tn)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0


class BacktestOut(BaseModel):
    days: int
    payments: int
    active_version: int | None = None
    outcomes: dict[str, dict[str, int]] = Field(description="active | draft -> outcome -> "
                                                "payments")
    changed_count: int
    changed: list[BacktestChangeOut] = Field(description="The first ones (at most 200).")
    confusion: dict[str, ConfusionOut]
    labelled: int


class FiredOut(BaseModel):
    """A group whose conditions all held, each condition with the inputs it compared."""

    group: str
    score: int | None = None
    outcome: str | None = None
    conditions: list[dict[str, Any]] = Field(default_factory=list)


class HitOut(BaseModel):
    """A screening hit: the list entry, its score (0–100) and why it matched."""

    entry_id: str
    source: str
    name: str
    score: int
    explanation: str
    query: str | None = None


class DecisionOut(BaseModel):
    payment_id: str
    pool: str
    policy_version: int | None = Field(description="None: no policy was active.")
    outcome: str = Field(description="allow | review | hold | block")
    score: int
    at_us: int
    fired: list[FiredOut] = Field(default_factory=list)
    hits: list[HitOut] = Field(default_factory=list)
    subject: dict[str, Any] = Field(default_factory=dict)


class _CaseFields(BaseModel):
    id: str
    pool: str
    payment_id: str
    kind: str = Field(description="review | hold")
    state: str = Field(description="open | claimed | escalated | released | rejected")
    summary: str
    opened_at_us: int
    due_at_us: int
    version: int
    claimed_by: ActorOut | None = None
    claimed_at_us: int | None = None
    decided_at_us: int | None = None
    decided_by: ActorOut | None = None
    breached: bool = Field(False, description="Past its due time and undecided.")


class CaseOut(_CaseFields):
    decision: str | None = Field(None, description="release | reject, once decided.")


class CaseNoteOut(BaseModel):
    seq: int
    at_us: int
    actor: ActorOut
    action: str = Field(description="opened | claimed | commented | escalated | released | "
                        "rejected")
    note: str | None = None


class CaseDetailOut(_CaseFields):
    notes: list[CaseNoteOut] = Field(default_factory=list)
    decision: DecisionOut | None = Field(None, description="The payment's risk decision.")


class CasesOut(BaseModel):
    data: list[CaseOut]


class PaymentRiskOut(BaseModel):
    """A payment's risk decision (None before it is screened) and its cases."""

    decision: DecisionOut | None = None
    cases: list[CaseOut] = Field(default_factory=list)


class ScreenOut(BaseModel):
    hits: list[HitOut]


class RiskListOut(BaseModel):
    name: str
    version: str
    format: str
    entries: int
    loaded_at_us: int
    loaded_by: ActorOut


class ClearedOut(BaseModel):
    query: str
    entry_id: str
    at_us: int
    actor: ActorOut
    note: str


class RiskListsOut(BaseModel):
    data: list[RiskListOut]
    cleared: list[ClearedOut] = Field(default_factory=list)


class LoadedListOut(BaseModel):
    """A list loaded, how many known counterparties were screened against it, and those it
    now hits that its previous version did not (each also raised as an alert)."""

    loaded: RiskListOut = Field(alias="list")
    rescreened: int = 0
    new_hits: list[dict[str, Any]] = Field(default_factory=list)


class PartyOut(BaseModel):
    name: str
    kyc: str
    country: str | None = None
    updated_at_us: int
    updated_by: ActorOut


class PartiesOut(BaseModel):
    data: list[PartyOut]


class RingShareOut(BaseModel):
    """What payees of a ring share: an attribute of their payouts and how many payees it
    links."""

    attribute: str = Field(description="destination | name | device | ip")
    value: str
    payees: int


class RingOut(BaseModel):
    """A suspected fraud ring: payees linked by what their recent payouts share."""

    id: str = Field(description="Stable for the same payees.")
    payees: list[str]
    shared: list[RingShareOut] = Field(default_factory=list)
    payouts: int
    amounts: dict[str, str] = Field(default_factory=dict, description="asset -> total in "
                                    "minor units, as text")


class RingsOut(BaseModel):
    data: list[RingOut] = Field(description="The largest first (at most 100).")
    count: int = Field(description="Every ring found, those listed and those left off.")


class LimitOut(BaseModel):
    """A limit a policy group's automatic response lowered, still in force: payouts per
    `per` = `key` in `asset` above `max_minor` are held until `until_us`."""

    id: str
    pool: str
    payment_id: str = Field(description="The payment whose decision lowered it.")
    group: str = Field(description="The policy group that lowered it.")
    kind: str = "limit"
    at_us: int
    per: str = Field(description="payee | initiator | destination")
    key: str
    asset: str
    max_minor: str
    until_us: int


class LimitsOut(BaseModel):
    data: list[LimitOut]


class LiftedOut(BaseModel):
    lifted: str
