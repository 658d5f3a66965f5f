"""The rail journal: a simulated rail that outlives its process, as a real rail does. What it
was sent and drew is on disk before `submit` returns; a rail that opens the journal again
delivers what was not acknowledged (at least once overall, never again once acknowledged),
refuses a payment still in flight, counts rail references on, ignores a torn last line, and a
journal is held by one rail at a time (a second process waits, then is refused; the kernel lets
go when the holder is killed)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fundpool.channels.ports import ChannelOutcome, Direction, Instruction, OutcomeKind
from fundpool.channels.profiles import US_PER_DAY, US_PER_SECOND
from fundpool.channels.rail_journal import (
    AcknowledgedRecord,
    OpenedRecord,
    RailJournal,
    RailJournalCorrupt,
    RailJournalLocked,
    RailJournalMismatch,
    SubmissionRecord,
    acknowledged_outcome_ids,
    journal_submissions,
    outcomes_by_id,
    read_journal,
)
from fundpool.channels.simulated import (
    Acknowledgement,
    ChannelRefused,
    RefusalReason,
    SimulatedRail,
)
from fundpool.pool.config import FundpoolConfig, parse_config
from fundpool.sim.rails import simulated_rails

MONDAY_10H_US = 1_767_607_200_000_000  # 2026-01-05T10:00Z, a Monday
FAR_FUTURE_US = MONDAY_10H_US + 400 * US_PER_DAY
MINUTE_US = 60 * US_PER_SECOND
SUBPROCESS_READY_S = 30.0  # a cold interpreter importing fundpool on a busy machine

CHANNELS: dict[str, dict[str, Any]] = {
    "rtp": {"kind": "instant_credit", "assets": ["USD"], "batch_size": 5},
    "bank": {"kind": "bank_wire", "assets": ["USD"], "batch_size": 5},
    "card": {"kind": "card_acquirer", "assets": ["USD"], "batch_size": 5},
    "eth": {"kind": "evm_l1", "assets": ["ETH"], "batch_size": 5},
}
ASSET_OF = {"rtp": "USD", "bank": "USD", "card": "USD", "eth": "ETH"}
# Enough failures and returns to see every kind of outcome in a few payments.
BUSY: dict[str, Any] = {"failure_rate": 0.2, "return_rate": 0.2}
CHAOS: dict[str, Any] = {
    **BUSY, "duplicate_rate": 0.3, "late_rate": 0.3, "out_of_order_rate": 0.3,
}


def config(channel: str, simulation: dict[str, Any]) -> FundpoolConfig:
    return parse_config(
        {
            "assets": [
                {"code": "USD", "scale": 2, "kind": "fiat"},
                {"code": "ETH", "scale": 18, "kind": "crypto"},
            ],
            "channels": [{"id": channel, **CHANNELS[channel], "simulation": simulation}],
            "pools": [{"id": "main", "reporting_currency": "USD", "channels": [channel]}],
        }
    )


def rail(
    channel: str,
    journal: Path | None = None,
    *,
    seed: int = 7,
    simulation: dict[str, Any] | None = None,
    instance: str | None = None,
    acknowledgement: Acknowledgement = Acknowledgement.NEXT_POLL,
) -> SimulatedRail:
    parsed = config(channel, BUSY if simulation is None else simulation)
    return SimulatedRail(
        parsed.channel(channel), parsed.assets, seed=seed, instance=instance,
        journal=None if journal is None else RailJournal.open(journal, wait_s=0),
        acknowledgement=acknowledgement,
    )


def crash(subject: SimulatedRail) -> None:
    """What the kernel does when the process dies: the descriptor closes, the lock goes;
    nothing is flushed or acknowledged (the rail's own `close` does no more than this)."""
    assert subject.journal is not None
    subject.journal.close()


def pay(channel: str, payment_id: str, direction: Direction = Direction.OUTBOUND) -> Instruction:
    return Instruction(payment_id, direction, ASSET_OF[channel], 10_000)


def ids(outcomes: list[ChannelOutcome]) -> list[str]:
    return [o.outcome_id for o in outcomes]


def submit_batches(subject: SimulatedRail, channel: str, count: int, size: int) -> list[str]:
    refs = []
    for batch in range(count):
        instructions = [pay(channel, f"p{batch}-{i}") for i in range(size)]
        refs.append(subject.submit(instructions, MONDAY_10H_US + batch * MINUTE_US).rail_ref)
    return refs


# --- without a journal nothing changes ---------------------------------------------------------


@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_a_fresh_journal_changes_no_draw_and_no_delivery(channel: str, tmp_path: Path) -> None:
    plain = rail(channel, simulation=CHAOS)
    journaled = rail(channel, tmp_path / "j.jsonl", simulation=CHAOS)
    for subject in (plain, journaled):
        submit_batches(subject, channel, 4, 5)
    for until_us in (MONDAY_10H_US + 30 * MINUTE_US, MONDAY_10H_US + US_PER_DAY, FAR_FUTURE_US):
        assert journaled.poll(until_us) == plain.poll(until_us)
    assert plain.pending_count() == journaled.pending_count() == 0


# --- across a crash ----------------------------------------------------------------------------


@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_every_outcome_is_delivered_once_across_a_crash_after_acknowledging(
    channel: str, tmp_path: Path
) -> None:
    journal = tmp_path / "rail.jsonl"
    reference = rail(channel)
    submit_batches(reference, channel, 4, 5)
    expected = Counter(ids(reference.poll(FAR_FUTURE_US)))
    assert expected
    assert max(expected.values()) == 1

    first = rail(channel, journal)
    submit_batches(first, channel, 4, 5)
    early = first.poll(MONDAY_10H_US + 5 * MINUTE_US)
    assert first.poll(MONDAY_10H_US + 5 * MINUTE_US) == []  # the second poll acknowledges
    crash(first)

    second = rail(channel, journal)
    late = second.poll(FAR_FUTURE_US)
    assert Counter(ids(early) + ids(late)) == expected  # all of them, each once
    assert set(acknowledged_outcome_ids(journal)) == set(ids(early))


def test_what_was_delivered_and_not_acknowledged_comes_again(tmp_path: Path) -> None:
    journal = tmp_path / "rail.jsonl"
    first = rail("rtp", journal)
    submit_batches(first, "rtp", 2, 5)
    delivered = first.poll(FAR_FUTURE_US)
    assert len(delivered) >= 10
    crash(first)  # before its caller came back: it may not have kept them

    second = rail("rtp", journal)
    assert second.poll(MONDAY_10H_US) == []  # each copy is due when it was due before
    again = second.poll(FAR_FUTURE_US)
    assert again == delivered  # the same outcomes, ids included, in the same order
    assert second.poll(FAR_FUTURE_US) == []
    crash(second)
    assert rail("rtp", journal).poll(FAR_FUTURE_US) == []  # now acknowledged, never again


@pytest.mark.parametrize("chaos", [False, True], ids=["tidy", "chaos"])
@pytest.mark.parametrize("channel", ["bank", "eth"])
def test_a_reopened_rail_delivers_as_the_rail_that_was_never_stopped(
    channel: str, chaos: bool, tmp_path: Path
) -> None:
    """Each copy (chaos delivers some twice, late, or out of order) comes when it was due,
    in the order it was queued."""
    journal = tmp_path / "rail.jsonl"
    simulation = CHAOS if chaos else BUSY
    first = rail(channel, journal, simulation=simulation)
    submit_batches(first, channel, 3, 5)
    reference = rail(channel, simulation=simulation)
    submit_batches(reference, channel, 3, 5)
    crash(first)
    second = rail(channel, journal, simulation=simulation)
    for until_us in (MONDAY_10H_US, MONDAY_10H_US + HOURS(3), MONDAY_10H_US + 3 * US_PER_DAY,
                     FAR_FUTURE_US):
        assert second.poll(until_us) == reference.poll(until_us)
        assert second.next_due_us() == reference.next_due_us()


def HOURS(count: int) -> int:  # noqa: N802 - reads as a unit
    return count * 3_600 * US_PER_SECOND


def test_explicit_acknowledgement_waits_for_the_caller(tmp_path: Path) -> None:
    journal = tmp_path / "rail.jsonl"
    first = rail("rtp", journal, acknowledgement=Acknowledgement.EXPLICIT)
    submit_batches(first, "rtp", 1, 5)
    delivered = first.poll(FAR_FUTURE_US)
    first.poll(FAR_FUTURE_US)  # polling again acknowledges nothing in this mode
    assert acknowledged_outcome_ids(journal) == []
    kept = ids(delivered[:3])  # the caller committed three of them
    first.acknowledge(kept)
    crash(first)
    second = rail("rtp", journal, acknowledgement=Acknowledgement.EXPLICIT)
    assert ids(second.poll(FAR_FUTURE_US)) == ids(delivered[3:])
    second.acknowledge()  # everything it delivered
    crash(second)
    assert rail("rtp", journal).poll(FAR_FUTURE_US) == []


def test_a_payment_in_flight_is_refused_across_a_reopen(tmp_path: Path) -> None:
    journal = tmp_path / "rail.jsonl"
    first = rail("bank", journal, simulation={})
    ref = first.submit([pay("bank", "p1"), pay("bank", "p2")], MONDAY_10H_US).rail_ref
    crash(first)

    second = rail("bank", journal, simulation={})
    assert second.rail_ref_of("p1") == ref
    with pytest.raises(ChannelRefused) as refused:
        second.submit([pay("bank", "p1")], MONDAY_10H_US + MINUTE_US)
    assert refused.value.facts["reason"] == RefusalReason.DUPLICATE_PAYMENT_ID.value
    assert refused.value.facts["in_flight_rail_ref"] == ref
    final = [o for o in second.poll(FAR_FUTURE_US) if o.kind is OutcomeKind.SETTLED]
    assert {o.payment_id for o in final} == {"p1", "p2"}
    # Its settlement delivered, the payment is out of flight: taken again, as within a process.
    again = second.submit([pay("bank", "p1")], FAR_FUTURE_US).rail_ref
    assert again != ref
    assert [s.payment_id for s in journal_submissions(journal)] == ["p1", "p2", "p1"]
    second.poll(FAR_FUTURE_US)  # acknowledges p2's settlement
    crash(second)
    third = rail("bank", journal, simulation={})
    assert (third.rail_ref_of("p1"), third.rail_ref_of("p2")) == (again, None)
    third.submit([pay("bank", "p2")], FAR_FUTURE_US)  # out of flight after a reopen too


def test_a_settlement_delivered_but_not_acknowledged_keeps_the_payment_in_flight(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "rail.jsonl"
    first = rail("rtp", journal, simulation={})
    first.submit([pay("rtp", "p1")], MONDAY_10H_US)
    assert OutcomeKind.SETTLED in {o.kind for o in first.poll(FAR_FUTURE_US)}
    first.submit([pay("rtp", "p1")], FAR_FUTURE_US)  # out of flight in this process
    crash(first)
    second = rail("rtp", journal, simulation={})
    # The second submission holds it now: the first one's settlement, come again, does not
    # take it out of flight.
    assert second.rail_ref_of("p1") == "rtp-2"
    second.poll(FAR_FUTURE_US)
    assert second.rail_ref_of("p1") == "rtp-2"
    with pytest.raises(ChannelRefused):
        second.submit([pay("rtp", "p1")], FAR_FUTURE_US)


def test_rail_references_go_on_counting_whatever_the_instance(tmp_path: Path) -> None:
    journal = tmp_path / "rail.jsonl"
    refs: list[str] = []
    for life, instance in enumerate((None, None, "b", None)):
        subject = rail("eth", journal, instance=instance)
        refs.append(subject.submit([pay("eth", f"x{life}")], MONDAY_10H_US).rail_ref)
        crash(subject)
    assert refs == ["eth-1", "eth-2", "eth-b-3", "eth-4"]


def test_a_resumed_rail_draws_new_fates(tmp_path: Path) -> None:
    """The same seed in the next process must not deal the first process's fates again: a
    rail whose first payment failed would fail the first one of every restart."""
    journal = tmp_path / "rail.jsonl"
    first = rail("rtp", journal, simulation={"failure_rate": 0.5})
    submit_batches(first, "rtp", 4, 5)
    before = [(o.kind, o.at_us - MONDAY_10H_US) for o in first.poll(FAR_FUTURE_US)]
    first.poll(FAR_FUTURE_US)  # acknowledged
    crash(first)
    second = rail("rtp", journal, simulation={"failure_rate": 0.5})
    assert second.poll(FAR_FUTURE_US) == []
    for batch in range(4):
        second.submit([pay("rtp", f"q{batch}-{i}") for i in range(5)],
                      MONDAY_10H_US + batch * MINUTE_US)
    after = [(o.kind, o.at_us - MONDAY_10H_US) for o in second.poll(FAR_FUTURE_US)]
    assert len(after) == len(before)
    assert after != before


def test_the_journal_holds_what_was_drawn_before_submit_returns(tmp_path: Path) -> None:
    journal = tmp_path / "rail.jsonl"
    subject = rail("eth", journal, simulation=CHAOS)
    submission = subject.submit([pay("eth", "a"), pay("eth", "b")], MONDAY_10H_US)
    records = read_journal(journal)  # read from the file, as another process would
    assert isinstance(records[0], OpenedRecord)
    assert records[0].channel == "eth"
    last = records[-1]
    assert isinstance(last, SubmissionRecord)
    assert last.rail_ref == submission.rail_ref
    assert [i.payment_id for i in last.instructions] == ["a", "b"]
    drawn = outcomes_by_id(records)
    delivered = subject.poll(FAR_FUTURE_US)
    assert {o.outcome_id for o in delivered} == set(drawn)
    copies = Counter(ids(delivered))
    for outcome in delivered:
        on_disk = drawn[outcome.outcome_id]
        assert (on_disk.payment_id, on_disk.kind, on_disk.at_us, on_disk.reason,
                dict(on_disk.details)) == (outcome.payment_id, outcome.kind, outcome.at_us,
                                           outcome.reason, outcome.details)
        assert len(on_disk.due_us) == copies[outcome.outcome_id]


def test_inquire_says_which_payments_the_rail_has_and_reports_them_again(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "rail.jsonl"
    first = rail("rtp", journal, simulation={})
    first.submit([pay("rtp", "done"), pay("rtp", "other")], MONDAY_10H_US)
    settled = [o for o in first.poll(FAR_FUTURE_US) if o.payment_id == "done"]
    first.poll(FAR_FUTURE_US)  # acknowledged
    first.submit([pay("rtp", "flying")], FAR_FUTURE_US)
    crash(first)

    second = rail("rtp", journal, simulation={})
    assert second.inquire(["done", "flying", "never"], FAR_FUTURE_US) == {"done", "flying"}
    again = second.poll(FAR_FUTURE_US + US_PER_DAY)
    assert [o for o in again if o.payment_id == "done"] == settled  # reported again
    assert "flying" in {o.payment_id for o in again}  # when due, as any outcome
    assert "other" not in {o.payment_id for o in again}  # not asked about
    # Without a journal a rail knows only what is in flight.
    plain = rail("rtp", simulation={})
    plain.submit([pay("rtp", "a")], MONDAY_10H_US)
    assert plain.inquire(["a", "b"], MONDAY_10H_US) == {"a"}
    plain.poll(FAR_FUTURE_US)
    assert plain.inquire(["a"], FAR_FUTURE_US) == set()


# --- the file ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tail",
    [b'{"type":"submission","rail_ref":"rtp-3","at_', b"\x00\x00\x00\x00",
     b'{"type":"acknowledged","outcome_ids":["rtp-1/0/settled"]}',  # whole but no newline
     b"not json at all\n"],
    ids=["half a record", "zeros of a power cut", "no newline", "a broken last line"],
)
def test_a_torn_last_line_is_ignored_and_cut_off(tail: bytes, tmp_path: Path) -> None:
    journal = tmp_path / "rail.jsonl"
    first = rail("rtp", journal)
    submit_batches(first, "rtp", 2, 3)
    crash(first)
    whole = journal.read_bytes()
    with journal.open("ab") as file:
        file.write(tail)
    assert read_journal(journal) == read_journal_of(whole, tmp_path)

    second = rail("rtp", journal)
    assert journal.read_bytes().startswith(whole)
    assert tail not in journal.read_bytes()  # cut off: later records follow whole lines
    assert second.rail_ref_of("p1-0") == "rtp-2"
    assert second.submit([pay("rtp", "n")], MONDAY_10H_US).rail_ref == "rtp-3"
    assert len(second.poll(FAR_FUTURE_US)) >= 7
    crash(second)
    records = read_journal(journal)
    assert sum(isinstance(r, SubmissionRecord) for r in records) == 3
    assert isinstance(records[-1], OpenedRecord | SubmissionRecord | AcknowledgedRecord)


def read_journal_of(data: bytes, directory: Path) -> tuple[object, ...]:
    copy = directory / "copy.jsonl"
    copy.write_bytes(data)
    return read_journal(copy)


def test_an_unreadable_line_before_the_last_is_corrupt(tmp_path: Path) -> None:
    journal = tmp_path / "rail.jsonl"
    first = rail("rtp", journal)
    submit_batches(first, "rtp", 2, 3)
    crash(first)
    lines = journal.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1][:20] + b"\n"
    journal.write_bytes(b"".join(lines))
    with pytest.raises(RailJournalCorrupt) as corrupt:
        rail("rtp", journal)
    assert corrupt.value.facts["line"] == 2
    with pytest.raises(RailJournalCorrupt):  # not rail_journal_locked: it let go
        RailJournal.open(journal, wait_s=0)
    with pytest.raises(RailJournalCorrupt):
        read_journal(journal)


def test_a_journal_of_another_channel_is_refused(tmp_path: Path) -> None:
    journal = tmp_path / "rail.jsonl"
    crash(rail("rtp", journal))
    with pytest.raises(RailJournalMismatch):
        rail("bank", journal)


def test_one_rail_at_a_time_even_in_one_process(tmp_path: Path) -> None:
    journal = tmp_path / "rail.jsonl"
    held = rail("rtp", journal)
    started = time.monotonic()
    with pytest.raises(RailJournalLocked) as locked:
        RailJournal.open(journal, wait_s=0.2)
    assert time.monotonic() - started >= 0.2  # it waited its bound before giving up
    assert locked.value.facts["path"] == str(journal)
    held.close()
    RailJournal.open(journal, wait_s=0).close()


def test_a_journal_dropped_without_close_lets_go(tmp_path: Path) -> None:
    journal = tmp_path / "rail.jsonl"
    subject = rail("rtp", journal)
    subject.submit([pay("rtp", "a")], MONDAY_10H_US)
    del subject
    assert rail("rtp", journal).rail_ref_of("a") == "rtp-1"


# --- another process ---------------------------------------------------------------------------

HOLDER = """
import json, sys
from pathlib import Path
from fundpool.channels.ports import Direction, Instruction
from fundpool.pool.config import parse_config
from fundpool.sim.rails import simulated_rails

spec, directory = json.loads(sys.argv[1]), Path(sys.argv[2])
config = parse_config(spec)
rails = simulated_rails(config, config.pool("main"), seed=7, instance="dead",
                        journal_dir=directory, journal_wait_s=0)
rail = rails["rtp"]
refs = [rail.submit([Instruction(f"k{b}-{i}", Direction.OUTBOUND, "USD", 10_000)
                     for i in range(5)], START + b * 60_000_000).rail_ref for b in range(3)]
print(json.dumps({"delivered": [o.outcome_id for o in rail.poll(START + 1_000)], "refs": refs}),
      flush=True)
sys.stdin.read()  # holds the journal until killed
""".replace("START", str(MONDAY_10H_US))


@dataclass
class Holder:
    process: subprocess.Popen[str]
    said: dict[str, Any] = field(default_factory=dict)


def start_holder(directory: Path, spec: dict[str, Any]) -> Holder:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, json.dumps(spec), str(directory)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], SUBPROCESS_READY_S)
    line = process.stdout.readline() if ready else ""
    if not line:
        process.kill()
        _, errors = process.communicate()
        raise AssertionError(f"the holder did not start within {SUBPROCESS_READY_S} s: {errors}")
    return Holder(process, json.loads(line))


def pool_spec() -> dict[str, Any]:
    return {
        "assets": [{"code": "USD", "scale": 2, "kind": "fiat"}],
        "channels": [{"id": "rtp", **CHANNELS["rtp"], "simulation": BUSY}],
        "pools": [{"id": "main", "reporting_currency": "USD", "channels": ["rtp"]}],
    }


def test_a_killed_holder_lets_the_next_process_carry_on(tmp_path: Path) -> None:
    spec = pool_spec()
    holder = start_holder(tmp_path, spec)
    path = tmp_path / "main" / "rtp.jsonl"
    try:
        config_ = parse_config(spec)
        with pytest.raises(RailJournalLocked):
            simulated_rails(config_, config_.pool("main"), seed=7, journal_dir=tmp_path,
                            journal_wait_s=0.2)
    finally:
        os.kill(holder.process.pid, signal.SIGKILL)
        holder.process.communicate()
    assert holder.process.returncode == -signal.SIGKILL

    # Within the wait: the kernel let go as the holder died (a leader taking over).
    rails = simulated_rails(config_, config_.pool("main"), seed=7, instance="new",
                            journal_dir=tmp_path, journal_wait_s=5)
    rail_ = rails["rtp"]
    for payment_id in ("k0-0", "k2-4"):
        with pytest.raises(ChannelRefused):
            rail_.submit([pay("rtp", payment_id)], MONDAY_10H_US + HOURS(1))
    fresh = rail_.submit([pay("rtp", "n")], MONDAY_10H_US + HOURS(1)).rail_ref
    assert fresh == "rtp-new-4"  # after the dead one's rtp-dead-1..3
    later = rail_.poll(FAR_FUTURE_US)
    rail_.close()

    reference = rail("rtp")
    for b in range(3):
        reference.submit([pay("rtp", f"k{b}-{i}") for i in range(5)],
                         MONDAY_10H_US + b * MINUTE_US)
    expected = {
        o.outcome_id.replace("rtp-", "rtp-dead-", 1) for o in reference.poll(FAR_FUTURE_US)
    }
    got = Counter(holder.said["delivered"] + [o.outcome_id for o in later
                                              if not o.rail_ref.startswith("rtp-new")])
    # Every outcome of the dead process's payments came, to it or to its successor: at least
    # once (it was killed before acknowledging what it had taken), at most twice.
    assert set(got) == expected
    assert max(got.values()) <= 2
    submitted = Counter(s.payment_id for s in journal_submissions(path))
    assert max(submitted.values()) == 1  # no payment was taken twice
    assert len(submitted) == 16


# --- any sequence ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submit:
    payment_ids: tuple[str, ...]


@dataclass(frozen=True)
class Poll:
    advance_us: int


@dataclass(frozen=True)
class Crash:
    pass


PAYMENT_IDS = [f"p{i}" for i in range(6)]
operations = st.lists(
    st.one_of(
        st.builds(Submit, st.lists(st.sampled_from(PAYMENT_IDS),
                                   min_size=1, max_size=3).map(tuple)),
        st.builds(Poll, st.sampled_from([0, US_PER_SECOND, MINUTE_US, HOURS(4), 3 * US_PER_DAY])),
        st.just(Crash()),
    ),
    max_size=24,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    channel=st.sampled_from(sorted(CHANNELS)),
    seed=st.integers(0, 2**32),
    chaos=st.booleans(),
    plan=operations,
)
def test_any_sequence_of_submits_polls_and_crashes(
    channel: str, seed: int, chaos: bool, plan: list[Submit | Poll | Crash],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Every scheduled outcome is delivered at least once; one acknowledged (its poll was
    followed by another before the crash) never comes in a later life; without chaos, none
    comes twice in one life; a submission is refused as a duplicate exactly when a payment
    in it is still in flight by the rules, which survive a crash: a payment leaves flight when
    its final outcome (settled or failed) of its latest submission is delivered, and after a
    crash that delivery counts only if it was acknowledged."""
    journal = tmp_path_factory.mktemp("rail") / "rail.jsonl"
    simulation = CHAOS if chaos else BUSY
    now = MONDAY_10H_US
    subject = rail(channel, journal, seed=seed, simulation=simulation)
    life = 0
    delivered_in: dict[str, set[int]] = {}  # outcome id -> lives it was delivered in
    acknowledged_in: dict[str, int] = {}  # outcome id -> the life that acknowledged it
    unacknowledged: list[ChannelOutcome] = []
    in_flight: dict[str, str] = {}  # payment id -> rail ref, by the rules
    landed_unacknowledged: dict[str, str] = {}  # left flight on a delivery not acknowledged
    per_life: Counter[tuple[int, str]] = Counter()

    def poll(until_us: int) -> None:
        nonlocal unacknowledged
        for outcome in unacknowledged:
            acknowledged_in.setdefault(outcome.outcome_id, life)
        landed_unacknowledged.clear()
        unacknowledged = subject.poll(until_us)
        for outcome in unacknowledged:
            first_ack = acknowledged_in.get(outcome.outcome_id)
            assert first_ack is None or first_ack == life, "delivered after acknowledged"
            delivered_in.setdefault(outcome.outcome_id, set()).add(life)
            per_life[life, outcome.outcome_id] += 1
            final = outcome.kind in (OutcomeKind.SETTLED, OutcomeKind.FAILED)
            if final and in_flight.get(outcome.payment_id) == outcome.rail_ref:
                del in_flight[outcome.payment_id]
                landed_unacknowledged[outcome.payment_id] = outcome.rail_ref

    for operation in plan:
        if isinstance(operation, Submit):
            instructions = [pay(channel, p) for p in operation.payment_ids]
            expect_refused = len(set(operation.payment_ids)) < len(operation.payment_ids) or any(
                p in in_flight for p in operation.payment_ids
            )
            if expect_refused:
                with pytest.raises(ChannelRefused) as refused:
                    subject.submit(instructions, now)
                assert refused.value.facts["reason"] == RefusalReason.DUPLICATE_PAYMENT_ID.value
                continue
            submission = subject.submit(instructions, now)
            for p in operation.payment_ids:
                in_flight[p] = submission.rail_ref
                landed_unacknowledged.pop(p, None)
        elif isinstance(operation, Poll):
            now += operation.advance_us
            poll(now)
        else:
            crash(subject)
            for p, ref in landed_unacknowledged.items():
                in_flight.setdefault(p, ref)  # the delivery was not acknowledged: in flight
            landed_unacknowledged.clear()
            unacknowledged = []
            life += 1
            subject = rail(channel, journal, seed=seed, simulation=simulation)
            for p in PAYMENT_IDS:
                assert subject.rail_ref_of(p) == in_flight.get(p)
    poll(FAR_FUTURE_US)
    poll(FAR_FUTURE_US)
    crash(subject)

    scheduled = outcomes_by_id(read_journal(journal))
    assert set(delivered_in) == set(scheduled)  # everything drawn, delivered at least once
    assert not in_flight
    finals = Counter(
        (o.payment_id, o.rail_ref) for o in scheduled.values()
        if o.kind in (OutcomeKind.SETTLED, OutcomeKind.FAILED)
    )
    attempts = Counter((s.payment_id, s.rail_ref) for s in journal_submissions(journal))
    assert finals == attempts  # one final outcome per payment attempt
    if not chaos:
        assert max(per_life.values(), default=1) == 1
