"""An audit record: who did what to which object, when, and what it changed.

    {"source": "outbox", "source_id": "42", "at_us": 1767225600000000,
     "action": "payment.approve", "object": {"kind": "payment", "id": "…"},
     "actor": {"kind": "user", "id": "…", "name": "ada", "roles": ["approver"],
               "session_id": …, "key_id": …, "request_id": …} | null,
     "before": {…} | null, "after": {…} | null, "details": {…}}

Its bytes in the log are its canonical JSON, as the ledger's journal (docs/adr/0003): keys
sorted, separators `,` and `:`, UTF-8 without `\\u` escapes, integers only (a float is refused:
amounts are decimal text of minor units). A leaf is SHA-256(0x00 || those bytes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fundpool.audit.merkle import leaf_hash
from fundpool.core.errors import FundpoolError

ACTOR_FIELDS = ("kind", "id", "name", "roles", "session_id", "key_id", "request_id")
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


def canonical_json(doc: Mapping[str, Any]) -> bytes:
    if not _only_json(doc):
        raise InvalidAuditRecord("a record holds only text, integers, booleans, null, lists "
                                 "and objects", where=_first_wrong(doc, "$"))
    return _ENCODER.encode(doc).encode("utf-8")


def shown_actor(actor: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An actor (`Actor.to_dict()`) with every field of the record, the absent ones null."""
    if actor is None:
        return None
    return {name: (list(actor.get(name) or ()) if name == "roles" else actor.get(name))
            for name in ACTOR_FIELDS}


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
        raw = canonical_json(self.to_dict())
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
