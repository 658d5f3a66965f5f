"""One acknowledgement per contiguous run (src/fundpool/bus/acks.py), without a server: the
bookkeeping never names a message to acknowledge while a message at or below it is not done,
whatever the order, the losses and the redeliveries; and once all is done, one acknowledgement
covers it all.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fundpool.bus.acks import AckRuns, sequences


def test_sequences_are_read_from_the_reply_subject() -> None:
    assert sequences("$JS.ACK.FUNDPOOL_main.projector_ab.1.1041.1187.1796622289715423513.7") \
        == (1041, 1187)
    # With a domain and an account hash, and a random token at the end.
    assert sequences("$JS.ACK.hub.ACCHASH.FUNDPOOL_main.projector_ab.2.17.40.1796622289.0.x1") \
        == (17, 40)
    assert sequences("_INBOX.abc.1") is None
    assert sequences("$JS.ACK.S.C.1.x.2.3.4") is None
    assert sequences("") is None


def test_a_contiguous_run_is_acknowledged_at_its_last_message() -> None:
    runs: AckRuns[str] = AckRuns()
    for seq in range(1, 6):
        runs.done(seq, seq, f"m{seq}")
    assert runs.advance() == "m5"
    assert (runs.acked_stream_seq, runs.acked_delivery_seq, len(runs)) == (5, 5, 0)
    assert runs.advance() is None  # nothing new


def test_a_missing_message_stops_the_run_until_it_is_done() -> None:
    runs: AckRuns[str] = AckRuns()
    for seq in (1, 2, 4, 5):
        runs.done(seq, seq, f"m{seq}")
    assert runs.advance() == "m2"
    assert runs.first_missing() == 3
    assert runs.advance() is None
    runs.done(3, 9, "m3 again")  # it came again, later
    assert runs.advance() == "m5"
    assert (runs.acked_stream_seq, runs.acked_delivery_seq, len(runs)) == (5, 5, 0)


def test_a_run_waits_for_a_delivery_newer_than_the_last_acknowledged() -> None:
    """Messages set aside after a gap keep their first delivery; once the gap's message has
    come again and been acknowledged, the server ignores an ack of theirs (its delivery
    sequence is older), so they wait for the next delivery's ack."""
    runs: AckRuns[str] = AckRuns()
    runs.done(1, 10, "m1 again")  # given back, come again; 2 and 3 still set aside
    assert runs.advance() == "m1 again"
    runs.done(2, 2, "m2")
    runs.done(3, 3, "m3")
    assert runs.advance() is None
    assert (runs.acked_stream_seq, len(runs), runs.first_missing()) == (1, 2, None)
    runs.done(4, 11, "m4")
    assert runs.advance() == "m4"
    assert (runs.acked_stream_seq, len(runs)) == (4, 0)


def test_what_is_at_or_below_the_floor_is_acknowledged_already() -> None:
    runs: AckRuns[str] = AckRuns(10, 12)
    runs.done(9, 20, "old")
    assert len(runs) == 0
    assert runs.advance() is None
    runs.done(12, 21, "m12")  # 11 missing
    assert runs.advance() is None
    runs.floor(11, 15)  # another process acknowledged 11 before this one took the pool
    assert runs.advance() == "m12"


def test_messages_that_do_not_exist_do_not_break_a_run() -> None:
    runs: AckRuns[str] = AckRuns()
    runs.done(1, 1, "m1")
    runs.done(7, 2, "m7")
    assert runs.advance() == "m1"
    assert runs.first_missing() == 2
    runs.absent(2, 6)  # deleted, or expired
    assert runs.advance() == "m7"
    assert (runs.acked_stream_seq, len(runs), runs.first_missing()) == (7, 0, None)


def test_an_old_delivery_is_kept_only_until_a_newer_one() -> None:
    runs: AckRuns[str] = AckRuns()
    runs.done(1, 5, "new")
    runs.done(1, 3, "older")  # arrived late
    assert runs.advance() == "new"


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[int, list[tuple[int, bool]], list[int]]:
    """A stream of `count` messages delivered in batches: in order, each possibly lost on the
    way (to come again later) or delivered twice, then everything lost delivered again; some
    messages are absent (deleted) and never come."""
    count = draw(st.integers(1, 60))
    absent = sorted(draw(st.sets(st.integers(1, count), max_size=count // 4)))
    order: list[tuple[int, bool]] = []  # (stream seq, commit after it)
    lost: list[int] = []
    for seq in range(1, count + 1):
        if seq in absent:
            continue
        fate = draw(st.sampled_from(["once", "once", "once", "lost", "twice"]))
        if fate == "lost":
            lost.append(seq)
            continue
        order.append((seq, draw(st.booleans())))
        if fate == "twice":
            order.append((seq, draw(st.booleans())))
    order += [(seq, draw(st.booleans())) for seq in lost]
    return count, order, absent


@settings(max_examples=300, deadline=None)
@given(deliveries())
def test_no_acknowledgement_ever_passes_a_message_not_done(
    case: tuple[int, list[tuple[int, bool]], list[int]],
) -> None:
    count, order, absent = case
    runs: AckRuns[int] = AckRuns()
    done: set[int] = set()
    acknowledged = 0
    for delivery, (seq, commit) in enumerate(order, start=1):
        runs.done(seq, delivery, seq)
        done.add(seq)
        if commit:
            last = runs.advance()
            if last is not None:
                acknowledged = last
            # Every message at or below what was acknowledged is done, or does not exist.
            assert all(s in done or s in absent for s in range(1, acknowledged + 1))
    runs.advance()
    # The absent ones are found out (by asking the server), then the last run closes.
    while (missing := runs.first_missing()) is not None:
        nxt = next(s for s in range(missing, count + 1) if s not in absent)
        runs.absent(missing, nxt - 1)
        runs.advance()
    last_present = max(s for s in range(1, count + 1) if s not in absent) \
        if len(absent) < count else 0
    # Old deliveries may still wait for a newer one (the server would ignore their ack) …
    if len(runs):
        assert runs.acked_stream_seq < last_present
        runs.done(last_present, len(order) + 1, last_present)  # … which ack_wait brings
        assert runs.advance() == last_present
    assert runs.acked_stream_seq == last_present or last_present == 0
