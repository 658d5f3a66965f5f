"""The rebalancing planner: worked examples in plain words, the fee model (the source pays on
top), the money properties of any plan, and its cost against a brute force on tiny pools."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction

import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from fundpool.treasury import rebalance
from fundpool.treasury.bands import Band, Position
from fundpool.treasury.rebalance import (
    LATENCY_SPAN,
    PRICE_SCALE,
    InvalidRoute,
    RebalancePlan,
    Route,
    apply_plan,
    money_text,
    plan_rebalance,
    routes_from_mapping,
)

USD = {"USD": 2}


def route(source: str, destination: str, fixed: int = 0, bps: str = "0", latency_s: int = 1,
          max_minor: int | None = None, asset: str = "USD") -> Route:
    return Route(source, destination, asset, fixed, Fraction(bps), latency_s, max_minor)


def transfers(plan: RebalancePlan) -> list[tuple[str, str, int, int]]:
    return [(t.source, t.destination, t.amount_minor, t.fee_minor) for t in plan.transfers]


# --- worked examples -----------------------------------------------------------------------


def test_the_docs_example_in_plain_words() -> None:
    bands = {("bank-a", "USD"): Band("bank-a", "USD", 200_000_00, 400_000_00, 800_000_00),
             ("bank-b", "USD"): Band("bank-b", "USD", 100_000_00, 300_000_00, 1_000_000_00),
             ("bank-c", "USD"): Band("bank-c", "USD", 100_000_00, 300_000_00, 1_000_000_00)}
    balances = {("bank-a", "USD"): 80_000_00, ("bank-b", "USD"): 900_000_00,
                ("bank-c", "USD"): 700_000_00}
    routes = [route("bank-b", "bank-a", fixed=2_00, bps="0.3125", latency_s=2),
              route("bank-c", "bank-a", fixed=0, bps="5", latency_s=1)]
    plan = plan_rebalance(bands, balances, routes, scales=USD)
    assert transfers(plan) == [("bank-b", "bank-a", 320_000_00, 12_00)]
    assert plan.explanation == (
        "bank-a USD is 120,000.00 below its minimum 200,000.00; 320,000.00 from bank-b "
        "(fee 12.00, 2 s), the cheapest route with that much above its target",
        "USD: 1 transfer moving 320,000.00, 12.00 in fees")
    assert plan.total_fee_minor == {"USD": 12_00}
    assert plan.unresolved == ()
    after = apply_plan(balances, plan)
    assert after[("bank-a", "USD")] == 400_000_00  # exactly its target
    assert after[("bank-b", "USD")] == 900_000_00 - 320_000_00 - 12_00  # amount + fee


def test_an_excess_goes_to_positions_with_room_and_its_source_pays_the_fee() -> None:
    bands = {(c, "EUR"): Band(c, "EUR", 100, 500, 1_000) for c in ("x", "y", "z")}
    balances = {("x", "EUR"): 1_600, ("y", "EUR"): 300, ("z", "EUR"): 50}
    routes = [route("x", "y", fixed=10, asset="EUR"), route("x", "z", fixed=10, asset="EUR")]
    plan = plan_rebalance(bands, balances, routes)
    # x is 600 over its maximum: z (below its minimum) is brought to its target, y absorbs
    # what it has room for; x ends within its band, its fees paid on top
    assert transfers(plan) == [("x", "y", 200, 10), ("x", "z", 450, 10)]
    after = apply_plan(balances, plan)
    assert after == {("x", "EUR"): 930, ("y", "EUR"): 500, ("z", "EUR"): 500}
    assert sum(after.values()) == sum(balances.values()) - 20
    assert plan.total_fee_minor == {"EUR": 20}
    assert plan.unresolved == ()
    assert plan.explanation[0] == (
        "x EUR is 600 minor units above its maximum 1,000 minor units; 200 minor units to y "
        "(fee 10 minor units, 1 s), the cheapest route to a position with room below its "
        "target")
    assert plan.explanation[1].startswith("z EUR is 50 minor units below its minimum")
    assert plan.explanation[1].endswith("which is 600 minor units above its maximum "
                                        "1,000 minor units")


def test_reserves_lift_a_breach_to_its_minimum_only() -> None:
    bands = {("a", "USD"): Band("a", "USD", 1_000, 2_000, 3_000),
             ("b", "USD"): Band("b", "USD", 500, 1_000, 5_000)}
    balances = {("a", "USD"): 200, ("b", "USD"): 1_300}  # b: 300 above its target
    plan = plan_rebalance(bands, balances, [route("b", "a")])
    # 300 above b's target would leave a 500 short of its minimum: b gives 500 more from
    # between its target and its minimum, exactly to a's minimum and no further
    assert transfers(plan) == [("b", "a", 800, 0)]
    assert "taken from between its target and its minimum" in plan.transfers[0].why
    assert plan.unresolved == ()


def test_what_cannot_be_reached_is_unresolved_with_the_reason() -> None:
    bands = {("a", "USD"): Band("a", "USD", 1_000, 2_000, 3_000),
             ("b", "USD"): Band("b", "USD", 0, 0, 100),
             ("c", "USD"): Band("c", "USD", 0, 100, 200)}
    balances = {("a", "USD"): 200, ("b", "USD"): 900, ("c", "USD"): 150}
    plan = plan_rebalance(bands, balances, [route("a", "b")], scales=USD)
    assert plan.transfers == ()
    shortfall, excess = plan.unresolved
    assert (shortfall.channel, shortfall.shortfall_minor, shortfall.excess_minor) == ("a", 800, 0)
    assert shortfall.why == ("a USD stays 8.00 below its minimum 10.00: no route reaches it "
                             "from a position with money above its minimum")
    assert (excess.channel, excess.shortfall_minor, excess.excess_minor) == ("b", 0, 800)
    assert "no route leads from it to a position with room below its target" in excess.why
    missing = plan_rebalance(bands, {("b", "USD"): 50}, [])
    assert {(u.channel, u.why.endswith("it is not planned")) for u in missing.unresolved} == {
        ("a", True), ("c", True)}


def test_the_cheapest_route_wins_then_the_quickest_and_one_transfer_over_two() -> None:
    bands = {(c, "USD"): Band(c, "USD", 0 if c != "a" else 1_000, 1_000 if c == "a" else 0,
                              100_000) for c in "abcd"}
    balances = {("a", "USD"): 0, ("b", "USD"): 5_000, ("c", "USD"): 5_000,
                ("d", "USD"): 5_000}
    by_rate = [route("b", "a", bps="10"), route("c", "a", bps="9.5"), route("d", "a", bps="11")]
    assert transfers(plan_rebalance(bands, balances, by_rate))[0][0] == "c"
    by_latency = [route("b", "a", latency_s=60), route("c", "a", latency_s=2),
                  route("d", "a", latency_s=3_600)]
    assert transfers(plan_rebalance(bands, balances, by_latency))[0][0] == "c"
    by_fixed = [route("b", "a", fixed=30), route("c", "a", fixed=20), route("d", "a", fixed=25)]
    assert transfers(plan_rebalance(bands, balances, by_fixed)) == [("c", "a", 1_000, 20)]
    # one transfer over two: c's cheaper fixed fee carries only 600, and 30 for one
    # transfer beats 50 for two
    capped = [route("b", "a", fixed=30), route("c", "a", fixed=20, max_minor=600)]
    assert transfers(plan_rebalance(bands, balances, capped)) == [("b", "a", 1_000, 30)]
    # routes capped under the need: the need is split over them
    both = [route("b", "a", fixed=30, max_minor=400), route("c", "a", fixed=20, max_minor=600)]
    assert transfers(plan_rebalance(bands, balances, both)) == [
        ("b", "a", 400, 30), ("c", "a", 600, 20)]


def test_two_positions_within_their_bands_are_left_alone() -> None:
    bands = {(c, "USD"): Band(c, "USD", 0, 500, 1_000) for c in "ab"}
    balances = {("a", "USD"): 900, ("b", "USD"): 100}
    plan = plan_rebalance(bands, balances, [route("a", "b"), route("b", "a")])
    assert plan == RebalancePlan((), (), {}, ())


def test_a_source_paying_several_fixed_fees_is_trimmed_to_fit() -> None:
    # x may give 1,000 above its target; the reservation counted one fee of 100, and it
    # sends two transfers: the one to the helper is trimmed by the second fee
    bands = {("x", "USD"): Band("x", "USD", 0, 0, 500),
             ("y", "USD"): Band("y", "USD", 0, 900, 2_000),
             ("z", "USD"): Band("z", "USD", 100, 200, 300)}
    balances = {("x", "USD"): 1_000, ("y", "USD"): 0, ("z", "USD"): 0}
    plan = plan_rebalance(bands, balances, [route("x", "y", fixed=100),
                                            route("x", "z", fixed=100)])
    after = apply_plan(balances, plan)
    assert after[("x", "USD")] >= 0
    assert after[("z", "USD")] == 200
    assert transfers(plan) == [("x", "y", 600, 100), ("x", "z", 200, 100)]


def test_a_source_left_over_its_maximum_by_its_reservation_takes_over_a_transfer() -> None:
    """b reserved for its dearest route's fee (50 to a) and pays 10 to d: the flow leaves it
    34 over its maximum. It takes over c's 26 into d (c keeps them, within its band, and
    saves a transfer): b ends 8 over, all d had room for."""
    bands = {("a", "USD"): Band("a", "USD", 150, 300, 600),
             ("b", "USD"): Band("b", "USD", 150, 300, 600),
             ("c", "USD"): Band("c", "USD", 50, 100, 200),
             ("d", "USD"): Band("d", "USD", 300, 600, 1_200)}
    balances = {("a", "USD"): 60, ("b", "USD"): 1_033, ("c", "USD"): 376, ("d", "USD"): 185}
    fixed = {("a", "c"): 10, ("a", "d"): 50, ("b", "a"): 50, ("b", "c"): 10, ("b", "d"): 10,
             ("c", "a"): 10, ("c", "b"): 0, ("c", "d"): 0, ("d", "a"): 10, ("d", "b"): 10,
             ("d", "c"): 50}
    routes = [route(s, d, fixed=f) for (s, d), f in fixed.items()]
    plan = plan_rebalance(bands, balances, routes)
    assert transfers(plan) == [("b", "d", 415, 10), ("c", "a", 240, 10)]
    after = apply_plan(balances, plan)
    assert after == {("a", "USD"): 300, ("b", "USD"): 608, ("c", "USD"): 126,
                     ("d", "USD"): 600}
    (left,) = plan.unresolved
    assert (left.channel, left.excess_minor) == ("b", 8)


def test_room_made_by_a_giver_is_filled_but_a_giver_never_forwards() -> None:
    """c gives its 28 above its minimum to b (below its minimum) and takes a's excess: the room
    its own gift makes is filled too, up to its target; but c never sends on money it only
    receives in the same plan (the transfers may run in any order)."""
    bands = {("a", "USD"): Band("a", "USD", 500, 1_000, 2_000),
             ("b", "USD"): Band("b", "USD", 450, 900, 1_800),
             ("c", "USD"): Band("c", "USD", 50, 100, 200)}
    balances = {("a", "USD"): 3_628, ("b", "USD"): 14, ("c", "USD"): 78}
    routes = [route("a", "c"), route("b", "a"), route("b", "c", fixed=10),
              route("c", "a", fixed=10), route("c", "b")]
    plan = plan_rebalance(bands, balances, routes)
    assert transfers(plan) == [("a", "c", 50, 0), ("c", "b", 28, 0)]
    assert apply_plan(balances, plan) == {("a", "USD"): 3_578, ("b", "USD"): 42,
                                          ("c", "USD"): 100}
    assert [(u.channel, u.shortfall_minor, u.excess_minor) for u in plan.unresolved] == [
        ("a", 0, 1_578), ("b", 408, 0)]


def test_routes_read_from_tables_and_bad_ones_are_refused() -> None:
    (one,) = routes_from_mapping([{"source": "a", "destination": "b", "asset": "USD",
                                   "fee_fixed_minor": 25, "fee_bps": "1.5", "latency_s": 2}])
    assert one == Route("a", "b", "USD", 25, Fraction(3, 2), 2, None)
    assert one.fee_minor(10_000) == 25 + 2  # 1.5 bps of 100.00 is 1.5 cents: half to even
    good: dict[str, object] = {"source": "a", "destination": "b", "asset": "USD",
                               "fee_fixed_minor": 0, "fee_bps": "0", "latency_s": 0}
    changes: list[tuple[dict[str, object], str]] = [
        ({"destination": "a"}, "routes[0].destination"),
        ({"fee_bps": 1.5}, "routes[0].fee_bps"),
        ({"fee_bps": "-1"}, "routes[0].fee_bps"),
        ({"fee_bps": "10001"}, "routes[0].fee_bps"),
        ({"fee_fixed_minor": -1}, "routes[0].fee_fixed_minor"),
        ({"latency_s": 10**9}, "routes[0].latency_s"),
        ({"max_minor": 2.5}, "routes[0].max_minor"),
        ({"colour": "red"}, "routes[0].colour")]
    for change, field in changes:
        with pytest.raises(InvalidRoute) as refused:
            routes_from_mapping([{**good, **change}])
        assert refused.value.code == "invalid_route"
        assert refused.value.facts["field"] == field
    with pytest.raises(InvalidRoute, match="one route per"):
        routes_from_mapping([good, good])
    with pytest.raises(InvalidRoute, match="one route per"):
        plan_rebalance({}, {}, [route("a", "b"), route("a", "b", fixed=3)])
    with pytest.raises(InvalidRoute):
        Route("a", "b", "USD", 0, 0.5, 0)  # type: ignore[arg-type]


def test_money_text_groups_thousands() -> None:
    assert money_text(123_456_789, 2) == "1,234,567.89"
    assert money_text(5, 2) == "0.05"
    assert money_text(1_000, 0) == "1,000"
    assert money_text(1_000, None) == "1,000 minor units"


@pytest.mark.parametrize("candidates", [None, 1])
def test_pricing_finds_the_same_optimum_as_all_routes_at_once(
        monkeypatch: pytest.MonkeyPatch, candidates: int | None) -> None:
    """Column generation (candidates, then pricing) on a pool large enough to use it gives the
    plan a solve over every route gives; with one candidate route per position, pricing has to
    bring in the rest over several rounds."""
    solves: list[int] = []
    simplex = rebalance._simplex

    def counted(arcs: Sequence[tuple[object, object, int, int]]) -> list[int]:
        solves.append(len(arcs))
        return simplex(arcs)

    monkeypatch.setattr(rebalance, "_simplex", counted)
    if candidates is not None:
        monkeypatch.setattr(rebalance, "CANDIDATE_COVER", candidates)
        monkeypatch.setattr(rebalance, "CANDIDATES_MIN", candidates)
    rng = random.Random(7)
    channels = [f"c{i:02d}" for i in range(30)]
    bands: dict[Position, Band] = {}
    balances: dict[Position, int] = {}
    for channel in channels:
        target = rng.randint(10, 100) * 1_000
        bands[(channel, "USD")] = Band(channel, "USD", target // 2, target, target * 2)
        balances[(channel, "USD")] = rng.choice([rng.randint(0, target // 2),
                                                 rng.randint(target // 2, target * 2),
                                                 rng.randint(target * 2, target * 4)])
    routes = [route(s, d, fixed=rng.choice([0, 100, 500]), bps=str(rng.randint(0, 30)),
                    latency_s=rng.choice([1, 60, 3_600]))
              for s in channels for d in channels if s != d]
    priced = plan_rebalance(bands, balances, routes)
    rounds = len(solves)
    assert rounds > 1 or candidates is None
    monkeypatch.setattr(rebalance, "CANDIDATES_ALL_MAX", 10**9)
    everything = plan_rebalance(bands, balances, routes)
    assert len(solves) == rounds + 1
    assert priced.total_fee_minor == everything.total_fee_minor
    assert priced.unresolved == everything.unresolved
    assert len(priced.transfers) == len(everything.transfers)


# --- properties ----------------------------------------------------------------------------

CHANNELS = ["a", "b", "c", "d", "e"]


@st.composite
def pools(draw: st.DrawFn, assets: Sequence[str] = ("USD", "EUR"), count_max: int = 5,
          amount_max: int = 5_000, fixed: Sequence[int] = (0, 0, 3, 50),
          bps: Sequence[str] = ("0", "10", "100", "1000"), route_share: int = 2,
          balance_max: int | None = None,
          ) -> tuple[dict[Position, Band], dict[Position, int], list[Route]]:
    """Bands, balances and routes of 2 to `count_max` channels; each ordered pair of channels
    has a route with a chance of 1 - 1 / `route_share`."""
    count = draw(st.integers(2, count_max))
    amounts = st.integers(0, amount_max)
    bands: dict[Position, Band] = {}
    balances: dict[Position, int] = {}
    routes: list[Route] = []
    for asset in assets:
        for channel in CHANNELS[:count]:
            low, mid, high = sorted(draw(st.lists(amounts, min_size=3, max_size=3)))
            bands[(channel, asset)] = Band(channel, asset, low, mid, high)
            balances[(channel, asset)] = draw(st.integers(0, balance_max or 2 * amount_max))
        for source, destination in itertools.permutations(CHANNELS[:count], 2):
            if draw(st.integers(1, route_share)) > 1:
                routes.append(Route(source, destination, asset, draw(st.sampled_from(fixed)),
                                    Fraction(draw(st.sampled_from(bps))),
                                    draw(st.sampled_from([0, 1, 3_600])),
                                    draw(st.sampled_from([None, None, amount_max // 4]))))
    return bands, balances, routes


@settings(max_examples=150)
@given(pools())
def test_a_plan_pays_only_its_fees_and_takes_nobody_out_of_band(
        pool: tuple[dict[Position, Band], dict[Position, int], list[Route]]) -> None:
    bands, balances, routes = pool
    plan = plan_rebalance(bands, balances, routes)
    after = apply_plan(balances, plan)
    quotes = {(r.source, r.destination, r.asset): r for r in routes}
    senders = {(t.source, t.asset) for t in plan.transfers}
    receivers = {(t.destination, t.asset) for t in plan.transfers}
    for transfer in plan.transfers:
        assert transfer.amount_minor > 0
        assert transfer.source != transfer.destination
        quote = quotes[(transfer.source, transfer.destination, transfer.asset)]
        assert transfer.fee_minor == quote.fee_minor(transfer.amount_minor)
        assert quote.max_minor is None or transfer.amount_minor <= quote.max_minor
    for asset in ("USD", "EUR"):
        before = sum(b for (_, a), b in balances.items() if a == asset)
        now = sum(b for (_, a), b in after.items() if a == asset)
        assert now == before - plan.total_fee_minor.get(asset, 0)
    paying = dict(balances)
    for transfer in plan.transfers:
        paying[(transfer.source, transfer.asset)] -= transfer.amount_minor + transfer.fee_minor
    for position, band in bands.items():
        start, end = balances[position], after[position]
        # whatever order the transfers run in, no source counts on what it receives
        assert position not in senders or paying[position] >= band.min_minor
        if position in senders:
            assert end >= band.min_minor  # a source never goes below its minimum
            # (one between its minimum and target may both absorb an excess and give from
            # its reserve to a position below its minimum)
            assert position in receivers or end < start
        else:
            assert start <= end <= max(start, band.target_minor)  # received up to target
        if band.min_minor <= start <= band.max_minor:
            assert band.min_minor <= end <= band.max_minor  # within stays within
        assert end >= band.min_minor or end >= start  # nobody below its minimum by the plan
    outside = {(c, a) for (c, a), band in bands.items()
               if not band.min_minor <= after[(c, a)] <= band.max_minor}
    assert {(u.channel, u.asset) for u in plan.unresolved} == outside
    for unresolved in plan.unresolved:
        band = bands[(unresolved.channel, unresolved.asset)]
        end = after[(unresolved.channel, unresolved.asset)]
        assert unresolved.shortfall_minor == max(0, band.min_minor - end)
        assert unresolved.excess_minor == max(0, end - band.max_minor)


@settings(max_examples=200)
@given(pools(assets=("USD",), count_max=5, fixed=(0,), bps=("0",)))
def test_with_free_routes_everywhere_every_position_that_can_be_is_brought_within(
        pool: tuple[dict[Position, Band], dict[Position, int], list[Route]]) -> None:
    bands, balances, _ = pool
    channels = sorted(c for c, _ in bands)
    routes = [route(s, d) for s, d in itertools.permutations(channels, 2)]
    plan = plan_rebalance(bands, balances, routes)
    below = sum(max(0, b.min_minor - balances[p]) for p, b in bands.items())
    spare = sum(max(0, balances[p] - b.min_minor) for p, b in bands.items())
    above = sum(max(0, balances[p] - b.max_minor) for p, b in bands.items())
    room = sum(max(0, b.target_minor - balances[p]) for p, b in bands.items())
    shortfall = sum(u.shortfall_minor for u in plan.unresolved)
    excess = sum(u.excess_minor for u in plan.unresolved)
    assert shortfall == max(0, below - spare)
    assert excess == max(0, above - room)


# --- against a brute force -----------------------------------------------------------------


def model(bands: Mapping[Position, Band], balances: Mapping[Position, int],
          routes: Sequence[Route]) -> Callable[[Mapping[tuple[str, str], int]], int | None]:
    """The cost of a set of flows under the cost model of rebalance.py's docstring, worked out
    here from the bands on their own (proportional fees only); None when it is not allowed."""
    channels = sorted(c for c, _ in bands)
    band = {c: bands[(c, "USD")] for c in channels}
    balance = {c: balances[(c, "USD")] for c in channels}
    useful = [r for r in routes if balance[r.source] > band[r.source].min_minor
              and balance[r.destination] < band[r.destination].target_minor
              and (balance[r.source] > band[r.source].max_minor
                   or balance[r.destination] < band[r.destination].min_minor)]
    weight = {(r.source, r.destination): int(r.fee_bps * PRICE_SCALE) * LATENCY_SPAN
              + r.latency_s for r in useful}
    high = max(weight.values(), default=0)
    to_target = high + 1
    reserve = to_target + high + 1
    breach = 2 * to_target + reserve + high + 1
    taking: dict[str, tuple[int, list[tuple[int, int]]]] = {}
    giving: dict[str, tuple[int, list[tuple[int, int]], int]] = {}
    for c in channels:
        b, x = band[c], balance[c]
        taking[c] = (max(0, b.target_minor - x), [
            (max(0, b.min_minor - x), -breach),
            (b.target_minor - b.min_minor if x < b.min_minor else 0, -to_target)])
        rate = max((r.fee_bps for r in useful if r.source == c), default=Fraction(0))

        def can(consumed: int, rate: Fraction = rate) -> int:
            return max(0, int(consumed / (1 + rate / 10_000)))

        over_max, over_target = can(x - b.max_minor), can(x - b.target_minor)
        giving[c] = (can(x - b.min_minor), [(over_max, -breach),
                                            (over_target - over_max, -to_target)]
                     if x > b.max_minor else [(over_target, 0)], 0)

    def cost(flows: Mapping[tuple[str, str], int]) -> int | None:
        total = 0
        sent = dict.fromkeys(channels, 0)
        received = dict.fromkeys(channels, 0)
        for pair, amount in flows.items():
            if amount:
                if pair not in weight:
                    return None
                total += amount * weight[pair]
                sent[pair[0]] += amount
                received[pair[1]] += amount
        for c in channels:
            room, tiers = taking[c]
            if received[c] > room:
                return None
            left = received[c]
            for size, unit in tiers:
                total += unit * min(left, size)
                left -= min(left, size)
            most, tiers, _ = giving[c]
            if sent[c] > most:
                return None
            left = sent[c]
            for size, unit in tiers:
                total += unit * min(left, size)
                left -= min(left, size)
            total += reserve * left
        return total

    return cost


@st.composite
def tiny_pools(draw: st.DrawFn) -> tuple[dict[Position, Band], dict[Position, int],
                                         list[Route]]:
    """Three channels of one asset, each below its minimum, within or above its maximum."""
    bands: dict[Position, Band] = {}
    balances: dict[Position, int] = {}
    for channel in CHANNELS[:3]:
        low, mid, high = sorted(draw(st.lists(st.integers(0, 10), min_size=3, max_size=3)))
        bands[(channel, "USD")] = Band(channel, "USD", low, mid, high)
        balances[(channel, "USD")] = draw(st.sampled_from([
            draw(st.integers(0, low)), draw(st.integers(low, high)),
            draw(st.integers(high, high + 8))]))
    routes = [Route(s, d, "USD", 0, Fraction(draw(st.sampled_from(["0", "100", "2500"]))),
                    draw(st.sampled_from([0, 1, 3_600])), None)
              for s, d in itertools.permutations(CHANNELS[:3], 2)
              if draw(st.integers(0, 3))]
    return bands, balances, routes


@settings(max_examples=60)
@given(tiny_pools())
def test_the_plan_costs_no_more_than_any_other_under_the_model(
        pool: tuple[dict[Position, Band], dict[Position, int], list[Route]]) -> None:
    """Every way of moving whole minor units over the routes is tried; none is cheaper under
    the model than the flow the planner solves, and none pays less in fees for as much
    rebalancing. (The flow, before the plan spends what the fee reservation held back on the
    breaches it leaves: that step answers to the balances, not to the model.)"""
    bands, balances, routes = pool
    routes = [Route(r.source, r.destination, r.asset, r.fee_fixed_minor, r.fee_bps,
                    r.latency_s, None) for r in routes]
    planner = rebalance._AssetPlan("USD", None, sorted(bands.values(), key=lambda b: b.channel),
                                   balances, routes)
    planner.nodes = {c: rebalance._Node(b, balances[(c, a)]) for (c, a), b in bands.items()}
    flows = planner._solve(planner._arcs())
    cost = model(bands, balances, routes)
    planned = cost(flows)
    event(f"{len(flows)} transfers")
    assert planned is not None
    band = {c: b for (c, _), b in bands.items()}
    balance = {c: b for (c, _), b in balances.items()}
    pairs = [(r.source, r.destination) for r in routes]
    ranges = [range(1 + max(0, min(band[d].target_minor - balance[d],
                                   balance[s] - band[s].min_minor))) for s, d in pairs]
    assume(math.prod(len(r) for r in ranges) <= 20_000)
    fee_of = {(r.source, r.destination): r for r in routes}
    best_fee = None
    for amounts in itertools.product(*ranges):
        candidate = dict(zip(pairs, amounts, strict=True))
        value = cost(candidate)
        if value is None:
            continue
        assert value >= planned, (candidate, value, flows, planned)
        if value == planned:
            fee = sum(fee_of[p].fee_minor(a) for p, a in candidate.items() if a)
            best_fee = fee if best_fee is None else min(best_fee, fee)
    assert best_fee is not None
    planned_fee = sum(fee_of[p].fee_minor(a) for p, a in flows.items())
    assert planned_fee <= best_fee + len(flows)  # half-even rounding per transfer


def test_a_position_band_mismatch_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="is for"):
        plan_rebalance({("a", "USD"): Band("b", "USD", 0, 0, 0)}, {}, [])


def test_fifty_channels_and_ten_assets_plan() -> None:
    """The benchmark's size plans (the time is bench/liquidity.py's, not a test's)."""
    rng = random.Random(3)
    assets = ["USD", "EUR", "GBP", "JPY", "CHF", "USDT", "USDC", "ETH", "BTC", "E-CNY"]
    channels = [f"ch-{i:02d}" for i in range(50)]
    bands: dict[Position, Band] = {}
    balances: dict[Position, int] = {}
    routes: list[Route] = []
    for asset in assets:
        for channel in channels:
            target = rng.randint(1, 100) * 10**6
            bands[(channel, asset)] = Band(channel, asset, target // 2, target, 2 * target)
            balances[(channel, asset)] = rng.randint(0, 4 * target)
        routes += [route(s, d, fixed=rng.choice([0, 100]), bps=str(rng.randint(0, 20)),
                         asset=asset) for s in channels for d in channels
                   if s != d and rng.random() < 0.3]
    plan = plan_rebalance(bands, balances, routes)
    assert plan.transfers
    after = apply_plan(balances, plan)
    assert all(after[p] >= bands[p].min_minor or after[p] >= balances[p] for p in bands)
