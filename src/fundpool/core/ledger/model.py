"""The ledger's values: addresses, accounts, postings, commands and journal entries.

Commands are what callers ask for; journal entries are what the ledger did. Both are frozen.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from fundpool.core.errors import (
    EmptyPostings,
    InvalidAccount,
    InvalidAddress,
    InvalidIdempotencyKey,
    InvalidMetadata,
    InvalidTimeout,
    InvalidTransaction,
    SameAccount,
)
from fundpool.core.money import AMOUNT_MAX_MINOR, Asset, check_amount

# A segment is lower-case letters, digits, '_' or '-', starting with a letter or digit;
# 2..8 segments joined by ':'. `pool:main:usd:bank-a:available`, `world:bank-a`.
ADDRESS_SEGMENT_PATTERN = r"[a-z0-9][a-z0-9_-]{0,63}"
ADDRESS_PATTERN = re.compile(
    rf"^{ADDRESS_SEGMENT_PATTERN}(?::{ADDRESS_SEGMENT_PATTERN}){{1,7}}\Z"
)
ADDRESS_LENGTH_MAX = 256
WORLD_NAMESPACE = "world"

METADATA_ENTRIES_MAX = 32
METADATA_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}\Z")
METADATA_VALUE_LENGTH_MAX = 512
IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,128}\Z")
POSTINGS_PER_TRANSACTION_MAX = 256
PENDING_TIMEOUT_S_MIN = 1
PENDING_TIMEOUT_S_MAX = 400 * 24 * 3600
US_PER_S = 1_000_000


def check_address(address: object) -> str:
    if (
        not isinstance(address, str)
        or len(address) > ADDRESS_LENGTH_MAX
        or not ADDRESS_PATTERN.match(address)
    ):
        raise InvalidAddress(
            "an address is 2 to 8 ':'-separated segments of lower-case letters, digits, '_' "
            "and '-', each starting with a letter or digit (pool:main:usd:bank-a:available)",
            address=address if isinstance(address, str) else repr(address),
        )
    return address


def is_world(address: str) -> bool:
    return address.startswith(f"{WORLD_NAMESPACE}:")


def check_metadata(metadata: object) -> Mapping[str, str]:
    if not isinstance(metadata, Mapping):
        raise InvalidMetadata("metadata must be a map", metadata=repr(metadata)[:80])
    if len(metadata) > METADATA_ENTRIES_MAX:
        raise InvalidMetadata(entries=len(metadata), entries_max=METADATA_ENTRIES_MAX)
    for key, value in metadata.items():
        if not isinstance(key, str) or not METADATA_KEY_PATTERN.match(key):
            raise InvalidMetadata(
                "metadata keys are 1-64 characters of letters, digits, '_', '.', ':' or '-'",
                key=str(key)[:80],
            )
        if not isinstance(value, str) or len(value) > METADATA_VALUE_LENGTH_MAX:
            raise InvalidMetadata(
                f"metadata values are strings of at most {METADATA_VALUE_LENGTH_MAX} characters",
                key=key,
            )
        if not is_storable_text(value):
            raise InvalidMetadata(
                "metadata values are text without NUL characters or unpaired surrogates",
                key=key,
            )
    return metadata


def is_storable_text(value: str) -> bool:
    """Text every store keeps and the canonical form can encode: valid UTF-8, no NUL (which
    PostgreSQL text refuses)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_idempotency_key(key: object) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not IDEMPOTENCY_KEY_PATTERN.match(key):
        raise InvalidIdempotencyKey(key=repr(key)[:140])
    return key


@dataclass(frozen=True, slots=True)
class Account:
    """An open account. `asset` set makes it single-asset; min/max then apply in its minor units.

    The lower bound on the available balance is `min_balance_minor` when set, otherwise 0 for an
    account that may not go negative and none for one that may (a credit line is a negative
    minimum). The upper bound on posted + pending-in is `max_balance_minor` when set.
    """

    address: str
    asset: str | None = None
    allow_negative: bool | None = None  # None: True for `world:` accounts, else False
    min_balance_minor: int | None = None
    max_balance_minor: int | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    # Lowest allowed available balance, or None for none: derived once, read on every debit.
    floor_minor: int | None = field(init=False, compare=False, repr=False, default=None)

    def __post_init__(self) -> None:
        check_address(self.address)
        check_metadata(self.metadata)
        if self.allow_negative is None:
            object.__setattr__(self, "allow_negative", is_world(self.address))
        elif not isinstance(self.allow_negative, bool):
            raise InvalidAccount("allow_negative must be true or false", address=self.address)
        if self.asset is not None and not isinstance(self.asset, str):
            raise InvalidAccount("asset must be an asset code", address=self.address)
        # Metadata is frozen with the account: a caller's later edit must not change it.
        object.__setattr__(self, "metadata", dict(self.metadata))
        for name in ("min_balance_minor", "max_balance_minor"):
            bound = getattr(self, name)
            if bound is None:
                continue
            if isinstance(bound, bool) or not isinstance(bound, int):
                raise InvalidAccount(f"{name} must be an integer", address=self.address)
            if abs(bound) > AMOUNT_MAX_MINOR:
                raise InvalidAccount(f"{name} is out of range", address=self.address)
            if self.asset is None:
                raise InvalidAccount(
                    f"{name} needs a single-asset account (set its asset)", address=self.address
                )
        if (
            self.min_balance_minor is not None
            and self.max_balance_minor is not None
            and self.min_balance_minor > self.max_balance_minor
        ):
            raise InvalidAccount("min balance is above max balance", address=self.address)
        if self.min_balance_minor is not None and self.min_balance_minor > 0:
            raise InvalidAccount(
                "a minimum balance above zero would reject the account's first credit",
                address=self.address,
                min_balance_minor=self.min_balance_minor,
            )
        if self.max_balance_minor is not None and self.max_balance_minor < 0:
            raise InvalidAccount("a maximum balance below zero", address=self.address)
        floor = (
            self.min_balance_minor
            if self.min_balance_minor is not None
            else (None if self.allow_negative else 0)
        )
        object.__setattr__(self, "floor_minor", floor)


    def body(self) -> dict[str, object]:
        return {
            "address": self.address,
            "asset": self.asset,
            "allow_negative": self.allow_negative,
            "min_balance_minor": self.min_balance_minor,
            "max_balance_minor": self.max_balance_minor,
            "metadata": dict(self.metadata),
        }


class Balance(NamedTuple):
    """An account's balance in one asset. Available = posted - pending_out."""

    posted: int = 0
    pending_out: int = 0
    pending_in: int = 0

    @property
    def available(self) -> int:
        return self.posted - self.pending_out


ZERO_BALANCE = Balance(0, 0, 0)


@dataclass(frozen=True, slots=True)
class Posting:
    """Move `amount_minor` of `asset` from `source` to `destination`."""

    source: str
    destination: str
    asset: str
    amount_minor: int

    def __post_init__(self) -> None:
        check_amount(self.amount_minor, asset=self.asset)
        if self.amount_minor == 0:
            raise InvalidTransaction("a posting moves a positive amount", asset=self.asset)
        if self.source == self.destination:
            raise SameAccount(account=self.source)
        if not isinstance(self.asset, str):
            raise InvalidTransaction("asset must be a code", asset=repr(self.asset))

    def body(self) -> dict[str, object]:
        return {
            "source": self.source,
            "destination": self.destination,
            "asset": self.asset,
            "amount_minor": self.amount_minor,
        }


# --- commands --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DefineAsset:
    asset: Asset


@dataclass(frozen=True, slots=True)
class OpenAccount:
    account: Account


@dataclass(frozen=True, slots=True)
class Transfer:
    """A transaction of one or more postings, applied atomically."""

    postings: tuple[Posting, ...]
    metadata: Mapping[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None

    def __post_init__(self) -> None:
        if not self.postings:
            raise EmptyPostings()
        if len(self.postings) > POSTINGS_PER_TRANSACTION_MAX:
            raise InvalidTransaction(
                "too many postings", postings=len(self.postings),
                postings_max=POSTINGS_PER_TRANSACTION_MAX,
            )
        check_metadata(self.metadata)
        check_idempotency_key(self.idempotency_key)


@dataclass(frozen=True, slots=True)
class CreatePending:
    """Reserve one posting's funds until it is posted, voided or expires after `timeout_s`."""

    posting: Posting
    timeout_s: int
    metadata: Mapping[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None

    def __post_init__(self) -> None:
        if (
            isinstance(self.timeout_s, bool)
            or not isinstance(self.timeout_s, int)
            or not PENDING_TIMEOUT_S_MIN <= self.timeout_s <= PENDING_TIMEOUT_S_MAX
        ):
            raise InvalidTimeout(timeout_s=repr(self.timeout_s))
        check_metadata(self.metadata)
        check_idempotency_key(self.idempotency_key)


@dataclass(frozen=True, slots=True)
class PostPending:
    """Post a pending transfer in full (`amount_minor` None) or in part; the rest is released."""

    pending_id: str
    amount_minor: int | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None

    def __post_init__(self) -> None:
        if self.amount_minor is not None:
            check_amount(self.amount_minor)
        check_metadata(self.metadata)
        check_idempotency_key(self.idempotency_key)


@dataclass(frozen=True, slots=True)
class VoidPending:
    pending_id: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None

    def __post_init__(self) -> None:
        check_metadata(self.metadata)
        check_idempotency_key(self.idempotency_key)


@dataclass(frozen=True, slots=True)
class Reverse:
    """Undo a posted transaction with a new one that points at it. Each can be reversed once."""

    transaction_id: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None

    def __post_init__(self) -> None:
        check_metadata(self.metadata)
        check_idempotency_key(self.idempotency_key)


@dataclass(frozen=True, slots=True)
class Linked:
    """Commands applied all or none."""

    commands: tuple[SimpleCommand, ...]

    def __post_init__(self) -> None:
        if not self.commands:
            raise InvalidTransaction("a linked batch needs at least one command")
        for command in self.commands:
            if isinstance(command, Linked):
                raise InvalidTransaction("linked batches do not nest")


SimpleCommand = (
    DefineAsset | OpenAccount | Transfer | CreatePending | PostPending | VoidPending | Reverse
)
Command = SimpleCommand | Linked


# --- what the ledger did ---------------------------------------------------------------------


class EntryKind(StrEnum):
    ASSET_DEFINED = "asset_defined"
    ACCOUNT_OPENED = "account_opened"
    TRANSFER = "transfer"
    PENDING_CREATED = "pending_created"
    PENDING_POSTED = "pending_posted"
    PENDING_VOIDED = "pending_voided"
    PENDING_EXPIRED = "pending_expired"


class PendingState(StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class PendingTransfer:
    """A reservation. `state` is its single source of truth: pending, then exactly one of
    posted, voided or expired."""

    id: str
    source: str
    destination: str
    asset: str
    amount_minor: int
    expires_at_us: int
    created_seq: int
    state: PendingState = PendingState.PENDING
    posted_amount_minor: int = 0
    finished_seq: int | None = None


class Leg(NamedTuple):
    """An account's balance in one asset right after entry `seq`: exactly a row of the store's
    legs table, so a batch's legs are written without being copied."""

    seq: int
    address: str
    asset: str
    posted: int
    pending_out: int
    pending_in: int

    @property
    def balance(self) -> Balance:
        return Balance(self.posted, self.pending_out, self.pending_in)


class JournalEntry(NamedTuple):
    """One hash-chained entry: `hash = sha256(prev_hash || canonical)`.

    A NamedTuple rather than a frozen dataclass: the engine makes one per transfer, and its
    construction is a measurable share of the hot path (docs/benchmarks.md)."""

    seq: int
    id: str
    kind: EntryKind
    at_us: int
    canonical: bytes
    hash: bytes
    legs: tuple[Leg, ...] = ()

    @property
    def body(self) -> dict[str, Any]:
        """The entry's content, decoded from its canonical bytes."""
        body = json.loads(self.canonical)
        if not isinstance(body, dict):
            raise TypeError("a canonical entry is a JSON object")
        return body


class ChainHead(NamedTuple):
    seq: int
    hash: bytes
    at_us: int


GENESIS_HASH = bytes(32)
GENESIS = ChainHead(0, GENESIS_HASH, 0)
