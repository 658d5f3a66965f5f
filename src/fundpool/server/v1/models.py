"""The `/v1` wire models shared by the server (request bodies, response schemas) and the Python
client (`fundpool.client`). Pydantic only: importing them never loads FastAPI.

Amounts travel as exact decimal text at the asset's scale (`"12.34"`), with the minor units
beside them as strings in responses (`"amount_minor": "1234"`): no float ever holds an amount,
on either side. Request models forbid unknown fields: a misspelt field is a 422, not ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from fundpool.ledger.adjustments import REASON_CHARS_MAX

AMOUNT_PATTERN = r"^[0-9]{1,39}(\.[0-9]{1,36})?$"
SIGNED_AMOUNT_PATTERN = r"^-?[0-9]{1,39}(\.[0-9]{1,36})?$"
Amount = Annotated[str, StringConstraints(pattern=AMOUNT_PATTERN, max_length=80)]
SignedAmount = Annotated[str, StringConstraints(pattern=SIGNED_AMOUNT_PATTERN, max_length=81)]
Address = Annotated[str, StringConstraints(min_length=1, max_length=256)]
AssetCode = Annotated[str, StringConstraints(min_length=1, max_length=32)]
Metadata = Annotated[dict[Annotated[str, StringConstraints(max_length=64)],
                          Annotated[str, StringConstraints(max_length=1024)]],
                     Field(max_length=64)]
# An adjustment's written reason (ledger/adjustments.py): needed, with `ledger:adjust`, when a
# raw posting touches an account of a pool or a merchant; recorded with the caller as its actor.
Reason = Annotated[str | None, Field(max_length=REASON_CHARS_MAX, description=(
    "Why: makes the posting an adjustment, recorded with its reason and actor. Needed (with "
    "the permission ledger:adjust) when it touches an account of a pool or a merchant."))]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- requests --------------------------------------------------------------------------------


class AssetIn(Strict):
    code: AssetCode
    scale: int = Field(ge=0, le=36)
    kind: Literal["fiat", "stablecoin", "crypto", "cbdc"]


class AccountIn(Strict):
    address: Address
    asset: AssetCode | None = Field(None, description="The one asset it holds; null: any.")
    allow_negative: bool | None = Field(None, description="Null: true for world:*, else false.")
    min_balance: SignedAmount | None = Field(None, description="Needs `asset`.")
    max_balance: SignedAmount | None = Field(None, description="Needs `asset`.")
    metadata: Metadata = Field(default_factory=dict)


class PostingIn(Strict):
    source: Address
    destination: Address
    asset: AssetCode
    amount: Amount


class TransferIn(Strict):
    postings: list[PostingIn] = Field(min_length=1, max_length=64)
    metadata: Metadata = Field(default_factory=dict)
    reason: Reason = None


class BatchTransferIn(TransferIn):
    idempotency_key: str | None = Field(None, min_length=1, max_length=255, description=(
        "This transfer's own key; without it, `<Idempotency-Key>:<index>` when the request "
        "has the header."))


class TransferBatchIn(Strict):
    transfers: list[BatchTransferIn] = Field(min_length=1, max_length=8_192)


class PendingIn(Strict):
    posting: PostingIn
    timeout_s: int = Field(3600, ge=1, le=366 * 24 * 3600)
    metadata: Metadata = Field(default_factory=dict)
    reason: Reason = None


class PostPendingIn(Strict):
    amount: Amount | None = Field(None, description="Part of the reservation; null: all of it.")
    metadata: Metadata = Field(default_factory=dict)
    reason: Reason = None


class NoteIn(Strict):
    metadata: Metadata = Field(default_factory=dict)
    reason: Reason = None


# --- responses -------------------------------------------------------------------------------


class AdjustmentOut(BaseModel):
    reason: str | None
    actor: dict[str, Any] | None = Field(description=(
        "Who made it: kind, id, name, roles, and the session or key and request id."))


class PostingOut(BaseModel):
    source: str
    destination: str
    asset: str
    amount: str
    amount_minor: str


class EntryOut(BaseModel):
    status: Literal["applied", "replayed"]
    seq: int
    id: str
    kind: str
    at: str
    at_us: int
    hash: str
    postings: list[PostingOut] = Field(default_factory=list)
    reverses: str | None = None
    reservation: PostingOut | None = None
    pending_id: str | None = None
    timeout_s: int | None = None
    expires_at: str | None = None
    posted: str | None = None
    posted_minor: str | None = None
    released: str | None = None
    released_minor: str | None = None
    metadata: dict[str, str] | None = None
    idempotency_key: str | None = None
    adjustment: AdjustmentOut | None = Field(None, description=(
        "Present when the entry is an adjustment: a person's raw posting, with its reason."))


class AssetOut(BaseModel):
    code: str
    scale: int
    kind: str


class AssetResult(BaseModel):
    status: Literal["applied", "unchanged"]
    asset: AssetOut


class AccountOut(BaseModel):
    address: str
    asset: str | None
    allow_negative: bool
    min: str | None = None
    min_minor: str | None = None
    max: str | None = None
    max_minor: str | None = None
    metadata: dict[str, str]


class AccountResult(BaseModel):
    status: Literal["applied", "unchanged"]
    account: AccountOut


class BalanceOut(BaseModel):
    asset: str
    posted: str
    posted_minor: str
    pending_out: str
    pending_out_minor: str
    pending_in: str
    pending_in_minor: str
    available: str
    available_minor: str


class BalancesOut(BaseModel):
    address: str
    at: str | None = Field(None, description="The point in time asked for; null: now.")
    as_of_seq: int
    balances: list[BalanceOut]


class HistoryRowOut(BaseModel):
    seq: int
    entry_id: str
    kind: str
    at: str
    asset: str
    posted_change: str
    posted_change_minor: str
    pending_out_change: str
    pending_out_change_minor: str
    pending_in_change: str
    pending_in_change_minor: str
    posted: str
    posted_minor: str
    pending_out: str
    pending_out_minor: str
    pending_in: str
    pending_in_minor: str
    available: str
    available_minor: str


class PendingOut(BaseModel):
    id: str
    state: str
    source: str
    destination: str
    asset: str
    amount: str
    amount_minor: str
    posted: str
    posted_minor: str
    expires_at: str
    created_seq: int
    finished_seq: int | None


class BatchItemOut(BaseModel):
    index: int
    ok: bool
    entry: EntryOut | None = None
    error: Problem | None = None


class Problem(BaseModel):
    """RFC 9457 problem details, with the domain's stable `code` and its `facts`."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    facts: dict[str, object] | None = None


class BatchOut(BaseModel):
    applied: int
    replayed: int
    rejected: int
    results: list[BatchItemOut]


class VerifyOut(BaseModel):
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    problem: dict[str, object] | None


BatchItemOut.model_rebuild()
