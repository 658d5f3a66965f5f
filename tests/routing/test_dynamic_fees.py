"""Dynamic fees in routing: a rail's congestion fee is part of its quote (liquidity, cost, the
fee posted), a congested rail's fee rises until routing picks another and the decision says
why, the window and the risk grade multiply it, and without a meter (or for a rail or asset
it does not price) every decision is what it was before, byte for byte. Through the
dispatcher too: what it sends feeds the meter, and a payment is charged what it was quoted."""

from __future__ import annotations

from fractions import Fraction

import pytest

from fundpool.channels.congestion import DynamicFee, FeeWindow
from fundpool.channels.ports import OutcomeKind
from fundpool.core.actor import Actor
from fundpool.core.clock import ManualClock
from fundpool.core.money import Asset, AssetKind
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.payments.dispatch import Dispatcher
from fundpool.payments.dispatch.routes import held_risk_grade
from fundpool.payments.model import Action, Payment, PaymentEvent, PaymentState, Step
from fundpool.routing import FixedPriorityRouter, Router, RoutingDecision
from fundpool.routing.congestion import CongestionMeter
from fundpool.routing.policy import RoutingPolicy
from fundpool.stores.dispatch_sql import SqlDispatchRecords
from tests.payments.test_dispatch import NOW, Wired, config_with, payout, wire
from tests.routing.test_router import MONDAY_NOON_US, Rail, deterministic, plenty

USD = Asset("USD", 2, AssetKind.FIAT)
US = 1_000_000
HOUR_US = 3_600 * US
MONDAY_0H_US = MONDAY_NOON_US - 12 * HOUR_US


def congestion(**fees: DynamicFee) -> CongestionMeter:
    return CongestionMeter(fees)


def dynamic(**changes: object) -> DynamicFee:
    """0.10 to 50.00 USD; 10 payments a second without congestion; 1/8 a step at most."""
    settings: dict[str, object] = {"asset": USD, "base_fee_minor": 10, "ceiling_minor": 5_000,
                                   "target_per_interval": 10, "interval_s": 1}
    settings.update(changes)
    return DynamicFee(**settings)  # type: ignore[arg-type]


def congest(meter: CongestionMeter, channel: str, start_us: int, seconds: int) -> int:
    """The rail takes 100 payments a second (ten times its target) for `seconds`: the
    instant after."""
    for second in range(seconds):
        meter.taken(channel, 100, start_us + second * US)
    return start_us + seconds * US


# --- the router ------------------------------------------------------------------------------


def test_a_congested_rail_is_priced_out_and_the_decision_says_why() -> None:
    cheap, other = Rail("cheap", fee_minor=100), Rail("other", fee_minor=150)
    meter = congestion(cheap=dynamic())
    router = Router([cheap, other], policy=deterministic(), seed=1, congestion=meter)
    at = MONDAY_0H_US

    first = router.decide("p-1", "USD", 10_000, at, liquidity=plenty(cheap, other))
    assert first.channel == "cheap"
    chosen = first.candidate("cheap")
    assert (chosen.fee_minor, chosen.dynamic_fee_minor) == (110, 10)
    assert chosen.fee_explanation == "congestion base fee 0.10"
    assert first.candidate("other").dynamic_fee_minor is None
    assert "fee 110 includes congestion base fee 0.10" in first.summary()

    # Ten times the target for 14 s: 10 -> 11 -> 12 -> 14 -> 16 -> ... -> 45 -> 51 (1/8 a step).
    at = congest(meter, "cheap", at, 14)
    state = meter.state("cheap", at)
    assert state is not None
    assert state.base_fee_minor == 51
    second = router.decide("p-2", "USD", 10_000, at, liquidity=plenty(cheap, other))
    assert second.channel == "other"
    priced = second.candidate("cheap")
    assert (priced.fee_minor, priced.dynamic_fee_minor) == (151, 51)
    summary = second.summary()
    assert summary.startswith("other (learned choice)")
    assert "next cheap at 152.50 (its fee 151 includes congestion base fee 0.51)" in summary
    assert summary.endswith("; priced out by congestion: cheap")

    # Idle again: 1/8 off a second, back at the floor, and back on the cheap rail.
    at += 30 * US
    third = router.decide("p-3", "USD", 10_000, at, liquidity=plenty(cheap, other))
    assert third.channel == "cheap"
    assert third.candidate("cheap").fee_minor == 110
    assert "priced out" not in third.summary()


def test_the_window_and_the_risk_grade_multiply_the_fee_and_are_kept() -> None:
    rail = Rail("rtp", fee_minor=45)
    meter = congestion(rtp=dynamic(
        base_fee_minor=120, windows=(FeeWindow(9, 17, Fraction(3, 2)),),
        risk={"review": Fraction(6, 5)}))
    router = FixedPriorityRouter([rail], ["rtp"], congestion=meter)
    at_10h = MONDAY_0H_US + 10 * HOUR_US
    decision = router.decide("p-1", "USD", 10_000, at_10h, liquidity=plenty(rail),
                             risk_grade="review")
    candidate = decision.candidate("rtp")
    assert (candidate.fee_minor, candidate.dynamic_fee_minor) == (45 + 216, 216)
    assert candidate.fee_explanation == (
        "congestion base fee 1.20 × 1.5 (window 09–17 UTC) × 1.2 (risk grade review) = 2.16")
    assert decision.risk_grade == "review"
    stored = decision.to_dict()
    assert stored["risk_grade"] == "review"
    assert stored["candidates"][0]["dynamic_fee_minor"] == 216
    assert RoutingDecision.from_dict(stored) == decision
    night = router.decide("p-2", "USD", 10_000, MONDAY_0H_US + 20 * HOUR_US,
                          liquidity=plenty(rail), risk_grade="allow")
    assert night.candidate("rtp").fee_minor == 45 + 120  # no window, allow has no multiplier


def test_the_dynamic_fee_counts_in_the_liquidity_a_rail_needs() -> None:
    rail = Rail("rtp", fee_minor=45)
    router = Router([rail], policy=deterministic(), seed=1,
                    congestion=congestion(rtp=dynamic(base_fee_minor=100)))
    short = router.decide("p-1", "USD", 10_000, MONDAY_0H_US, liquidity={"rtp": 10_144})
    assert short.channel is None
    assert short.candidates[0].reason == "insufficient_liquidity"
    assert short.candidates[0].fee_explanation == "congestion base fee 1.00"
    enough = router.decide("p-2", "USD", 10_000, MONDAY_0H_US, liquidity={"rtp": 10_145})
    assert enough.channel == "rtp"


@pytest.mark.parametrize("meter", [
    None,
    congestion(elsewhere=dynamic()),  # prices a rail the router does not weigh
    congestion(a=dynamic(asset=Asset("EUR", 2, AssetKind.FIAT))),  # in another asset
])
def test_without_a_dynamic_fee_decisions_are_as_before_byte_for_byte(
    meter: CongestionMeter | None,
) -> None:
    def decisions(with_meter: bool) -> list[dict[str, object]]:
        rails = [Rail("a", fee_minor=100, fee_bps=5), Rail("b", fee_minor=120),
                 Rail("c", assets=frozenset({"EUR"}))]
        router = Router(rails, seed=7, congestion=meter if with_meter else None)
        out = []
        for i in range(200):
            at = MONDAY_0H_US + i * US
            if meter is not None:
                meter.taken("a", 1_000, at)
            out.append(router.decide(f"p-{i}", "USD", 1_000 + i, at, liquidity=plenty(*rails),
                                     risk_grade="hold").to_dict())
            router.record("a", "USD", i % 7 != 0, at)
        return out

    assert decisions(True) == decisions(False)
    assert "risk_grade" not in decisions(True)[0]


# --- through the dispatcher ------------------------------------------------------------------


def priced(store: LedgerStore, ledger: Ledger, clock: ManualClock,
           **table: object) -> tuple[Wired, CongestionMeter]:
    """examples/pool.toml's USD rails on scripted rails, bank-a with a dynamic fee from 0.10
    (2 payments a second without congestion; `table` adds to it), a learned router that
    weighs it, and the dispatcher that feeds it."""
    config = config_with(channels={"bank-a": {"dynamic_fee": {
        "base": "0.10", "ceiling": "5.00", "target_per_interval": 2, "interval_s": 1,
        **table}}})
    w = wire(store, ledger, clock, config=config, dispatch=NOW)
    meter = CongestionMeter.of(config)
    assert meter is not None
    assert meter.channels == ("bank-a",)
    w.router = Router(list(w.rails.values()), seed=5, congestion=meter,
                      policy=RoutingPolicy(hedge_share=0.0, prior_weight=1e9))
    w.dispatcher = Dispatcher(w.service, w.rails, w.router, clock, w.ids,
                              records=SqlDispatchRecords(store), policy=NOW)
    w.fund("bank-a", "USD", 1_000_000)
    w.fund("rtp", "USD", 1_000_000)
    return w, meter


def routed(w: Wired, n: int) -> list[Payment]:
    payments = []
    for intake in w.intake(*[payout(10_000) for _ in range(n)]):
        assert isinstance(intake.outcome, Payment), intake.outcome
        payments.append(intake.outcome)
    return payments


def test_what_the_dispatcher_sends_congests_the_rail_until_routing_moves_on(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w, meter = priced(store, ledger, clock)
    # 100.00 on bank-a: 0.25 + 0.05 + its congestion fee; on rtp 0.45. Four a second, twice
    # bank-a's target: its base fee rises 0.10 -> 0.11 -> 0.12 -> 0.14 -> 0.16.
    fees = []
    for _ in range(5):
        batch = routed(w, 4)
        fees.append({(p.channel, p.fee_minor) for p in batch})
        w.tick()
    assert fees == [{("bank-a", 40)}, {("bank-a", 40)}, {("bank-a", 41)}, {("bank-a", 42)},
                    {("bank-a", 44)}]
    state = meter.state("bank-a", clock.now_us())
    assert state is not None
    assert (state.base_fee_minor, state.used) == (16, 4)
    (moved,) = routed(w, 1)
    assert (moved.channel, moved.fee_minor) == ("rtp", 45)
    (route,) = w.routes(moved.id)
    decision = RoutingDecision.from_dict(route.decision)
    assert decision.candidate("bank-a").fee_explanation == "congestion base fee 0.16"
    assert decision.summary().endswith("; priced out by congestion: bank-a")
    # What was sent on rtp is not bank-a's congestion; idle, bank-a is back at its floor.
    w.tick(seconds=10)
    (back,) = routed(w, 1)
    assert (back.channel, back.fee_minor) == ("bank-a", 40)


def test_a_rail_a_payment_names_is_charged_its_congestion_fee_too(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w, _ = priced(store, ledger, clock)
    (intake,) = w.intake(payout(10_000, channel="bank-a"))
    payment = intake.outcome
    assert isinstance(payment, Payment)
    assert (payment.channel, payment.fee_minor) == ("bank-a", 40)
    (route,) = w.routes(payment.id)
    assert route.decision == {"strategy": "given", "channel": "bank-a", "fee_minor": 40,
                              "dynamic_fee_minor": 10,
                              "fee_explanation": "congestion base fee 0.10"}


RISK = Actor("user", "u-risk", "rita", ("risk",))


def test_a_payment_released_from_a_hold_is_priced_by_its_grade_and_so_is_its_failover(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    # A review costs twice bank-a's congestion fee: 0.30 + 0.20 > rtp's 0.45.
    w, _ = priced(store, ledger, clock, risk={"review": "2"})
    payment = w.service.create(payout(10_000))
    w.service.act(Step(payment.id, Action.HOLD, reason="risk review: new payee", actor=RISK))
    w.service.act(Step(payment.id, Action.RELEASE, reason="checked", actor=RISK))
    (intake,) = w.dispatcher.take_up()
    routed_ = intake.outcome
    assert isinstance(routed_, Payment)
    assert (routed_.channel, routed_.fee_minor) == ("rtp", 45)
    (first,) = w.routes(payment.id)
    decision = RoutingDecision.from_dict(first.decision)
    assert decision.risk_grade == "review"
    assert decision.candidate("bank-a").fee_explanation == (
        "congestion base fee 0.10 × 2 (risk grade review) = 0.20")
    assert decision.summary().endswith("; priced out by congestion: bank-a")
    # rtp fails it: the failover goes to bank-a, priced by the same grade.
    w.tick()
    w.rail("rtp").report(payment.id, OutcomeKind.FAILED, reason="closed account")
    w.tick()
    assert w.get(payment.id).channel == "bank-a"
    assert w.get(payment.id).fee_minor == 50
    second = w.routes(payment.id)[-1]
    assert (second.attempt, second.channel) == (2, "bank-a")
    assert RoutingDecision.from_dict(second.decision).risk_grade == "review"


def test_the_grade_a_payment_was_held_with_is_risk_control_s_only() -> None:
    def held(reason: str | None) -> list[PaymentEvent]:
        return [PaymentEvent("p", 1, Action.CREATE, None, PaymentState.INITIATED, 0),
                PaymentEvent("p", 2, Action.HOLD, PaymentState.INITIATED, PaymentState.HELD, 1,
                             reason=reason),
                PaymentEvent("p", 3, Action.RELEASE, PaymentState.HELD, PaymentState.SCREENED,
                             2)]

    assert held_risk_grade(held("risk review: new payee")) == "review"
    assert held_risk_grade(held("risk hold")) == "hold"
    assert held_risk_grade(held("looks odd")) is None  # a person's hold
    assert held_risk_grade(held(None)) is None
    assert held_risk_grade(held("risk hold")[:1]) is None  # never held
