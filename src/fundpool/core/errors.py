"""Domain errors: each has a stable code that every entry point (CLI, API) returns unchanged.

An error carries the facts needed to act on it as keyword fields, so that a caller can show
`insufficient_funds` with the account, the asset and both figures instead of a sentence to parse.
"""

from __future__ import annotations

from typing import ClassVar


class FundpoolError(Exception):
    """Base of every domain error. `code` is stable; `facts` are JSON-safe values."""

    code: ClassVar[str] = "fundpool_error"
    title: ClassVar[str] = "fundpool error"

    def __init__(self, detail: str | None = None, **facts: object) -> None:
        self.facts: dict[str, object] = {k: _json_safe(v) for k, v in facts.items()}
        self.detail = detail or self.title
        super().__init__(self.detail)

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "title": self.title, "detail": self.detail, **self.facts}

    def __str__(self) -> str:
        if not self.facts:
            return f"{self.code}: {self.detail}"
        facts = ", ".join(f"{k}={v!r}" for k, v in self.facts.items())
        return f"{self.code}: {self.detail} ({facts})"


def _json_safe(value: object) -> object:
    # Amounts above 2**53 lose precision in JavaScript clients; facts carry them as strings.
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else str(value)
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return str(value)


class InvariantViolation(FundpoolError):
    """A money invariant failed: a bug, never bad input. Nothing is written when it is raised."""

    code = "invariant_violation"
    title = "an internal money invariant failed"


def invariant(condition: bool, why: str) -> None:
    """Check a money invariant. Unlike `assert`, it runs under `python -O` too."""
    if not condition:
        raise InvariantViolation(why)


# --- money -----------------------------------------------------------------------------------


class InvalidAmount(FundpoolError):
    code = "invalid_amount"
    title = "the amount is not a valid amount for this asset"


class AmountOverflow(FundpoolError):
    code = "amount_overflow"
    title = "the amount exceeds the largest representable amount (2^128 - 1 minor units)"


class TooManyDecimals(FundpoolError):
    code = "too_many_decimals"
    title = "the amount has more decimals than the asset's scale"


class NegativeAmount(FundpoolError):
    code = "negative_amount"
    title = "amounts are never negative; the direction is given by source and destination"


class InvalidAsset(FundpoolError):
    code = "invalid_asset"
    title = "the asset definition is not valid"


class UnknownAsset(FundpoolError):
    code = "unknown_asset"
    title = "no such asset is defined in this ledger"


class AssetAlreadyDefined(FundpoolError):
    code = "asset_already_defined"
    title = "the asset is already defined with another scale or kind"


# --- accounts --------------------------------------------------------------------------------


class InvalidAddress(FundpoolError):
    code = "invalid_address"
    title = "the account address does not follow the address grammar"


class InvalidAccount(FundpoolError):
    code = "invalid_account"
    title = "the account's flags are not consistent"


class UnknownAccount(FundpoolError):
    code = "unknown_account"
    title = "no such account is open in this ledger"


class AccountAlreadyOpen(FundpoolError):
    code = "account_already_open"
    title = "the account is already open with other flags"


class AssetMismatch(FundpoolError):
    code = "asset_mismatch"
    title = "the account holds a single asset and this posting moves another"


class InsufficientFunds(FundpoolError):
    code = "insufficient_funds"
    title = "the source account's available balance does not cover the amount"


class BalanceAboveMaximum(FundpoolError):
    code = "balance_above_maximum"
    title = "the destination account would exceed its maximum balance"


class BalanceOverflow(FundpoolError):
    code = "balance_overflow"
    title = "a balance would leave the representable range of +/- (2^128 - 1)"


# --- transactions ----------------------------------------------------------------------------


class InvalidTransaction(FundpoolError):
    code = "invalid_transaction"
    title = "the transaction is not well formed"


class EmptyPostings(FundpoolError):
    code = "empty_postings"
    title = "a transaction needs at least one posting"


class SameAccount(FundpoolError):
    code = "same_account"
    title = "a posting's source and destination are the same account"


class InvalidMetadata(FundpoolError):
    code = "invalid_metadata"
    title = "metadata must be a small map of short string keys to short string values"


class IdempotencyConflict(FundpoolError):
    code = "idempotency_conflict"
    title = "the idempotency key was already used with a different request body"


class InvalidIdempotencyKey(FundpoolError):
    code = "invalid_idempotency_key"
    title = "the idempotency key must be 1 to 128 printable ASCII characters"


class UnknownTransaction(FundpoolError):
    code = "unknown_transaction"
    title = "no such transaction in this ledger"


class AlreadyReversed(FundpoolError):
    code = "already_reversed"
    title = "the transaction has already been reversed"


class NotReversible(FundpoolError):
    code = "not_reversible"
    title = "only a posted transaction can be reversed"


class BatchTooLarge(FundpoolError):
    code = "batch_too_large"
    title = "the batch has more commands than a batch may hold"


class LinkedBatchFailed(FundpoolError):
    code = "linked_batch_failed"
    title = "a linked batch is applied all or none and one of its members failed"


# --- two-phase -------------------------------------------------------------------------------


class UnknownPending(FundpoolError):
    code = "unknown_pending"
    title = "no such pending transfer"


class PendingNotPending(FundpoolError):
    code = "pending_already_finished"
    title = "the pending transfer is no longer pending"


class PendingExpired(FundpoolError):
    code = "pending_expired"
    title = "the pending transfer has expired"


class PostExceedsPending(FundpoolError):
    code = "post_exceeds_pending"
    title = "the amount to post exceeds the amount reserved by the pending transfer"


class InvalidTimeout(FundpoolError):
    code = "invalid_timeout"
    title = "a pending transfer's timeout must be between 1 second and 400 days"


# --- stores ----------------------------------------------------------------------------------


class StoreError(FundpoolError):
    code = "store_error"
    title = "the store failed"


class StoreNotInitialised(FundpoolError):
    code = "store_not_initialised"
    title = "the store has no ledger yet; run `fundpool ledger init`"
