"""Liquidity stress: worked runs (a pool that survives, one that runs dry at a named hour and
channel, an outage shifting load, credit drawn, money moved between channels, the value at
risk), the scenario's refusals, and properties of any run: no balance below zero, no facility
beyond its limit, money accounted for to the unit, and more withdrawal never surviving longer."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fundpool.treasury.bands import Position
from fundpool.treasury.credit import CreditFacility
from fundpool.treasury.rebalance import Route
from fundpool.treasury.stress import (
    InvalidScenario,
    InvalidStressState,
    Outage,
    Scenario,
    StressReport,
    StressState,
    run,
    scenario_from_mapping,
)


def usd(**balances: int) -> dict[Position, int]:
    return {(channel, "USD"): amount for channel, amount in balances.items()}


def scenario(hours: int, share: str, over: int, **more: Any) -> Scenario:
    return Scenario("test", hours, Fraction(share), over, **more)


# --- worked runs ---------------------------------------------------------------------------


def test_a_pool_that_survives() -> None:
    state = StressState(usd(a=1_000_000, b=1_000_000), {"USD": 1_000_000},
                        inflow_per_hour=usd(a=1_000, b=1_000),
                        outflow_per_hour=usd(a=1_000, b=1_000))
    report = run(state, scenario(48, "0.3", 24))
    assert report.survival_horizon_h is None
    assert report.first_dry is None
    assert report.credit_needed == {"USD": 0}
    # 300,000 withdrawn over 24 h (12,500 an hour) and 2,000 of payouts an hour, shared
    # equally; 1,000 of deposits an hour each
    assert report.hours[-1].balances == usd(a=850_000, b=850_000)
    assert len(report.hours) == 48
    assert report.hours[0].balances == usd(a=1_000_000 + 1_000 - 7_250,
                                           b=1_000_000 + 1_000 - 7_250)


DRY = StressState(usd(a=10_000, b=100_000), {"USD": 480_000},
                  outflow_per_hour=usd(a=1_000, b=1_000))


def test_a_pool_that_runs_dry_names_the_hour_and_the_channel() -> None:
    report = run(DRY, scenario(24, "0.5", 24))  # 10,000 an hour withdrawn: 6,000 each
    assert report.survival_horizon_h == 2
    assert report.first_dry == ("a", "USD", 2)
    assert report.hours[0].shortfall == {"USD": 0}
    assert report.hours[1].shortfall == {"USD": 2_000}
    assert report.hours[16].shortfall == {"USD": 6_000 + 2_000}  # b runs dry at hour 17
    # 288,000 asked in 24 hours, 110,000 held: the rest is credit the pool does not have
    assert report.credit_needed == {"USD": 288_000 - 110_000}
    assert sum(h.shortfall["USD"] for h in report.hours) == 178_000


def test_money_moved_between_channels_keeps_the_pool_alive_longer() -> None:
    state = StressState(DRY.positions, DRY.liabilities, outflow_per_hour=DRY.outflow_per_hour,
                        routes=(Route("b", "a", "USD", 0, Fraction(0), 0),))
    report = run(state, scenario(24, "0.5", 24))
    # b tops a up every hour for the next; 110,000 pays 9 hours of 12,000 and part of the 10th
    assert report.survival_horizon_h == 10
    assert report.first_dry == ("a", "USD", 10)
    assert report.hours[8].balances == usd(a=0, b=2_000)
    assert report.hours[0].in_flight == {"USD": 2_000}
    assert report.fees_minor == {"USD": 0}


def test_a_slow_route_arrives_hours_later_and_its_fee_is_paid_by_the_source() -> None:
    slow = Route("b", "a", "USD", 100, Fraction(0), 3 * 3_600 - 1)  # 3 hours, rounded up
    state = StressState(usd(a=6_000, b=100_000), {"USD": 0},
                        outflow_per_hour=usd(a=6_000, b=0), routes=(slow,))
    report = run(state, scenario(6, "0", 1))
    # hour 1: a pays 6,000 and asks for the next hour's; it arrives at hour 4
    assert report.hours[0].balances == usd(a=0, b=100_000 - 6_000 - 100)
    assert report.hours[0].in_flight == {"USD": 6_000}
    assert report.survival_horizon_h == 2
    assert report.hours[1].shortfall == {"USD": 6_000}
    assert report.hours[2].shortfall == {"USD": 6_000}
    assert report.hours[3].shortfall == {"USD": 0}  # it arrived
    assert report.hours[4].shortfall == {"USD": 6_000}  # the next, sent at hour 4, is late
    assert report.fees_minor == {"USD": 2 * 100}


def test_an_outage_shifts_the_load_and_the_channel_neither_pays_nor_receives() -> None:
    state = StressState(usd(a=60_000, b=60_000), {"USD": 240_000},
                        inflow_per_hour=usd(a=500, b=0),
                        outflow_per_hour=usd(a=1_000, b=1_000))
    calm = run(state, scenario(12, "0.5", 12))
    assert calm.survival_horizon_h == 11  # 6,000 an hour each: 60,000 lasts 10 hours
    assert calm.first_dry == ("a", "USD", 11)  # a's deposits do not quite cover it
    out = run(state, scenario(12, "0.5", 12, outages=(Outage("a", 1, 5),)))
    # b pays the whole 12,000 an hour alone for 5 hours, then is dry
    assert [h.balances[("a", "USD")] for h in out.hours[:5]] == [60_000] * 5
    assert out.hours[4].balances[("b", "USD")] == 0
    assert out.survival_horizon_h == 6
    assert out.first_dry == ("b", "USD", 6)


def test_without_payouts_to_go_by_the_demand_goes_where_the_money_was() -> None:
    state = StressState(usd(a=900, b=0, c=300), {"USD": 1_200})
    report = run(state, scenario(2, "0.5", 1))  # 600, shared 900 : 0 : 300
    assert report.hours[0].balances == usd(a=450, b=0, c=150)
    assert report.survival_horizon_h is None


def test_with_every_channel_out_payouts_wait_for_one_to_be_back() -> None:
    state = StressState(usd(a=1_000), {"USD": 0}, outflow_per_hour=usd(a=100))
    report = run(state, scenario(3, "0", 1, outages=(Outage("a", 1, 2),)))
    assert [h.waiting["USD"] for h in report.hours] == [100, 200, 0]
    assert report.hours[-1].balances == usd(a=700)
    assert report.survival_horizon_h is None


def test_credit_is_drawn_when_a_channel_runs_dry_and_never_beyond_its_limit() -> None:
    facility = CreditFacility("rcf", "a", "USD", 50_000, Fraction("0.065"), 365)
    state = StressState(DRY.positions, DRY.liabilities, outflow_per_hour=DRY.outflow_per_hour,
                        credit=(facility,))
    report = run(state, scenario(24, "0.5", 24))
    drawn = [h.credit_drawn["USD"] for h in report.hours]
    assert drawn[:3] == [0, 2_000, 8_000]
    assert drawn[9] == 50_000
    assert max(drawn) == 50_000
    assert report.first_dry == ("a", "USD", 2)
    assert report.survival_horizon_h == 11  # the facility carries a through hour 10
    exact = sum(Fraction(d * 65, 1_000 * 365 * 24) for d in drawn)
    assert report.interest_minor == {"USD": int(exact)}
    partly = StressState(DRY.positions, DRY.liabilities, outflow_per_hour=DRY.outflow_per_hour,
                         credit=(facility,), credit_drawn={"rcf": 45_000})
    assert run(partly, scenario(24, "0.5", 24)).hours[2].credit_drawn == {"USD": 50_000}


def test_the_value_at_risk_is_in_the_reporting_asset() -> None:
    positions = {("bank-a", "USD"): 1_000_000_00, ("tron", "USDT"): 2_000_000_000_000}
    liabilities = {"USD": 800_000_00, "USDT": 500_000_000_000}
    state = StressState(positions, liabilities, rates={"USDT": Fraction("0.999")},
                        scales={"USD": 2, "USDT": 6}, reporting_asset="USD")
    report = run(state, scenario(1, "0", 1, fx_shock={"USDT": Fraction("-0.2")}))
    var = report.value_at_risk
    assert var is not None
    # 1,500,000 USDT held beyond liabilities, 20 % less: 300,000 USDT at 0.999
    assert (var.asset, var.fx_loss_minor, var.shortfall_minor, var.costs_minor) == (
        "USD", 299_700_00, 0, 0)
    assert var.total_minor == 299_700_00
    assert report.missing_rates == ()
    unknown = run(StressState(positions, liabilities, scales={"USD": 2, "USDT": 6}),
                  scenario(1, "0", 1))
    assert unknown.value_at_risk is None
    assert unknown.missing_rates == ("USDT",)


def test_a_state_that_cannot_be_is_refused() -> None:
    with pytest.raises(InvalidStressState) as refused:
        run(StressState(usd(a=-1), {}), scenario(1, "0", 1))
    assert refused.value.code == "invalid_stress_state"
    facility = CreditFacility("rcf", "a", "USD", 10, Fraction(0))
    with pytest.raises(InvalidStressState, match="beyond its limit"):
        run(StressState(usd(a=1), {}, credit=(facility,), credit_drawn={"rcf": 11}),
            scenario(1, "0", 1))
    with pytest.raises(InvalidStressState, match="unknown facility"):
        run(StressState(usd(a=1), {}, credit_drawn={"rcf": 1}), scenario(1, "0", 1))
    with pytest.raises(InvalidStressState, match="no position holds"):
        run(StressState(usd(a=1), {"EUR": 5}), scenario(1, "0", 1))
    with pytest.raises(InvalidScenario, match="channel the pool does not have"):
        run(StressState(usd(a=1), {}), scenario(2, "0", 1, outages=(Outage("z", 1, 1),)))


# --- scenarios from tables -----------------------------------------------------------------

RUN = {"name": "bank run", "hours": 48, "withdrawal_share": "0.3", "withdrawal_hours": 24,
       "outages": [{"channel": "bank-a", "from_hour": 3, "to_hour": 10}],
       "fx_shock": {"USDT": "-0.2"}, "inflow_factor": "0.5"}


def test_a_scenario_reads_from_a_table() -> None:
    parsed = scenario_from_mapping(RUN, channels=["bank-a"], assets=["USD", "USDT"])
    assert parsed == Scenario("bank run", 48, Fraction(3, 10), 24, (Outage("bank-a", 3, 10),),
                              {"USDT": Fraction(-1, 5)}, Fraction(1, 2))


@pytest.mark.parametrize(("change", "field"), [
    ({"withdrawal_share": "1.01"}, "scenario.withdrawal_share"),
    ({"withdrawal_share": "-0.1"}, "scenario.withdrawal_share"),
    ({"withdrawal_share": 0.3}, "scenario.withdrawal_share"),
    ({"hours": 0}, "scenario.hours"),
    ({"hours": 721}, "scenario.hours"),
    ({"withdrawal_hours": 49}, "scenario.withdrawal_hours"),
    ({"outages": [{"channel": "bank-a", "from_hour": 5, "to_hour": 4}]},
     "scenario.outages[0].to_hour"),
    ({"outages": [{"channel": "bank-a", "from_hour": 1, "to_hour": 49}]},
     "scenario.outages[0].to_hour"),
    ({"outages": [{"channel": "bank-z", "from_hour": 1, "to_hour": 2}]},
     "scenario.outages[0].channel"),
    ({"fx_shock": {"EUR": "-0.1"}}, "scenario.fx_shock.EUR"),
    ({"fx_shock": {"USDT": "-1"}}, "scenario.fx_shock.USDT"),
    ({"fx_shock": {"USDT": "-1.5"}}, "scenario.fx_shock.USDT"),
    ({"inflow_factor": "-1"}, "scenario.inflow_factor"),
    ({"name": ""}, "scenario.name"),
    ({"weather": "fine"}, "scenario.weather"),
])
def test_an_impossible_scenario_is_refused_naming_the_field(change: dict[str, Any],
                                                            field: str) -> None:
    with pytest.raises(InvalidScenario) as refused:
        scenario_from_mapping({**RUN, **change}, channels=["bank-a"], assets=["USD", "USDT"])
    assert refused.value.code == "invalid_scenario"
    assert refused.value.facts["field"] == field


# --- properties ----------------------------------------------------------------------------

ASSETS = ["USD", "EUR"]
CHANNELS = ["a", "b", "c"]
shares = st.sampled_from([Fraction(0), Fraction(1, 10), Fraction(1, 4), Fraction(1, 2),
                          Fraction(9, 10), Fraction(1)])


@st.composite
def states(draw: st.DrawFn) -> StressState:
    assets = ASSETS[:draw(st.integers(1, 2))]
    channels = CHANNELS[:draw(st.integers(1, 3))]
    positions = {(c, a): draw(st.integers(0, 5_000)) for c in channels for a in assets}
    flows = st.sampled_from([0, 0, 100, 250, 500])
    credit: list[CreditFacility] = []
    drawn: dict[str, int] = {}
    for c, a in positions:
        if draw(st.integers(0, 3)) == 0:
            limit = draw(st.integers(0, 3_000))
            facility = CreditFacility(f"f-{c}-{a.lower()}", c, a, limit, Fraction("0.05"))
            credit.append(facility)
            drawn[facility.id] = draw(st.integers(0, limit))
    routes = [Route(s, d, a, draw(st.sampled_from([0, 5])),
                    Fraction(draw(st.sampled_from([0, 50]))),
                    draw(st.sampled_from([0, 1_800, 7_200])))
              for a in assets for s in channels for d in channels
              if s != d and draw(st.booleans())]
    return StressState(positions, {a: draw(st.integers(0, 20_000)) for a in assets},
                       {p: draw(flows) for p in positions}, {p: draw(flows) for p in positions},
                       tuple(credit), drawn, tuple(routes))


@st.composite
def scenarios(draw: st.DrawFn, share: Fraction | None = None) -> Scenario:
    hours = draw(st.integers(1, 12))
    outages = []
    for _ in range(draw(st.integers(0, 2))):
        start = draw(st.integers(1, hours))
        outages.append(Outage(draw(st.sampled_from(CHANNELS)), start,
                              draw(st.integers(start, hours))))
    return Scenario("s", hours, draw(shares) if share is None else share,
                    draw(st.integers(1, hours)), tuple(outages),
                    inflow_factor=draw(st.sampled_from([Fraction(0), Fraction(1, 2),
                                                        Fraction(1)])))


def known(state: StressState, plan: Scenario) -> Scenario:
    channels = {c for c, _ in state.positions}
    return Scenario(plan.name, plan.hours, plan.withdrawal_share, plan.withdrawal_hours,
                    tuple(o for o in plan.outages if o.channel in channels),
                    inflow_factor=plan.inflow_factor)


def horizon(report: StressReport) -> float:
    return float("inf") if report.survival_horizon_h is None else report.survival_horizon_h


@settings(max_examples=300)
@given(states(), scenarios())
def test_every_unit_is_accounted_for_and_nothing_goes_negative(
        state: StressState, plan: Scenario) -> None:
    plan = known(state, plan)
    report = run(state, plan)
    assets = sorted({a for _, a in state.positions})
    limits = {a: sum(f.limit_minor for f in state.credit if f.asset == a) for a in assets}
    for hour in report.hours:
        assert all(balance >= 0 for balance in hour.balances.values())
        for asset in assets:
            assert 0 <= hour.credit_drawn[asset] <= limits[asset]
    for asset in assets:
        assert report.credit_needed[asset] == sum(h.shortfall[asset] for h in report.hours)
        # the asset's money, start to end: what came in equals what went out or stayed
        channels = [c for c, a in state.positions if a == asset]
        withdrawn = int(state.liabilities.get(asset, 0) * plan.withdrawal_share)
        each, remainder = divmod(withdrawn, plan.withdrawal_hours)
        demand = 0
        deposits = 0
        for h in range(1, plan.hours + 1):
            demand += sum(state.outflow_per_hour.get((c, asset), 0) for c in channels)
            if h <= plan.withdrawal_hours:
                demand += each + (h <= remainder)
            down = {o.channel for o in plan.outages if o.from_hour <= h <= o.to_hour}
            deposits += sum(int(state.inflow_per_hour.get((c, asset), 0) * plan.inflow_factor)
                            for c in channels if c not in down)
        last = report.hours[-1]
        start_drawn = sum(state.credit_drawn.get(f.id, 0) for f in state.credit
                          if f.asset == asset)
        came_in = (sum(state.positions[(c, asset)] for c in channels) + deposits
                   + last.credit_drawn[asset] - start_drawn + report.credit_needed[asset])
        went_out = (sum(last.balances[(c, asset)] for c in channels) + last.in_flight[asset]
                    + report.fees_minor[asset] + demand - last.waiting[asset])
        assert came_in == went_out
    first = [h.hour for h in report.hours if any(h.shortfall.values())]
    assert report.survival_horizon_h == (first[0] if first else None)
    if report.survival_horizon_h is not None:
        assert report.first_dry is not None
        assert report.first_dry[2] <= report.survival_horizon_h


@settings(max_examples=300)
@given(states(), scenarios(share=Fraction(0)), shares, shares)
def test_more_withdrawal_never_survives_longer(state: StressState, plan: Scenario,
                                               one: Fraction, other: Fraction) -> None:
    plan = known(state, plan)
    low, high = sorted((one, other))
    reports = [run(state, Scenario(plan.name, plan.hours, share, plan.withdrawal_hours,
                                   plan.outages, inflow_factor=plan.inflow_factor))
               for share in (low, high)]
    assert horizon(reports[1]) <= horizon(reports[0])


def test_the_same_run_twice_is_the_same_report() -> None:
    state = StressState(DRY.positions, DRY.liabilities, outflow_per_hour=DRY.outflow_per_hour,
                        routes=(Route("b", "a", "USD", 3, Fraction(20), 1_800),))
    assert run(state, scenario(24, "0.5", 24)) == run(state, scenario(24, "0.5", 24))
