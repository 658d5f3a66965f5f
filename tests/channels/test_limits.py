"""The one rail-limits check (channels/limits.py): its bounds, and the payment service, the
router, the dispatcher, the payout-file checker and a simulated rail all answering with it
from the same configured limits, each under the code it reports."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fundpool.channels.limits import (
    LimitBreach,
    Limits,
    declared_limits,
    limit_breach,
    within_limits,
)
from fundpool.channels.ports import Direction, Instruction
from fundpool.channels.simulated import SimulatedRail
from fundpool.core.clock import Uuid7Ids
from fundpool.core.errors import FundpoolError
from fundpool.core.money import AMOUNT_MAX_MINOR
from fundpool.payments.csv_batch import parse_payout_csv
from fundpool.payments.dispatch.liquidity import Liquidity
from fundpool.payments.dispatch.routes import RouteChooser
from fundpool.payments.model import AmountOutsideLimits, PaymentKind, PaymentRequest
from fundpool.payments.rules import PaymentRules
from fundpool.pool.config import FeeSchedule, FundpoolConfig, load_config
from fundpool.routing.decision import Exclusion
from fundpool.routing.router import FixedPriorityRouter

CONFIG = load_config(Path(__file__).resolve().parents[2] / "examples" / "pool.toml")
MONDAY_NOON_US = 1_767_614_400_000_000  # 2026-01-05 12:00 UTC: every window is open


@st.composite
def limits_and_amount(draw: st.DrawFn, top: int = AMOUNT_MAX_MINOR) -> tuple[Limits, int]:
    low = draw(st.integers(1, top))
    high = draw(st.none() | st.integers(low, top))
    # Amounts at and around both bounds, and anywhere.
    near = [low - 1, low, low + 1] + ([] if high is None else [high - 1, high, high + 1])
    amount = draw(st.sampled_from(near) | st.integers(0, top + 1))
    return Limits(low, high), amount


@given(limits_and_amount())
def test_the_bounds_are_inclusive_and_each_breach_has_its_code(
    case: tuple[Limits, int],
) -> None:
    limits, amount = case
    breach = limit_breach(limits, amount)
    if amount < limits.min_minor:
        assert breach is LimitBreach.BELOW_MINIMUM
    elif limits.max_minor is not None and amount > limits.max_minor:
        assert breach is LimitBreach.ABOVE_MAXIMUM
    else:
        assert breach is None
    assert within_limits(limits, amount) == (breach is None)


@given(st.integers(1, AMOUNT_MAX_MINOR), st.none() | st.integers(0, AMOUNT_MAX_MINOR))
def test_both_bounds_are_amounts_a_rail_takes(low: int, extra: int | None) -> None:
    high = None if extra is None else min(AMOUNT_MAX_MINOR, low + extra)
    limits = Limits(low, high)
    assert limit_breach(limits, low) is None
    assert limit_breach(limits, low - 1) is LimitBreach.BELOW_MINIMUM
    if high is not None:
        assert limit_breach(limits, high) is None
        assert limit_breach(limits, high + 1) is LimitBreach.ABOVE_MAXIMUM


def test_the_default_limits_take_one_minor_unit_and_have_no_maximum() -> None:
    assert limit_breach(Limits(), 0) is LimitBreach.BELOW_MINIMUM
    assert limit_breach(Limits(), 1) is None
    assert limit_breach(Limits(), AMOUNT_MAX_MINOR) is None


def test_the_routers_codes_are_the_checks() -> None:
    assert Exclusion.BELOW_MINIMUM.value == LimitBreach.BELOW_MINIMUM.value
    assert Exclusion.ABOVE_MAXIMUM.value == LimitBreach.ABOVE_MAXIMUM.value


@pytest.mark.parametrize("channel", [c.id for c in CONFIG.channels])
def test_a_rail_declares_its_configured_limits(channel: str) -> None:
    configured = CONFIG.channel(channel)
    rail = SimulatedRail(configured, CONFIG.assets, seed=1)
    capabilities = rail.capabilities()
    assert (capabilities.min_minor, capabilities.max_minor) == declared_limits(configured)
    for code in configured.assets:
        assert capabilities.limits_for(code) == configured.limits_for(code)


def with_rtp_limits(limits: Limits) -> FundpoolConfig:
    # Free of fees: a named rail whose fee exceeds the amount is refused at creation
    # (fee_exceeds_amount), which is not what this compares.
    channels = tuple(replace(c, limits={"USD": limits}, fees={"USD": FeeSchedule()})
                     if c.id == "rtp" else c for c in CONFIG.channels)
    return replace(CONFIG, channels=channels)


def payout_file(amount_text: str) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("payee", "account", "amount", "asset", "reference", "channel"))
    writer.writerow(("Bob Smith", "DE89370400440532013000", amount_text, "USD", "inv-1", "rtp"))
    return buffer.getvalue().encode()


@settings(max_examples=60, deadline=None)
@given(limits_and_amount(top=10**9).filter(lambda case: case[1] >= 1))
def test_every_place_that_checks_an_amount_gives_the_same_answer(
    case: tuple[Limits, int],
) -> None:
    """RTP's configured USD limits, drawn: the payment service at creation, the router, the
    dispatcher for a named rail, the payout-file checker and the rail itself agree."""
    limits, amount = case
    config = with_rtp_limits(limits)
    pool = config.pool()
    usd = config.asset("USD")
    breach = limit_breach(limits, amount)

    # The payment service: a payout naming the channel.
    rules = PaymentRules(config, pool, Uuid7Ids.seeded(1))
    request = PaymentRequest(PaymentKind.PAYOUT, "USD", amount, channel="rtp")
    if breach is None:
        assert rules.new_payment(request, None, MONDAY_NOON_US).amount_minor == amount
    else:
        with pytest.raises(AmountOutsideLimits) as caught:
            rules.new_payment(request, None, MONDAY_NOON_US)
        assert caught.value.facts["min_minor"] == limits.min_minor
        assert caught.value.facts["max_minor"] == limits.max_minor

    # The router, on the rail built from the same configuration.
    rail = SimulatedRail(config.channel("rtp"), config.assets, seed=1)
    router = FixedPriorityRouter([rail], ["rtp"])
    decision = router.decide("p1", "USD", amount, MONDAY_NOON_US,
                             liquidity={"rtp": AMOUNT_MAX_MINOR})
    reason = decision.candidate("rtp").reason
    assert reason == (None if breach is None else breach.value)

    # The dispatcher, for a deposit that names the rail (no liquidity involved).
    chooser = RouteChooser({"rtp": rail}, {"rtp": rail.capabilities()}, router)
    arrived = replace(
        rules.new_payment(PaymentRequest(PaymentKind.DEPOSIT, "USD", 1, channel="book"), None,
                          MONDAY_NOON_US),
        amount_minor=amount, channel="rtp",
    )
    # A deposit's check reads no liquidity: only an outbound payment's needs funds.
    problem, _ = chooser.named_rail_problem(arrived, MONDAY_NOON_US, cast(Liquidity, None))
    assert problem == (None if breach is None else breach.value)

    # The payout-file checker.
    (row,) = parse_payout_csv(payout_file(usd.format(amount)), config, pool).rows
    codes = [error.code.value for error in row.errors]
    assert codes == ([] if breach is None else ["amount_outside_limits"])

    # The rail itself, were it sent anyway.
    instruction = Instruction("p1", Direction.OUTBOUND, "USD", amount)
    if breach is None:
        rail.submit([instruction], MONDAY_NOON_US)
    else:
        with pytest.raises(FundpoolError) as refused:
            rail.submit([instruction], MONDAY_NOON_US)
        assert refused.value.facts["reason"] == "amount_outside_limits"
