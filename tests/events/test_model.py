"""Typed, versioned events on the wire (src/fundpool/events/model.py).

- every event type survives `decode(encode(e)) == e`, with 128-bit amounts, negative posted
  balances (world accounts), None in every optional field and any unicode text;
- the outbox's own payload text (`encode_data`, whose ledger payload is assembled by hand)
  reads back to the same event through `event_from_parts`;
- anything malformed raises `invalid_event` and never anything else (no ValueError, no
  KeyError, no RecursionError leaking out of a consumer);
- an unknown type raises `unknown_event_type`, an unknown version `unknown_event_version`.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fundpool.core.errors import FundpoolError
from fundpool.core.ledger.model import ADDRESS_LENGTH_MAX, EntryKind, check_address
from fundpool.core.money import Asset, AssetKind
from fundpool.events.model import (
    EVENT_BYTES_MAX,
    EVENT_TYPES,
    SYSTEM_POOL,
    AlertChanged,
    Event,
    InvalidEvent,
    LedgerEntryCommitted,
    LegAfter,
    PaymentTransitioned,
    UnknownEventType,
    UnknownEventVersion,
    _data_of,
    _payment_checked,
    decode,
    encode,
    encode_data,
    event_from_parts,
    ledger_data_text,
)

AMOUNT_MAX = 2**128 - 1
EVENT_ERRORS = (InvalidEvent, UnknownEventType, UnknownEventVersion)

# --- strategies ---------------------------------------------------------------------------------

# Any text a JSON string can carry (lone surrogates cannot be UTF-8 encoded, so no producer
# can put one on the wire).
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=24)
NON_EMPTY = TEXT.filter(bool)
OPT_TEXT = st.none() | TEXT
AMOUNTS = st.integers(0, AMOUNT_MAX)
SIGNED_AMOUNTS = st.integers(-AMOUNT_MAX, AMOUNT_MAX)
JSON_INTS = st.integers(-(2**63), 2**63 - 1)
NON_NEGATIVE = st.integers(0, 2**63 - 1)

LEGS = st.builds(LegAfter, TEXT, TEXT, SIGNED_AMOUNTS, AMOUNTS, AMOUNTS)
LEDGER_PAYLOADS = st.builds(
    LedgerEntryCommitted, NON_EMPTY, JSON_INTS, NON_EMPTY,
    st.lists(LEGS, max_size=6).map(tuple),
)
PAYMENT_PAYLOADS = st.builds(
    PaymentTransitioned,
    payment_id=NON_EMPTY, kind=NON_EMPTY, asset=NON_EMPTY, amount_minor=AMOUNTS,
    fee_minor=AMOUNTS, channel=OPT_TEXT, destination_channel=OPT_TEXT, action=NON_EMPTY,
    from_state=OPT_TEXT, to_state=NON_EMPTY, payment_version=JSON_INTS,
    since_us=st.none() | JSON_INTS, created_at_us=JSON_INTS, reason=OPT_TEXT,
    previous_channel=OPT_TEXT, counterparty=OPT_TEXT,
)
ALERT_PAYLOADS = st.builds(
    AlertChanged, NON_EMPTY, NON_EMPTY, NON_EMPTY, NON_EMPTY, NON_EMPTY, OPT_TEXT, OPT_TEXT,
)


POOLS = st.just("_ledger") | st.from_regex(r"[a-z0-9][a-z0-9_-]{0,63}", fullmatch=True)


def _event(type_: str, payload: Any) -> st.SearchStrategy[Event]:
    return st.builds(
        Event, id=NON_EMPTY, type=st.just(type_), pool=POOLS, at_us=NON_NEGATIVE,
        data=st.just(payload), seq=NON_NEGATIVE, version=st.just(1),
    )


EVENTS = st.one_of(
    LEDGER_PAYLOADS.flatmap(lambda p: _event(LedgerEntryCommitted.TYPE, p)),
    PAYMENT_PAYLOADS.flatmap(lambda p: _event(PaymentTransitioned.TYPE, p)),
    st.tuples(st.sampled_from(AlertChanged.TYPES), ALERT_PAYLOADS).flatmap(
        lambda tp: _event(*tp)
    ),
)

# What the ledger really puts in a ledger event: entry ids (uuid7), entry kinds, addresses and
# asset codes by their grammars (core/ledger/model.py, core/money.py).
LOWER = "abcdefghijklmnopqrstuvwxyz0123456789"
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
SEGMENTS = st.builds(str.__add__, st.sampled_from(LOWER), st.text(LOWER + "_-", max_size=63))
ADDRESSES = st.lists(SEGMENTS, min_size=2, max_size=8).map(":".join).filter(
    lambda a: len(a) <= ADDRESS_LENGTH_MAX
)
ASSET_CODES = st.builds(
    str.__add__,
    st.builds(str.__add__, st.sampled_from(UPPER[:26]), st.text(UPPER, max_size=11)),
    st.just("") | st.builds(str.__add__, st.sampled_from("-."), st.text(UPPER, min_size=1,
                                                                      max_size=12)),
).filter(lambda c: 2 <= len(c) <= 25)
UUIDS = st.uuids(version=4).map(str)
GRAMMAR_LEGS = st.builds(LegAfter, ADDRESSES, ASSET_CODES, SIGNED_AMOUNTS, AMOUNTS, AMOUNTS)
GRAMMAR_LEDGER_PAYLOADS = st.builds(
    LedgerEntryCommitted, UUIDS, st.integers(1, 2**63 - 1),
    st.sampled_from([k.value for k in EntryKind]), st.lists(GRAMMAR_LEGS, max_size=6).map(tuple),
)


# --- round trips --------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(EVENTS)
def test_decode_of_encode_is_the_event(event: Event) -> None:
    wire = encode(event)
    assert isinstance(wire, bytes)
    assert decode(wire) == event
    assert decode(wire.decode()) == event  # str input too
    assert encode(decode(wire)) == wire  # one wire form per event


@settings(max_examples=100, deadline=None)
@given(EVENTS)
def test_the_outbox_payload_reads_back_through_event_from_parts(event: Event) -> None:
    """The outbox stores `encode_data` beside the envelope columns; the feed and replays read
    it back with `event_from_parts`."""
    assume(not isinstance(event.data, LedgerEntryCommitted))  # see the grammar test below
    data = json.loads(encode_data(event))
    assert event_from_parts(
        event.id, event.type, event.version, event.pool, event.seq, event.at_us, data
    ) == event


@settings(max_examples=200, deadline=None)
@given(GRAMMAR_LEDGER_PAYLOADS, NON_NEGATIVE, NON_NEGATIVE)
def test_the_hand_assembled_ledger_payload_is_the_json_of_its_data(
    payload: LedgerEntryCommitted, seq: int, at_us: int
) -> None:
    """`ledger_data_text` skips json.dumps: for every id, kind, address and asset code the
    ledger's grammars admit it must be byte for byte the same JSON."""
    for leg in payload.legs:
        assert check_address(leg.address) == leg.address
        assert Asset(leg.asset, 2, AssetKind.FIAT).code == leg.asset
    expected = json.dumps(_data_of(payload), separators=(",", ":"), ensure_ascii=False)
    assert ledger_data_text(payload) == expected
    event = Event(payload.entry_id, LedgerEntryCommitted.TYPE, "main", at_us, payload, seq)
    assert encode_data(event) == expected
    assert event_from_parts(
        event.id, event.type, 1, "main", seq, at_us, json.loads(encode_data(event))
    ) == event


def test_extremes_round_trip() -> None:
    legs = (
        LegAfter("world:bank-a", "USD", -AMOUNT_MAX, AMOUNT_MAX, AMOUNT_MAX),
        LegAfter("pool:main:usd:bank-a:available", "USD", AMOUNT_MAX, 0, 0),
        LegAfter("pool:main:usd:bank-a:locked", "USD", 0, 0, 0),
    )
    ledger = Event("e-1", LedgerEntryCommitted.TYPE, SYSTEM_POOL, 0,
                   LedgerEntryCommitted("e-1", 1, "transfer", legs), 0)
    payment = Event(
        "p-1:1", PaymentTransitioned.TYPE, "main", 2**63 - 1,
        PaymentTransitioned("p-1", "payout", "USD", AMOUNT_MAX, 0, None, None, "create",
                            None, "initiated", 1, None, 0, None),
        2**63 - 1,
    )
    alert = Event("a-1", "alert.acknowledged", "main", 1,
                  AlertChanged("a-1", "rule", "warning", "channel:bank-a",
                               "ünïcødé — 资金池 \u0000 \"quoted\" \\ 🚀", None, "ops@é"), 3)
    for event in (ledger, payment, alert):
        assert decode(encode(event)) == event
    body = json.loads(encode(ledger))
    assert body["data"]["legs"][0] == ["world:bank-a", "USD", f"-{AMOUNT_MAX}",
                                       str(AMOUNT_MAX), str(AMOUNT_MAX)]
    assert list(body) == ["id", "type", "v", "pool", "seq", "at_us", "data"]
    assert body["v"] == 1
    assert "ü" in encode(alert).decode()  # compact UTF-8, not \u escapes


def test_the_reader_knows_exactly_the_declared_types() -> None:
    assert set(EVENT_TYPES) == {
        LedgerEntryCommitted.TYPE, PaymentTransitioned.TYPE, *AlertChanged.TYPES
    }


def test_subject_names_the_pool_and_the_type() -> None:
    event = decode(raw(payment_body()))
    assert event.subject == "fundpool.main.payment.transitioned"
    assert event.version == 1


# --- malformed input ------------------------------------------------------------------------


def ledger_body() -> dict[str, Any]:
    return {
        "id": "e-1", "type": "ledger.entry_committed", "v": 1, "pool": "main", "seq": 7,
        "at_us": 1_767_225_600_000_000,
        "data": {
            "entry_id": "e-1", "entry_seq": 12, "kind": "transfer",
            "legs": [["pool:main:usd:bank-a:available", "USD", "100", "5", "0"],
                     ["world:bank-a", "USD", "-100", "0", "0"]],
        },
    }


def payment_body() -> dict[str, Any]:
    return {
        "id": "p-1:2", "type": "payment.transitioned", "v": 1, "pool": "main", "seq": 8,
        "at_us": 1_767_225_601_000_000,
        "data": {
            "payment_id": "p-1", "kind": "payout", "asset": "USD", "amount_minor": "10000",
            "fee_minor": "30", "channel": "bank-a", "destination_channel": None,
            "action": "screen", "from_state": "initiated", "to_state": "screened",
            "payment_version": 2, "since_us": 1_767_225_600_000_000,
            "created_at_us": 1_767_225_600_000_000, "reason": None,
            "previous_channel": None, "counterparty": "Zoë \"=cmd\" 资金",
        },
    }


def alert_body() -> dict[str, Any]:
    return {
        "id": "a-1", "type": "alert.fired", "v": 1, "pool": "main", "seq": 9, "at_us": 5,
        "data": {"alert_id": "a-1", "rule": "r", "severity": "critical", "subject": "pool",
                 "summary": "s", "value": "0.5", "actor": None},
    }


BODIES = {"ledger": ledger_body, "payment": payment_body, "alert": alert_body}


def raw(body: object) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


def assert_invalid(message: bytes | str) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as caught:
        decode(message)
    assert caught.value.code == "invalid_event"
    return caught.value


@pytest.mark.parametrize("name", sorted(BODIES))
def test_the_valid_bodies_decode(name: str) -> None:
    body = BODIES[name]()
    event = decode(raw(body))
    assert encode(event) == json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize(
    "message",
    [b"", b"{", b"{'id': 1}", b"\xff\xfe\x00", b"\x80abc", "{\"a\":", b"nul", b"{}x",
     b"{\"id\": \"x\"} {}", b"\x00"],
)
def test_not_json_is_invalid(message: bytes | str) -> None:
    assert_invalid(message)


@pytest.mark.parametrize("message", [b"[]", b"1", b"\"event\"", b"null", b"true", b"NaN",
                                     b"[{\"id\": \"x\"}]", b"1e400"])
def test_not_an_object_is_invalid(message: bytes) -> None:
    assert_invalid(message)


ENVELOPE = ("id", "type", "v", "pool", "seq", "at_us", "data")
REQUIRED_DATA = {
    "ledger": ("entry_id", "entry_seq", "kind", "legs"),
    "payment": ("payment_id", "kind", "asset", "amount_minor", "fee_minor", "action",
                "to_state", "payment_version", "created_at_us"),
    "alert": ("alert_id", "rule", "severity", "subject", "summary"),
}


@pytest.mark.parametrize("name", sorted(BODIES))
@pytest.mark.parametrize("key", ENVELOPE)
def test_a_missing_envelope_field_is_invalid(name: str, key: str) -> None:
    body = BODIES[name]()
    del body[key]
    assert_invalid(raw(body))


@pytest.mark.parametrize(("name", "key"),
                         [(n, k) for n, keys in REQUIRED_DATA.items() for k in keys])
def test_a_missing_data_field_is_invalid(name: str, key: str) -> None:
    body = BODIES[name]()
    del body["data"][key]
    error = assert_invalid(raw(body))
    assert error.facts.get("event_id") == body["id"]


# value -> the kinds of field it is wrong for
WRONG: list[tuple[object, set[str]]] = [
    (None, {"text", "int", "amount", "signed"}),
    ("", {"text", "int", "amount", "signed"}),
    (1, {"text", "opt_text", "amount", "signed"}),
    (True, {"text", "opt_text", "int", "opt_int", "amount", "signed"}),
    (False, {"text", "opt_text", "int", "opt_int", "amount", "signed"}),
    (1.0, {"text", "opt_text", "int", "opt_int", "amount", "signed"}),
    (1.5, {"int", "opt_int", "amount", "signed"}),
    ("7", {"int", "opt_int"}),
    ([], {"text", "opt_text", "int", "opt_int", "amount", "signed"}),
    ({}, {"text", "opt_text", "int", "opt_int", "amount", "signed"}),
    ("1.5", {"int", "opt_int", "amount", "signed"}),
    ("-3", {"amount", "int", "opt_int"}),
    ("-0", {"amount"}),
    ("1e3", {"amount", "signed"}),
    ("0x10", {"amount", "signed"}),
    (" 1", {"amount", "signed"}),
    ("1 ", {"amount", "signed"}),
    ("+1", {"amount", "signed"}),
    ("-", {"amount", "signed"}),
    ("1_000", {"amount", "signed"}),
    ("9" * 41, {"amount", "signed"}),
    ("-" + "9" * 40, {"signed"}),
]
FIELDS: dict[str, dict[str, str]] = {
    "envelope": {"id": "text", "type": "text", "v": "int", "pool": "text", "seq": "int",
                 "at_us": "int"},
    "ledger": {"entry_id": "text", "entry_seq": "int", "kind": "text"},
    "payment": {"payment_id": "text", "kind": "text", "asset": "text", "amount_minor": "amount",
                "fee_minor": "amount", "channel": "opt_text", "destination_channel": "opt_text",
                "action": "text", "from_state": "opt_text", "to_state": "text",
                "payment_version": "int", "since_us": "opt_int", "created_at_us": "int",
                "reason": "opt_text", "previous_channel": "opt_text",
                "counterparty": "opt_text"},
    "alert": {"alert_id": "text", "rule": "text", "severity": "text", "subject": "text",
              "summary": "text", "value": "opt_text", "actor": "opt_text"},
}
LEG_FIELDS = {2: "signed", 3: "amount", 4: "amount"}


def wrong_places(value: object, wrong_for: set[str]) -> list[tuple[str, str]]:
    """(body, field) pairs where `value` is of the wrong type or shape."""
    places = []
    for name in BODIES:
        for field, kind in FIELDS["envelope"].items():
            if kind in wrong_for and not (field == "type" and isinstance(value, str)):
                places.append((name, f"envelope.{field}"))
        for field, kind in FIELDS[name].items():
            if kind in wrong_for:
                places.append((name, f"data.{field}"))
    for index, kind in LEG_FIELDS.items():
        if kind in wrong_for:
            places.append(("ledger", f"leg.{index}"))
    return places


def put(body: dict[str, Any], where: str, value: object) -> None:
    part, _, field = where.partition(".")
    if part == "envelope":
        body[field] = value
    elif part == "data":
        body["data"][field] = value
    else:
        body["data"]["legs"][0][int(field)] = value


@pytest.mark.parametrize(("value", "wrong_for"), WRONG, ids=[repr(v)[:20] for v, _ in WRONG])
def test_a_wrong_typed_or_shaped_value_is_invalid(value: object, wrong_for: set[str]) -> None:
    places = wrong_places(value, wrong_for)
    assert places
    for name, where in places:
        body = BODIES[name]()
        put(body, where, value)
        try:
            decode(raw(body))
        except InvalidEvent:
            continue
        except Exception as error:
            pytest.fail(f"{name} {where}={value!r}: {type(error).__name__}: {error}")
        pytest.fail(f"{name} {where}={value!r} decoded")


@pytest.mark.parametrize("amount", ["0", "1", "007", str(AMOUNT_MAX), "9" * 40])
def test_amounts_are_decimal_text_of_up_to_40_digits(amount: str) -> None:
    body = payment_body()
    body["data"]["amount_minor"] = amount
    assert decode(raw(body)).data.amount_minor == int(amount)


@pytest.mark.parametrize("posted", ["-1", f"-{AMOUNT_MAX}", "-0", "0"])
def test_a_posted_balance_may_be_negative(posted: str) -> None:
    body = ledger_body()
    body["data"]["legs"][1][2] = posted
    assert decode(raw(body)).data.legs[1].posted == int(posted)


@pytest.mark.parametrize(
    "leg",
    [None, "pool:main:usd:bank-a:available", [], ["a", "USD", "1", "0"],
     ["a", "USD", "1", "0", "0", "0"], [1, "USD", "1", "0", "0"], ["a", None, "1", "0", "0"],
     {"address": "a"}],
)
def test_a_malformed_leg_is_invalid(leg: object) -> None:
    body = ledger_body()
    body["data"]["legs"][0] = leg
    assert_invalid(raw(body))


@pytest.mark.parametrize("legs", [None, {}, "[]", 3])
def test_legs_must_be_a_list(legs: object) -> None:
    body = ledger_body()
    body["data"]["legs"] = legs
    assert_invalid(raw(body))


@pytest.mark.parametrize("data", [None, [], "x", 1, True])
def test_data_must_be_an_object(data: object) -> None:
    body = payment_body()
    body["data"] = data
    assert_invalid(raw(body))


@pytest.mark.parametrize(("field", "value"), [("seq", -1), ("at_us", -1)])
def test_seq_and_time_are_never_negative(field: str, value: int) -> None:
    body = payment_body()
    body[field] = value
    assert_invalid(raw(body))


def test_an_event_larger_than_allowed_is_invalid_and_one_at_the_limit_is_not() -> None:
    body = alert_body()
    body["data"]["summary"] = ""
    base = len(raw(body))
    body["data"]["summary"] = "x" * (EVENT_BYTES_MAX - base)
    at_limit = raw(body)
    assert len(at_limit) == EVENT_BYTES_MAX
    assert decode(at_limit).data.summary == "x" * (EVENT_BYTES_MAX - base)
    error = assert_invalid(at_limit + b" ")
    assert error.facts["bytes_max"] == EVENT_BYTES_MAX
    assert_invalid(b" " * (EVENT_BYTES_MAX + 1))


# --- unknown types and versions -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ledger.entry_reversed", "payment.created", "x", "ALERT.FIRED",
                                  "alert.fired "])
def test_an_unknown_type_is_unknown_event_type(kind: str) -> None:
    body = payment_body()
    body["type"] = kind
    with pytest.raises(UnknownEventType) as caught:
        decode(raw(body))
    assert caught.value.code == "unknown_event_type"
    assert caught.value.facts["type"] == kind


def test_an_unknown_type_is_skippable_whatever_its_data() -> None:
    """A newer producer's type may carry anything in its data: an old reader skips it."""
    body = payment_body()
    body["type"] = "payment.disputed"
    body["v"] = 7
    body["data"] = {"whatever": [1, 2, {"x": None}]}
    with pytest.raises(UnknownEventType):
        decode(raw(body))


@pytest.mark.parametrize("name", sorted(BODIES))
@pytest.mark.parametrize("version", [0, 2, 99, -1, 2**63 - 1])
def test_an_unknown_version_is_unknown_event_version(name: str, version: int) -> None:
    body = BODIES[name]()
    body["v"] = version
    body["data"]["extra"] = "a new field"
    with pytest.raises(UnknownEventVersion) as caught:
        decode(raw(body))
    assert caught.value.code == "unknown_event_version"
    assert str(caught.value.facts["version"]) == str(version)
    assert caught.value.facts["versions"] == [1]


@pytest.mark.parametrize("version", [2**63, 2**70, -(2**63) - 1])
def test_a_version_beyond_64_bits_is_invalid(version: int) -> None:
    body = BODIES["payment"]()
    body["v"] = version
    with pytest.raises(InvalidEvent):
        decode(raw(body))


def test_an_unknown_version_is_refused_before_its_data_is_read() -> None:
    """Version 2 may have changed what a field means: never read it as version 1."""
    body = payment_body()
    body["v"] = 2
    body["data"] = {"amount_minor": 10_000}  # would be invalid as v1
    with pytest.raises(UnknownEventVersion):
        decode(raw(body))


def test_an_event_stored_before_counterparty_was_added_still_reads() -> None:
    """`counterparty` joined v1 as an optional field: an old event without it reads with None
    on both paths (the checked one too), and one with it round-trips."""
    old = payment_body()
    del old["data"]["counterparty"]
    event = decode(raw(old))
    assert isinstance(event.data, PaymentTransitioned)
    assert event.data.counterparty is None
    assert event.version == 1
    checked = _payment_checked(PaymentTransitioned.TYPE, old["data"])
    assert checked == event.data
    assert json.loads(encode(event))["data"]["counterparty"] is None
    new = decode(raw(payment_body()))
    assert isinstance(new.data, PaymentTransitioned)
    assert new.data.counterparty == 'Zoë "=cmd" 资金'
    assert decode(encode(new)) == new
    assert event_from_parts(new.id, new.type, 1, new.pool, new.seq, new.at_us,
                            json.loads(encode_data(new))) == new


def test_an_unknown_field_of_a_known_version_is_ignored() -> None:
    body = payment_body()
    body["data"]["note"] = "from a producer that adds a field without a new version"
    body["extra"] = 1
    assert decode(raw(body)) == decode(raw(payment_body()))


# --- fuzzing: only the three event errors ever come out -----------------------------------------

JSON_LEAVES = (st.none() | st.booleans() | st.integers(-(2**130), 2**130)
               | st.floats(allow_nan=False, allow_infinity=False) | TEXT
               | st.sampled_from(["0", "1", "-1", "1.5", "-3", "", "9" * 41]))
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def paths(value: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found.extend(paths(inner, (*prefix, key)))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found.extend(paths(inner, (*prefix, index)))
    return found


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(BODIES)), st.data(), JSON_VALUES, st.booleans())
def test_any_mutation_decodes_or_raises_an_event_error(
    name: str, data: st.DataObject, value: object, delete: bool
) -> None:
    body = BODIES[name]()
    where = data.draw(st.sampled_from(paths(body)[1:]), label="path")
    parent: Any = body
    for step in where[:-1]:
        parent = parent[step]
    if delete and isinstance(parent, dict):
        del parent[where[-1]]
    else:
        parent[where[-1]] = value
    try:
        event = decode(raw(body))
    except EVENT_ERRORS:
        return
    assert decode(encode(event)) == event


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64) | TEXT.map(str.encode))
def test_arbitrary_bytes_raise_only_event_errors(message: bytes) -> None:
    with contextlib.suppress(*EVENT_ERRORS):
        decode(message)


@pytest.mark.parametrize("name", sorted(BODIES))
def test_every_failure_is_a_fundpool_error_with_its_code(name: str) -> None:
    body = BODIES[name]()
    body["seq"] = "7"
    with pytest.raises(FundpoolError) as caught:
        decode(raw(body))
    assert type(caught.value) is InvalidEvent
    assert caught.value.facts["field"] == "seq"


# --- open bugs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("posted", "--5"), ("posted", "²"), ("pending_out", "²"), ("pending_in", "³"),
     ("amount_minor", "¹"), ("fee_minor", "①")],
)
def test_amount_text_that_int_refuses_is_invalid_event(field: str, value: str) -> None:
    body = ledger_body() if field in ("posted", "pending_out", "pending_in") else payment_body()
    if field in ("posted", "pending_out", "pending_in"):
        body["data"]["legs"][0][{"posted": 2, "pending_out": 3, "pending_in": 4}[field]] = value
    else:
        body["data"][field] = value
    assert_invalid(raw(body))


def test_non_ascii_digits_are_not_an_amount() -> None:
    body = payment_body()
    body["data"]["amount_minor"] = "١٢٣"
    assert_invalid(raw(body))


@pytest.mark.parametrize("message", [b"[" * 100_000, b"{\"a\":" * 100_000,
                                     b"{\"id\":\"x\",\"data\":" + b"[" * 100_000])
def test_deep_nesting_is_invalid_event(message: bytes) -> None:
    assert len(message) <= EVENT_BYTES_MAX
    assert_invalid(message)


@pytest.mark.parametrize("field", ["id", "pool", "data.summary", "data.actor"])
def test_a_lone_surrogate_is_invalid_event(field: str) -> None:
    body = alert_body()
    if field.startswith("data."):
        body["data"][field[5:]] = "x\ud800y"
    else:
        body[field] = "x\ud800y"
    message = json.dumps(body).encode()  # ensure_ascii: the surrogate goes out as an escape
    assert b"\\ud800" in message
    try:
        event = decode(message)
    except InvalidEvent:
        return
    encode(event)  # raises UnicodeEncodeError today
    pytest.fail("decoded text that is not Unicode scalar values")


def test_a_payment_event_carries_its_actor_and_old_events_read_without_one() -> None:
    body = payment_body()
    old = decode(raw(body))
    assert isinstance(old.data, PaymentTransitioned)
    assert old.data.actor is None
    assert b'"actor"' not in encode(old)  # an old event re-encodes byte for byte
    who = {"kind": "user", "id": "u-1", "name": "alice", "roles": ["approver"],
           "session_id": "s-1", "request_id": "r-1"}
    body["data"]["actor"] = who
    event = decode(raw(body))
    assert isinstance(event.data, PaymentTransitioned)
    assert event.data.actor == who
    assert decode(encode(event)) == event
    for bad in ("alice", {"kind": "user"}, {"kind": "", "id": "u-1"}, ["user", "u-1"]):
        body["data"]["actor"] = bad
        error = assert_invalid(raw(body))
        assert error.facts["field"] == "actor"
