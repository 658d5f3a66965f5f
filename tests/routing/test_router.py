"""The router's hard constraints, its cost model, failover, and the fixed-priority baseline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fundpool.channels.ports import (
    Capabilities,
    ChannelOutcome,
    Instruction,
    OutcomeCallback,
    Quote,
    Submission,
)
from fundpool.pool.config import ChannelKind, CutOffWindow
from fundpool.routing import (
    NO_ELIGIBLE_CHANNEL,
    Exclusion,
    FixedPriorityRouter,
    InvalidRouter,
    InvalidRoutingPolicy,
    Router,
    RoutingPolicy,
    Strategy,
    UnknownChannel,
)
from fundpool.routing.router import US_PER_YEAR

SECOND_US = 1_000_000
DAY_US = 86_400 * SECOND_US
MONDAY_NOON_US = 4 * DAY_US + 12 * 3_600 * SECOND_US  # 1970-01-05 was a Monday
SATURDAY_NOON_US = MONDAY_NOON_US + 5 * DAY_US
PLENTY_MINOR = 10**15


@dataclass
class Rail:
    """A channel adapter with fixed capabilities and quotes; it counts what it is asked."""

    id: str
    fee_minor: int = 10
    fee_bps: int = 0
    latency_us: int = SECOND_US
    success_probability: float = 0.99
    assets: frozenset[str] = frozenset({"USD"})
    min_minor: dict[str, int] = field(default_factory=dict)
    max_minor: dict[str, int | None] = field(default_factory=dict)
    cutoff: tuple[CutOffWindow, ...] = ()
    capabilities_calls: int = 0
    quote_calls: int = 0

    def capabilities(self) -> Capabilities:
        self.capabilities_calls += 1
        return Capabilities(
            self.id,
            ChannelKind.BANK_WIRE,
            self.assets,
            self.min_minor,
            self.max_minor,
            batch_size_max=1,
            cutoff=self.cutoff,
        )

    def quote(self, asset: str, amount_minor: int, at_us: int) -> Quote:
        self.quote_calls += 1
        fee = self.fee_minor + amount_minor * self.fee_bps // 10_000
        return Quote(self.id, asset, amount_minor, fee, self.latency_us, self.success_probability)

    def submit(self, instructions: Sequence[Instruction], at_us: int) -> Submission:
        raise NotImplementedError

    def poll(self, until_us: int) -> list[ChannelOutcome]:
        raise NotImplementedError

    def subscribe(self, callback: OutcomeCallback) -> None:
        raise NotImplementedError


def plenty(*rails: Rail) -> dict[str, int]:
    return {rail.id: PLENTY_MINOR for rail in rails}


def deterministic(**changes: object) -> RoutingPolicy:
    """No hedging, and priors so heavy that every sampled probability is the quoted one."""
    settings_: dict[str, object] = {"hedge_share": 0.0, "prior_weight": 1e9}
    settings_.update(changes)
    return RoutingPolicy(**settings_)  # type: ignore[arg-type]


WEEKDAYS_9_TO_5 = CutOffWindow(frozenset(range(5)), 9 * 60, 17 * 60)


# --- hard constraints ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rail", "amount_minor", "at_us", "liquidity_minor", "reason", "quoted"),
    [
        (Rail("x", assets=frozenset({"EUR"})), 1_000, MONDAY_NOON_US, PLENTY_MINOR,
         Exclusion.ASSET_NOT_CARRIED, False),
        (Rail("x", min_minor={"USD": 1_000}), 999, MONDAY_NOON_US, PLENTY_MINOR,
         Exclusion.BELOW_MINIMUM, False),
        (Rail("x"), 0, MONDAY_NOON_US, PLENTY_MINOR, Exclusion.BELOW_MINIMUM, False),
        (Rail("x", max_minor={"USD": 5_000}), 5_001, MONDAY_NOON_US, PLENTY_MINOR,
         Exclusion.ABOVE_MAXIMUM, False),
        (Rail("x", cutoff=(WEEKDAYS_9_TO_5,)), 1_000, SATURDAY_NOON_US, PLENTY_MINOR,
         Exclusion.CLOSED, False),
        (Rail("x", cutoff=(WEEKDAYS_9_TO_5,)), 1_000, MONDAY_NOON_US - 4 * 3_600 * SECOND_US,
         PLENTY_MINOR, Exclusion.CLOSED, False),
        (Rail("x", fee_minor=10), 1_000, MONDAY_NOON_US, 1_009,
         Exclusion.INSUFFICIENT_LIQUIDITY, True),
        (Rail("x", fee_minor=10), 1_000, MONDAY_NOON_US, None,
         Exclusion.INSUFFICIENT_LIQUIDITY, True),
    ],
)
def test_each_constraint_excludes_with_its_reason(
    rail: Rail,
    amount_minor: int,
    at_us: int,
    liquidity_minor: int | None,
    reason: Exclusion,
    quoted: bool,
) -> None:
    fallback = Rail("fallback", fee_minor=1_000, assets=frozenset({"USD", "EUR"}))
    router = Router([rail, fallback], policy=deterministic(), seed=1)
    liquidity = plenty(fallback)
    if liquidity_minor is not None:
        liquidity[rail.id] = liquidity_minor
    decision = router.decide("p1", "USD", amount_minor, at_us, liquidity=liquidity)

    score = decision.candidate("x")
    assert score.eligible is False
    assert score.reason == reason
    assert (score.fee_minor is not None) is quoted
    assert rail.quote_calls == (1 if quoted else 0)
    assert score.expected_cost_minor is None
    if amount_minor > 0:
        assert decision.channel == "fallback"


@pytest.mark.parametrize(
    ("rail", "amount_minor", "at_us", "liquidity_minor"),
    [
        (Rail("x", min_minor={"USD": 1_000}), 1_000, MONDAY_NOON_US, PLENTY_MINOR),
        (Rail("x", max_minor={"USD": 5_000}), 5_000, MONDAY_NOON_US, PLENTY_MINOR),
        (Rail("x", max_minor={"USD": None}), 10**30, MONDAY_NOON_US, 10**31),
        (Rail("x", cutoff=(WEEKDAYS_9_TO_5,)), 1_000, MONDAY_NOON_US, PLENTY_MINOR),
        (Rail("x", fee_minor=10), 1_000, MONDAY_NOON_US, 1_010),  # amount + fee exactly
    ],
)
def test_the_limits_themselves_are_allowed(
    rail: Rail, amount_minor: int, at_us: int, liquidity_minor: int
) -> None:
    router = Router([rail], policy=deterministic(), seed=1)
    decision = router.decide("p1", "USD", amount_minor, at_us, liquidity={"x": liquidity_minor})
    assert decision.channel == "x"
    assert decision.candidate("x").reason is None


def test_a_channel_already_tried_is_excluded() -> None:
    cheap, dear = Rail("cheap", fee_minor=5), Rail("dear", fee_minor=50)
    router = Router([cheap, dear], policy=deterministic(), seed=1)
    decision = router.decide("p1", "USD", 1_000, 0, liquidity=plenty(cheap, dear),
                             exclude={"cheap"})
    assert decision.channel == "dear"
    assert decision.candidate("cheap").reason == Exclusion.EXCLUDED
    assert cheap.quote_calls == 0


def test_a_channel_cooling_down_is_excluded() -> None:
    cheap, dear = Rail("cheap", fee_minor=5), Rail("dear", fee_minor=50)
    router = Router([cheap, dear], policy=deterministic(), seed=1)
    for _ in range(5):
        router.record("cheap", "USD", False, 0)
    decision = router.decide("p1", "USD", 1_000, SECOND_US, liquidity=plenty(cheap, dear))
    assert decision.channel == "dear"
    assert decision.candidate("cheap").reason == Exclusion.COOLING_DOWN


def test_a_rail_reports_the_first_constraint_that_applies() -> None:
    rail = Rail("x", min_minor={"USD": 10_000}, cutoff=(WEEKDAYS_9_TO_5,))
    router = Router([rail], policy=deterministic(), seed=1)
    decision = router.decide("p1", "USD", 5, SATURDAY_NOON_US, liquidity={}, exclude=["x"])
    assert decision.candidate("x").reason == Exclusion.BELOW_MINIMUM
    decision = router.decide("p1", "USD", 50_000, SATURDAY_NOON_US, liquidity={}, exclude=["x"])
    assert decision.candidate("x").reason == Exclusion.CLOSED
    decision = router.decide("p1", "USD", 50_000, MONDAY_NOON_US, liquidity={}, exclude=["x"])
    assert decision.candidate("x").reason == Exclusion.EXCLUDED
    decision = router.decide("p1", "USD", 50_000, MONDAY_NOON_US, liquidity={})
    assert decision.candidate("x").reason == Exclusion.INSUFFICIENT_LIQUIDITY


def test_no_eligible_channel_gives_none_and_every_reason() -> None:
    rails = [
        Rail("eur-only", assets=frozenset({"EUR"})),
        Rail("small", max_minor={"USD": 100}),
        Rail("dry"),
        Rail("tried"),
    ]
    router = Router(rails, seed=1)
    decision = router.decide("p1", "USD", 1_000, 0, liquidity={"dry": 5, "tried": PLENTY_MINOR},
                             exclude=("tried",))
    assert decision.channel is None
    assert decision.reason == NO_ELIGIBLE_CHANNEL
    assert decision.hedged is False
    assert [(c.channel, c.reason) for c in decision.candidates] == [
        ("eur-only", Exclusion.ASSET_NOT_CARRIED),
        ("small", Exclusion.ABOVE_MAXIMUM),
        ("dry", Exclusion.INSUFFICIENT_LIQUIDITY),
        ("tried", Exclusion.EXCLUDED),
    ]
    assert "no eligible channel" in decision.summary()


def test_no_adapters_at_all() -> None:
    decision = Router([], seed=1).decide("p1", "USD", 1_000, 0, liquidity={})
    assert decision.channel is None
    assert decision.candidates == ()


def test_capabilities_are_read_once_and_quotes_on_every_decision() -> None:
    rails = [Rail("a"), Rail("b")]
    router = Router(rails, seed=1)
    for at_us in range(10):
        router.decide("p", "USD", 1_000 + at_us, at_us, liquidity=plenty(*rails))
    assert [r.capabilities_calls for r in rails] == [1, 1]
    assert [r.quote_calls for r in rails] == [10, 10]


# --- the cost model ------------------------------------------------------------------------


def test_the_lowest_fee_wins_when_all_else_is_equal() -> None:
    rails = [Rail("a", fee_minor=30), Rail("b", fee_minor=20), Rail("c", fee_minor=25)]
    router = Router(rails, policy=deterministic(), seed=1)
    decision = router.decide("p1", "USD", 10_000, 0, liquidity=plenty(*rails))
    assert decision.channel == "b"
    assert decision.strategy == Strategy.LEARNED
    assert decision.hedged is False


def test_the_float_makes_large_payments_take_the_fast_rail() -> None:
    slow = Rail("slow", fee_minor=100, latency_us=3 * DAY_US)
    fast = Rail("fast", fee_minor=2_000, latency_us=5 * SECOND_US)
    router = Router([slow, fast], policy=deterministic(), seed=1)
    liquidity = {"slow": 10**12, "fast": 10**12}
    assert router.decide("small", "USD", 10_000, 0, liquidity=liquidity).channel == "slow"
    # $10M for three days at 5 % a year is about $4,110 of float: far above the fee gap.
    big = router.decide("big", "USD", 10**9, 0, liquidity=liquidity)
    assert big.channel == "fast"
    assert big.candidate("slow").time_cost_minor == pytest.approx(
        10**9 * 500 / 10_000 * 3 * DAY_US / US_PER_YEAR
    )


def test_urgency_prices_the_payees_wait() -> None:
    slow = Rail("slow", fee_minor=10, latency_us=60 * SECOND_US)
    fast = Rail("fast", fee_minor=40, latency_us=SECOND_US)
    liquidity = plenty(slow, fast)
    calm = Router([slow, fast], policy=deterministic(), seed=1)
    assert calm.decide("p", "USD", 100, 0, liquidity=liquidity).channel == "slow"
    urgent = Router(
        [slow, fast], policy=deterministic(urgency_minor_per_second={"USD": 1.0}), seed=1
    )
    decision = urgent.decide("p", "USD", 100, 0, liquidity=liquidity)
    assert decision.channel == "fast"
    assert decision.candidate("slow").time_cost_minor == pytest.approx(60.0, rel=1e-6)
    # Urgency is per asset: another asset is not in a hurry.
    eur = [Rail("slow", 10, 0, 60 * SECOND_US, assets=frozenset({"EUR"})),
           Rail("fast", 40, 0, SECOND_US, assets=frozenset({"EUR"}))]
    urgent_usd = Router(eur, policy=deterministic(urgency_minor_per_second={"USD": 1.0}), seed=1)
    assert urgent_usd.decide("p", "EUR", 100, 0, liquidity=liquidity).channel == "slow"


def test_an_unreliable_cheap_rail_loses_to_a_reliable_one() -> None:
    flaky = Rail("flaky", fee_minor=40, success_probability=0.5)
    solid = Rail("solid", fee_minor=50, success_probability=0.99)
    router = Router([flaky, solid], policy=deterministic(), seed=1)
    decision = router.decide("p1", "USD", 100, 0, liquidity=plenty(flaky, solid))
    # flaky: 40 + 0.5 x 50 = 65; solid: 50 + 0.01 x 40 = 50.4
    assert decision.channel == "solid"
    assert decision.candidate("flaky").expected_cost_minor == pytest.approx(65.0, abs=0.01)
    assert decision.candidate("solid").expected_cost_minor == pytest.approx(50.4, abs=0.01)


def test_expected_cost_is_the_documented_formula() -> None:
    a = Rail("a", fee_minor=120, latency_us=2 * DAY_US, success_probability=0.9)
    b = Rail("b", fee_minor=300, latency_us=30 * SECOND_US, success_probability=0.97)
    c = Rail("c", fee_minor=900, latency_us=SECOND_US, success_probability=0.999)
    policy = deterministic(
        time_value_bps_per_year=400,
        urgency_minor_per_second={"USD": 0.01},
        failure_cost_minor={"USD": 250},
    )
    router = Router([a, b, c], policy=policy, seed=3)
    amount = 5_000_000
    decision = router.decide("p1", "USD", amount, 0, liquidity=plenty(a, b, c))

    def time_cost(rail: Rail) -> float:
        return amount * 400 / 10_000 * rail.latency_us / US_PER_YEAR + 0.01 * rail.latency_us / 1e6

    attempt = {r.id: r.fee_minor + time_cost(r) for r in (a, b, c)}
    for rail in (a, b, c):
        score = decision.candidate(rail.id)
        others = [cost for channel, cost in attempt.items() if channel != rail.id]
        assert score.time_cost_minor == pytest.approx(time_cost(rail))
        assert score.retry_cost_minor == pytest.approx(min(others) + 250)
        assert score.sampled_success_probability == pytest.approx(
            rail.success_probability, abs=1e-4
        )
        p = score.sampled_success_probability
        assert p is not None
        assert score.expected_cost_minor == pytest.approx(
            attempt[rail.id] + (1 - p) * (min(others) + 250)
        )
    best = min(decision.candidates, key=lambda s: s.expected_cost_minor or 0.0)
    assert decision.channel == best.channel
    assert decision.channel in decision.summary()


def test_a_lone_rail_retries_on_itself() -> None:
    rail = Rail("only", fee_minor=70, success_probability=0.8)
    decision = Router([rail], policy=deterministic(), seed=1).decide(
        "p1", "USD", 100, 0, liquidity=plenty(rail)
    )
    score = decision.candidate("only")
    assert score.retry_cost_minor == pytest.approx(70.0, abs=1e-3)
    assert score.expected_cost_minor == pytest.approx(70 + 0.2 * 70, abs=0.01)


def test_a_rail_quoting_certainty_is_still_learnable() -> None:
    sure = Rail("sure", success_probability=1.0)
    never = Rail("never", success_probability=0.0)
    router = Router([sure, never], seed=1)
    decision = router.decide("p1", "USD", 100, 0, liquidity=plenty(sure, never))
    assert decision.channel in {"sure", "never"}
    assert 0 < (decision.candidate("sure").posterior_mean or 0) < 1


# --- failover ------------------------------------------------------------------------------


def test_failover_walks_the_candidates_in_cost_order() -> None:
    rails = [Rail("c", fee_minor=30), Rail("a", fee_minor=10), Rail("b", fee_minor=20)]
    router = Router(rails, policy=deterministic(), seed=1)
    assert router.policy.max_attempts == 3
    tried: list[str] = []
    for _ in range(router.policy.max_attempts):
        decision = router.decide("p1", "USD", 100, 0, liquidity=plenty(*rails), exclude=tried)
        assert decision.channel is not None
        tried.append(decision.channel)
        router.record(decision.channel, "USD", False, 0)
    assert tried == ["a", "b", "c"]
    last = router.decide("p1", "USD", 100, 0, liquidity=plenty(*rails), exclude=tried)
    assert last.channel is None
    assert {c.reason for c in last.candidates} == {Exclusion.EXCLUDED}


# --- the fixed-priority baseline -----------------------------------------------------------


def test_fixed_priority_takes_the_first_eligible_channel_whatever_it_costs() -> None:
    rails = [Rail("cheap", fee_minor=1), Rail("dear", fee_minor=500),
             Rail("closed", cutoff=(WEEKDAYS_9_TO_5,))]
    router = FixedPriorityRouter(rails, ["closed", "dear", "cheap"])
    decision = router.decide("p1", "USD", 100, SATURDAY_NOON_US, liquidity=plenty(*rails))
    assert decision.channel == "dear"
    assert decision.strategy == Strategy.FIXED
    assert decision.hedged is False
    assert decision.candidate("closed").reason == Exclusion.CLOSED
    cheap = decision.candidate("cheap")
    assert cheap.posterior_mean is None
    assert cheap.sampled_success_probability is None
    assert cheap.expected_cost_minor == pytest.approx(1 + 0.01 * 500)
    assert router.decide("p2", "USD", 100, MONDAY_NOON_US,
                         liquidity=plenty(*rails)).channel == "closed"


def test_fixed_priority_learns_nothing_but_cools_down() -> None:
    first, second = Rail("first"), Rail("second")
    router = FixedPriorityRouter([first, second], ["first", "second"])
    liquidity = plenty(first, second)
    for minute in range(200):  # one failure a minute drains before the next: no cool-down
        router.record("first", "USD", False, minute * 60 * SECOND_US)
        decision = router.decide("p", "USD", 100, minute * 60 * SECOND_US, liquidity=liquidity)
        assert decision.channel == "first"
    now = 200 * 60 * SECOND_US
    for _ in range(5):
        router.record("first", "USD", False, now)
    decision = router.decide("p", "USD", 100, now, liquidity=liquidity)
    assert decision.channel == "second"
    assert decision.candidate("first").reason == Exclusion.COOLING_DOWN
    assert router.decide("p", "USD", 100, now + 40 * SECOND_US,
                         liquidity=liquidity).channel == "first"


def test_fixed_priority_puts_unnamed_channels_last_and_refuses_bad_names() -> None:
    rails = [Rail("a"), Rail("b"), Rail("c")]
    assert FixedPriorityRouter(rails, ["c"]).priority == ("c", "a", "b")
    with pytest.raises(InvalidRouter):
        FixedPriorityRouter(rails, ["c", "z"])
    with pytest.raises(InvalidRouter):
        FixedPriorityRouter(rails, ["c", "c"])


# --- refusals ------------------------------------------------------------------------------


def test_adapters_must_have_distinct_ids_matching_their_capabilities() -> None:
    with pytest.raises(InvalidRouter):
        Router([Rail("a"), Rail("a")], seed=1)

    class Liar(Rail):
        def capabilities(self) -> Capabilities:
            return Capabilities("other", ChannelKind.BOOK, frozenset({"USD"}), {}, {}, 1)

    with pytest.raises(InvalidRouter):
        Router([Liar("a")], seed=1)


def test_recording_an_unknown_channel_is_refused() -> None:
    router = Router([Rail("a")], seed=1)
    with pytest.raises(UnknownChannel) as raised:
        router.record("b", "USD", True, 0)
    assert raised.value.code == "unknown_channel"


@pytest.mark.parametrize(
    "changes",
    [
        {"time_value_bps_per_year": -1},
        {"time_value_bps_per_year": 1.5},
        {"urgency_minor_per_second": {"USD": -1.0}},
        {"urgency_minor_per_second": {"USD": float("nan")}},
        {"failure_cost_minor": {"USD": -5}},
        {"prior_weight": 0},
        {"prior_weight": float("inf")},
        {"evidence_max": 0.5},
        {"hedge_share": -0.1},
        {"hedge_share": 0.9},
        {"cooldown_capacity": 0.5},
        {"cooldown_leak_per_second": 0},
        {"cooldown_resume_level": 5.0},
        {"cooldown_resume_level": 0},
        {"max_attempts": 0},
        {"max_attempts": 11},
        {"max_attempts": True},
    ],
)
def test_an_invalid_policy_is_refused(changes: dict[str, object]) -> None:
    with pytest.raises(InvalidRoutingPolicy) as raised:
        RoutingPolicy(**changes)  # type: ignore[arg-type]
    assert raised.value.code == "invalid_routing_policy"
    assert raised.value.facts["field"] in str(raised.value)


def test_a_policy_keeps_its_own_copy_of_its_tables() -> None:
    urgency = {"USD": 1.0}
    policy = RoutingPolicy(urgency_minor_per_second=urgency)
    urgency["USD"] = 99.0
    assert policy.urgency("USD") == 1.0
    assert policy.urgency("EUR") == 0.0


# --- properties ----------------------------------------------------------------------------

ASSETS = ("USD", "EUR")


@st.composite
def rails_and_payment(draw: st.DrawFn) -> tuple[list[Rail], dict[str, int], list[str], str, int]:
    count = draw(st.integers(0, 8))
    rails = []
    liquidity: dict[str, int] = {}
    for index in range(count):
        assets = draw(st.frozensets(st.sampled_from(ASSETS), min_size=1))
        rail = Rail(
            f"r{index}",
            fee_minor=draw(st.integers(0, 1_000)),
            fee_bps=draw(st.integers(0, 300)),
            latency_us=draw(st.integers(0, 5 * DAY_US)),
            success_probability=draw(st.floats(0.0, 1.0)),
            assets=assets,
            min_minor={a: draw(st.integers(1, 5_000)) for a in assets if draw(st.booleans())},
            max_minor={a: draw(st.none() | st.integers(1, 10**7)) for a in assets
                       if draw(st.booleans())},
        )
        rails.append(rail)
        if draw(st.booleans()):
            liquidity[rail.id] = draw(st.integers(0, 10**8))
    exclude = [rail.id for rail in rails if draw(st.integers(0, 4)) == 0]
    return rails, liquidity, exclude, draw(st.sampled_from(ASSETS)), draw(st.integers(1, 10**7))


def expected_reason(rail: Rail, asset: str, amount: int, liquidity: dict[str, int],
                    exclude: list[str]) -> Exclusion | None:
    if asset not in rail.assets:
        return Exclusion.ASSET_NOT_CARRIED
    if amount < rail.min_minor.get(asset, 1):
        return Exclusion.BELOW_MINIMUM
    upper = rail.max_minor.get(asset)
    if upper is not None and amount > upper:
        return Exclusion.ABOVE_MAXIMUM
    if rail.id in exclude:
        return Exclusion.EXCLUDED
    fee = rail.fee_minor + amount * rail.fee_bps // 10_000
    if liquidity.get(rail.id, 0) < amount + fee:
        return Exclusion.INSUFFICIENT_LIQUIDITY
    return None


@settings(max_examples=200, deadline=None)
@given(rails_and_payment(), st.integers(0, 2**32), st.booleans())
def test_every_decision_accounts_for_every_adapter(
    case: tuple[list[Rail], dict[str, int], list[str], str, int], seed: int, hedge: bool
) -> None:
    rails, liquidity, exclude, asset, amount = case
    policy = RoutingPolicy(hedge_share=0.5 if hedge else 0.0)
    router = Router(rails, policy=policy, seed=seed)
    decision = router.decide("p", asset, amount, 0, liquidity=liquidity, exclude=exclude)

    assert [c.channel for c in decision.candidates] == [r.id for r in rails]
    for rail, score in zip(rails, decision.candidates, strict=True):
        assert score.reason == expected_reason(rail, asset, amount, liquidity, exclude)
        assert score.eligible is (score.reason is None)
        assert (score.expected_cost_minor is not None) is score.eligible
    eligible = [c for c in decision.candidates if c.eligible]
    if not eligible:
        assert decision.channel is None
        assert decision.reason == NO_ELIGIBLE_CHANNEL
        return
    assert decision.reason is None
    chosen = decision.candidate(decision.channel or "")
    assert chosen.eligible
    cheapest = min(c.expected_cost_minor or 0.0 for c in eligible)
    if not decision.hedged:
        assert chosen.expected_cost_minor == cheapest
    else:
        assert len(eligible) > 1
        assert chosen.channel != min(eligible, key=lambda c: c.expected_cost_minor or 0.0).channel
