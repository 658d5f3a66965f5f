"""One acknowledgement per contiguous run (src/fundpool/bus/acks.py), without a server: the
bookkeeping never names a message to acknowledge while a message at or below it is not done,
whatever the order, the losses and the redeliveries; and once all is done, one acknowledgement
covers it all.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fundpool.bus.acks import AckRuns


def reply(stream_seq: int, delivery_seq: int) -> str:
    """The reply subject of a JetStream delivery (what the consumer acknowledges to)."""
    return f"$JS.ACK.FUNDPOOL_main.projector_ab.1.{stream_seq}.{delivery_seq}.1796622289.7"


def done(runs: AckRuns[str], *deliveries: tuple[int, int]) -> None:
    runs.done([reply(*delivery) for delivery in deliveries], str)


def test_the_sequences_are_read_from_the_reply_subject() -> None:
    runs: AckRuns[str] = AckRuns()
    with_domain = "$JS.ACK.hub.ACCHASH.FUNDPOOL_main.projector_ab.2.1.40.1796622289.0.x1"
    runs.done([with_domain], str)
    assert runs.advance() == with_domain
    assert (runs.acked_stream_seq, runs.acked_delivery_seq) == (1, 40)
    # Not JetStream deliveries: no place in a run.
    runs.done(["_INBOX.abc.1", "$JS.ACK.S.C.1.x.2.3.4", "", "$JS.ACK.S.C.1.2"], str)
    assert len(runs) == 0


def test_a_contiguous_run_is_acknowledged_at_its_last_message() -> None:
    runs: AckRuns[str] = AckRuns()
    done(runs, *((seq, seq) for seq in range(1, 6)))
    assert runs.advance() == reply(5, 5)
    assert (runs.acked_stream_seq, runs.acked_delivery_seq, len(runs)) == (5, 5, 0)
    assert runs.advance() is None  # nothing new


def test_a_missing_message_stops_the_run_until_it_is_done() -> None:
    runs: AckRuns[str] = AckRuns()
    done(runs, (1, 1), (2, 2), (4, 4), (5, 5))
    assert runs.advance() == reply(2, 2)
    assert runs.first_missing() == 3
    assert runs.advance() is None
    done(runs, (3, 9))  # it came again, later
    assert runs.advance() == reply(5, 5)
    assert (runs.acked_stream_seq, runs.acked_delivery_seq, len(runs)) == (5, 5, 0)


def test_a_run_waits_for_a_delivery_newer_than_the_last_acknowledged() -> None:
    """Messages set aside after a gap keep their first delivery; once the gap's message has
    come again and been acknowledged, the server ignores an ack of theirs (its delivery
    sequence is older), so they wait for the next delivery's ack."""
    runs: AckRuns[str] = AckRuns()
    done(runs, (1, 10))  # given back, come again; 2 and 3 still set aside
    assert runs.advance() == reply(1, 10)
    done(runs, (2, 2), (3, 3))
    assert runs.advance() is None
    assert (runs.acked_stream_seq, len(runs), runs.first_missing()) == (1, 2, None)
    done(runs, (4, 11))
    assert runs.advance() == reply(4, 11)
    assert (runs.acked_stream_seq, len(runs)) == (4, 0)


def test_what_is_at_or_below_the_floor_is_acknowledged_already() -> None:
    runs: AckRuns[str] = AckRuns(10, 12)
    done(runs, (9, 20))
    assert len(runs) == 0
    assert runs.advance() is None
    done(runs, (12, 21))  # 11 missing
    assert runs.advance() is None
    runs.floor(11, 15)  # another process acknowledged 11 before this one took the pool
    assert runs.advance() == reply(12, 21)


def test_messages_that_do_not_exist_do_not_break_a_run() -> None:
    runs: AckRuns[str] = AckRuns()
    done(runs, (1, 1), (7, 2))
    assert runs.advance() == reply(1, 1)
    assert runs.first_missing() == 2
    runs.absent(2, 6)  # deleted, or expired
    assert runs.advance() == reply(7, 2)
    assert (runs.acked_stream_seq, len(runs), runs.first_missing()) == (7, 0, None)


def test_an_old_delivery_is_kept_only_until_a_newer_one() -> None:
    runs: AckRuns[str] = AckRuns()
    done(runs, (1, 5), (1, 3))  # the older one arrived late
    assert runs.advance() == reply(1, 5)


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[int, list[tuple[int, bool]], list[int]]:
    """A stream of `count` messages delivered in order, each possibly lost on the way (to
    come again at the end) or delivered twice, with a commit after any of them; some messages
    are absent (deleted) and never come."""
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
    runs: AckRuns[str] = AckRuns()
    received: set[int] = set()
    acknowledged = 0
    for delivery, (seq, commit) in enumerate(order, start=1):
        done(runs, (seq, delivery))
        received.add(seq)
        if commit:
            last = runs.advance()
            if last is not None:
                acknowledged = int(last.split(".")[5])
            # Every message at or below what was acknowledged is done, or does not exist.
            assert all(s in received or s in absent for s in range(1, acknowledged + 1))
    runs.advance()
    # The absent ones are found out (by asking the server), then the last run closes.
    while (missing := runs.first_missing()) is not None:
        following = next(s for s in range(missing, count + 1) if s not in absent)
        runs.absent(missing, following - 1)
        runs.advance()
    present = [s for s in range(1, count + 1) if s not in absent]
    if not present:
        assert runs.acked_stream_seq == 0
        return
    # Old deliveries may still wait for a newer one (the server would ignore their ack) …
    if len(runs):
        assert runs.acked_stream_seq < present[-1]
        done(runs, (present[-1], len(order) + 1))  # … which ack_wait brings
        assert runs.advance() == reply(present[-1], len(order) + 1)
    assert runs.acked_stream_seq == present[-1]
