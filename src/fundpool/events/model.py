"""Typed, versioned events: one for every state change, written to the outbox in the same
store transaction as the change (docs/adr/0011-events-and-outbox.md).

An event on the wire is one JSON object:

    {"id": "<uuid7>", "type": "payment.transitioned", "v": 1, "pool": "main", "seq": 42,
     "at_us": 1767225600000000, "data": {...}}

- `pool` names the stream it belongs to (`fundpool.<pool>.<type>` on NATS); events that touch
  no pool (asset definitions, accounts outside pools) go to the reserved stream `_ledger`.
- `seq` numbers a pool's events 1, 2, 3 … with no gap, in commit order: a consumer applies
  event `seq` only right after `seq - 1`, so a duplicate or a gap is seen, never guessed.
- Amounts are decimal strings of minor units (a 128-bit amount does not fit every JSON
  number); counts and times are JSON integers.
- A new meaning is a new version `v` of the type; a reader refuses a version it does not know
  (`unknown_event_version`) rather than misread it, and skips a type it does not know
  (`unknown_event_type`) since new kinds of events must not stop old consumers. A new field
  that is optional (absent reads as null) keeps the version: old readers ignore it, and new
  readers read old events without it. So did `payment.transitioned` v1 gain `counterparty`,
  then `actor` (who took the step: an object as `fundpool.core.actor.Actor.to_dict` writes it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Union

import orjson

from fundpool.core.errors import FundpoolError

SYSTEM_POOL = "_ledger"  # pool names start with [a-z0-9], so this one never clashes
# A pool's name as an address segment, or the reserved stream: safe as a NATS subject token.
POOL_PATTERN = re.compile(r"(?:[a-z0-9][a-z0-9_-]{0,63}|_ledger)")
EVENT_BYTES_MAX = 1 << 20  # a larger message is refused by the decoder


class InvalidEvent(FundpoolError):
    code = "invalid_event"
    title = "the event is malformed"


class UnknownEventType(FundpoolError):
    code = "unknown_event_type"
    title = "the event's type is not one this reader knows"


class UnknownEventVersion(FundpoolError):
    code = "unknown_event_version"
    title = "the event's version of its type is not one this reader knows"


# --- payloads ------------------------------------------------------------------------------


class LegAfter(NamedTuple):
    """An account's balance in one asset right after the entry (a NamedTuple: the ledger
    makes one per leg of every entry)."""

    address: str
    asset: str
    posted: int
    pending_out: int
    pending_in: int


# The two payloads a consumer reads tens of thousands of a second are not `frozen`: a frozen
# dataclass's __init__ costs about 2 µs more per event (docs/benchmarks.md). Treat them as
# immutable all the same.
@dataclass(slots=True)
class LedgerEntryCommitted:
    TYPE: ClassVar[str] = "ledger.entry_committed"
    VERSION: ClassVar[int] = 1

    entry_id: str
    entry_seq: int
    kind: str
    legs: tuple[LegAfter, ...]


@dataclass(slots=True)
class PaymentTransitioned:
    """A payment moved from `from_state` (None when created) to `to_state` by `action`.
    `since_us` is when it entered `from_state`, so a consumer measures each stage alone.

    `counterparty` (the payee or payer the payment names) and `actor` (who took the step, as
    `Actor.to_dict()`: kind, id, name, roles, and the session, key and request where known)
    were added to version 1 as optional fields: events stored before them read with None."""

    TYPE: ClassVar[str] = "payment.transitioned"
    VERSION: ClassVar[int] = 1

    payment_id: str
    kind: str
    asset: str
    amount_minor: int
    fee_minor: int
    channel: str | None
    destination_channel: str | None
    action: str
    from_state: str | None
    to_state: str
    payment_version: int
    since_us: int | None
    created_at_us: int
    reason: str | None = None
    previous_channel: str | None = None  # the channel before this step (routing, failover)
    counterparty: str | None = None
    actor: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class AlertChanged:
    """A step in an alert's life. The type says which: fired, acknowledged or resolved."""

    TYPES: ClassVar[tuple[str, ...]] = ("alert.fired", "alert.acknowledged", "alert.resolved")
    VERSION: ClassVar[int] = 1

    alert_id: str
    rule: str
    severity: str
    subject: str  # what the alert is about: "pool", "channel:bank-a", "asset:usd" …
    summary: str
    value: str | None = None  # the figure that crossed the threshold, as decimal text
    actor: str | None = None  # who acknowledged it


Payload = Union[LedgerEntryCommitted, PaymentTransitioned, AlertChanged]  # noqa: UP007


class Event(NamedTuple):
    """An event (a NamedTuple: one is made per journal entry on the ledger's hot path)."""

    id: str
    type: str
    pool: str
    at_us: int
    data: Payload
    seq: int = 0  # assigned by the outbox when the event is written
    version: int = 1

    @property
    def subject(self) -> str:
        return f"fundpool.{self.pool}.{self.type}"


# --- encoding -------------------------------------------------------------------------------


def ledger_data_text(payload: LedgerEntryCommitted) -> str:
    """The same JSON as json.dumps of `_data_of`, assembled directly: every string in it is
    an entry id, an entry kind, an address or an asset code, whose grammars admit no
    character JSON would escape (checked by tests/test_events_model.py)."""
    legs = ",".join(
        f'["{a}","{s}","{p}","{o}","{i}"]' for a, s, p, o, i in payload.legs
    )
    return (f'{{"entry_id":"{payload.entry_id}","entry_seq":{payload.entry_seq},'
            f'"kind":"{payload.kind}","legs":[{legs}]}}')


def _data_of(payload: Payload) -> dict[str, Any]:
    if isinstance(payload, LedgerEntryCommitted):
        return {
            "entry_id": payload.entry_id,
            "entry_seq": payload.entry_seq,
            "kind": payload.kind,
            "legs": [
                [leg.address, leg.asset, str(leg.posted), str(leg.pending_out),
                 str(leg.pending_in)]
                for leg in payload.legs
            ],
        }
    if isinstance(payload, PaymentTransitioned):
        return {
            "payment_id": payload.payment_id,
            "kind": payload.kind,
            "asset": payload.asset,
            "amount_minor": str(payload.amount_minor),
            "fee_minor": str(payload.fee_minor),
            "channel": payload.channel,
            "destination_channel": payload.destination_channel,
            "action": payload.action,
            "from_state": payload.from_state,
            "to_state": payload.to_state,
            "payment_version": payload.payment_version,
            "since_us": payload.since_us,
            "created_at_us": payload.created_at_us,
            "reason": payload.reason,
            "previous_channel": payload.previous_channel,
            "counterparty": payload.counterparty,
            # Only when known: an event of a step recorded without an actor keeps the bytes
            # it had before the field existed.
            **({} if payload.actor is None else {"actor": payload.actor}),
        }
    return {
        "alert_id": payload.alert_id,
        "rule": payload.rule,
        "severity": payload.severity,
        "subject": payload.subject,
        "summary": payload.summary,
        "value": payload.value,
        "actor": payload.actor,
    }


def encode(event: Event) -> bytes:
    """The event's wire form: compact UTF-8 JSON, keys in a fixed order."""
    return orjson.dumps({
        "id": event.id,
        "type": event.type,
        "v": event.version,
        "pool": event.pool,
        "seq": event.seq,
        "at_us": event.at_us,
        "data": _data_of(event.data),
    })


def encode_data(event: Event) -> str:
    """The payload alone, as the outbox stores it beside the envelope's columns."""
    if isinstance(event.data, LedgerEntryCommitted):
        return ledger_data_text(event.data)
    return orjson.dumps(_data_of(event.data)).decode()


def loads(raw: bytes | str) -> Any:
    """JSON as events carry it (orjson: strict UTF-8, so no lone surrogate gets in; nesting
    bounded), or `invalid_event`."""
    try:
        return orjson.loads(raw)
    except (orjson.JSONDecodeError, UnicodeEncodeError) as error:
        raise InvalidEvent("the event is not JSON", reason=str(error)[:200]) from None


def decode(raw: bytes | str) -> Event:
    """An event from its wire form. Raises `invalid_event`, `unknown_event_type` or
    `unknown_event_version`; never returns a half-read event."""
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
    if size > EVENT_BYTES_MAX:
        raise InvalidEvent("the event is larger than allowed", bytes=size,
                           bytes_max=EVENT_BYTES_MAX)
    body = loads(raw)
    if type(body) is not dict:
        raise InvalidEvent("an event is a JSON object")
    event_id = _text(body, "id")
    kind = _text(body, "type")
    version = _int(body, "v")
    pool = _text(body, "pool")
    seq = _int(body, "seq")
    at_us = _int(body, "at_us")
    data = body.get("data")
    if type(data) is not dict:
        raise InvalidEvent("the event's data is not an object", event_id=event_id)
    return event_from_parts(event_id, kind, version, pool, seq, at_us, data)


def event_from_parts(
    event_id: str, kind: str, version: int, pool: str, seq: int, at_us: int,
    data: Mapping[str, Any],
) -> Event:
    """An event from its envelope fields and decoded data (the outbox's columns)."""
    reader = _READERS.get(kind)
    if reader is None:
        raise UnknownEventType(event_id=event_id, type=kind, version=version)
    if version not in reader[0]:
        raise UnknownEventVersion(event_id=event_id, type=kind, version=version,
                                  versions=sorted(reader[0]))
    if seq < 0 or at_us < 0:
        raise InvalidEvent("seq and at_us are never negative", event_id=event_id)
    if POOL_PATTERN.fullmatch(pool) is None:
        raise InvalidEvent("'pool' is not a pool name", event_id=event_id, field="pool")
    try:
        payload = reader[1](kind, data)
    except InvalidEvent as error:
        raise InvalidEvent(error.detail, event_id=event_id, type=kind, **error.facts) from None
    return Event(event_id, kind, pool, at_us, payload, seq, version)


INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # times and counts fit a signed 64-bit integer


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if type(value) is not str or not value:
        raise InvalidEvent(f"'{key}' must be a non-empty string", field=key)
    return value


def _opt_text(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and type(value) is not str:
        raise InvalidEvent(f"'{key}' must be a string or null", field=key)
    return value


def _int(body: Mapping[str, Any], key: str) -> int:
    value = body.get(key)
    if type(value) is not int or not INT_MIN <= value <= INT_MAX:  # bool is not int here
        raise InvalidEvent(f"'{key}' must be a 64-bit integer", field=key)
    return value


def _opt_int(body: Mapping[str, Any], key: str) -> int | None:
    return None if body.get(key) is None else _int(body, key)


def _amount(value: Any, key: str, *, signed: bool = False) -> int:
    """Decimal text of minor units: ASCII digits only (str.isdigit alone admits others),
    at most 40 characters, a '-' only where a balance may be negative."""
    if type(value) is str and 0 < len(value) <= 40 and value.isascii():
        digits = value[1:] if signed and value[0] == "-" else value
        if digits.isdigit():
            return int(value)
    raise InvalidEvent(f"'{key}' must be an integer amount as decimal text", field=key)


def _ledger_entry(_kind: str, data: Mapping[str, Any]) -> LedgerEntryCommitted:
    legs = data.get("legs")
    if not isinstance(legs, list):
        raise InvalidEvent("'legs' must be a list", field="legs")
    read: list[LegAfter] = []
    for leg in legs:
        if not (type(leg) is list and len(leg) == 5
                and type(leg[0]) is str and type(leg[1]) is str):
            raise InvalidEvent("a leg is [address, asset, posted, pending_out, pending_in]",
                               field="legs")
        address, asset, posted, out, into = leg
        if _is_amount(out) and _is_amount(into) and (
                _is_amount(posted) or (type(posted) is str and posted[:1] == "-"
                                       and _is_amount(posted[1:]) and len(posted) <= 40)):
            read.append(LegAfter(address, asset, int(posted), int(out), int(into)))
        else:
            read.append(LegAfter(address, asset, _amount(posted, "posted", signed=True),
                                 _amount(out, "pending_out"), _amount(into, "pending_in")))
    return LedgerEntryCommitted(_text(data, "entry_id"), _int(data, "entry_seq"),
                                _text(data, "kind"), tuple(read))


def _is_text(value: Any) -> bool:
    return type(value) is str and value != ""


def _is_opt_text(value: Any) -> bool:
    return value is None or type(value) is str


def _is_int(value: Any) -> bool:
    return type(value) is int and INT_MIN <= value <= INT_MAX


def _is_amount(value: Any) -> bool:
    return type(value) is str and 0 < len(value) <= 40 and value.isascii() and value.isdigit()


def _is_opt_actor(value: Any) -> bool:
    """None, or an object with a text `kind` and `id` (what `Actor.from_dict` needs)."""
    return value is None or (type(value) is dict and _is_text(value.get("kind"))
                             and _is_text(value.get("id")))


def _opt_actor(body: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = body.get(key)
    if not _is_opt_actor(value):
        raise InvalidEvent(f"'{key}' must be null or an object with text 'kind' and 'id'",
                           field=key)
    return value


def _payment(kind: str, data: Mapping[str, Any]) -> PaymentTransitioned:
    """The common case checked in one expression (a consumer reads thousands a second);
    anything it does not accept goes through the field-by-field reader for its error."""
    raw: Any = data
    g = raw.get
    since = g("since_us")
    if (_is_text(g("payment_id")) and _is_text(g("kind")) and _is_text(g("asset"))
            and _is_amount(g("amount_minor")) and _is_amount(g("fee_minor"))
            and _is_opt_text(g("channel")) and _is_opt_text(g("destination_channel"))
            and _is_text(g("action")) and _is_opt_text(g("from_state"))
            and _is_text(g("to_state")) and _is_int(g("payment_version"))
            and (since is None or _is_int(since)) and _is_int(g("created_at_us"))
            and _is_opt_text(g("reason")) and _is_opt_text(g("previous_channel"))
            and _is_opt_text(g("counterparty")) and _is_opt_actor(g("actor"))):
        return PaymentTransitioned(
            g("payment_id"), g("kind"), g("asset"), int(g("amount_minor")),
            int(g("fee_minor")), g("channel"), g("destination_channel"), g("action"),
            g("from_state"), g("to_state"), g("payment_version"), since,
            g("created_at_us"), g("reason"), g("previous_channel"), g("counterparty"),
            g("actor"),
        )
    return _payment_checked(kind, data)


def _payment_checked(_kind: str, data: Mapping[str, Any]) -> PaymentTransitioned:
    return PaymentTransitioned(
        payment_id=_text(data, "payment_id"),
        kind=_text(data, "kind"),
        asset=_text(data, "asset"),
        amount_minor=_amount(data.get("amount_minor"), "amount_minor"),
        fee_minor=_amount(data.get("fee_minor"), "fee_minor"),
        channel=_opt_text(data, "channel"),
        destination_channel=_opt_text(data, "destination_channel"),
        action=_text(data, "action"),
        from_state=_opt_text(data, "from_state"),
        to_state=_text(data, "to_state"),
        payment_version=_int(data, "payment_version"),
        since_us=_opt_int(data, "since_us"),
        created_at_us=_int(data, "created_at_us"),
        reason=_opt_text(data, "reason"),
        previous_channel=_opt_text(data, "previous_channel"),
        counterparty=_opt_text(data, "counterparty"),
        actor=_opt_actor(data, "actor"),
    )


def _alert(_kind: str, data: Mapping[str, Any]) -> AlertChanged:
    return AlertChanged(
        alert_id=_text(data, "alert_id"),
        rule=_text(data, "rule"),
        severity=_text(data, "severity"),
        subject=_text(data, "subject"),
        summary=_text(data, "summary"),
        value=_opt_text(data, "value"),
        actor=_opt_text(data, "actor"),
    )


_Reader = tuple[frozenset[int], Callable[[str, Mapping[str, Any]], Payload]]
_READERS: dict[str, _Reader] = {
    LedgerEntryCommitted.TYPE: (frozenset({1}), _ledger_entry),
    PaymentTransitioned.TYPE: (frozenset({1}), _payment),
    **{kind: (frozenset({1}), _alert) for kind in AlertChanged.TYPES},
}
EVENT_TYPES = tuple(sorted(_READERS))
