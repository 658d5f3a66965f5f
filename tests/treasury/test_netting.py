"""Multilateral netting and gridlock resolution: worked examples (the literature's gridlock),
every refusal, and the properties of any cycle against brute-force references."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fundpool.treasury.netting import (
    InvalidBalance,
    InvalidObligation,
    Obligation,
    UnknownParticipant,
    net,
    settle,
)


def brute_positions(obligations: Sequence[Obligation], indexes: Sequence[int] | None = None,
                    ) -> dict[str, int]:
    positions: dict[str, int] = defaultdict(int)
    for i in range(len(obligations)) if indexes is None else indexes:
        positions[obligations[i].payer] -= obligations[i].amount_minor
        positions[obligations[i].payee] += obligations[i].amount_minor
    return positions


def brute_settle(obligations: Sequence[Obligation], balances: Mapping[str, int]) -> set[int]:
    """The documented algorithm the slow way, in another order: recompute every position,
    serve the alphabetically first short participant, take out its largest settled obligation
    (ties: the latest), repeat. The queue must not depend on that order."""
    settled = set(range(len(obligations)))
    while True:
        positions = brute_positions(obligations, sorted(settled))
        short = sorted(p for p in balances if balances[p] + positions[p] < 0)
        if not short:
            return settled
        mine = [i for i in settled if obligations[i].payer == short[0]]
        settled.remove(max(mine, key=lambda i: (obligations[i].amount_minor, i)))


def ob(payer: str, payee: str, amount: int) -> Obligation:
    return Obligation(payer, payee, amount)


# --- netting ---------------------------------------------------------------------------------


def test_a_ring_nets_to_nothing() -> None:
    result = net([ob("a", "b", 100), ob("b", "c", 100), ob("c", "a", 100)])
    assert result.positions == {"a": 0, "b": 0, "c": 0}
    assert (result.gross_minor, result.net_minor, result.obligation_count) == (300, 0, 3)
    assert result.efficiency == 1


def test_bilateral_netting() -> None:
    result = net([ob("a", "b", 100), ob("b", "a", 60), ob("a", "c", 40)])
    assert result.positions == {"a": -80, "b": 40, "c": 40}
    assert (result.gross_minor, result.net_minor) == (200, 80)
    assert result.efficiency == Fraction(3, 5)


def test_no_obligations_have_no_efficiency() -> None:
    result = net([], participants=["a", "b"])
    assert result.positions == {"a": 0, "b": 0}
    assert (result.gross_minor, result.net_minor, result.efficiency) == (0, 0, Fraction(0))


def test_listed_participants_all_have_a_position() -> None:
    assert net([ob("a", "b", 5)], participants=["a", "b", "c"]).positions == {
        "a": -5, "b": 5, "c": 0}


def test_an_unknown_participant_is_named_with_the_index() -> None:
    with pytest.raises(UnknownParticipant) as refused:
        net([ob("a", "b", 5), ob("b", "z", 1)], participants=["a", "b"])
    assert refused.value.code == "unknown_participant"
    assert refused.value.facts == {"participant": "z", "obligation_index": 1}


@pytest.mark.parametrize("bad", [
    ob("a", "a", 5), ob("a", "b", 0), ob("a", "b", -5), ob("a", "b", 5.0),  # type: ignore[arg-type]
    ob("a", "b", True), ob("a", "b", "5"), ob("a", 7, 5),  # type: ignore[arg-type]
    ob("a", "b", 2**128),
])
def test_a_bad_obligation_is_refused_with_its_index(bad: Obligation) -> None:
    for refuse in (lambda: net([ob("a", "b", 1), bad]),
                   lambda: settle([ob("a", "b", 1), bad], {"a": 1, "b": 0})):
        with pytest.raises(InvalidObligation) as refused:
            refuse()
        assert refused.value.code == "invalid_obligation"
        assert refused.value.facts["obligation_index"] == 1


# --- gridlock resolution ---------------------------------------------------------------------


def test_the_gridlock_of_the_literature_settles_in_full() -> None:
    # three banks each owe the next 100 and hold nothing: gross settlement is gridlocked (no
    # one can pay first), but every net position is 0, so everything settles at once
    ring = [ob("bank-a", "bank-b", 100), ob("bank-b", "bank-c", 100),
            ob("bank-c", "bank-a", 100)]
    result = settle(ring, {"bank-a": 0, "bank-b": 0, "bank-c": 0})
    assert (result.settled, result.queued) == ((0, 1, 2), ())
    assert result.balances_after == {"bank-a": 0, "bank-b": 0, "bank-c": 0}
    assert (result.gross_minor, result.net_minor, result.efficiency) == (300, 0, Fraction(1))


def test_netting_needs_only_the_difference() -> None:
    # a owes b 100 and holds 20; b owes a 80: gross, a cannot pay first; net, a pays 20
    result = settle([ob("a", "b", 100), ob("b", "a", 80)], {"a": 20, "b": 0})
    assert result.queued == ()
    assert result.balances_after == {"a": 0, "b": 20}
    assert result.positions == {"a": -20, "b": 20}


def test_a_short_participant_gives_up_its_largest_obligations_first() -> None:
    obligations = [ob("a", "b", 30), ob("a", "c", 70), ob("a", "d", 50)]
    result = settle(obligations, {"a": 60, "b": 0, "c": 0, "d": 0})
    # 150 owed, 60 held: the 70 waits (-20 still), then the 50 (+30): the 30 settles
    assert (result.settled, result.queued) == ((0,), (1, 2))
    assert result.balances_after == {"a": 30, "b": 30, "c": 0, "d": 0}
    assert (result.gross_minor, result.queued_minor) == (30, 120)


def test_equal_obligations_wait_latest_first() -> None:
    result = settle([ob("a", "b", 50), ob("a", "c", 50)], {"a": 50, "b": 0, "c": 0})
    assert (result.settled, result.queued) == ((0,), (1,))


def test_a_queued_payment_can_starve_its_payee() -> None:
    # a cannot pay b, so b cannot pay c
    result = settle([ob("a", "b", 100), ob("b", "c", 50)], {"a": 0, "b": 0, "c": 0})
    assert (result.settled, result.queued) == ((), (0, 1))
    assert result.efficiency == 0


def test_balances_are_checked() -> None:
    with pytest.raises(InvalidBalance) as refused:
        settle([ob("a", "b", 1)], {"a": -1, "b": 0})
    assert refused.value.code == "invalid_balance"
    with pytest.raises(InvalidBalance):
        settle([ob("a", "b", 1)], {"a": 1.0, "b": 0})  # type: ignore[dict-item]
    with pytest.raises(UnknownParticipant) as unknown:
        settle([ob("a", "b", 1)], {"a": 1})
    assert unknown.value.facts == {"participant": "b", "obligation_index": 0}


# --- properties ------------------------------------------------------------------------------

NAMES = [f"p{i}" for i in range(6)]


@st.composite
def cycles(draw: st.DrawFn) -> tuple[list[Obligation], dict[str, int]]:
    count = draw(st.integers(2, len(NAMES)))
    names = NAMES[:count]
    small = draw(st.booleans())  # small amounts make ties and exact fits likely
    amounts = st.integers(1, 5) if small else st.integers(1, 10**6) | st.integers(1, 10**20)
    obligations = draw(st.lists(
        st.tuples(st.sampled_from(names), st.sampled_from(names), amounts)
        .filter(lambda t: t[0] != t[1]).map(lambda t: Obligation(*t)), max_size=40))
    balances = {name: draw(st.integers(0, 10) if small else st.integers(0, 10**6))
                for name in names}
    return obligations, balances


@settings(max_examples=300)
@given(cycles())
def test_netting_conserves_every_position(
        case: tuple[list[Obligation], dict[str, int]]) -> None:
    obligations, balances = case
    result = net(obligations)
    brute = brute_positions(obligations)
    assert result.positions == {p: v for p, v in brute.items()}
    assert sum(result.positions.values()) == 0
    assert result.gross_minor == sum(o.amount_minor for o in obligations)
    assert result.net_minor == sum(v for v in brute.values() if v > 0)
    assert result.net_minor <= result.gross_minor
    assert result.obligation_count == len(obligations)
    assert 0 <= result.efficiency <= 1
    with_all = net(obligations, participants=balances)
    assert with_all.positions == {p: brute.get(p, 0) for p in balances}


@settings(max_examples=300)
@given(cycles())
def test_settlement_is_feasible_conserving_and_maximal(
        case: tuple[list[Obligation], dict[str, int]]) -> None:
    obligations, balances = case
    result = settle(obligations, balances)
    settled, queued = set(result.settled), set(result.queued)
    assert list(result.settled) == sorted(settled)
    assert list(result.queued) == sorted(queued)
    assert settled | queued == set(range(len(obligations)))
    assert not settled & queued
    positions = brute_positions(obligations, result.settled)
    assert result.positions == {p: positions.get(p, 0) for p in balances}
    assert result.balances_after == {p: balances[p] + positions.get(p, 0) for p in balances}
    assert min(result.balances_after.values()) >= 0
    assert sum(result.balances_after.values()) == sum(balances.values())
    assert result.gross_minor == sum(obligations[i].amount_minor for i in settled)
    assert result.queued_minor == sum(obligations[i].amount_minor for i in queued)
    assert result.net_minor == sum(v for v in positions.values() if v > 0)
    # maximal: adding back any one queued obligation would make its payer negative
    for i in queued:
        assert result.balances_after[obligations[i].payer] < obligations[i].amount_minor
    # the queue is the documented algorithm's whatever order the short are served in
    assert settled == brute_settle(obligations, balances)


@settings(max_examples=100)
@given(cycles())
def test_enough_liquidity_settles_everything(
        case: tuple[list[Obligation], dict[str, int]]) -> None:
    obligations, balances = case
    owed = brute_positions(obligations)
    rich = {p: b + max(0, -owed.get(p, 0)) for p, b in balances.items()}
    assert settle(obligations, rich).queued == ()
