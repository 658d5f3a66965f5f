"""Money at the edges: decimal text <-> exact minor units, and asset definitions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundpool.core.errors import (
    AmountOverflow,
    FundpoolError,
    InvalidAmount,
    InvalidAsset,
    NegativeAmount,
    TooManyDecimals,
)
from fundpool.core.money import (
    AMOUNT_MAX_MINOR,
    SCALE_MAX,
    Asset,
    AssetKind,
    check_amount,
    format_amount,
    parse_amount,
)

amounts = st.one_of(
    st.integers(0, AMOUNT_MAX_MINOR),
    st.sampled_from([0, 1, 9, 10, 99, 100, 2**53, 2**63 - 1, 2**64, AMOUNT_MAX_MINOR]),
    st.integers(AMOUNT_MAX_MINOR - 10**6, AMOUNT_MAX_MINOR),
)
scales = st.integers(0, SCALE_MAX)


# --- round trip -----------------------------------------------------------------------------


@given(amount=amounts, scale=scales)
def test_format_then_parse_round_trips_exactly(amount: int, scale: int) -> None:
    text = format_amount(amount, scale)
    assert parse_amount(text, scale) == amount
    # exactly `scale` decimals, digits only
    if scale == 0:
        assert "." not in text
    else:
        whole, fraction = text.split(".")
        assert len(fraction) == scale
        assert whole.isdigit()
        assert whole == "0" or not whole.startswith("0")


@given(amount=amounts, scale=scales)
def test_parse_then_format_is_the_canonical_text(amount: int, scale: int) -> None:
    text = format_amount(amount, scale)
    assert format_amount(parse_amount(text, scale), scale) == text


@given(amount=amounts, scale=scales)
def test_format_matches_integer_arithmetic(amount: int, scale: int) -> None:
    text = format_amount(amount, scale)
    digits = text.replace(".", "")
    assert int(digits) == amount


@given(amount=st.integers(1, AMOUNT_MAX_MINOR), scale=scales)
def test_format_of_a_negative_keeps_the_sign(amount: int, scale: int) -> None:
    assert format_amount(-amount, scale) == "-" + format_amount(amount, scale)


@given(amount=amounts, scale=scales, extra=st.integers(1, 6))
def test_trailing_zeros_beyond_scale_are_accepted(amount: int, scale: int, extra: int) -> None:
    text = format_amount(amount, scale)
    padded = text + "0" * extra if scale else text + "." + "0" * extra
    assert parse_amount(padded, scale) == amount


@given(amount=amounts, scale=scales)
def test_surrounding_whitespace_is_ignored(amount: int, scale: int) -> None:
    assert parse_amount(f"  {format_amount(amount, scale)}\n", scale) == amount


@given(whole=st.integers(0, 10**20), scale=scales)
def test_an_integer_text_is_whole_units(whole: int, scale: int) -> None:
    expected = whole * 10**scale
    if expected > AMOUNT_MAX_MINOR:
        with pytest.raises(AmountOverflow):
            parse_amount(str(whole), scale)
    else:
        assert parse_amount(str(whole), scale) == expected


# --- specific examples ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "scale", "expected"),
    [
        ("1.500", 2, 150),
        ("1.5", 2, 150),
        ("1.50", 2, 150),
        ("1.5000000000", 2, 150),
        ("0.01", 2, 1),
        ("0.010", 2, 1),
        ("1234.56", 2, 123456),
        ("007.10", 2, 710),
        ("1.0", 0, 1),
        ("1.000", 0, 1),
        ("0", 18, 0),
        ("0.000000000000000001", 18, 1),
        ("340282366920938463463.374607431768211455", 18, AMOUNT_MAX_MINOR),
        ("340282366920938463463374607431768211455", 0, AMOUNT_MAX_MINOR),
    ],
)
def test_parse_examples(text: str, scale: int, expected: int) -> None:
    assert parse_amount(text, scale) == expected


@pytest.mark.parametrize(
    ("text", "scale"),
    [
        ("1.005", 2),
        ("1.001", 2),
        ("0.5", 0),
        ("1.10", 0),
        ("0.0000000000000000001", 18),
        ("1.0000000000000000001", 18),
        ("1.0050", 2),
    ],
)
def test_too_many_decimals_is_an_error_never_a_rounding(text: str, scale: int) -> None:
    with pytest.raises(TooManyDecimals) as raised:
        parse_amount(text, scale, asset="USD")
    assert raised.value.code == "too_many_decimals"
    assert raised.value.facts.get("asset") == "USD"


@given(
    amount=st.integers(0, 10**30),
    scale=st.integers(0, SCALE_MAX - 1),
    tail=st.integers(1, 9),
    extra_zeros=st.integers(0, 3),
)
def test_any_significant_digit_beyond_scale_is_rejected(
    amount: int, scale: int, tail: int, extra_zeros: int
) -> None:
    text = format_amount(amount, scale)
    if scale == 0:
        text += "."
    text += "0" * extra_zeros + str(tail)
    with pytest.raises(TooManyDecimals) as raised:
        parse_amount(text, scale)
    assert raised.value.code == "too_many_decimals"


@given(amount=st.integers(1, AMOUNT_MAX_MINOR), scale=scales)
def test_negative_text_is_a_negative_amount(amount: int, scale: int) -> None:
    with pytest.raises(NegativeAmount) as raised:
        parse_amount("-" + format_amount(amount, scale), scale)
    assert raised.value.code == "negative_amount"


@pytest.mark.parametrize("text", ["-1", "-0.01", " -5", "-340282366920938463463374607431768211456"])
def test_negative_examples(text: str) -> None:
    with pytest.raises(NegativeAmount) as raised:
        parse_amount(text, 2)
    assert raised.value.code == "negative_amount"


@given(excess=st.integers(1, 10**40), scale=scales)
def test_above_the_maximum_overflows(excess: int, scale: int) -> None:
    text = format_amount(AMOUNT_MAX_MINOR + excess, scale)
    with pytest.raises(AmountOverflow) as raised:
        parse_amount(text, scale)
    assert raised.value.code == "amount_overflow"


def test_the_maximum_plus_one_overflows_at_every_scale() -> None:
    for scale in range(SCALE_MAX + 1):
        assert parse_amount(format_amount(AMOUNT_MAX_MINOR, scale), scale) == AMOUNT_MAX_MINOR
        with pytest.raises(AmountOverflow):
            parse_amount(format_amount(AMOUNT_MAX_MINOR + 1, scale), scale)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "\n",
        "abc",
        "1 000",
        "1 .5",
        "1. 5",
        "1\t0",
        "1e5",
        "1E5",
        "1.5e2",
        "0x10",
        "0b1",
        "0o7",
        "1_000",
        "+1",
        "1.",
        ".5",
        "1..2",
        "1.2.3",
        "1,5",
        "1,000.00",
        "NaN",
        "nan",
        "inf",
        "Infinity",
        "$1",
        "1$",
        "１",  # full-width digit one
        "١٢",  # Arabic-Indic digits
        "1\x00",
        "٣.٥",
    ],
)
def test_garbage_is_an_invalid_amount(text: str) -> None:
    with pytest.raises(InvalidAmount) as raised:
        parse_amount(text, 2)
    assert raised.value.code == "invalid_amount"


@pytest.mark.parametrize("value", [None, 1, 1.5, b"1", ["1"]])
def test_non_text_is_an_invalid_amount(value: object) -> None:
    with pytest.raises(InvalidAmount):
        parse_amount(value, 2)  # type: ignore[arg-type]


def test_hostile_long_text_is_rejected_without_parsing() -> None:
    with pytest.raises(InvalidAmount):
        parse_amount("9" * 1_000_000, 2)
    with pytest.raises(InvalidAmount):
        parse_amount("1." + "0" * 1_000_000, 2)


@given(
    text=st.text(
        alphabet=st.characters(codec="utf-8", exclude_characters="0123456789."), min_size=1
    )
)
def test_text_without_digits_never_parses(text: str) -> None:
    with pytest.raises(FundpoolError) as raised:
        parse_amount(text, 2)
    assert raised.value.code in {"invalid_amount", "negative_amount"}


@given(text=st.text(max_size=50), scale=scales)
def test_parse_either_returns_a_valid_amount_or_raises_a_domain_error(
    text: str, scale: int
) -> None:
    code: str | None = None
    value = -1
    try:
        value = parse_amount(text, scale)
    except FundpoolError as error:
        code = error.code
    if code is not None:
        assert code in {"invalid_amount", "negative_amount", "too_many_decimals", "amount_overflow"}
    else:
        assert 0 <= value <= AMOUNT_MAX_MINOR
        assert format_amount(value, scale) == format_amount(parse_amount(text, scale), scale)


# --- check_amount --------------------------------------------------------------------------


@given(amount=amounts)
def test_check_amount_accepts_the_range(amount: int) -> None:
    assert check_amount(amount) == amount


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (-1, NegativeAmount),
        (AMOUNT_MAX_MINOR + 1, AmountOverflow),
        (True, InvalidAmount),
        (False, InvalidAmount),
        (1.0, InvalidAmount),
        ("1", InvalidAmount),
        (None, InvalidAmount),
    ],
)
def test_check_amount_rejects(value: object, error: type[FundpoolError]) -> None:
    with pytest.raises(error):
        check_amount(value)


# --- assets --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "scale", "kind"),
    [
        ("USD", 2, "fiat"),
        ("USDT", 6, "stablecoin"),
        ("USDT.TRON", 6, "stablecoin"),
        ("ETH", 18, "crypto"),
        ("BTC", 8, AssetKind.CRYPTO),
        ("JPY", 0, "fiat"),
        ("ECNY", 2, "cbdc"),
        ("A1", 0, "fiat"),
        ("ABCDEFGHIJKL", 2, "fiat"),
        ("E-CNY", 2, "cbdc"),
    ],
)
def test_valid_assets(code: str, scale: int, kind: str) -> None:
    asset = Asset(code, scale, kind)  # type: ignore[arg-type]
    assert asset.kind is AssetKind(kind)
    assert asset.scale == scale
    assert asset.parse(asset.format(12345)) == 12345


@pytest.mark.parametrize(
    "code",
    [
        "",
        "U",
        "usd",
        "Usd",
        "1USD",
        "US D",
        " USD",
        "USD ",
        "ABCDEFGHIJKLM",
        "USDT.",
        ".USDT",
        "USDT.tron",
        "USDT.TRON.X",
        "USDÉ",
        "US-",
        "-USD",
        "E--CNY",
        "E-CNY-X",
        None,
        12,
    ],
)
def test_bad_asset_code(code: object) -> None:
    with pytest.raises(InvalidAsset) as raised:
        Asset(code, 2, AssetKind.FIAT)  # type: ignore[arg-type]
    assert raised.value.code == "invalid_asset"


@pytest.mark.parametrize("code", ["USD\n", "USD\r\n", "USDT.TRON\n"])
def test_asset_code_with_trailing_newline_is_rejected(code: str) -> None:
    with pytest.raises(InvalidAsset):
        Asset(code, 2, AssetKind.FIAT)


@pytest.mark.parametrize("scale", [-1, 19, 100, True, False, 2.0, "2", None])
def test_bad_asset_scale(scale: object) -> None:
    with pytest.raises(InvalidAsset) as raised:
        Asset("USD", scale, AssetKind.FIAT)  # type: ignore[arg-type]
    assert raised.value.code == "invalid_asset"


@pytest.mark.parametrize("kind", ["money", "FIAT", "", None, 1])
def test_unknown_asset_kind(kind: object) -> None:
    with pytest.raises(InvalidAsset) as raised:
        Asset("USD", 2, kind)  # type: ignore[arg-type]
    assert raised.value.code == "invalid_asset"


def test_asset_parse_uses_its_scale_and_names_itself() -> None:
    usd = Asset("USD", 2, AssetKind.FIAT)
    assert usd.parse("1.5") == 150
    assert usd.format(150) == "1.50"
    with pytest.raises(TooManyDecimals) as raised:
        usd.parse("1.005")
    assert raised.value.facts["asset"] == "USD"
    eth = Asset("ETH", 18, AssetKind.CRYPTO)
    assert eth.parse("1") == 10**18
    assert eth.format(1) == "0.000000000000000001"


def test_big_amount_facts_are_strings_for_javascript_clients() -> None:
    with pytest.raises(AmountOverflow) as raised:
        check_amount(AMOUNT_MAX_MINOR + 1, asset="ETH")
    assert raised.value.facts["amount_minor"] == str(AMOUNT_MAX_MINOR + 1)
    assert raised.value.to_dict()["code"] == "amount_overflow"
