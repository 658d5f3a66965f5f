"""The transaction stream's rows and filters, without any UI: what the stream page folds the
event feed into.

A row is a payment as its latest `payment.transitioned` event left it. Events arrive in
batches (the page drains its bounded queue on a tick); `fold` keeps one row per payment, the
newest, so a payment that moved three times within a tick is sent to the browser once. The
`Window` keeps at most `ROWS_MAX` rows, newest first, and says which to add, update and
remove: the grid applies exactly that, never the whole table again.

Filters live in the URL (`?asset=USD&state=settled&min=100&cp=bob`), so a filtered stream can
be bookmarked and shared; `StreamFilter.from_query` refuses nothing, it ignores what it cannot
read (a hand-edited URL shows the unfiltered stream rather than an error page).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction

import orjson

from fundpool.console.risk import risk_grade
from fundpool.core.errors import FundpoolError
from fundpool.events.model import Event, PaymentTransitioned, event_from_parts
from fundpool.payments.model import PaymentKind, PaymentState

ROWS_MAX = 500  # rows the browser keeps: older ones leave the grid
QUEUE_EVENTS_MAX = 5_000  # events a page may fall behind by before it skips (slow browser)
DRAIN_EVENTS_MAX = 5_000  # events folded per tick at most
SINCE_WINDOWS_S = {"5m": 300, "1h": 3_600, "24h": 86_400}
COUNTERPARTY_CHARS_MAX = 64
KINDS = tuple(kind.value for kind in PaymentKind)
ADJUSTMENT_KIND = "adjustment"  # a stream row that is a ledger adjustment, not a payment
ADJUSTMENT_MARK = '"adjustment":{'  # in a frame's text: only then is it read (server/v1/stream)
STATES = tuple(state.value for state in PaymentState)
# The colour family of each state in the grid and the timeline.
STATE_TONES: dict[str, str] = {
    PaymentState.INITIATED: "neutral", PaymentState.SCREENED: "neutral",
    PaymentState.ROUTED: "neutral",
    PaymentState.PENDING_APPROVAL: "attention", PaymentState.HELD: "attention",
    PaymentState.APPROVED: "progress", PaymentState.SUBMITTED: "progress",
    PaymentState.CLEARED: "progress",
    PaymentState.SETTLED: "done",
    PaymentState.REJECTED: "bad", PaymentState.FAILED: "bad", PaymentState.RETURNED: "bad",
    PaymentState.CANCELLED: "muted", PaymentState.REVERSED: "muted",
}


@dataclass(frozen=True, slots=True)
class StreamRow:
    payment_id: str
    kind: str
    asset: str
    amount_minor: int
    fee_minor: int
    channel: str | None
    counterparty: str | None
    state: str
    action: str
    at_us: int  # when it reached `state`
    created_at_us: int
    # An adjustment (a person's raw posting on a pool's accounts) is a row of its own, by
    # its entry's id: who made it, and why (the reason is in `counterparty`).
    adjusted_by: str | None = None
    # What risk control made of it, from the step's reason (console/risk.py `risk_grade`):
    # review, hold, block, or held (on hold, the reason not known); None: nothing to say.
    risk: str | None = None


def row_of(event: Event) -> StreamRow | None:
    """A `payment.transitioned` event as a row; None for any other event."""
    payment = event.data
    if not isinstance(payment, PaymentTransitioned):
        return None
    return StreamRow(
        payment_id=payment.payment_id, kind=payment.kind, asset=payment.asset,
        amount_minor=payment.amount_minor, fee_minor=payment.fee_minor,
        channel=payment.channel or payment.destination_channel,
        counterparty=payment.counterparty, state=payment.to_state, action=payment.action,
        at_us=event.at_us, created_at_us=payment.created_at_us,
        risk=risk_grade(payment.to_state, payment.reason))


def row_of_frame(text: str) -> StreamRow | None:
    """A frame of the event stream (`/v1/stream`'s JSON, server/v1/stream.py `frame_of`) as a
    row, read by the events' own decoder; None for another event or one that does not read."""
    try:
        body = orjson.loads(text)
        event = event_from_parts(body["id"], body["type"], int(body["v"]), body["pool"],
                                 int(body["seq"]), int(body["at_us"]), body["data"])
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError,
            FundpoolError):
        return None
    return row_of(event)


@dataclass(frozen=True, slots=True)
class Adjustment:
    """A `ledger.entry_committed` frame labelled as an adjustment: which entry, when, why and
    by whom (the actor's document)."""

    entry_id: str
    at_us: int
    reason: str
    actor: Mapping[str, object] | None


def adjustment_of_frame(text: str) -> Adjustment | None:
    """The adjustment a stream frame carries; None for any other frame (most ledger frames:
    a cheap look for the label comes before any parsing)."""
    if ADJUSTMENT_MARK not in text:
        return None
    try:
        body = orjson.loads(text)
        label, data = body["adjustment"], body["data"]
        actor = label.get("actor")
        return Adjustment(str(data["entry_id"]), int(body["at_us"]),
                          str(label.get("reason") or ""),
                          actor if isinstance(actor, dict) else None)
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
        return None


def fold(rows: Iterable[StreamRow]) -> list[StreamRow]:
    """One row per payment, the latest, in the order each payment was last seen."""
    latest: dict[str, StreamRow] = {}
    for row in rows:
        latest.pop(row.payment_id, None)
        latest[row.payment_id] = row
    return list(latest.values())


def _decimal(text: str | None) -> Decimal | None:
    if text is None or not text.strip():
        return None
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() and value >= 0 else None


@dataclass(frozen=True, slots=True)
class StreamFilter:
    """What the stream shows. Amounts are in whole units of each row's asset (`min=100` is
    100.00 USD or 100 USDT), compared exactly."""

    asset: str | None = None
    channel: str | None = None
    state: str | None = None
    kind: str | None = None
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    counterparty: str | None = None
    since: str | None = None  # a key of SINCE_WINDOWS_S

    QUERY_KEYS = ("asset", "channel", "state", "kind", "min", "max", "cp", "since")

    @classmethod
    def from_query(cls, query: Mapping[str, str], *, assets: Iterable[str] = (),
                   channels: Iterable[str] = ()) -> StreamFilter:
        known_assets, known_channels = set(assets), set(channels)

        def pick(key: str, allowed: Iterable[str]) -> str | None:
            value = query.get(key)
            return value if value in set(allowed) else None

        counterparty = (query.get("cp") or "").strip()[:COUNTERPARTY_CHARS_MAX] or None
        return cls(asset=pick("asset", known_assets), channel=pick("channel", known_channels),
                   state=pick("state", STATES), kind=pick("kind", KINDS),
                   min_amount=_decimal(query.get("min")), max_amount=_decimal(query.get("max")),
                   counterparty=counterparty, since=pick("since", SINCE_WINDOWS_S))

    def query(self) -> dict[str, str]:
        """The filter as URL query parameters (only what is set)."""
        values = {"asset": self.asset, "channel": self.channel, "state": self.state,
                  "kind": self.kind,
                  "min": None if self.min_amount is None else str(self.min_amount),
                  "max": None if self.max_amount is None else str(self.max_amount),
                  "cp": self.counterparty, "since": self.since}
        return {k: v for k, v in values.items() if v is not None}

    def with_value(self, key: str, value: str | None, *, assets: Iterable[str] = (),
                   channels: Iterable[str] = ()) -> StreamFilter:
        """This filter with one query key set (None or "": cleared)."""
        query = self.query()
        query.pop(key, None)
        if value:
            query[key] = value
        return StreamFilter.from_query(query, assets=assets, channels=channels)

    @property
    def empty(self) -> bool:
        return not self.query()

    def matches(self, row: StreamRow, scales: Mapping[str, int], now_us: int) -> bool:
        if self.asset is not None and row.asset != self.asset:
            return False
        if self.channel is not None and row.channel != self.channel:
            return False
        if self.state is not None and row.state != self.state:
            return False
        if self.kind is not None and row.kind != self.kind:
            return False
        if self.min_amount is not None or self.max_amount is not None:
            scale = scales.get(row.asset)
            if scale is None:
                return False
            amount = Fraction(row.amount_minor, 10**scale)
            if self.min_amount is not None and amount < Fraction(self.min_amount):
                return False
            if self.max_amount is not None and amount > Fraction(self.max_amount):
                return False
        if self.counterparty is not None and (
                row.counterparty is None
                or self.counterparty.casefold() not in row.counterparty.casefold()):
            return False
        return self.since is None or row.at_us >= now_us - SINCE_WINDOWS_S[self.since] * 1_000_000

    def server_side(self) -> dict[str, str]:
        """What the payments list of the API filters by itself (the rest is filtered here)."""
        return {k: v for k, v in (("state", self.state), ("kind", self.kind),
                                  ("asset", self.asset), ("channel", self.channel))
                if v is not None}


@dataclass
class Changes:
    add: list[StreamRow] = field(default_factory=list)
    update: list[StreamRow] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.add or self.update or self.remove)


class Window:
    """The rows in the browser's grid, newest first (by when each was last added or
    updated), at most `rows_max`."""

    def __init__(self, rows_max: int = ROWS_MAX) -> None:
        self.rows_max = rows_max
        self._rows: OrderedDict[str, StreamRow] = OrderedDict()  # oldest first

    def __len__(self) -> int:
        return len(self._rows)

    def rows(self) -> list[StreamRow]:
        return list(reversed(self._rows.values()))

    def get(self, payment_id: str) -> StreamRow | None:
        return self._rows.get(payment_id)

    def clear(self) -> None:
        self._rows.clear()

    def apply(self, rows: Iterable[StreamRow], stream_filter: StreamFilter,
              scales: Mapping[str, int], now_us: int) -> Changes:
        """Take a batch of rows (folded or not, oldest first): rows the filter keeps are added
        or updated, a row that no longer matches leaves, and the oldest leave past the bound."""
        changes = Changes()
        added: set[str] = set()
        for row in fold(rows):
            shown = self._rows.get(row.payment_id)
            if not stream_filter.matches(row, scales, now_us):
                if shown is not None:
                    del self._rows[row.payment_id]
                    changes.remove.append(row.payment_id)
                continue
            if shown is None:
                self._rows[row.payment_id] = row
                added.add(row.payment_id)
            else:
                # A payment that moved is the newest row again: the grid sorts by the time of
                # each row's status, and the window lets the longest unchanged rows go first.
                self._rows[row.payment_id] = row
                self._rows.move_to_end(row.payment_id)
                if row.payment_id not in added:
                    changes.update.append(row)
        while len(self._rows) > self.rows_max:
            oldest, _ = self._rows.popitem(last=False)
            if oldest in added:
                added.discard(oldest)
            else:
                changes.remove.append(oldest)
        changes.add = [self._rows[i] for i in self._rows if i in added]
        changes.update = [r for r in changes.update if r.payment_id in self._rows]
        return changes

    def expire(self, stream_filter: StreamFilter, now_us: int) -> list[str]:
        """Rows that fell out of the filter's time window."""
        if stream_filter.since is None:
            return []
        bound = now_us - SINCE_WINDOWS_S[stream_filter.since] * 1_000_000
        gone = [i for i, row in self._rows.items() if row.at_us < bound]
        for payment_id in gone:
            del self._rows[payment_id]
        return gone
