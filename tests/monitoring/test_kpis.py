"""KPI templates (src/fundpool/monitoring/kpis.py): each formula on hand-built cells and series
with a known, exact answer; None (with a note) when there is nothing to measure, never a made-up
0; amounts of different assets never added; and properties that hold for any figures.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fundpool.monitoring.figures import window_sum
from fundpool.monitoring.kpis import (
    DAY_US,
    HOUR_US,
    KPIS,
    MINUTE_US,
    TEMPLATES,
    KpiContext,
    KpiValue,
    SeriesIndex,
    compute_kpis,
    decimal_text,
    format_duration,
    latency_bound_us,
    parse_duration_us,
    resolution_for,
    template,
)
from fundpool.monitoring.projection import (
    LATENCY_BOUNDS_US,
    RESOLUTIONS,
    SECOND_US,
    Cell,
    SeriesKey,
    latency_bucket,
)
from fundpool.pool.config import load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"
CONFIG = load_config(EXAMPLE)
POOL = CONFIG.pool("main")
RATES = CONFIG.rates_for(POOL)
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00Z, on every bucket boundary
AT = T0 + 10 * DAY_US


# --- building a projection by hand ---------------------------------------------------------


class Book:
    """Cells and series as the projection would hold them."""

    def __init__(self) -> None:
        self.cells: dict[Cell, int] = {}
        self.series: dict[SeriesKey, int] = {}

    def balance(self, asset: str, channel: str, state: str, posted: int,
                pending_out: int = 0) -> Book:
        key = f"pool:main:{asset.lower()}:{channel}:{state}|{asset}"
        self.cells[("posted", key)] = posted
        self.cells[("pending_out", key)] = pending_out
        self.cells[("pending_in", key)] = 0
        return self

    def count(self, metric: str, at_us: int, value: int) -> Book:
        """A counter at every resolution, as Projection._count writes it."""
        for res, width in RESOLUTIONS.items():
            key = (metric, res, at_us - at_us % width)
            self.series[key] = self.series.get(key, 0) + value
        return self

    def gauge(self, metric: str, at_us: int, value: int) -> Book:
        for res, width in RESOLUTIONS.items():
            self.series[(metric, res, at_us - at_us % width)] = value
        return self

    def latency(self, channel: str, stage: str, latency_us: int, count: int) -> Book:
        key = f"{channel}|{stage}"
        bucket = ("latency_bucket", f"{key}|{latency_bucket(latency_us)}")
        self.cells[bucket] = self.cells.get(bucket, 0) + count
        self.cells[("latency_count", key)] = self.cells.get(("latency_count", key), 0) + count
        self.cells[("latency_sum_us", key)] = (
            self.cells.get(("latency_sum_us", key), 0) + count * latency_us)
        return self

    def context(self, at_us: int = AT) -> KpiContext:
        return KpiContext.of(CONFIG, POOL, self.cells, self.series, at_us=at_us)


def values(kpi: str, book: Book, at_us: int = AT, **params: object) -> dict[str, KpiValue]:
    t = template(kpi)
    parsed = t.parse_params(params)
    return {v.subject: v for v in t.evaluate(book.context(at_us), parsed)}


def usd_rate() -> dict[str, Fraction]:
    rates: dict[str, Fraction] = {}
    for code in ("USD", "EUR"):
        rate = RATES.rate(code, "USD")
        assert rate is not None
        rates[code] = rate
    return rates


# --- each KPI, known answers ---------------------------------------------------------------


def test_liquidity_coverage_per_asset_and_for_the_pool_in_the_reporting_currency() -> None:
    book = (Book()
            .balance("USD", "bank-a", "available", 1_000_000)
            .balance("USD", "rtp", "available", 600_000, pending_out=100_000)
            .balance("EUR", "sepa", "available", 400_000))
    book.count("outflow|USD", AT - 3 * HOUR_US, 200_000)
    book.count("outflow|USD", AT - 20 * HOUR_US, 100_000)
    book.count("outflow|USD", AT - 25 * HOUR_US, 9_999_999)  # before the 24 h window
    book.count("outflow|USD", AT, 9_999_999)  # at the instant: not yet in [at - 24h, at)
    book.count("outflow|EUR", AT - MINUTE_US, 80_000)
    got = values("liquidity_coverage", book)
    # USD: available 1,000,000 + 500,000 over 300,000 expected in the next 24 h
    assert got["asset:USD"].value == Fraction(1_500_000, 300_000) == 5
    assert got["asset:EUR"].value == Fraction(400_000, 80_000)
    rate = usd_rate()["EUR"]
    # the pool: each asset converted exactly, never minor units of USD and EUR added
    reporting_available = got["pool"].value
    assert reporting_available == (
        Fraction(1_500_000) + 400_000 * rate) / (300_000 + 80_000 * rate)
    # a 12 h horizon halves the expected outflow
    half = values("liquidity_coverage", book, horizon="12h")
    assert half["asset:USD"].value == 10
    # a 1 h window: 200,000 at -3 h is out, 80,000 EUR in; scaled to 24 h
    hourly = values("liquidity_coverage", book, window="1h")
    assert hourly["asset:USD"].value is None
    assert hourly["asset:USD"].note == "no outflow in the window"
    assert hourly["asset:EUR"].value == Fraction(400_000, 80_000 * 24)


def test_liquidity_coverage_without_outflow_is_none_not_infinite_or_zero() -> None:
    book = Book().balance("USD", "bank-a", "available", 1_000_000)
    got = values("liquidity_coverage", book)
    assert got["pool"].value is None
    assert got["pool"].note is not None
    assert "no outflow" in got["pool"].note
    assert all(v.value is None for v in got.values())


def test_available_ratio_is_available_over_total_per_asset_and_in_the_reporting_currency() -> None:
    book = (Book()
            .balance("USD", "bank-a", "available", 800, pending_out=200)  # 200 locked
            .balance("USD", "bank-a", "in_transit", 300)
            .balance("USD", "rtp", "pending_settlement", 100)
            .balance("EUR", "sepa", "available", 1_000))
    got = values("available_ratio", book)
    assert got["asset:USD"].value == Fraction(600, 1_200)
    assert got["asset:EUR"].value == 1
    assert got["asset:ETH"].value is None  # nothing held: no ratio, not 0
    assert got["asset:ETH"].note == "no balance in this asset"
    view = book.context().figures.view
    assert got["pool"].value == Fraction(view.reporting_total.available,
                                         view.reporting_total.total)


def test_turnover_and_inflow_days() -> None:
    book = Book().gauge("total|USD", AT - 2 * DAY_US, 3_000_000)  # constant over the window
    book.count("outflow|USD", AT - HOUR_US, 1_000_000)
    book.count("inflow|USD", AT - 2 * HOUR_US, 250_000)
    assert values("turnover_days", book)["asset:USD"].value == 3
    assert values("inflow_days", book)["asset:USD"].value == 12
    # over 2 days: the same flows are half a day's worth each
    assert values("turnover_days", book, window="2d")["asset:USD"].value == 6
    no_flow = values("turnover_days", book)["asset:EUR"]
    assert no_flow.value is None
    assert no_flow.note == "no outflow in the window"
    assert values("inflow_days", book)["asset:EUR"].value is None


def test_failed_and_returned_rates_over_a_window_by_kind() -> None:
    book = Book()
    at = AT - 10 * MINUTE_US
    book.count("payments|payout|settled", at, 90)
    book.count("payments|payout|failed", at, 6)
    book.count("payments|payout|returned", at, 4)
    book.count("payments|deposit|settled", at, 100)
    book.count("payments|payout|failed", AT - 2 * HOUR_US, 1_000)  # outside 1 h
    book.count("payments|payout|submitted", at, 5_000)  # not an outcome
    assert values("failed_payment_rate", book)["pool"].value == Fraction(6, 200)
    assert values("failed_payment_rate", book, kind="payout")["pool"].value == Fraction(6, 100)
    assert values("returned_payment_rate", book, window="1h")["pool"].value == Fraction(4, 200)
    # the returned rate's default window (24 h) reaches the old failures
    assert values("returned_payment_rate", book)["pool"].value == Fraction(4, 1_200)
    none = values("failed_payment_rate", book, kind="bridge")["pool"]
    assert none.value is None
    assert none.note == "no payment outcome in the window"


def test_settlement_latency_p99_by_channel() -> None:
    # 100 settlements through rtp, all in the (1 s, 2 s] bucket: rank 99 of 100 -> 1.99 s
    book = Book().latency("rtp", "end_to_end", 1_500_000, 100)
    book.latency("rtp", "settle", 100 * SECOND_US, 7)  # another stage
    got = values("settlement_latency_p99", book)
    assert got["channel:rtp"].value == Fraction(1_990_000, SECOND_US)
    assert got["channel:bank-a"].value is None  # no payment settled there yet
    assert set(got) == {f"channel:{c}" for c in POOL.channels}
    median = values("settlement_latency_p99", book, quantile="0.5")
    assert median["channel:rtp"].value == Fraction(1_500_000, SECOND_US)
    settle = values("settlement_latency_p99", book, stage="settle")
    assert settle["channel:rtp"].value is not None
    assert settle["channel:rtp"].value > 60


def test_fee_yield_in_basis_points() -> None:
    book = Book()
    book.count("fee|USD", AT - HOUR_US, 150)
    book.count("outflow|USD", AT - HOUR_US, 300_000)
    book.count("inflow|USD", AT - HOUR_US, 200_000)
    assert values("fee_yield_bps", book)["asset:USD"].value == 5
    assert values("fee_yield_bps", book, volume="both")["asset:USD"].value == 3
    eur = values("fee_yield_bps", book)["asset:EUR"]
    assert eur.value is None
    assert eur.note == "no outflow volume in the window"


def test_channel_concentration_and_hhi() -> None:
    book = (Book()
            .balance("USD", "bank-a", "available", 600)
            .balance("USD", "rtp", "available", 300)
            .balance("USD", "card-acq", "available", 100)
            .balance("USD", "book", "available", -50)  # a drawn credit line holds no share
            .balance("EUR", "sepa", "available", 0))
    got = values("channel_concentration", book)
    assert got["asset:USD"].value == Fraction(6, 10)
    assert got["asset:USD"].note == "largest: bank-a"
    assert got["asset:EUR"].value is None  # no channel with a positive available
    assert values("channel_hhi", book)["asset:USD"].value == (
        Fraction(36, 100) + Fraction(9, 100) + Fraction(1, 100))


def test_an_empty_pool_has_no_kpi_value_at_all_rather_than_zeros() -> None:
    context = Book().context()
    everything = compute_kpis(context)
    assert {v.kpi for v in everything} == set(KPIS)
    assert all(v.value is None for v in everything), [v for v in everything if v.value]
    assert all(v.note for v in everything)


def test_every_template_is_documented_and_its_defaults_parse() -> None:
    assert len(TEMPLATES) >= 9
    for t in TEMPLATES:
        assert t.title_en
        assert t.title_zh
        assert t.formula
        assert t.unit
        assert t.description
        assert t.alert.severity in ("info", "warning", "critical")
        assert t.panel.type in ("stat", "gauge", "timeseries", "bargauge")
        assert t.parse_params({}) == t.defaults()
        for p in t.params:  # the default, written as a file would, parses to itself
            assert t.param(p.name).parse(p.default_text()) == p.default
        doc = t.to_dict()
        assert doc["title"] == {"en": t.title_en, "zh-CN": t.title_zh}


@pytest.mark.parametrize(("kpi", "params", "message"), [
    ("liquidity_coverage", {"windw": "1h"}, "has no parameter 'windw'"),
    ("liquidity_coverage", {"window": "-1h"}, "never negative"),
    ("liquidity_coverage", {"window": "100d"}, "between 1m and"),
    ("turnover_days", {"window": "4d"}, "between 1h and 3d"),
    ("failed_payment_rate", {"kind": "refund"}, "kind is one of"),
    ("settlement_latency_p99", {"quantile": 1}, "between 0 and 1"),
    ("settlement_latency_p99", {"stage": "End"}, "stage is an action name"),
    ("available_ratio", {"window": "1h"}, "takes no parameters"),
])
def test_bad_parameters_say_what_is_wrong(kpi: str, params: dict[str, object],
                                          message: str) -> None:
    with pytest.raises(ValueError, match=message):
        template(kpi).parse_params(params)


def test_durations() -> None:
    assert parse_duration_us("90s") == 90 * SECOND_US
    assert parse_duration_us("1h30m") == 90 * MINUTE_US
    assert parse_duration_us(60) == MINUTE_US
    assert parse_duration_us("250ms") == 250_000
    for bad in ("-5m", -1, "5 minutes", "", "1.5h", True, 2.5, "400d"):
        with pytest.raises(ValueError, match="duration"):
            parse_duration_us(bad)
    assert format_duration(DAY_US) == "1d"
    assert format_duration(90 * MINUTE_US) == "90m"
    assert latency_bound_us(HOUR_US) == LATENCY_BOUNDS_US.index(HOUR_US)
    with pytest.raises(ValueError, match="nearest are"):
        latency_bound_us(45 * MINUTE_US)
    assert decimal_text(Fraction(1, 3), 4) == "0.3333"
    assert decimal_text(Decimal("-2.5"), 0) == "-2"
    assert decimal_text(None) is None


# --- properties ---------------------------------------------------------------------------------


amounts = st.integers(min_value=0, max_value=10**30)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["bank-a", "rtp", "card-acq", "book"]),
                          st.sampled_from(["available", "locked", "in_transit",
                                           "pending_settlement"]),
                          amounts, st.integers(0, 100)), max_size=12))
def test_available_ratio_lies_in_zero_one_when_balances_are_not_negative(
    accounts: list[tuple[str, str, int, int]],
) -> None:
    book = Book()
    for channel, state, posted, percent_out in accounts:
        book.balance("USD", channel, state, posted, pending_out=posted * percent_out // 100)
    for v in values("available_ratio", book).values():
        assert v.value is None or 0 <= v.value <= 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=-10**6, max_value=10**24), min_size=4, max_size=4))
def test_concentration_and_hhi_bounds(depths: list[int]) -> None:
    book = Book()
    for channel, depth in zip(["bank-a", "rtp", "card-acq", "book"], depths, strict=True):
        book.balance("USD", channel, "available", depth)
    top = values("channel_concentration", book)["asset:USD"].value
    hhi = values("channel_hhi", book)["asset:USD"].value
    holders = sum(1 for d in depths if d > 0)
    if holders == 0:
        assert top is None
        assert hhi is None
        return
    assert top is not None
    assert hhi is not None
    assert Fraction(1, holders) <= hhi <= top <= 1
    assert top * top <= hhi


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6),
       st.sampled_from(["*", "payout", "deposit"]))
def test_failed_and_returned_rates_are_shares_of_the_same_outcomes(
    settled: int, failed: int, returned: int, kind: str,
) -> None:
    book = Book()
    for state, n in (("settled", settled), ("failed", failed), ("returned", returned)):
        if n:
            book.count(f"payments|payout|{state}", AT - MINUTE_US, n)
    failed_rate = values("failed_payment_rate", book, kind=kind)["pool"].value
    returned_rate = values("returned_payment_rate", book, kind=kind)["pool"].value
    if kind == "deposit" or settled + failed + returned == 0:
        assert failed_rate is None
        assert returned_rate is None
        return
    assert failed_rate is not None
    assert returned_rate is not None
    assert 0 <= failed_rate + returned_rate <= 1
    assert failed_rate + returned_rate == Fraction(failed + returned,
                                                   settled + failed + returned)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4 * HOUR_US // SECOND_US), st.integers(1, 10**9)),
                max_size=30),
       st.integers(1, 3 * HOUR_US // SECOND_US), st.sampled_from(["s", "m", "h"]))
def test_the_series_index_sums_windows_as_figures_window_sum_does(
    points: list[tuple[int, int]], window_s: int, res: str,
) -> None:
    book = Book()
    for offset_s, value in points:
        book.count("outflow|USD", AT - offset_s * SECOND_US, value)
    index = SeriesIndex(book.series)
    since = AT - window_s * SECOND_US
    assert index.window_sum("outflow|USD", since_us=since, until_us=AT, res=res) == window_sum(
        book.series, "outflow|USD", since_us=since, until_us=AT, res=res)


def test_resolution_follows_retention() -> None:
    assert resolution_for(HOUR_US) == "s"
    assert resolution_for(2 * HOUR_US + 1) == "m"
    assert resolution_for(3 * DAY_US) == "m"
    assert resolution_for(30 * DAY_US) == "h"
