"""The stream's rows, filters and window (fundpool.console.feed), without a browser."""

from __future__ import annotations

from decimal import Decimal

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from fundpool.console.feed import (
    KINDS,
    STATES,
    Adjustment,
    StreamFilter,
    StreamRow,
    Window,
    adjustment_of_frame,
    fold,
    row_of_frame,
)

SCALES = {"USD": 2, "ETH": 18, "USDT": 6}
NOW_US = 1_764_000_000_000_000


def row(pid: str, state: str = "settled", *, asset: str = "USD", amount: int = 10_000,
        at_us: int = NOW_US, counterparty: str | None = "Bob", channel: str = "rtp",
        kind: str = "payout") -> StreamRow:
    return StreamRow(pid, kind, asset, amount, 45, channel, counterparty, state, "settle",
                     at_us, at_us)


def test_row_of_a_stream_frame_and_of_garbage() -> None:
    data = {"payment_id": "p1", "kind": "payout", "asset": "USD", "amount_minor": "12345",
            "fee_minor": "45", "channel": "rtp", "destination_channel": None,
            "counterparty": "Bob", "action": "settle", "from_state": "submitted",
            "to_state": "settled", "payment_version": 5, "since_us": 3, "created_at_us": 2}
    frame = {"id": "e1", "type": "payment.transitioned", "v": 1, "pool": "main", "seq": 9,
             "at": "…", "at_us": 7, "data": data}
    made = row_of_frame(orjson.dumps(frame).decode())
    assert made == StreamRow("p1", "payout", "USD", 12_345, 45, "rtp", "Bob", "settled",
                             "settle", 7, 2)
    # What the events' decoder refuses, or another type of event, is not a row.
    for broken in ({**frame, "data": {**data, "amount_minor": "x"}},
                   {**frame, "data": {"kind": "payout"}}, {**frame, "data": None},
                   {**frame, "v": 99}, {**frame, "type": "alert.fired"}):
        assert row_of_frame(orjson.dumps(broken).decode()) is None
    assert row_of_frame("not json") is None
    assert row_of_frame('{"heartbeat": "2026-12-06T13:00:00Z"}') is None


def test_fold_keeps_the_latest_row_per_payment() -> None:
    rows = [row("a", "submitted"), row("b", "submitted"), row("a", "settled")]
    assert [(r.payment_id, r.state) for r in fold(rows)] == [("b", "submitted"),
                                                             ("a", "settled")]


def test_filter_from_query_ignores_what_it_cannot_read() -> None:
    f = StreamFilter.from_query({"asset": "USD", "channel": "nowhere", "state": "settled",
                                 "kind": "loan", "min": "abc", "max": "-5", "cp": "  bob ",
                                 "since": "1h"}, assets=["USD"], channels=["rtp"])
    assert f == StreamFilter(asset="USD", state="settled", counterparty="bob", since="1h")
    assert f.query() == {"asset": "USD", "state": "settled", "cp": "bob", "since": "1h"}
    assert StreamFilter.from_query(f.query(), assets=["USD"], channels=["rtp"]) == f
    assert f.with_value("state", None, assets=["USD"]).state is None


def test_amount_range_is_exact_at_each_assets_scale() -> None:
    f = StreamFilter(min_amount=Decimal("100"), max_amount=Decimal("100.005"))
    assert f.matches(row("a", amount=10_000), SCALES, NOW_US)  # 100.00 USD
    assert not f.matches(row("a", amount=9_999), SCALES, NOW_US)
    assert f.matches(row("a", asset="USDT", amount=100_005_000), SCALES, NOW_US)
    assert not f.matches(row("a", asset="USDT", amount=100_005_001), SCALES, NOW_US)
    assert not f.matches(row("a", asset="XYZ"), SCALES, NOW_US)  # unknown scale: not shown


def test_counterparty_and_time_window() -> None:
    f = StreamFilter(counterparty="BO", since="5m")
    assert f.matches(row("a", counterparty="Bobby"), SCALES, NOW_US)
    assert not f.matches(row("a", counterparty=None), SCALES, NOW_US)
    assert not f.matches(row("a", at_us=NOW_US - 301_000_000), SCALES, NOW_US)


events = st.lists(st.tuples(st.sampled_from("abcdefghij"), st.sampled_from(STATES),
                            st.sampled_from(["USD", "ETH"]), st.sampled_from(KINDS)),
                  max_size=60)


@settings(max_examples=200)
@given(st.lists(events, max_size=6), st.integers(min_value=1, max_value=6),
       st.sampled_from([StreamFilter(), StreamFilter(asset="USD"),
                        StreamFilter(state="settled"), StreamFilter(kind="payout")]))
def test_window_changes_replayed_on_a_grid_give_the_window(
        batches: list[list[tuple[str, str, str, str]]], rows_max: int,
        stream_filter: StreamFilter) -> None:
    """What the browser's grid holds after applying every change set equals the window, the
    window is bounded, holds only rows the filter keeps, and each payment's latest row."""
    window = Window(rows_max)
    grid: dict[str, StreamRow] = {}
    latest: dict[str, StreamRow] = {}
    for batch in batches:
        rows = [row(pid, state, asset=asset, kind=kind) for pid, state, asset, kind in batch]
        for r in rows:
            latest[r.payment_id] = r
        changes = window.apply(rows, stream_filter, SCALES, NOW_US)
        added = {r.payment_id for r in changes.add}
        assert not added & {r.payment_id for r in changes.update}
        assert not added & set(changes.remove)
        for payment_id in changes.remove:
            assert payment_id in grid
            del grid[payment_id]
        for r in changes.update:
            assert r.payment_id in grid
            grid[r.payment_id] = r
        for r in changes.add:
            assert r.payment_id not in grid
            grid[r.payment_id] = r
        assert len(window) <= rows_max
        assert grid == {r.payment_id: r for r in window.rows()}
        for r in window.rows():
            assert stream_filter.matches(r, SCALES, NOW_US)
            assert r == latest[r.payment_id]


def test_a_payment_that_moves_is_the_newest_row_and_the_last_to_leave() -> None:
    """Rows are newest first by when each last moved (the grid sorts the same way, by each
    row's time): an update does not leave a row where it was first shown."""
    window = Window(3)
    window.apply([row("a", "submitted", at_us=NOW_US), row("b", "submitted", at_us=NOW_US + 1),
                  row("c", "submitted", at_us=NOW_US + 2)], StreamFilter(), SCALES, NOW_US)
    assert [r.payment_id for r in window.rows()] == ["c", "b", "a"]
    window.apply([row("a", "settled", at_us=NOW_US + 3)], StreamFilter(), SCALES, NOW_US)
    assert [r.payment_id for r in window.rows()] == ["a", "c", "b"]
    assert [r.at_us for r in window.rows()] == sorted((r.at_us for r in window.rows()),
                                                      reverse=True)
    # Past the bound, the row unchanged the longest leaves, not the one that just moved.
    changes = window.apply([row("d", "submitted", at_us=NOW_US + 4)], StreamFilter(), SCALES,
                           NOW_US)
    assert changes.remove == ["b"]
    assert [r.payment_id for r in window.rows()] == ["d", "a", "c"]


def test_an_adjustment_frame_is_read_and_any_other_ledger_frame_is_not() -> None:
    data = {"entry_id": "e-1", "entry_seq": 9, "kind": "transfer", "legs": []}
    frame = {"id": "x", "type": "ledger.entry_committed", "v": 1, "pool": "main", "seq": 3,
             "at": "…", "at_us": 7, "data": data}
    assert adjustment_of_frame(orjson.dumps(frame).decode()) is None
    labelled = {**frame, "adjustment": {"reason": "fix a mis-booking",
                                        "actor": {"kind": "user", "id": "u1", "name": "ann"}}}
    assert adjustment_of_frame(orjson.dumps(labelled).decode()) == Adjustment(
        "e-1", 7, "fix a mis-booking", {"kind": "user", "id": "u1", "name": "ann"})
    broken = {**labelled, "data": None}
    assert adjustment_of_frame(orjson.dumps(broken).decode()) is None
