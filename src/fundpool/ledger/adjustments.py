"""Adjustments: raw ledger postings that a person makes, with a written reason, recorded as such.

The accounts of pools and merchants are moved by the services that own them (which accounts:
pool/ownership.py), through routing, approval and the risk checks. A raw posting (a transfer,
a pending transfer's creation, post or void, a reversal) that touches one goes around all of
that, so the entry points that take raw postings (the API, the CLI) allow it only as an
adjustment: the caller holds `ledger:adjust` (the API's check) and writes a reason, and the
entry says so in its own metadata, inside the hash chain (ADR 0003):

    {"kind": "adjustment", "reason": "<the reason>", "actor": "<the actor, compact JSON>"}

The actor is `Actor.to_dict()` as JSON text with sorted keys, because metadata values are
strings. A raw posting between other accounts that carries a reason is recorded the same way;
without one it is an ordinary transfer. The three keys are the recorder's: a caller's own
metadata may not set them on an adjustment, nor claim `kind: adjustment` on anything else.

A retry with the same idempotency key comes with a new request id, which would make the
metadata differ from the first request's and the ledger refuse the key as reused
(`idempotency_conflict`). `with_original_actor` lets the entry point retry with the first
request's actor when the same principal asks again, so the retry replays.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from fundpool.core.actor import Actor
from fundpool.core.errors import FundpoolError, InvalidMetadata
from fundpool.core.ledger.model import (
    METADATA_VALUE_LENGTH_MAX,
    CreatePending,
    PendingTransfer,
    PostPending,
    Reverse,
    Transfer,
    VoidPending,
    is_storable_text,
)

if TYPE_CHECKING:  # the wire models import the bound above; they need not load the service
    from fundpool.ledger.service import Recorded

ADJUSTMENT = "adjustment"
KIND_KEY = "kind"
REASON_KEY = "reason"
ACTOR_KEY = "actor"
RECORDED_KEYS = (KIND_KEY, REASON_KEY, ACTOR_KEY)
REASON_CHARS_MAX = 500  # within a metadata value's bound (512), with room to spare
ADJUST_PERMISSION = "ledger:adjust"  # auth/roles.py Permission.LEDGER_ADJUST (a higher layer)
ACCOUNTS_SHOWN_MAX = 8  # in an error's facts

Adjustable = Transfer | CreatePending | PostPending | VoidPending | Reverse


class AdjustmentPermissionRequired(FundpoolError):
    code = "adjustment_permission_required"
    title = ("a raw posting on an account of a pool or a merchant is an adjustment, which needs "
             "the permission ledger:adjust")


class AdjustmentReasonRequired(FundpoolError):
    code = "adjustment_reason_required"
    title = (f"an adjustment needs a written reason (`reason`, 1 to {REASON_CHARS_MAX} "
             "characters)")


class Lookups(Protocol):
    """What `touched` reads: the ledger service's lookups (ledger/service.py `Ledger`)."""

    def pending(self, pending_id: str) -> PendingTransfer | None: ...

    def entry(self, entry_id: str) -> Recorded | None: ...


def touched(command: Adjustable, ledger: Lookups) -> frozenset[str]:
    """The accounts `command` would move. A post, void or reversal reads its reservation or
    entry (fixed once made, so what is read here is what the ledger will move); an unknown one
    touches nothing, and the ledger refuses it on its own."""
    if isinstance(command, Transfer):
        return frozenset(a for p in command.postings for a in (p.source, p.destination))
    if isinstance(command, CreatePending):
        return frozenset((command.posting.source, command.posting.destination))
    if isinstance(command, PostPending | VoidPending):
        pending = ledger.pending(command.pending_id)
        return frozenset() if pending is None else frozenset((pending.source,
                                                              pending.destination))
    recorded = ledger.entry(command.transaction_id)
    return frozenset() if recorded is None else _addresses(recorded.body)


def _addresses(body: Mapping[str, Any]) -> frozenset[str]:
    found: set[str] = set()
    postings = body.get("postings")
    for posting in (postings if isinstance(postings, list) else []) + [body.get("posting")]:
        if isinstance(posting, Mapping):
            found.update(str(posting[k]) for k in ("source", "destination") if k in posting)
    return frozenset(found)


def checked(command: Adjustable, touched: Iterable[str], *, owned: Callable[[str], bool],
            may_adjust: bool, reason: str | None, actor: Actor) -> Adjustable:
    """`command` as the ledger should record it: unchanged when it is an ordinary posting, with
    the adjustment's metadata when it is one. Raises, changing nothing, when a service's
    account is touched without `may_adjust` (`adjustment_permission_required`) or without a
    reason (`adjustment_reason_required`; a blank one is none)."""
    protected = sorted({a for a in touched if owned(a)})
    if protected and not may_adjust:
        raise AdjustmentPermissionRequired(permission=ADJUST_PERMISSION,
                                           accounts=protected[:ACCOUNTS_SHOWN_MAX])
    metadata = dict(command.metadata)
    if reason is not None and not reason.strip():
        reason = None  # blank says nothing: as if none were given
    if reason is None:
        if protected:
            raise AdjustmentReasonRequired(accounts=protected[:ACCOUNTS_SHOWN_MAX])
        if metadata.get(KIND_KEY) == ADJUSTMENT:
            raise InvalidMetadata("`kind: adjustment` is recorded from a `reason`, never "
                                  "given in metadata", key=KIND_KEY)
        return command
    text = check_reason(reason)
    taken = [key for key in RECORDED_KEYS if key in metadata]
    if taken:
        raise InvalidMetadata("an adjustment records kind, reason and actor itself: leave them "
                              "out of its metadata", keys=taken)
    metadata.update({KIND_KEY: ADJUSTMENT, REASON_KEY: text, ACTOR_KEY: actor_text(actor)})
    return dataclasses.replace(command, metadata=metadata)


def check_reason(reason: str) -> str:
    """The reason as recorded (surrounding white space dropped); `adjustment_reason_required`
    when nothing is left, it is too long, or a store could not keep it."""
    text = reason.strip()
    if not text or len(text) > REASON_CHARS_MAX or not is_storable_text(text):
        raise AdjustmentReasonRequired(reason_chars=len(text),
                                       reason_chars_max=REASON_CHARS_MAX)
    return text


def actor_text(actor: Actor) -> str:
    """The actor as a metadata value: compact JSON, keys sorted. Within the value's bound by
    construction: a display name too long for it is cut (the id says who, not the name)."""
    doc = actor.to_dict()
    text = _compact(doc)
    while len(text) > METADATA_VALUE_LENGTH_MAX and doc["name"]:
        name = str(doc["name"])
        # A character is 1 to 6 characters of JSON (\u00XX): cutting a sixth of the excess
        # never cuts more than needed, and each round gets closer.
        excess = len(text) - METADATA_VALUE_LENGTH_MAX
        doc["name"] = name[:len(name) - max(1, excess // 6)]
        text = _compact(doc)
    return text


def _compact(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def adjustment_of(metadata: object) -> dict[str, object] | None:
    """`{"reason", "actor"}` of an entry recorded as an adjustment (its metadata), else None.
    `actor` is the recorded actor's document, or None when it cannot be read."""
    if not isinstance(metadata, Mapping) or metadata.get(KIND_KEY) != ADJUSTMENT:
        return None
    actor: object = None
    try:
        parsed = json.loads(str(metadata.get(ACTOR_KEY)))
        actor = parsed if isinstance(parsed, dict) else None
    except ValueError:
        actor = None
    return {"reason": metadata.get(REASON_KEY), "actor": actor}


def with_original_actor(command: Adjustable, original: Recorded | None) -> Adjustable | None:
    """For a retry that the ledger refused as `idempotency_conflict`: `command` with the actor
    its key's original entry recorded, when that entry is an adjustment by the same principal
    (`Actor.who`), so that the same request replays; None when it is not the same request."""
    stored = None if original is None else original.body.get("metadata")
    if not isinstance(stored, Mapping):
        return None
    recorded, ours = adjustment_of(stored), adjustment_of(command.metadata)
    if recorded is None or ours is None or not isinstance(recorded["actor"], dict) \
            or not isinstance(ours["actor"], dict):
        return None
    before, now = recorded["actor"], ours["actor"]
    if (before.get("kind"), before.get("id")) != (now.get("kind"), now.get("id")):
        return None
    return dataclasses.replace(command, metadata={**command.metadata,
                                                  ACTOR_KEY: str(stored[ACTOR_KEY])})
