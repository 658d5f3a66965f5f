"""A record's canonical bytes: orjson's are the standard library's canonical form (keys sorted
by code point, `,` `:`, UTF-8 unescaped) on any document of JSON values, big integers
included; floats never reach a record from a source, and a document from elsewhere with one
is refused."""

from __future__ import annotations

import dataclasses
import datetime
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fundpool.audit import sources
from fundpool.audit.records import AuditRecord, InvalidAuditRecord, canonical_json

REFERENCE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True,
                             allow_nan=False)


def reference(doc: Any) -> bytes:
    """The canonical form as it was first written: the standard library's encoder."""
    return REFERENCE.encode(doc).encode("utf-8")


text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)  # no lone surrogates
scalars = (st.none() | st.booleans() | st.integers(-2**64, 2**64) | st.integers() | text)
documents = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(text, inner,
                                                                         max_size=6),
    max_leaves=40)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(text, documents, max_size=8))
def test_orjson_bytes_are_the_reference_canonical_form(doc: dict[str, Any]) -> None:
    assert canonical_json(doc) == reference(doc)


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(text, documents, max_size=6), text, text, st.integers(0, 2**62))
def test_a_records_bytes_are_the_reference_canonical_form(details: dict[str, Any], name: str,
                                                          object_id: str, at_us: int) -> None:
    record = AuditRecord("outbox", "7", at_us, "payment.approve", "payment", object_id,
                         {"kind": "user", "id": "u-1", "name": name, "roles": ["a", "b"]},
                         before={"state": "x"}, after=None, details=details)
    assert record.data() == reference(record.to_dict()) == canonical_json(record.to_dict())


def test_keys_sort_by_code_point_across_planes() -> None:
    doc = {"\U00010000": 1, "\uffff": 2, "z": 3, "é": 4, "Z": 5, "": 6}
    assert canonical_json(doc) == reference(doc)
    assert canonical_json({"a": "\x00\x1f\x7f\u2028\U0001f600\"\\"}) == \
        reference({"a": "\x00\x1f\x7f\u2028\U0001f600\"\\"})


@pytest.mark.parametrize("value", [1.5, -0.0, 1e300, float("nan"), float("inf")])
def test_a_float_is_refused_and_placed(value: float) -> None:
    with pytest.raises(InvalidAuditRecord) as caught:
        canonical_json({"details": {"amounts": [1, value]}})
    assert "$.details.amounts[1]" in str(caught.value)


@dataclasses.dataclass
class _Thing:
    x: int = 1


class _Text(str):
    pass


@pytest.mark.parametrize("value", [b"raw", datetime.date(2026, 1, 1), _Thing(), _Text("t"),
                                   {1, 2}, "\ud800"])
def test_what_is_not_json_is_refused_from_a_record_too(value: object) -> None:
    record = AuditRecord("outbox", "1", 0, "a", "k", "i", None, details={"v": value})
    with pytest.raises(InvalidAuditRecord):
        record.data()
    with pytest.raises(InvalidAuditRecord):
        canonical_json(record.to_dict())


def test_a_big_integer_is_written_exactly() -> None:
    record = AuditRecord("outbox", "1", 0, "a", "k", "i", None, details={"v": 2**80})
    assert b'"v":1208925819614629174706176' in record.data()


def test_sources_read_a_float_as_its_text() -> None:
    parsed = sources.loads('{"a": 1.50, "b": [1e5, NaN, -Infinity], "c": 2}')
    assert parsed == {"a": "1.5", "b": ["100000.0", "nan", "-inf"], "c": 2}
    record = sources.approval_record(3, 0, "rules.drafted", "approval_rules", "1",
                                     '{"kind": "user", "id": "u", "name": "n", "x": 0.25}',
                                     '{"after": {"ratio": 0.5}, "note": "n"}')
    assert b"0.5" in record.data()
    assert json.loads(record.data())["after"] == {"ratio": "0.5"}
