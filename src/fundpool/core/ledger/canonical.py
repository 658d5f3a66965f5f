"""The canonical bytes of a journal entry, and the hash chain over them.

Canonical form (ADR 0003): the entry's body as JSON with keys sorted, no insignificant white space,
UTF-8, integers as JSON integers of any size, no floats. `hash = sha256(prev_hash || canonical)`,
with 32 zero bytes before the first entry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
)
_encode = _ENCODER.encode
_sha256 = hashlib.sha256


def canonical_bytes(body: Mapping[str, Any]) -> bytes:
    return _encode(body).encode()


def canonical_text(value: Mapping[str, Any]) -> str:
    return _encode(value)


def chain_hash(prev_hash: bytes, canonical: bytes) -> bytes:
    return _sha256(prev_hash + canonical).digest()


def decode_body(canonical: bytes) -> dict[str, Any]:
    body = json.loads(canonical)
    if not isinstance(body, dict):
        raise ValueError("a canonical entry is a JSON object")
    return body


def request_hash(request: Mapping[str, Any]) -> bytes:
    """What an idempotency key is bound to: the request's own canonical bytes, hashed."""
    return _sha256(_encode(request).encode()).digest()
