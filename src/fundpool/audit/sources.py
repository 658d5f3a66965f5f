"""Where audit records come from, and how a source's row becomes one (pure: the store reads
the rows, in one transaction with the cursor it moves; stores/audit_sql.py).

Each source is read by a position that only grows in commit order, so a record is neither
missed nor read twice (docs/audit.md):

- `outbox` (`pos`, assigned under the ledger's writer lock as the last one plus one; the outbox
  is never pruned): `payment.transitioned` (each step with its actor), `ledger.entry_committed`
  of adjustments and of raw postings and definitions (not of a payment's own entries, which
  its steps record), and `alert.fired` / `alert.acknowledged` / `alert.resolved`;
- `auth` (`auth_changes.id`): key and user changes, with roles before and after;
- `approvals` (`approval_actions.id`): every approvals action;
- `recon` (`recon_actions.id`): every reconciliation action (an import, a match run, a break
  resolved or a difference booked, an expected payment, a CSV mapping saved);
- `desk` (`desk_actions.id`): every treasury desk action (an FX quote and its execution, a
  rebalancing plan proposed, approved and executed, a sweep run, a credit-line draw,
  repayment or interest accrual, a netting cycle, a stress test run);
- `risk.policy` (`risk_policies.version`, the last plus one under the ledger's lock): a policy
  version drafted;
- `risk.case` (`risk_case_notes`, every action on a review case, by its time with a window
  looked at again, each note logged once by its key).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fundpool.audit.records import AuditRecord

OUTBOX = "outbox"
AUTH = "auth"
APPROVALS = "approvals"
RISK_POLICY = "risk.policy"
RISK_CASE = "risk.case"
RECON = "recon"
DESK = "desk"
SOURCES = (OUTBOX, AUTH, APPROVALS, RISK_POLICY, RISK_CASE, RECON, DESK)
# The table each source reads; a store without it (older) skips the source.
SOURCE_TABLES: Mapping[str, str] = {OUTBOX: "outbox", AUTH: "auth_changes",
                                    APPROVALS: "approval_actions",
                                    RISK_POLICY: "risk_policies", RISK_CASE: "risk_case_notes",
                                    RECON: "recon_actions", DESK: "desk_actions"}
# Case notes carry the time of their ledger transaction, which never goes back along the
# journal but may, between two transactions that write no entry, by as much as the clocks of
# the processes differ: the collector looks this far behind the newest note it logged.
CASE_NOTE_WINDOW_US = 10 * 60 * 1_000_000

PAYMENT_EVENT = "payment.transitioned"
LEDGER_EVENT = "ledger.entry_committed"
ALERT_EVENTS = ("alert.fired", "alert.acknowledged", "alert.resolved")
AUDITED_EVENTS = (PAYMENT_EVENT, LEDGER_EVENT, *ALERT_EVENTS)


def _float_text(text: str) -> str:
    return repr(float(text))


def loads(text: str | bytes) -> Any:
    """A stored JSON text as a record's values: a float (and NaN, Infinity) as its text, as
    `repr(float)` writes it (records hold integers only; no source is meant to store floats,
    but a record is never dropped for one). Every source's JSON is read with this, so what a
    record is built from holds no float, and nothing walks it again (records.py)."""
    return json.loads(text, parse_float=_float_text, parse_constant=_float_text)


def _json(text: str | bytes | None) -> Any:
    return None if text is None else loads(text)


def payment_record(pos: int, event_id: str, pool: str, at_us: int,
                   data: Mapping[str, Any]) -> AuditRecord:
    return AuditRecord(
        OUTBOX, str(pos), at_us, f"payment.{data['action']}", "payment",
        str(data["payment_id"]), data.get("actor"),
        before=None if data.get("from_state") is None else {"state": data["from_state"]},
        after={"state": data["to_state"]},
        details={"pool": pool, "event_id": event_id, "kind": data.get("kind"),
                        "asset": data.get("asset"), "amount_minor": data.get("amount_minor"),
                        "fee_minor": data.get("fee_minor"), "channel": data.get("channel"),
                        "counterparty": data.get("counterparty"), "reason": data.get("reason"),
                        "payment_version": data.get("payment_version")})


def audited_entry(body: Mapping[str, Any]) -> bool:
    """Whether a journal entry is one the log records: not a payment's own (its steps are
    recorded with their actors) and not an expiry (the clock's, not anyone's)."""
    metadata = body.get("metadata") or {}
    return "payment" not in metadata and body.get("kind") != "pending_expired"


def ledger_record(pos: int, event_id: str, pool: str, at_us: int,
                  body: Mapping[str, Any]) -> AuditRecord:
    """An audited journal entry. An adjustment's metadata names its actor and reason
    (ledger/adjustments.py); any other entry was recorded without an actor (null)."""
    metadata = dict(body.get("metadata") or {})
    actor = None
    action = f"ledger.{body.get('kind')}"
    if metadata.get("kind") == "adjustment":
        action = "ledger.adjustment"
        try:
            actor = loads(metadata.get("actor") or "null")
        except ValueError:
            actor = None
    details = {"pool": pool, "event_id": event_id, "entry_seq": body.get("seq"),
               "entry_kind": body.get("kind"), "reason": metadata.get("reason"),
               "entry": {k: v for k, v in body.items() if k not in ("seq", "id", "at_us")}}
    return AuditRecord(OUTBOX, str(pos), at_us, action, "ledger_entry", str(body.get("id")),
                       actor if isinstance(actor, dict) else None,
                       details=details)


def alert_record(pos: int, event_id: str, kind: str, pool: str, at_us: int,
                 data: Mapping[str, Any], actor: Mapping[str, Any] | None) -> AuditRecord:
    return AuditRecord(
        OUTBOX, str(pos), at_us, kind, "alert", str(data["alert_id"]),
        None if actor is None else dict(actor),
        after={"state": kind.removeprefix("alert.")},
        details={"pool": pool, "event_id": event_id, "rule": data.get("rule"),
                        "severity": data.get("severity"), "subject": data.get("subject"),
                        "summary": data.get("summary"), "value": data.get("value"),
                        "acknowledged_by": data.get("actor")})


def auth_record(change_id: int, at_us: int, action: str, target_kind: str, target_id: str,
                target_name: str, actor: str | None, details: str) -> AuditRecord:
    facts = dict(_json(details) or {})
    before = after = None
    if "roles_before" in facts:
        before = {"roles": facts.pop("roles_before")}
        after = {"roles": facts.pop("roles", None)}
    return AuditRecord(AUTH, str(change_id), at_us, f"auth.{action}", target_kind, target_id,
                       _json(actor), before=before, after=after,
                       details={"name": target_name, **facts})


def approval_record(action_id: int, at_us: int, action: str, object_kind: str,
                    object_id: str, actor: str | None, details: str) -> AuditRecord:
    facts = dict(_json(details) or {})
    before, after = facts.pop("before", None), facts.pop("after", None)
    name = action if action.startswith("approval") else f"approvals.{action}"
    return AuditRecord(APPROVALS, str(action_id), at_us, name, object_kind, object_id,
                       _json(actor),
                       before=before if isinstance(before, dict) else None,
                       after=after if isinstance(after, dict) else None,
                       details=facts)


def recon_record(action_id: int, at_us: int, action: str, object_kind: str, object_id: str,
                 actor: str | None, details: str) -> AuditRecord:
    return AuditRecord(RECON, str(action_id), at_us, f"recon.{action}", object_kind, object_id,
                       _json(actor), details=dict(_json(details) or {}))


def desk_record(action_id: int, at_us: int, action: str, object_kind: str, object_id: str,
                actor: str | None, details: str) -> AuditRecord:
    return AuditRecord(DESK, str(action_id), at_us, f"desk.{action}", object_kind, object_id,
                       _json(actor), details=dict(_json(details) or {}))


def policy_record(version: int, digest: str, note: str | None, created_at_us: int,
                  created_by: str | None) -> AuditRecord:
    return AuditRecord(RISK_POLICY, str(version), created_at_us, "risk.policy_drafted",
                       "risk_policy", str(version), _json(created_by),
                       after={"version": version, "digest": digest, "state": "draft"},
                       details={"note": note})


def case_note_record(case_id: str, seq: int, at_us: int, actor: str | None, action: str,
                     note: str | None) -> AuditRecord:
    return AuditRecord(RISK_CASE, case_note_key(case_id, seq), at_us, f"risk.case_{action}",
                       "risk_case", case_id, _json(actor),
                       details={"note": note, "note_seq": seq})


def case_note_key(case_id: str, seq: int) -> str:
    return f"{case_id}:{seq}"
