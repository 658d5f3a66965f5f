"""An audit record: who did what to which object, when, and what it changed.

    {"source": "outbox", "source_id": "42", "at_us": 1767225600000000,
     "action": "payment.approve", "object": {"kind": "payment", "id": "…"},
     "actor": {"kind": "user", "id": "…", "name": "ada", "roles": ["approver"],
               "session_id": …, "key_id": …, "request_id": …} | null,
     "before": {…} | null, "after": {…} | null, "details": {…}}

Its bytes in the log are its canonical JSON, as the ledger's journal (docs/adr/0003): keys
sorted, separators `,` and `:`, UTF-8 without `\\u` escapes, integers only (a float is refused:
amounts are decimal text of minor units). A leaf is SHA-256(0x00 || those bytes).

The bytes are orjson's (`OPT_SORT_KEYS`: the same bytes as `json.dumps(sort_keys=True,
separators=(",", ":"), ensure_ascii=False)`, at a tenth of the cost; tests/audit/test_records.py
checks it on random documents), or the standard library's for an integer beyond 64 bits.

Floats are kept out where records are built, not by walking every value of every record as it
is appended: the sources (sources.py) read every stored JSON text with `sources.loads`, which
gives a float (and NaN, Infinity) as its text, and fill the other fields from typed columns.
`AuditRecord.data` then only refuses what is not JSON at all (orjson hands any other type to
`default`: dataclasses, dates, subclasses of str/int/dict/list); enums and UUIDs, which orjson
writes as their value, and floats are not looked for there. `canonical_json`, for a document
from elsewhere, checks every value first, as before: a float is refused and where it is named.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from fundpool.audit.merkle import leaf_hash
from fundpool.core.errors import FundpoolError

RECORD_BYTES_MAX = 1 << 20  # a larger record is refused, not logged in part

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True,
                            allow_nan=False)


class InvalidAuditRecord(FundpoolError):
    code = "invalid_audit_record"
    title = "the audit record cannot be written in canonical form"


def _only_json(value: Any) -> bool:
    """Whether `value` holds only text, integers, booleans, null, lists and objects with text
    keys (no float): checked by exact type, which is what the encoder writes."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not _only_json(item):
                return False
        return True
    if kind is list or kind is tuple:
        return all(_only_json(item) for item in value)
    return False


def _first_wrong(value: Any, where: str) -> str:
    """Where in `value` the first value `_only_json` refuses is (for the error only)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if type(key) is not str:
                return f"{where} (a key {key!r})"
            if not _only_json(item):
                return _first_wrong(item, f"{where}.{key}")
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            if not _only_json(item):
                return _first_wrong(item, f"{where}[{i}]")
    return f"{where} ({type(value).__name__})"


_ORJSON_OPTIONS = (orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS
                   | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS)


def _not_json(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not written in a record")


def canonical_json(doc: Mapping[str, Any]) -> bytes:
    """The canonical bytes of any document, every value's type checked first (a float is
    refused, and where it is named): for a document from outside (the console checks a
    record it was shown). A record's own bytes skip the check (`AuditRecord.data`)."""
    if not _only_json(doc):
        raise InvalidAuditRecord("a record holds only text, integers, booleans, null, lists "
                                 "and objects", where=_first_wrong(doc, "$"))
    return _encoded(doc)


def _encoded(doc: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a document built of JSON values (see the module's text):
    orjson's, or the standard library's for what orjson does not write (an integer beyond
    64 bits), or InvalidAuditRecord for what is not JSON at all."""
    try:
        return orjson.dumps(doc, default=_not_json, option=_ORJSON_OPTIONS)
    except (orjson.JSONEncodeError, TypeError):
        return _exact_json(doc)


def _exact_json(doc: Mapping[str, Any]) -> bytes:
    """The canonical bytes by the standard library, every value's type checked first."""
    if not _only_json(doc):
        raise InvalidAuditRecord("a record holds only text, integers, booleans, null, lists "
                                 "and objects", where=_first_wrong(doc, "$"))
    try:
        return _ENCODER.encode(doc).encode("utf-8")
    except (UnicodeEncodeError, ValueError) as error:  # a lone surrogate
        raise InvalidAuditRecord("the record's text is not valid Unicode",
                                 reason=str(error)) from error


def shown_actor(actor: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An actor (`Actor.to_dict()`) with every field of the record, the absent ones null."""
    if actor is None:
        return None
    get = actor.get  # spelled out: this runs for every record appended
    return {"kind": get("kind"), "id": get("id"), "name": get("name"),
            "roles": list(get("roles") or ()), "session_id": get("session_id"),
            "key_id": get("key_id"), "request_id": get("request_id")}


@dataclass(frozen=True, slots=True)
class AuditRecord:
    source: str  # where it was read: outbox, auth, approvals, risk.policy, risk.case
    source_id: str  # its position or key there: never two records with one (source, id)
    at_us: int
    action: str
    object_kind: str
    object_id: str
    actor: dict[str, Any] | None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "source_id": self.source_id, "at_us": self.at_us,
                "action": self.action,
                "object": {"kind": self.object_kind, "id": self.object_id},
                "actor": shown_actor(self.actor), "before": self.before,
                "after": self.after, "details": self.details}

    def data(self) -> bytes:
        raw = _encoded(self.to_dict())
        if len(raw) > RECORD_BYTES_MAX:
            raise InvalidAuditRecord("the record is larger than allowed", source=self.source,
                                     source_id=self.source_id, bytes=len(raw))
        return raw

    @property
    def actor_who(self) -> str | None:
        if self.actor is None:
            return None
        return f"{self.actor.get('kind')}:{self.actor.get('id')}"

    @property
    def actor_name(self) -> str | None:
        return None if self.actor is None else str(self.actor.get("name") or "")


@dataclass(frozen=True, slots=True)
class Entry:
    """A record as the log holds it: its place, its canonical bytes and its leaf hash."""

    seq: int
    at_us: int
    data: bytes
    leaf: bytes

    def record(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.data)
        return doc

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "at_us": self.at_us, "record": self.record(),
                "leaf_hash": self.leaf.hex()}


def leaf_of(data: bytes) -> bytes:
    return leaf_hash(data)
