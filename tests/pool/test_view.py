"""PoolView on both stores: every figure is recomputed here from the store's raw balances by the
documented rules (view.py, docs/adr/0006) and must match exactly.

The rules, as this test reads them (per pool x asset x channel, A/L/T/P/F being the available,
locked, in_transit, pending_settlement and fees accounts):

    available          = A.posted - A.pending_out
    locked             = L.posted + A.pending_out + T.pending_out + P.pending_out
                         (money reserved on L itself is already in L.posted: still locked)
    in_transit         = T.posted - T.pending_out
    pending_settlement = P.posted - P.pending_out
    fees               = F.posted
    TOTAL              = the four above = A.posted + L.posted + T.posted + P.posted

Reporting figures convert each asset's total figure once (half to even) and add them up.
"""

from __future__ import annotations

import tempfile
import tomllib
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.ledger.model import (
    PendingState,
    Posting,
    PostPending,
    VoidPending,
)
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.pool.config import FundpoolConfig, parse_config
from fundpool.pool.rates import StaticRates
from fundpool.pool.setup import init_pool
from fundpool.pool.view import (
    HEAD_READS,
    Figures,
    PoolView,
    SeqBeyondHead,
    pool_view,
    pool_view_at,
)
from fundpool.stores.sqlite import SqliteStore

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE = EXAMPLES / "pool.toml"
FIGURE_NAMES = ("available", "locked", "in_transit", "pending_settlement", "fees")
TOTAL_NAMES = FIGURE_NAMES[:4]
TIMEOUT_S = 60


# --- the test's own model of the documents -------------------------------------------------------


def example_document() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))


def two_pool_document() -> dict[str, Any]:
    """The example plus a pool `main-2` sharing bank-a and sepa, reporting in EUR."""
    document = example_document()
    document["pools"].append(
        {
            "id": "main-2",
            "reporting_currency": "EUR",
            "channels": ["sepa", "bank-a"],
            "rates": "rates.toml",
        }
    )
    return document


def config_of(document: dict[str, Any]) -> FundpoolConfig:
    return parse_config(document, source="test", base_dir=EXAMPLES)


def rate_texts() -> dict[str, str]:
    raw = tomllib.loads((EXAMPLES / "rates.toml").read_text(encoding="utf-8"))
    return dict(raw["rates"])


def segment(code: str) -> str:
    return code.lower().replace(".", "_")


def address(pool: str, code: str, channel: str, state: str) -> str:
    return f"pool:{pool}:{segment(code)}:{channel}:{state}"


def half_even(value: Fraction) -> int:
    floor = value.numerator // value.denominator
    rest = value - floor
    if rest != Fraction(1, 2):
        return floor + (1 if rest > Fraction(1, 2) else 0)
    return floor + (floor % 2)


def my_rate(texts: dict[str, str], base: str, quote: str) -> Fraction | None:
    if base == quote:
        return Fraction(1)
    if f"{base}/{quote}" in texts:
        return Fraction(texts[f"{base}/{quote}"])
    if f"{quote}/{base}" in texts:
        return 1 / Fraction(texts[f"{quote}/{base}"])
    return None


def shared_out(parts: list[int], factor: Fraction) -> dict[str, int]:
    """The four state figures in the reporting currency (docs/adr/0006): their TOTAL converted
    once, half to even, then handed out by largest remainder, ties to the earlier state."""
    exact = [Fraction(part) * factor for part in parts]
    total = half_even(sum(exact, Fraction(0)))
    shares = [value.numerator // value.denominator for value in exact]
    remainders = {i: exact[i] - shares[i] for i in range(len(parts))}
    for _ in range(total - sum(shares)):
        best = max(remainders, key=lambda i: (remainders[i], -i))
        shares[best] += 1
        del remainders[best]
    return dict(zip(TOTAL_NAMES, shares, strict=True))


def with_total(figures: dict[str, int]) -> dict[str, int]:
    return {**figures, "total": sum(figures[n] for n in TOTAL_NAMES)}


def add(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {n: a[n] + b[n] for n in FIGURE_NAMES}


ZERO = dict.fromkeys(FIGURE_NAMES, 0)


@dataclass
class Expected:
    by_channel: dict[str, dict[str, dict[str, int]]]  # code -> channel -> figures
    totals: dict[str, dict[str, int]]
    reporting: dict[str, dict[str, int] | None]
    reporting_total: dict[str, int]
    missing: set[str]


def expected_view(
    store: LedgerStore, document: dict[str, Any], pool_id: str, texts: dict[str, str]
) -> Expected:
    """The pool's figures from the raw balances of every account in the store."""
    pool = next(p for p in document["pools"] if p["id"] == pool_id)
    scales = {a["code"]: a["scale"] for a in document["assets"]}
    by_segment = {segment(code): code for code in scales}
    channel_assets = {c["id"]: c["assets"] for c in document["channels"]}

    raw: dict[tuple[str, str], dict[str, tuple[int, int]]] = defaultdict(dict)
    for (addr, _asset), balance in store.balances().items():
        parts = addr.split(":")
        if len(parts) == 5 and parts[0] == "pool" and parts[1] == pool_id:
            raw[(by_segment[parts[2]], parts[3])][parts[4]] = (balance.posted, balance.pending_out)

    by_channel: dict[str, dict[str, dict[str, int]]] = {}
    for channel in pool["channels"]:
        for code in channel_assets[channel]:
            accounts = raw.get((code, channel), {})

            def posted(state: str, accounts: dict[str, tuple[int, int]] = accounts) -> int:
                return accounts.get(state, (0, 0))[0]

            def out(state: str, accounts: dict[str, tuple[int, int]] = accounts) -> int:
                return accounts.get(state, (0, 0))[1]

            by_channel.setdefault(code, {})[channel] = {
                "available": posted("available") - out("available"),
                "locked": posted("locked")
                + out("available") + out("in_transit") + out("pending_settlement"),
                "in_transit": posted("in_transit") - out("in_transit"),
                "pending_settlement": posted("pending_settlement") - out("pending_settlement"),
                "fees": posted("fees"),
            }
            # TOTAL is the four accounts' posted balances.
            figures = by_channel[code][channel]
            assert sum(figures[n] for n in TOTAL_NAMES) == sum(
                posted(s) for s in ("available", "locked", "in_transit", "pending_settlement")
            )

    totals: dict[str, dict[str, int]] = {}
    reporting: dict[str, dict[str, int] | None] = {}
    reporting_total = dict(ZERO)
    missing: set[str] = set()
    target = pool["reporting_currency"]
    for code, channels in by_channel.items():
        total = dict(ZERO)
        for figures in channels.values():
            total = add(total, figures)
        totals[code] = total
        rate = my_rate(texts, code, target)
        if rate is None:
            missing.add(code)
            reporting[code] = None
            continue
        factor = rate * Fraction(10 ** scales[target], 10 ** scales[code])
        converted = shared_out([total[n] for n in TOTAL_NAMES], factor)
        converted["fees"] = half_even(total["fees"] * factor)
        # The converted row adds up, and its TOTAL is TOTAL x rate.
        assert sum(converted[n] for n in TOTAL_NAMES) == half_even(
            sum(total[n] for n in TOTAL_NAMES) * factor
        )
        reporting[code] = converted
        reporting_total = add(reporting_total, converted)
    return Expected(by_channel, totals, reporting, reporting_total, missing)


def check_view(
    view: PoolView, store: LedgerStore, document: dict[str, Any], texts: dict[str, str]
) -> Expected:
    expected = expected_view(store, document, view.pool, texts)
    assert {a.asset.code for a in view.assets} == set(expected.totals)
    assert len(view.assets) == len(expected.totals)
    for asset_view in view.assets:
        code = asset_view.asset.code
        assert {ch: f.as_dict() for ch, f in asset_view.by_channel.items()} == {
            ch: with_total(f) for ch, f in expected.by_channel[code].items()
        }, code
        assert asset_view.total.as_dict() == with_total(expected.totals[code]), code
        mine = expected.reporting[code]
        if mine is None:
            assert asset_view.reporting is None, code
        else:
            assert asset_view.reporting is not None, code
            assert asset_view.reporting.as_dict() == with_total(mine), code
    assert view.reporting_total.as_dict() == with_total(expected.reporting_total)
    assert set(view.missing_rates) == expected.missing
    assert len(view.missing_rates) == len(expected.missing)
    return expected


# --- driving the pool ----------------------------------------------------------------------------


class Pool:
    """Moves money through one pool's states the way the treasury does."""

    def __init__(self, ledger: Ledger, pool: str = "main") -> None:
        self.ledger = ledger
        self.pool = pool

    def acct(self, code: str, channel: str, state: str) -> str:
        return address(self.pool, code, channel, state)

    def move(self, code: str, channel: str, source: str, destination: str, amount: int) -> None:
        src = f"world:{channel}" if source == "world" else self.acct(code, channel, source)
        dst = (
            f"world:{channel}" if destination == "world" else self.acct(code, channel, destination)
        )
        self.ledger.transfer([Posting(src, dst, code, amount)])

    def deposit(self, code: str, channel: str, amount: int) -> None:
        self.move(code, channel, "world", "pending_settlement", amount)

    def clear(self, code: str, channel: str, amount: int) -> None:
        self.move(code, channel, "pending_settlement", "available", amount)

    def approve(self, code: str, channel: str, amount: int) -> None:
        self.move(code, channel, "available", "locked", amount)

    def submit(self, code: str, channel: str, amount: int) -> None:
        self.move(code, channel, "locked", "in_transit", amount)

    def settle(self, code: str, channel: str, amount: int, fee: int) -> None:
        transit = self.acct(code, channel, "in_transit")
        self.ledger.transfer(
            [
                Posting(transit, f"world:{channel}", code, amount),
                Posting(transit, self.acct(code, channel, "fees"), code, fee),
            ]
        )

    def reserve(self, code: str, channel: str, source: str, destination: str, amount: int) -> str:
        src = self.acct(code, channel, source)
        dst = (
            f"world:{channel}" if destination == "world" else self.acct(code, channel, destination)
        )
        before = set(pending_ids(self.ledger.store))
        self.ledger.create_pending(Posting(src, dst, code, amount), timeout_s=TIMEOUT_S)
        (pending_id,) = set(pending_ids(self.ledger.store)) - before
        return pending_id


def pending_ids(store: LedgerStore) -> list[str]:
    return [p.id for p in store.pendings(PendingState.PENDING)]


ETH = 10**18


def drive_example(ledger: Ledger) -> dict[str, str]:
    """A day of the example pool; returns the ids of the pendings it left open."""
    pool = Pool(ledger)
    # USD on bank-a: the full cycle, then reservations.
    pool.deposit("USD", "bank-a", 1_000_00)
    pool.clear("USD", "bank-a", 800_00)
    pool.approve("USD", "bank-a", 300_00)
    pool.submit("USD", "bank-a", 200_00)
    pool.settle("USD", "bank-a", 150_00, 5_00)
    p1 = pool.reserve("USD", "bank-a", "available", "locked", 100_00)
    ledger.post_pending(p1, 40_00)  # posted in part, the rest released
    p2 = pool.reserve("USD", "bank-a", "available", "world", 50_00)
    ledger.void_pending(p2)
    open_ids = {
        "usd-a-to-locked": pool.reserve("USD", "bank-a", "available", "locked", 70_00),
        "usd-ps-to-available": pool.reserve(
            "USD", "bank-a", "pending_settlement", "available", 20_00
        ),
        "usd-transit-to-world": pool.reserve("USD", "bank-a", "in_transit", "world", 10_00),
    }
    assert ledger.store.pending(p1).posted_amount_minor == 40_00  # type: ignore[union-attr]
    # USD on card-acq: a reservation on a locked account.
    pool.deposit("USD", "card-acq", 12_345)
    pool.clear("USD", "card-acq", 12_345)
    pool.approve("USD", "card-acq", 2_000)
    open_ids["usd-card-locked"] = pool.reserve("USD", "card-acq", "locked", "in_transit", 500)
    # ETH on two rails, wei-exact.
    pool.deposit("ETH", "eth-l1", 3 * ETH)
    pool.clear("ETH", "eth-l1", 5 * ETH // 2)
    pool.approve("ETH", "eth-l1", ETH)
    pool.submit("ETH", "eth-l1", 4 * ETH // 10)
    pool.settle("ETH", "eth-l1", 3 * ETH // 10, ETH // 1000)
    pool.deposit("ETH", "arb-l2", ETH + 1)
    pool.clear("ETH", "arb-l2", ETH + 1)
    # USDT on two rails.
    pool.deposit("USDT", "tron", 1_000_000_000)
    pool.clear("USDT", "tron", 999_999_999)
    open_ids["usdt-tron"] = pool.reserve("USDT", "tron", "available", "world", 1)
    pool.deposit("USDT", "eth-l1", 5_000_000)
    pool.clear("USDT", "eth-l1", 2_500_000)
    # EUR and e-CNY.
    pool.deposit("EUR", "sepa", 10_000_00)
    pool.clear("EUR", "sepa", 10_000_00)
    pool.approve("EUR", "sepa", 1_234_56)
    pool.deposit("E-CNY", "ecny-rail", 100_00)
    pool.clear("E-CNY", "ecny-rail", 50_00)
    return open_ids


@pytest.fixture
def example_ledger(ledger: Ledger) -> Ledger:
    init_pool(ledger, config_of(example_document()))
    return ledger


def view_of(ledger: Ledger, document: dict[str, Any], pool_id: str = "main",
            rates: StaticRates | None = None) -> PoolView:
    config = config_of(document)
    pool = config.pool(pool_id)
    return pool_view(ledger.store, config, pool, rates or config.rates_for(pool))


# --- examples on both stores ---------------------------------------------------------------------


def test_a_fresh_pool_is_all_zero(example_ledger: Ledger) -> None:
    view = view_of(example_ledger, example_document())
    assert view.pool == "main"
    assert view.reporting_currency.code == "USD"
    assert [a.asset.code for a in view.assets] == ["USD", "EUR", "USDT", "ETH", "E-CNY"]
    assert all(f == Figures() for a in view.assets for f in a.by_channel.values())
    assert {a.asset.code: sorted(a.by_channel) for a in view.assets} == {
        "USD": ["bank-a", "book", "card-acq", "rtp"],
        "EUR": ["book", "sepa"],
        "USDT": ["book", "eth-l1", "tron"],
        "ETH": ["arb-l2", "book", "eth-l1"],
        "E-CNY": ["book", "ecny-rail"],
    }
    assert view.reporting_total == Figures()
    assert view.missing_rates == ()
    assert view.as_of_seq == example_ledger.store.head().seq


def test_the_view_matches_the_balances_after_a_day(example_ledger: Ledger) -> None:
    drive_example(example_ledger)
    document = example_document()
    view = view_of(example_ledger, document)
    check_view(view, example_ledger.store, document, rate_texts())
    assert view.as_of_seq == example_ledger.store.head().seq

    # The same figures, worked out by hand.
    usd = view.asset("USD")
    assert usd.by_channel["bank-a"] == Figures(
        available=390_00, locked=240_00, in_transit=35_00, pending_settlement=180_00, fees=5_00
    )
    assert usd.by_channel["bank-a"].total == 845_00
    # A reservation on a locked account moves nothing out of `locked`.
    assert usd.by_channel["card-acq"] == Figures(available=10_345, locked=2_000)
    assert usd.total == Figures(49_345, 26_000, 3_500, 18_000, 500)
    assert usd.total.total == 96_845
    assert usd.reporting == usd.total  # USD reports in USD one to one

    eur = view.asset("EUR")
    assert eur.total == Figures(available=876_544, locked=123_456)
    assert eur.reporting == Figures(available=950_437, locked=133_863)  # x 1.0843, half even

    eth = view.asset("ETH")
    # x 3120.55: the exact states are 780137.50...03, 187233, 30893.445 and 156027.5, TOTAL
    # 1154291.445...; TOTAL rounds to 1154291 and its last cent goes to the largest remainder.
    assert eth.reporting == Figures(780_138, 187_233, 30_893, 156_027, fees=312)
    assert eth.reporting.total == 1_154_291
    assert eth.by_channel["eth-l1"] == Figures(
        available=3 * ETH // 2,
        locked=6 * ETH // 10,
        in_transit=ETH // 10 - ETH // 1000,
        pending_settlement=ETH // 2,
        fees=ETH // 1000,
    )
    assert eth.by_channel["arb-l2"] == Figures(available=ETH + 1)

    usdt = view.asset("USDT")
    assert usdt.by_channel["tron"] == Figures(
        available=999_999_998, locked=1, pending_settlement=1
    )

    assert view.reporting_total.total == sum(
        a.reporting.total for a in view.assets if a.reporting is not None
    )
    assert view.reporting_total == sum(
        (a.reporting for a in view.assets if a.reporting is not None), Figures()
    )


def test_total_is_the_posted_balance_of_the_four_accounts(example_ledger: Ledger) -> None:
    drive_example(example_ledger)
    view = view_of(example_ledger, example_document())
    balances = example_ledger.store.balances("pool:main:")
    for asset_view in view.assets:
        code = asset_view.asset.code
        for channel, figures in asset_view.by_channel.items():
            keys = [(address("main", code, channel, s), code) for s in TOTAL_NAMES]
            posted = sum(balances[key].posted for key in keys if key in balances)
            assert figures.total == posted, (code, channel)
            fees = balances.get((address("main", code, channel, "fees"), code))
            assert figures.fees == (0 if fees is None else fees.posted)


def test_posting_voiding_and_expiring_reservations_keep_the_view_exact(
    example_ledger: Ledger, clock: ManualClock
) -> None:
    open_ids = drive_example(example_ledger)
    document = example_document()
    texts = rate_texts()
    store = example_ledger.store
    before = view_of(example_ledger, document).asset("USD").by_channel["bank-a"]

    example_ledger.post_pending(open_ids["usd-a-to-locked"], 30_00)
    after_post = view_of(example_ledger, document)
    check_view(after_post, store, document, texts)
    bank_a = after_post.asset("USD").by_channel["bank-a"]
    # 30.00 moved to locked and 40.00 released back to available.
    assert bank_a.available == before.available + 40_00
    assert bank_a.locked == before.locked - 40_00
    assert bank_a.total == before.total

    example_ledger.void_pending(open_ids["usd-ps-to-available"])
    after_void = view_of(example_ledger, document)
    check_view(after_void, store, document, texts)
    assert after_void.asset("USD").by_channel["bank-a"].pending_settlement == (
        bank_a.pending_settlement + 20_00
    )

    clock.advance(seconds=TIMEOUT_S + 1)
    assert example_ledger.expire_due() == 3
    expired = view_of(example_ledger, document)
    check_view(expired, store, document, texts)
    figures = expired.asset("USD").by_channel["bank-a"]
    assert figures.locked == 140_00 + 30_00  # only posted money is locked now
    assert figures.in_transit == 45_00
    assert expired.asset("USD").by_channel["card-acq"].locked == 2_000
    assert expired.asset("USDT").by_channel["tron"].available == 999_999_999


def test_an_asset_without_a_rate_is_missing_and_left_out(example_ledger: Ledger) -> None:
    drive_example(example_ledger)
    document = example_document()
    texts = rate_texts()
    del texts["E-CNY/USD"]
    rates = StaticRates.from_mapping({"rates": texts})
    view = view_of(example_ledger, document, rates=rates)
    expected = check_view(view, example_ledger.store, document, texts)
    assert view.missing_rates == ("E-CNY",)
    assert view.asset("E-CNY").reporting is None
    assert view.asset("E-CNY").total.total == 100_00  # it is still shown in its own asset
    full = view_of(example_ledger, document)
    assert full.asset("E-CNY").reporting is not None
    assert view.reporting_total.total == (
        full.reporting_total.total - full.asset("E-CNY").reporting.total
    )
    assert expected.missing == {"E-CNY"}


def test_with_no_rates_only_the_reporting_currency_counts(example_ledger: Ledger) -> None:
    drive_example(example_ledger)
    document = example_document()
    view = view_of(example_ledger, document, rates=StaticRates())
    check_view(view, example_ledger.store, document, {})
    assert set(view.missing_rates) == {"EUR", "USDT", "ETH", "E-CNY"}
    assert view.reporting_total == view.asset("USD").total


def test_another_pool_never_leaks_into_this_one(ledger: Ledger) -> None:
    document = two_pool_document()
    init_pool(ledger, config_of(document))
    texts = rate_texts()
    drive_example(ledger)
    main_before = view_of(ledger, document, "main")

    other = Pool(ledger, "main-2")
    other.deposit("USD", "bank-a", 7_777_77)
    other.clear("USD", "bank-a", 7_000_00)
    other.approve("USD", "bank-a", 1_00)
    other.reserve("USD", "bank-a", "available", "world", 2_00)
    other.deposit("EUR", "sepa", 3_33)
    other.submit("USD", "bank-a", 1_00)
    other.settle("USD", "bank-a", 60, 40)

    main_after = view_of(ledger, document, "main")
    assert main_after.assets == main_before.assets
    assert main_after.reporting_total == main_before.reporting_total
    check_view(main_after, ledger.store, document, texts)

    side = view_of(ledger, document, "main-2")
    check_view(side, ledger.store, document, texts)
    assert [a.asset.code for a in side.assets] == ["EUR", "USD"]
    assert side.reporting_currency.code == "EUR"
    assert side.asset("USD").by_channel == {
        "bank-a": Figures(available=6_997_00, locked=2_00, pending_settlement=777_77, fees=40)
    }
    assert side.asset("EUR").total == Figures(pending_settlement=3_33)
    # USD in EUR uses the inverse of EUR/USD.
    usd_total = side.asset("USD").total
    inverse = 1 / Fraction("1.0843")
    assert side.asset("USD").reporting == Figures(
        **shared_out([getattr(usd_total, n) for n in TOTAL_NAMES], inverse),
        fees=half_even(usd_total.fees * inverse),
    )
    assert side.asset("USD").reporting.total == half_even(  # type: ignore[union-attr]
        usd_total.total * inverse
    )

    # Handing the view every balance in the store changes nothing either.
    config = config_of(document)
    for pool_id, shown in (("main", main_after), ("main-2", side)):
        pool = config.pool(pool_id)
        everything = pool_view(
            ledger.store, config, pool, config.rates_for(pool), balances=ledger.store.balances()
        )
        assert everything.assets == shown.assets
        assert everything.reporting_total == shown.reporting_total
        assert everything.as_of_seq == 0


# --- the pool at a past seq ----------------------------------------------------------------------


def view_at(ledger: Ledger, document: dict[str, Any], seq: int,
            pool_id: str = "main") -> PoolView:
    config = config_of(document)
    pool = config.pool(pool_id)
    return pool_view_at(ledger.store, config, pool, config.rates_for(pool), seq)


def test_the_view_at_the_head_is_the_live_view(example_ledger: Ledger) -> None:
    drive_example(example_ledger)
    document = example_document()
    live = view_of(example_ledger, document)
    head = example_ledger.store.head().seq
    assert view_at(example_ledger, document, head) == live
    assert live.as_of_seq == head


def test_the_view_at_an_earlier_seq_is_the_view_as_it_was_then(
    example_ledger: Ledger, clock: ManualClock
) -> None:
    document = example_document()
    pool = Pool(example_ledger)
    pool.deposit("USD", "bank-a", 1_000_00)
    pool.clear("USD", "bank-a", 600_00)
    reserved = pool.reserve("USD", "bank-a", "available", "locked", 100_00)
    then = view_of(example_ledger, document)
    # Everything after the snapshot: moves, a partial post, fees, another asset, an expiry.
    example_ledger.post_pending(reserved, 30_00)
    pool.approve("USD", "bank-a", 200_00)
    pool.submit("USD", "bank-a", 150_00)
    pool.settle("USD", "bank-a", 100_00, 2_00)
    pool.deposit("ETH", "eth-l1", 3 * ETH)
    pool.reserve("USD", "bank-a", "available", "world", 1_00)
    clock.advance(seconds=TIMEOUT_S + 1)
    assert example_ledger.expire_due() == 1
    now = view_of(example_ledger, document)
    assert now != then

    past = view_at(example_ledger, document, then.as_of_seq)
    assert past == then
    assert past.as_of_seq == then.as_of_seq < now.as_of_seq
    assert past.asset("USD").by_channel["bank-a"] == Figures(
        available=500_00, locked=100_00, pending_settlement=400_00)
    # Before the first entry the pool held nothing.
    empty = view_at(example_ledger, document, 0)
    assert all(f == Figures() for a in empty.assets for f in a.by_channel.values())
    assert (empty.reporting_total, empty.as_of_seq) == (Figures(), 0)


def test_a_seq_beyond_the_head_is_refused(example_ledger: Ledger) -> None:
    head = example_ledger.store.head().seq
    with pytest.raises(SeqBeyondHead) as caught:
        view_at(example_ledger, example_document(), head + 1)
    assert caught.value.code == "seq_beyond_head"
    assert caught.value.facts == {"seq": head + 1, "head_seq": head}
    with pytest.raises(SeqBeyondHead):
        view_at(example_ledger, example_document(), -1)


# --- random days, SQLite -------------------------------------------------------------------------


@contextmanager
def sqlite_pool(document: dict[str, Any]) -> Iterator[tuple[Ledger, ManualClock]]:
    with tempfile.TemporaryDirectory() as directory:
        store = SqliteStore(Path(directory) / "ledger.sqlite3")
        store.initialise()
        try:
            clock = ManualClock()
            ledger = Ledger(store, clock, Uuid7Ids.seeded(11))
            init_pool(ledger, config_of(document))
            yield ledger, clock
        finally:
            store.close()


def pairs_of(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    channel_assets = {c["id"]: c["assets"] for c in document["channels"]}
    return [
        (pool["id"], code, channel)
        for pool in document["pools"]
        for channel in pool["channels"]
        for code in channel_assets[channel]
    ]


RANDOM_DOCUMENT = two_pool_document()
PAIRS = pairs_of(RANDOM_DOCUMENT)
SCALES = {a["code"]: a["scale"] for a in RANDOM_DOCUMENT["assets"]}
NEXT_STATE = {
    "available": "locked",
    "locked": "in_transit",
    "in_transit": "world",
    "pending_settlement": "available",
    "fees": "world",
}
KINDS = ["deposit", "clear", "approve", "submit", "settle", "payout", "reserve", "post", "void",
         "expire"]

moves = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.integers(0, len(PAIRS) - 1),
        st.sampled_from(FIGURE_NAMES),
        st.integers(0, 2**64),
        st.booleans(),
    ),
    min_size=5,
    max_size=30,
)


def available_of(store: LedgerStore, addr: str, code: str) -> int:
    balance = store.balances(addr).get((addr, code))
    return 0 if balance is None else balance.available


def check_everything(ledger: Ledger, document: dict[str, Any], texts: dict[str, str]) -> None:
    store = ledger.store
    config = config_of(document)
    for pool in config.pools:
        view = pool_view(store, config, pool, config.rates_for(pool))
        check_view(view, store, document, texts)
        assert view.as_of_seq == store.head().seq
    posted: dict[str, int] = defaultdict(int)
    out: dict[str, int] = defaultdict(int)
    into: dict[str, int] = defaultdict(int)
    for (_addr, code), balance in store.balances().items():
        posted[code] += balance.posted
        out[code] += balance.pending_out
        into[code] += balance.pending_in
    assert all(total == 0 for total in posted.values()), dict(posted)
    assert dict(out) == dict(into)


def run_steps(steps: list[tuple[str, int, str, int, bool]], *,
              past_views: bool = False) -> Counter[str]:
    """Drive a fresh SQLite pool through `steps`, checking everything after each; returns how
    many of each kind of move actually ran (a move with nothing to move is skipped). With
    `past_views`, the view of every pool after each step is kept, and at the end each must be
    what the view at that step's seq gives."""
    document = RANDOM_DOCUMENT
    texts = rate_texts()
    ran: Counter[str] = Counter()
    seen: list[PoolView] = []
    with sqlite_pool(document) as (ledger, clock):
        store = ledger.store
        for kind, pair, state, seed, partial in steps:
            pool_id, code, channel = PAIRS[pair]
            pool = Pool(ledger, pool_id)

            def room(state: str, pool: Pool = pool, code: str = code,
                     channel: str = channel) -> int:
                return available_of(store, pool.acct(code, channel, state), code)

            def some(limit: int, seed: int = seed) -> int:
                return 1 + seed % limit

            if kind == "deposit":
                pool.deposit(code, channel, some(10 ** (SCALES[code] + 6)))
            elif kind in ("clear", "approve", "submit", "payout"):
                source, destination = {
                    "clear": ("pending_settlement", "available"),
                    "approve": ("available", "locked"),
                    "submit": ("locked", "in_transit"),
                    "payout": ("available", "world"),
                }[kind]
                if room(source) == 0:
                    continue
                pool.move(code, channel, source, destination, some(room(source)))
            elif kind == "settle":
                limit = room("in_transit")
                if limit == 0:
                    continue
                if limit == 1:
                    pool.move(code, channel, "in_transit", "world", 1)
                else:
                    amount = some(limit - 1)
                    pool.settle(code, channel, amount, 1 + (seed // 3) % (limit - amount))
            elif kind == "reserve":
                if room(state) == 0:
                    continue
                pool.reserve(code, channel, state, NEXT_STATE[state], some(room(state)))
            elif kind in ("post", "void"):
                open_pendings = store.pendings(PendingState.PENDING)
                if not open_pendings:
                    continue
                pending = open_pendings[seed % len(open_pendings)]
                if kind == "void":
                    (result,) = ledger.submit([VoidPending(pending.id)])
                else:
                    amount = some(pending.amount_minor) if partial else None
                    (result,) = ledger.submit([PostPending(pending.id, amount)])
                assert result.ok, result.error
            else:
                clock.advance(seconds=TIMEOUT_S + 1)
                ledger.expire_due()
                assert store.pendings(PendingState.PENDING) == []
            ran[kind] += 1
            check_everything(ledger, document, texts)
            if past_views:
                config = config_of(document)
                seen += [pool_view(store, config, p, config.rates_for(p)) for p in config.pools]
        for then in seen:
            assert view_at(ledger, document, then.as_of_seq, then.pool) == then
    return ran


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    focus=st.lists(st.integers(0, len(PAIRS) - 1), min_size=1, max_size=3, unique=True),
    steps=moves,
)
def test_random_days_keep_the_view_exact_and_the_ledger_balanced(
    focus: list[int], steps: list[tuple[str, int, str, int, bool]]
) -> None:
    # A few pairs per day, each funded first, so that moves pile up on the same accounts.
    opening: list[tuple[str, int, str, int, bool]] = []
    for pair in focus:
        opening += [
            ("deposit", pair, "available", 10**30 - 1, False),
            ("clear", pair, "available", 10**30 // 3, False),
            ("approve", pair, "available", 10**30 // 7, False),
        ]
    run_steps(opening + [(k, focus[i % len(focus)], s, n, b) for k, i, s, n, b in steps])


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(pair=st.integers(0, len(PAIRS) - 1), steps=moves)
def test_every_past_view_is_what_the_view_at_its_seq_gives(
    pair: int, steps: list[tuple[str, int, str, int, bool]]
) -> None:
    """Whatever happened since (moves, reservations posted in part, voids, expiries), the view
    at a past seq is exactly the live view as it was recorded at that seq, in every pool."""
    opening = [("deposit", pair, "available", 10**30 - 1, False),
               ("clear", pair, "available", 10**30 // 3, False)]
    run_steps(opening + [(k, pair, s, n, b) for k, _, s, n, b in steps], past_views=True)


def test_the_random_moves_run_every_kind_of_move() -> None:
    """The moves the property test draws do run (none is always skipped), over both pools."""
    assert {p[0] for p in PAIRS} == {"main", "main-2"}
    usd_main = PAIRS.index(("main", "USD", "bank-a"))
    usd_side = PAIRS.index(("main-2", "USD", "bank-a"))
    eth = PAIRS.index(("main", "ETH", "eth-l1"))
    steps: list[tuple[str, int, str, int, bool]] = []
    for pair in (usd_main, usd_side, eth):
        steps += [
            ("deposit", pair, "available", 10**8 - 1, False),  # 10**8 minor units
            ("clear", pair, "available", 7 * 10**7, False),
            ("approve", pair, "available", 5 * 10**7, False),
            ("submit", pair, "available", 3 * 10**7, False),
            ("settle", pair, "available", 10**7, False),
            ("payout", pair, "available", 10**3, False),
        ]
        steps += [("reserve", pair, state, 77, False) for state in FIGURE_NAMES]
    steps += [
        ("post", 0, "available", 1, True),
        ("post", 0, "available", 2, False),
        ("void", 0, "available", 3, False),
        ("expire", 0, "available", 0, False),
    ]
    ran = run_steps(steps)
    assert set(ran) == set(KINDS)
    assert ran["reserve"] == 15


class _CommitDuringRead:
    """The store with a writer that commits a deposit just before each of the first `times`
    balance reads, as a busy server's engine does between the view's two reads."""

    def __init__(self, ledger: Ledger, times: int) -> None:
        self._ledger, self._left = ledger, times
        self._pool = Pool(ledger)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger.store, name)

    def balances(self, prefix: str | None = None) -> Any:
        if self._left > 0:
            self._left -= 1
            self._pool.deposit("USD", "bank-a", 1_00)
        return self._ledger.store.balances(prefix)


@pytest.mark.parametrize("commits", [1, 5])
def test_a_commit_between_the_views_reads_never_shows_newer_figures_than_its_seq(
        example_ledger: Ledger, commits: int) -> None:
    """The live view's figures are those of the entry it names, even when the writer commits
    while it reads (once: read again; at every try: the balances at that entry)."""
    document = example_document()
    config = config_of(document)
    pool = config.pool("main")
    Pool(example_ledger).deposit("USD", "bank-a", 10_00)
    racing = _CommitDuringRead(example_ledger, commits)
    live = pool_view(racing, config, pool, config.rates_for(pool))  # type: ignore[arg-type]
    assert live == view_at(example_ledger, document, live.as_of_seq)
    # Every try's commit is in it: the view names the entry after the last one it saw.
    assert live.asset("USD").by_channel["bank-a"].total == 10_00 + min(commits, HEAD_READS) * 1_00
