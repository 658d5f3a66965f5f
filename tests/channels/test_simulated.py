"""The simulated rail: deterministic under its seed, realistic per kind (clearing notices,
T+N cards, chain confirmations), refusing bad submissions whole, and as messy in delivery as
its chaos knobs say."""

from __future__ import annotations

import dataclasses
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from fundpool.channels.fees import EvmGasFee, FlatFee
from fundpool.channels.ports import (
    ChannelOutcome,
    Direction,
    Instruction,
    OutcomeKind,
)
from fundpool.channels.profiles import US_PER_DAY, US_PER_SECOND, default_profile
from fundpool.channels.simulated import LATENCY_CAP_FACTOR, ChannelRefused, SimulatedRail
from fundpool.pool.config import (
    ChannelKind,
    CutOffWindow,
    FundpoolConfig,
    InvalidConfig,
    parse_config,
)

MONDAY_10H_US = 1_767_607_200_000_000  # 2026-01-05T10:00Z, a Monday
MONDAY_8H_US = 1_767_600_000_000_000
SATURDAY_NOON_US = 1_768_046_400_000_000  # 2026-01-10T12:00Z
HOUR_US = 3_600 * US_PER_SECOND
FAR_FUTURE_US = MONDAY_10H_US + 400 * US_PER_DAY

CHANNELS: dict[str, dict[str, Any]] = {
    "bank": {
        "kind": "bank_wire", "assets": ["USD"], "batch_size": 10,
        "fees": {"USD": {"fixed": "0.25", "bps": 5}},
        "limits": {"USD": {"min": "1.00", "max": "1000.00"}},
        "cutoff": [{"days": "mon-fri", "open": "08:00", "close": "17:00"}],
    },
    "rtp": {"kind": "instant_credit", "assets": ["USD"], "fees": {"USD": {"fixed": "0.45"}}},
    "card": {"kind": "card_acquirer", "assets": ["USD"], "batch_size": 100,
             "fees": {"USD": {"fixed": "0.30", "bps": 25}}},
    "eth": {"kind": "evm_l1", "assets": ["ETH", "USDT"], "batch_size": 100},
    "book": {"kind": "book", "assets": ["USD", "EUR"], "batch_size": 1_000},
}


def config(channel: str, simulation: dict[str, Any]) -> FundpoolConfig:
    spec = {"id": channel, **CHANNELS[channel], "simulation": simulation}
    return parse_config(
        {
            "assets": [
                {"code": "USD", "scale": 2, "kind": "fiat"},
                {"code": "EUR", "scale": 2, "kind": "fiat"},
                {"code": "USDT", "scale": 6, "kind": "stablecoin"},
                {"code": "ETH", "scale": 18, "kind": "crypto"},
            ],
            "channels": [spec],
            "pools": [{"id": "main", "reporting_currency": "USD", "channels": [channel]}],
        }
    )


def rail(channel: str, *, seed: int = 7, **simulation: Any) -> SimulatedRail:
    parsed = config(channel, simulation)
    return SimulatedRail(parsed.channel(channel), parsed.assets, seed=seed)


def pay(
    payment_id: str,
    amount_minor: int = 10_000,
    *,
    asset: str = "USD",
    direction: Direction = Direction.OUTBOUND,
) -> Instruction:
    return Instruction(payment_id, direction, asset, amount_minor)


def batch(prefix: str, count: int, **kwargs: Any) -> list[Instruction]:
    return [pay(f"{prefix}{i}", **kwargs) for i in range(count)]


def by_payment(outcomes: Sequence[ChannelOutcome]) -> dict[str, dict[OutcomeKind, ChannelOutcome]]:
    """Each payment's first delivery of each kind of outcome."""
    table: dict[str, dict[OutcomeKind, ChannelOutcome]] = {}
    for outcome in outcomes:
        table.setdefault(outcome.payment_id, {}).setdefault(outcome.kind, outcome)
    return table


def refusal(call: Any) -> ChannelRefused:
    with pytest.raises(ChannelRefused) as caught:
        call()
    assert caught.value.code == "channel_refused"
    return caught.value


# --- what the rail says about itself --------------------------------------------------------


def test_capabilities_come_from_the_configuration() -> None:
    capabilities = rail("bank").capabilities()
    assert capabilities.channel == "bank"
    assert capabilities.assets == frozenset({"USD"})
    assert capabilities.min_minor == {"USD": 100}
    assert capabilities.max_minor == {"USD": 100_000}
    assert capabilities.batch_size_max == 10
    assert capabilities.cutoff == (CutOffWindow(frozenset(range(5)), 480, 1_020),)
    assert capabilities.callbacks
    book = rail("book").capabilities()
    assert book.assets == frozenset({"USD", "EUR"})
    assert book.max_minor == {"USD": None, "EUR": None}
    assert book.cutoff == ()


def test_a_quote_has_the_configured_fee_and_the_profiles_latency_and_claim() -> None:
    bank = rail("bank")
    quote = bank.quote("USD", 200_000, MONDAY_10H_US)
    assert quote.fee_minor == 25 + 100  # 0.25 + 5 bps of 2,000.00
    assert quote.latency_us == bank.profile.expected_latency_us()
    assert quote.success_probability == 0.98
    # The rail may claim better than it does: routing has to learn its real record.
    boasting = rail("rtp", failure_rate=0.2, success_probability_quoted=0.999)
    assert boasting.quote("USD", 100, MONDAY_10H_US).success_probability == 0.999
    # Closed at 17:00: a quote then includes the wait until 08:00 the next morning.
    evening = bank.quote("USD", 200_000, MONDAY_10H_US + 7 * HOUR_US)
    assert evening.latency_us == 15 * HOUR_US + bank.profile.expected_latency_us()
    refused = refusal(lambda: bank.quote("EUR", 100, MONDAY_10H_US))
    assert refused.facts["reason"] == "unknown_asset"


def test_a_rail_can_be_given_its_profile_and_fills_in_missing_fee_models() -> None:
    parsed = config("eth", {})
    profile = dataclasses.replace(
        default_profile(ChannelKind.EVM_L1), failure_rate=0.5, fee_models={"ETH": FlatFee(7)}
    )
    chain = SimulatedRail(parsed.channel("eth"), parsed.assets, seed=1, profile=profile)
    assert chain.profile is profile
    assert chain.fee_model("ETH") == FlatFee(7)
    assert chain.fee_model("USDT") == EvmGasFee(65_000, 24_000, 36_000, 70)
    assert chain.quote("ETH", 1, MONDAY_10H_US).success_probability == 0.5
    with pytest.raises(InvalidConfig) as caught:
        SimulatedRail(parsed.channel("eth"), {}, seed=1, profile=profile)
    assert caught.value.facts["at"] == "channels.eth.assets"


# --- determinism ----------------------------------------------------------------------------


def scenario(channel: str, seed: int, **simulation: Any) -> list[ChannelOutcome]:
    """A few submissions and polls at fixed times: everything the rail delivered."""
    subject = rail(channel, seed=seed, **simulation)
    asset = sorted(subject.capabilities().assets)[0]
    delivered: list[ChannelOutcome] = []
    at_us = MONDAY_10H_US
    for round_number in range(20):
        subject.submit(batch(f"r{round_number}-", 5, asset=asset), at_us)
        at_us += 17 * 60 * US_PER_SECOND
        delivered += subject.poll(at_us)
    delivered += subject.poll(FAR_FUTURE_US)
    return delivered


@pytest.mark.parametrize("channel", ["bank", "card", "eth", "book"])
def test_the_same_seed_and_calls_give_the_same_outcomes(channel: str) -> None:
    chaos = {"duplicate_rate": 0.2, "out_of_order_rate": 0.2, "late_rate": 0.2,
             "failure_rate": 0.2, "return_rate": 0.2}
    first = scenario(channel, 11, **chaos)
    assert first == scenario(channel, 11, **chaos)
    assert first != scenario(channel, 12, **chaos)


def test_two_channels_with_one_seed_draw_different_fates() -> None:
    def latencies(channel_id: str) -> list[int]:
        parsed = config("rtp", {})
        channel = parsed.channel("rtp")
        subject = SimulatedRail(dataclasses.replace(channel, id=channel_id), parsed.assets, seed=3)
        for index in range(20):
            subject.submit([pay(f"p{index}")], MONDAY_10H_US)
        return [o.at_us for o in subject.poll(FAR_FUTURE_US)]

    assert latencies("rtp-a") != latencies("rtp-b")
    assert latencies("rtp-a") == latencies("rtp-a")


def test_chaos_changes_how_outcomes_arrive_never_what_they_are() -> None:
    plain = scenario("bank", 5, failure_rate=0.3, return_rate=0.3)
    messy = scenario("bank", 5, failure_rate=0.3, return_rate=0.3, duplicate_rate=0.5,
                     out_of_order_rate=0.5, late_rate=0.5)
    assert len(messy) > len(plain)
    assert sorted({o.outcome_id: o for o in messy}.values(), key=lambda o: o.outcome_id) == sorted(
        plain, key=lambda o: o.outcome_id
    )


# --- the life of an instruction -------------------------------------------------------------


def test_a_bank_sends_a_clearing_notice_then_settles_and_charges_per_file() -> None:
    bank = rail("bank", failure_rate=0, return_rate=0)
    submission = bank.submit(batch("p", 3), MONDAY_10H_US)
    assert submission.rail_ref == "bank-1"
    assert submission.payment_ids == ("p0", "p1", "p2")
    assert submission.submitted_at_us == MONDAY_10H_US
    assert submission.fee_minor == 250 + 3 * 25
    assert submission.single_fee_minor == 3 * 275
    outcomes = by_payment(bank.poll(FAR_FUTURE_US))
    for payment_id in ("p0", "p1", "p2"):
        cleared = outcomes[payment_id][OutcomeKind.CLEARED]
        settled = outcomes[payment_id][OutcomeKind.SETTLED]
        assert MONDAY_10H_US <= cleared.at_us <= MONDAY_10H_US + 300 * US_PER_SECOND
        assert cleared.at_us <= settled.at_us
        assert settled.rail_ref == "bank-1"
        assert settled.outcome_id == f"bank-1/{payment_id[1]}/settled"
        assert set(outcomes[payment_id]) == {OutcomeKind.CLEARED, OutcomeKind.SETTLED}


def test_a_clearing_notice_slower_than_the_settlement_comes_with_it() -> None:
    bank = rail("bank", failure_rate=0, cleared_after_ms=48 * 3_600_000)
    bank.submit(batch("p", 10), MONDAY_10H_US)
    for kinds in by_payment(bank.poll(FAR_FUTURE_US)).values():
        assert kinds[OutcomeKind.CLEARED].at_us == kinds[OutcomeKind.SETTLED].at_us


def test_an_instant_rail_settles_with_no_notice_before() -> None:
    instant = rail("rtp", failure_rate=0)
    for index in range(50):
        instant.submit([pay(f"p{index}")], MONDAY_10H_US)
    outcomes = instant.poll(FAR_FUTURE_US)
    assert {o.kind for o in outcomes} <= {OutcomeKind.SETTLED, OutcomeKind.RETURNED}
    # A lognormal's tail is cut at 100 times the median of 2 s: it has timed out by then.
    assert all(o.at_us - MONDAY_10H_US <= LATENCY_CAP_FACTOR * 2 * US_PER_SECOND
               for o in outcomes if o.kind is OutcomeKind.SETTLED)


def test_a_card_capture_clears_at_once_and_settles_t_plus_n() -> None:
    card = rail("card", failure_rate=0)
    submission = card.submit(batch("c", 20, direction=Direction.INBOUND), MONDAY_10H_US)
    assert submission.fee_minor == submission.single_fee_minor == 0  # deposits cost no fee
    outcomes = by_payment(card.poll(FAR_FUTURE_US))
    for kinds in outcomes.values():
        assert kinds[OutcomeKind.CLEARED].at_us == MONDAY_10H_US
        assert kinds[OutcomeKind.SETTLED].at_us == MONDAY_10H_US + 2 * US_PER_DAY

    next_day = rail("card", failure_rate=0, settlement_days=1)
    next_day.submit([pay("c", direction=Direction.INBOUND)], MONDAY_10H_US)
    settled = [o for o in next_day.poll(FAR_FUTURE_US) if o.kind is OutcomeKind.SETTLED]
    assert [o.at_us for o in settled] == [MONDAY_10H_US + US_PER_DAY]


def test_card_payouts_go_through_the_same_settlement_cycle() -> None:
    card = rail("card", failure_rate=0)
    submission = card.submit(batch("r", 4), MONDAY_10H_US)
    assert submission.fee_minor == submission.single_fee_minor == 4 * 30  # no saving
    for kinds in by_payment(card.poll(FAR_FUTURE_US)).values():
        assert kinds[OutcomeKind.CLEARED].at_us <= MONDAY_10H_US + US_PER_SECOND
        assert kinds[OutcomeKind.SETTLED].at_us > MONDAY_10H_US + 2 * US_PER_DAY


def test_a_chain_settles_after_its_confirmations_in_one_transaction_per_submission() -> None:
    chain = rail("eth", failure_rate=0)
    block_us = 12 * US_PER_SECOND
    first = chain.submit(batch("e", 10, asset="USDT"), MONDAY_10H_US)
    # Ten ERC-20 transfers through a batch contract: (24,000 + 10 x 36,000) gas x 70.
    assert first.fee_minor == 26_880_000
    assert first.single_fee_minor == 45_500_000
    chain.submit([pay("single", asset="ETH")], MONDAY_10H_US)
    outcomes = chain.poll(FAR_FUTURE_US)
    table = by_payment(outcomes)
    hashes = set()
    for payment_id, kinds in table.items():
        cleared, settled = kinds[OutcomeKind.CLEARED], kinds[OutcomeKind.SETTLED]
        assert cleared.details["confirmations"] == "1"
        assert settled.details["confirmations"] == "12"
        assert settled.at_us - cleared.at_us == 11 * block_us
        assert settled.at_us >= MONDAY_10H_US + 12 * block_us
        assert re.fullmatch(r"0x[0-9a-f]{64}", settled.details["tx_hash"])
        assert cleared.details["tx_hash"] == settled.details["tx_hash"]
        hashes.add((settled.rail_ref, settled.details["tx_hash"], settled.at_us))
        assert payment_id == "single" or settled.rail_ref == "eth-1"
    # One transaction per submission: the batch's items share a hash and a block.
    assert len(hashes) == 2


def test_a_failed_chain_transfer_names_its_transaction() -> None:
    chain = rail("eth", failure_rate=1)
    chain.submit(batch("e", 3, asset="ETH"), MONDAY_10H_US)
    outcomes = chain.poll(FAR_FUTURE_US)
    assert [o.kind for o in outcomes] == [OutcomeKind.FAILED] * 3
    assert {o.reason for o in outcomes} <= {"execution reverted", "out of gas"}
    assert all(o.details["tx_hash"].startswith("0x") for o in outcomes)


def test_failures_and_returns_come_at_their_rates_and_times() -> None:
    instant = rail("rtp", seed=1, failure_rate=0.1, return_rate=0.2, return_delay_days=3)
    count = 4_000
    for index in range(count):
        instant.submit([pay(f"p{index}")], MONDAY_10H_US)
    table = by_payment(instant.poll(FAR_FUTURE_US))
    failed = [k for k in table.values() if OutcomeKind.FAILED in k]
    settled = [k for k in table.values() if OutcomeKind.SETTLED in k]
    returned = [k for k in settled if OutcomeKind.RETURNED in k]
    assert len(failed) + len(settled) == count
    assert abs(len(failed) / count - 0.1) < 0.02
    assert abs(len(returned) / len(settled) - 0.2) < 0.03
    for kinds in returned:
        back, settled_one = kinds[OutcomeKind.RETURNED], kinds[OutcomeKind.SETTLED]
        assert back.at_us == settled_one.at_us + 3 * US_PER_DAY
        assert back.reason in {"FRAD fraudulent origin", "DUPL duplicate payment"}
    latencies = [k[OutcomeKind.SETTLED].at_us - MONDAY_10H_US for k in settled]
    assert abs(statistics.median(latencies) / (2 * US_PER_SECOND) - 1) < 0.1


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "instructions", "at_us", "reason", "facts"),
    [
        ("bank", [], MONDAY_10H_US, "empty", {}),
        ("bank", batch("p", 11), MONDAY_10H_US, "batch_too_large",
         {"batch_size": 11, "batch_size_max": 10}),
        ("bank", batch("p", 1), SATURDAY_NOON_US, "closed",
         {"next_open_us": MONDAY_8H_US + 7 * US_PER_DAY}),
        ("bank", [pay("p0"), pay("p1", asset="EUR")], MONDAY_10H_US, "unknown_asset",
         {"payment_id": "p1", "asset": "EUR"}),
        ("book", [pay("p0"), pay("p1", asset="EUR")], MONDAY_10H_US, "mixed_assets",
         {"payment_id": "p1", "asset": "EUR", "submission_asset": "USD"}),
        ("bank", [pay("p0", 99)], MONDAY_10H_US, "amount_outside_limits",
         {"payment_id": "p0", "amount_minor": 99, "min_minor": 100, "max_minor": 100_000}),
        ("bank", [pay("p0", 100_001)], MONDAY_10H_US, "amount_outside_limits",
         {"amount_minor": 100_001}),
        ("book", [pay("p0", 0)], MONDAY_10H_US, "amount_outside_limits", {"amount_minor": 0}),
        ("bank", [pay("p0"), pay("p0")], MONDAY_10H_US, "duplicate_payment_id",
         {"payment_id": "p0"}),
        ("bank", [pay("p0", True)], MONDAY_10H_US, "invalid_instruction", {"index": 0}),
        ("bank", [pay("")], MONDAY_10H_US, "invalid_instruction", {"index": 0}),
        ("bank", ["p0"], MONDAY_10H_US, "invalid_instruction", {"index": 0}),
    ],
)
def test_a_refused_submission_schedules_nothing_and_draws_nothing(
    channel: str,
    instructions: list[Instruction],
    at_us: int,
    reason: str,
    facts: dict[str, object],
) -> None:
    subject = rail(channel)
    error = refusal(lambda: subject.submit(instructions, at_us))
    assert error.facts["reason"] == reason
    assert error.facts["channel"] == channel
    for name, value in facts.items():
        assert error.facts[name] == value
    assert subject.pending_count() == 0
    assert subject.next_due_us() is None
    assert subject.poll(FAR_FUTURE_US) == []
    # The refusal left no trace: the next submission is the rail's first, drawn as if alone.
    fresh = rail(channel)
    assert subject.submit(batch("q", 2), MONDAY_10H_US) == fresh.submit(
        batch("q", 2), MONDAY_10H_US
    )
    assert subject.poll(FAR_FUTURE_US) == fresh.poll(FAR_FUTURE_US)


def test_the_limits_are_inclusive() -> None:
    bank = rail("bank")
    bank.submit([pay("low", 100), pay("high", 100_000)], MONDAY_10H_US)
    assert bank.pending_count() > 0


def test_a_cut_off_window_opens_at_its_minute_and_closes_before_its_close() -> None:
    bank = rail("bank")
    bank.submit([pay("a")], MONDAY_8H_US)
    error = refusal(lambda: bank.submit([pay("b")], MONDAY_8H_US - 1))
    assert error.facts == {"channel": "bank", "reason": "closed", "at_us": MONDAY_8H_US - 1,
                           "next_open_us": MONDAY_8H_US}
    bank.submit([pay("c")], MONDAY_8H_US + 9 * HOUR_US - 1)  # 16:59:59.999999
    error = refusal(lambda: bank.submit([pay("d")], MONDAY_8H_US + 9 * HOUR_US))  # 17:00
    assert error.facts["next_open_us"] == MONDAY_8H_US + US_PER_DAY


def test_a_payment_in_flight_cannot_be_submitted_again_until_its_final_outcome() -> None:
    bank = rail("bank", failure_rate=1)
    bank.submit([pay("p")], MONDAY_10H_US)
    error = refusal(lambda: bank.submit([pay("p")], MONDAY_10H_US))
    assert error.facts["reason"] == "duplicate_payment_id"
    assert error.facts["in_flight_rail_ref"] == "bank-1"
    # The failure has happened but is not delivered yet: still in flight for the rail.
    assert refusal(lambda: bank.submit([pay("p")], MONDAY_10H_US + 6 * HOUR_US))
    (failed,) = bank.poll(FAR_FUTURE_US)
    assert failed.kind is OutcomeKind.FAILED
    retry = bank.submit([pay("p")], MONDAY_10H_US + 6 * HOUR_US)
    assert retry.rail_ref == "bank-2"


def test_a_late_duplicate_of_an_old_outcome_does_not_release_a_new_submission() -> None:
    # Exactly one hour to fail, and every outcome delivered again a second later.
    book = rail("book", failure_rate=1, latency_median_ms=3_600_000, latency_sigma=0,
                duplicate_rate=1, duplicate_delay_ms=1_000)
    book.submit([pay("p")], MONDAY_10H_US)
    (failed,) = book.poll(MONDAY_10H_US + HOUR_US)
    assert failed.kind is OutcomeKind.FAILED
    assert failed.reason == "account closed"
    assert book.submit([pay("p")], MONDAY_10H_US + HOUR_US).rail_ref == "book-2"
    (repeat,) = book.poll(MONDAY_10H_US + HOUR_US + US_PER_SECOND)
    assert repeat == failed
    error = refusal(lambda: book.submit([pay("p")], MONDAY_10H_US + HOUR_US + US_PER_SECOND))
    assert error.facts["in_flight_rail_ref"] == "book-2"


# --- delivery -------------------------------------------------------------------------------


def test_poll_delivers_each_outcome_once_in_time_order_and_nothing_early() -> None:
    bank = rail("bank", failure_rate=0.3, return_rate=0.3)
    for round_number in range(5):
        bank.submit(batch(f"r{round_number}-", 10), MONDAY_10H_US + round_number * HOUR_US)
    everything: list[ChannelOutcome] = []
    until_us = MONDAY_10H_US
    while bank.pending_count():
        next_due = bank.next_due_us()
        assert next_due is not None
        assert next_due > until_us
        until_us += HOUR_US
        delivered = bank.poll(until_us)
        assert all(o.at_us <= until_us for o in delivered)
        assert [o.at_us for o in delivered] == sorted(o.at_us for o in delivered)
        everything += delivered
    assert bank.next_due_us() is None
    assert bank.poll(FAR_FUTURE_US) == []
    assert len({o.outcome_id for o in everything}) == len(everything)
    assert Counter(o.kind for o in everything)[OutcomeKind.CLEARED] > 0


def test_subscribers_get_what_poll_returns_and_deliver_pushes_the_same() -> None:
    polled = rail("bank", seed=4)
    pushed = rail("bank", seed=4)
    received: list[ChannelOutcome] = []
    also: list[ChannelOutcome] = []
    pushed.subscribe(received.append)
    pushed.subscribe(also.append)
    for subject in (polled, pushed):
        subject.submit(batch("p", 10), MONDAY_10H_US)
    assert pushed.deliver(MONDAY_10H_US + HOUR_US) is None  # type: ignore[func-returns-value]
    expected = polled.poll(MONDAY_10H_US + HOUR_US)
    assert received == also == expected
    # poll pushes to subscribers too, and returns the same outcomes.
    rest = pushed.poll(FAR_FUTURE_US)
    assert received[len(expected):] == rest == polled.poll(FAR_FUTURE_US)


def test_what_a_failing_subscriber_did_not_take_is_delivered_again() -> None:
    bank = rail("bank", failure_rate=0)
    bank.submit(batch("p", 3), MONDAY_10H_US)
    taken: list[ChannelOutcome] = []

    def flaky(outcome: ChannelOutcome) -> None:
        if len(taken) == 2:
            taken.append(outcome)
            raise RuntimeError("subscriber down")
        taken.append(outcome)

    bank.subscribe(flaky)
    with pytest.raises(RuntimeError):
        bank.deliver(FAR_FUTURE_US)
    again = bank.poll(FAR_FUTURE_US)
    assert again[0] == taken[2]  # the one whose delivery failed comes again, first
    assert len(taken[:2]) + len(again) == 6  # three cleared, three settled, none lost


def test_duplicates_come_at_about_their_rate_with_the_same_outcome_id_and_content() -> None:
    book = rail("book", seed=2, duplicate_rate=0.2)
    for round_number in range(50):
        book.submit(batch(f"r{round_number}-", 100), MONDAY_10H_US)
    outcomes = book.poll(FAR_FUTURE_US)
    first: dict[str, ChannelOutcome] = {}
    repeats = 0
    for outcome in outcomes:
        if outcome.outcome_id in first:
            repeats += 1
            assert outcome == first[outcome.outcome_id]
        else:
            first[outcome.outcome_id] = outcome
    assert len(first) == 5_000  # the book settles everything, with no notice before
    assert abs(repeats / len(first) - 0.2) < 0.02


def test_settlements_overtake_clearing_notices_at_about_their_rate() -> None:
    bank = rail("bank", seed=3, failure_rate=0, return_rate=0, out_of_order_rate=0.3)
    for round_number in range(500):
        bank.submit(batch(f"r{round_number}-", 10), MONDAY_10H_US)
    outcomes = bank.poll(FAR_FUTURE_US)
    position = {(o.payment_id, o.kind): index for index, o in enumerate(outcomes)}
    swapped = 0
    for payment_id in {o.payment_id for o in outcomes}:
        cleared = position[(payment_id, OutcomeKind.CLEARED)]
        settled = position[(payment_id, OutcomeKind.SETTLED)]
        swapped += cleared > settled
        # Delivered out of order, the times the rail reports stay in order.
        assert outcomes[cleared].at_us <= outcomes[settled].at_us
    assert abs(swapped / 5_000 - 0.3) < 0.03


def test_late_deliveries_come_at_about_their_rate_and_by_the_configured_delay() -> None:
    instant = rail("rtp", seed=5, failure_rate=0, return_rate=0, late_rate=0.25,
                   late_ms=24 * 3_600_000)
    for index in range(4_000):
        instant.submit([pay(f"p{index}")], MONDAY_10H_US)
    on_time = instant.poll(MONDAY_10H_US + HOUR_US)
    assert abs(1 - len(on_time) / 4_000 - 0.25) < 0.03
    late = instant.poll(MONDAY_10H_US + US_PER_DAY + HOUR_US)
    assert len(on_time) + len(late) == 4_000
    assert all(o.at_us < MONDAY_10H_US + HOUR_US for o in late)  # it happened on time
