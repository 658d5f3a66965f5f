"""The address grammar and the rules an account's flags follow."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundpool.core.errors import (
    InvalidAccount,
    InvalidAddress,
    InvalidIdempotencyKey,
    InvalidMetadata,
    InvalidTransaction,
    SameAccount,
)
from fundpool.core.ledger.model import (
    ADDRESS_LENGTH_MAX,
    Account,
    Posting,
    Transfer,
    check_address,
    check_idempotency_key,
    check_metadata,
    is_world,
)
from fundpool.core.money import AMOUNT_MAX_MINOR

VALID = [
    "pool:main:usd:bank-a:available",
    "pool:main:usd:bank-a:locked",
    "world:bank-a",
    "merchant:m42:usdt:payable",
    "a:b",
    "0:1",
    "a_b:c-d",
    "x1:y2:z3:w4:v5:u6:t7:s8",  # 8 segments
    "a" * 64 + ":" + "b" * 64,
]

INVALID = [
    "pool",  # one segment
    "world",
    "",
    ":",
    "pool:",
    ":pool",
    "pool::main",  # empty segment
    "Pool:main",  # upper case
    "pool:Main",
    "POOL:MAIN",
    "a:b:c:d:e:f:g:h:i",  # 9 segments
    "-pool:main",  # leading '-'
    "pool:-main",
    "_pool:main",
    "pool:_main",
    "pool :main",  # spaces
    "pool: main",
    " pool:main",
    "pool:main ",
    "pool:ma in",
    "pool.main:x",
    "pool/main:x",
    "pool:main:usd!",
    "pööl:main",
    "pool:mаin",  # Cyrillic 'а'
    "a" * 65 + ":b",  # segment of 65
    "pool:main\t",
    "pool\nmain:x",
]


@pytest.mark.parametrize("address", VALID)
def test_valid_addresses(address: str) -> None:
    assert check_address(address) == address
    assert Account(address).address == address


@pytest.mark.parametrize("address", INVALID)
def test_invalid_addresses(address: str) -> None:
    with pytest.raises(InvalidAddress) as raised:
        check_address(address)
    assert raised.value.code == "invalid_address"
    with pytest.raises(InvalidAddress):
        Account(address)


@pytest.mark.parametrize("address", ["world:bank-a\n", "pool:main:usd\n"])
def test_an_address_with_a_trailing_newline_is_invalid(address: str) -> None:
    with pytest.raises(InvalidAddress):
        check_address(address)


@pytest.mark.parametrize("value", [None, 12, b"pool:main", ["pool", "main"]])
def test_non_text_addresses(value: object) -> None:
    with pytest.raises(InvalidAddress):
        check_address(value)


def _address_of_length(length: int) -> str:
    # 4 segments of up to 64 characters: at most 4*64 + 3 = 259 characters.
    parts: list[str] = []
    remaining = length - 3
    for _ in range(4):
        size = min(64, remaining - (3 - len(parts)))
        parts.append("a" * size)
        remaining -= size
    address = ":".join(parts)
    assert len(address) == length
    return address


def test_length_limit_is_256_characters() -> None:
    at_limit = _address_of_length(ADDRESS_LENGTH_MAX)
    assert check_address(at_limit) == at_limit
    over = _address_of_length(ADDRESS_LENGTH_MAX + 1)
    with pytest.raises(InvalidAddress):
        check_address(over)
    eight_full_segments = ":".join(["a" * 64] * 8)  # matches the pattern but is 519 long
    with pytest.raises(InvalidAddress):
        check_address(eight_full_segments)


segment = st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,20}\Z")


@given(parts=st.lists(segment, min_size=2, max_size=8))
def test_generated_valid_addresses(parts: list[str]) -> None:
    address = ":".join(parts)
    assert check_address(address) == address


@given(
    parts=st.lists(segment, min_size=2, max_size=8),
    index=st.integers(0, 7),
    bad=st.sampled_from(["", "A", " ", "-", "_", "é", "\n", "/", "."]),
)
def test_one_bad_segment_spoils_the_address(parts: list[str], index: int, bad: str) -> None:
    index %= len(parts)
    if bad in {"-", "_"}:
        parts[index] = bad + parts[index]
    elif bad == "":
        parts[index] = ""
    else:
        parts[index] = parts[index][:1] + bad + parts[index][1:]
    with pytest.raises(InvalidAddress):
        check_address(":".join(parts))


@given(parts=st.lists(segment, min_size=9, max_size=12))
def test_more_than_eight_segments(parts: list[str]) -> None:
    with pytest.raises(InvalidAddress):
        check_address(":".join(parts))


# --- world accounts -------------------------------------------------------------------------


def test_world_accounts_may_go_negative_by_default() -> None:
    world = Account("world:bank-a")
    assert world.allow_negative is True
    assert world.floor_minor is None
    assert is_world("world:bank-a")


@pytest.mark.parametrize(
    "address",
    ["pool:main:usd:bank-a:available", "merchant:m1:usd:payable", "worldwide:x", "x:world"],
)
def test_other_accounts_may_not_go_negative_by_default(address: str) -> None:
    account = Account(address)
    assert account.allow_negative is False
    assert account.floor_minor == 0
    assert not is_world(address)


def test_explicit_flags_win_over_the_default() -> None:
    closed_world = Account("world:bank-b", allow_negative=False)
    assert closed_world.allow_negative is False
    assert closed_world.floor_minor == 0
    open_pool = Account("pool:overdraft", allow_negative=True)
    assert open_pool.floor_minor is None


def test_a_credit_line_is_a_negative_minimum() -> None:
    credit = Account("credit:c1:usd", asset="USD", min_balance_minor=-50_000)
    assert credit.floor_minor == -50_000
    capped = Account("capped:k1:usd", asset="USD", max_balance_minor=100_000)
    assert capped.floor_minor == 0
    assert capped.max_balance_minor == 100_000
    both = Account("both:b1", asset="USD", min_balance_minor=-1, max_balance_minor=0)
    assert both.floor_minor == -1


# --- flag rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_balance_minor": -100},  # min without asset
        {"max_balance_minor": 100},  # max without asset
        {"asset": "USD", "min_balance_minor": -10, "max_balance_minor": -20},  # max < 0
        {"asset": "USD", "min_balance_minor": 0, "max_balance_minor": -1},
        {"asset": "USD", "min_balance_minor": 1},  # min above zero
        {"asset": "USD", "max_balance_minor": -1},
        {"asset": "USD", "min_balance_minor": True},
        {"asset": "USD", "max_balance_minor": 1.5},
        {"asset": "USD", "max_balance_minor": "100"},
        {"asset": "USD", "min_balance_minor": -(AMOUNT_MAX_MINOR + 1)},
        {"asset": "USD", "max_balance_minor": AMOUNT_MAX_MINOR + 1},
        {"allow_negative": "yes"},
        {"allow_negative": 1},
        {"asset": 7},
    ],
)
def test_inconsistent_flags(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidAccount) as raised:
        Account("pool:main:x", **kwargs)  # type: ignore[arg-type]
    assert raised.value.code == "invalid_account"


def test_min_above_max_is_rejected() -> None:
    with pytest.raises(InvalidAccount):
        Account("pool:x", asset="USD", min_balance_minor=-5, max_balance_minor=-6)
    # equal bounds are consistent
    assert Account("pool:x", asset="USD", min_balance_minor=0, max_balance_minor=0)


def test_bounds_at_the_amount_range_are_accepted() -> None:
    account = Account(
        "pool:x",
        asset="ETH",
        min_balance_minor=-AMOUNT_MAX_MINOR,
        max_balance_minor=AMOUNT_MAX_MINOR,
    )
    assert account.floor_minor == -AMOUNT_MAX_MINOR


def test_account_metadata_is_copied() -> None:
    metadata = {"owner": "treasury"}
    account = Account("pool:x", metadata=metadata)
    metadata["owner"] = "mallory"
    assert account.metadata == {"owner": "treasury"}


# --- other identifiers ----------------------------------------------------------------------


def test_posting_rules() -> None:
    with pytest.raises(SameAccount) as raised:
        Posting("pool:a", "pool:a", "USD", 1)
    assert raised.value.code == "same_account"
    with pytest.raises(InvalidTransaction):
        Posting("pool:a", "pool:b", "USD", 0)


@pytest.mark.parametrize("key", ["k", "a" * 128, "b1-7", "~!@#"])
def test_valid_idempotency_keys(key: str) -> None:
    assert check_idempotency_key(key) == key


@pytest.mark.parametrize("key", ["", "a" * 129, "a b", "ключ", "k\t", 5])
def test_invalid_idempotency_keys(key: object) -> None:
    with pytest.raises(InvalidIdempotencyKey):
        check_idempotency_key(key)


def test_an_idempotency_key_with_a_trailing_newline_is_invalid() -> None:
    with pytest.raises(InvalidIdempotencyKey):
        Transfer((Posting("pool:a", "pool:b", "USD", 1),), idempotency_key="k1\n")


def test_a_metadata_key_with_a_trailing_newline_is_invalid() -> None:
    with pytest.raises(InvalidMetadata):
        check_metadata({"batch\n": "1"})


@pytest.mark.parametrize(
    "metadata",
    [
        {"": "x"},
        {"a b": "x"},
        {"k" * 65: "x"},
        {"k": 1},
        {"k": "v" * 513},
        {f"k{i}": "v" for i in range(33)},
        ["k", "v"],
    ],
)
def test_invalid_metadata(metadata: object) -> None:
    with pytest.raises(InvalidMetadata):
        check_metadata(metadata)
