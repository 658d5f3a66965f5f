"""Approvals' tables, in the ledger's database on SQLite or PostgreSQL: `SqlApprovalStore`
implements `fundpool.approvals.ports.ApprovalStore`.

The tables are the `approvals` component's migrations, created on first use. Writes are made
on a payment session's transaction (`writes(session)`): a signature, the plan it is held to
and the payment's approval commit together or not at all. Actors are JSON text
(stores/actor_json.py); documents are canonical JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from fundpool.approvals.model import (
    ApprovalAction,
    Decision,
    Delay,
    DelayState,
    Plan,
    RulesState,
    RulesVersion,
    Signature,
    SigningKey,
    Vote,
)
from fundpool.approvals.ports import TotpRecord
from fundpool.core.actor import SYSTEM
from fundpool.ledger.ports import LedgerStore, WriteSession
from fundpool.sql import migrate
from fundpool.sql.database import Database, Transaction, database_of
from fundpool.stores.actor_json import actor_from_text, actor_text

Rows = Callable[[str, Sequence[Any]], list[Any]]

KEY_COLUMNS = "id, user_id, username, name, public_key, created_at_us, revoked_at_us"
VERSION_COLUMNS = ("version, text, digest, note, state, created_at_us, author, "
                   "activated_at_us, retired_at_us")
SIGNATURE_COLUMNS = ("payment_id, round, stage, decision, approver, key_id, signature, digest, "
                     "note, at_us")
DELAY_COLUMNS = "payment_id, pool, round, release_at_us, state, cancellable_by"


def _text(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _key(row: Sequence[Any]) -> SigningKey:
    kid, user_id, username, name, public, created, revoked = row
    return SigningKey(kid, user_id, username, name, bytes(public), int(created),
                      None if revoked is None else int(revoked))


def _version(row: Sequence[Any]) -> RulesVersion:
    version, text, digest, note, state, created, author, activated, retired = row
    return RulesVersion(int(version), text, digest, note, RulesState(state), int(created),
                        actor_from_text(author) or SYSTEM,
                        None if activated is None else int(activated),
                        None if retired is None else int(retired))


def _signature(row: Sequence[Any]) -> Signature:
    pid, round_, stage, decision, approver, kid, sig, digest, note, at_us = row
    return Signature(pid, int(round_), int(stage), Decision(decision),
                     actor_from_text(approver) or SYSTEM, kid,
                     None if sig is None else bytes(sig), bytes(digest), note, int(at_us))


def _delay(row: Sequence[Any]) -> Delay:
    pid, pool, round_, release, state, cancellable = row
    return Delay(pid, pool, int(round_), int(release), DelayState(state),
                 tuple(json.loads(cancellable)))


class _Reads:
    """The reads, on whichever connection `_rows` uses."""

    def _rows(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def key(self, key_id: str) -> SigningKey | None:
        rows = self._rows(f"SELECT {KEY_COLUMNS} FROM approval_keys WHERE id = ?", (key_id,))
        return _key(rows[0]) if rows else None

    def keys(self, user_id: str | None = None) -> list[SigningKey]:
        if user_id is None:
            rows = self._rows(f"SELECT {KEY_COLUMNS} FROM approval_keys "
                              "ORDER BY username, created_at_us")
        else:
            rows = self._rows(f"SELECT {KEY_COLUMNS} FROM approval_keys WHERE user_id = ? "
                              "ORDER BY created_at_us", (user_id,))
        return [_key(r) for r in rows]

    def totp(self, user_id: str) -> TotpRecord | None:
        rows = self._rows("SELECT user_id, secret, pending_secret, confirmed_at_us, last_step "
                          "FROM approval_totp WHERE user_id = ?", (user_id,))
        if not rows:
            return None
        uid, secret, pending, confirmed, last = rows[0]
        return TotpRecord(uid, secret, pending, None if confirmed is None else int(confirmed),
                          int(last))

    def versions(self) -> list[RulesVersion]:
        return [_version(r) for r in self._rows(
            f"SELECT {VERSION_COLUMNS} FROM approval_rule_versions ORDER BY version DESC")]

    def version(self, version: int) -> RulesVersion | None:
        rows = self._rows(f"SELECT {VERSION_COLUMNS} FROM approval_rule_versions "
                          "WHERE version = ?", (version,))
        return _version(rows[0]) if rows else None

    def votes(self, version: int) -> list[Vote]:
        rows = self._rows("SELECT version, voter, at_us FROM approval_rule_votes "
                          "WHERE version = ? ORDER BY at_us", (version,))
        return [Vote(int(v), actor_from_text(voter) or SYSTEM, int(at)) for v, voter, at in rows]

    def plan(self, payment_id: str, round_: int) -> Plan | None:
        rows = self._rows("SELECT rules_version, plan, created_at_us FROM approval_plans "
                          "WHERE payment_id = ? AND round = ?", (payment_id, round_))
        if not rows:
            return None
        version, text, created = rows[0]
        doc = json.loads(text)
        return Plan(payment_id, round_, int(version), tuple(doc["stages"]), doc.get("risk"),
                    bool(doc.get("totp_required")), int(created))

    def signatures(self, payment_id: str, round_: int) -> list[Signature]:
        rows = self._rows(f"SELECT {SIGNATURE_COLUMNS} FROM approval_signatures "
                          "WHERE payment_id = ? AND round = ? ORDER BY id", (payment_id, round_))
        return [_signature(r) for r in rows]

    def delay(self, payment_id: str) -> Delay | None:
        rows = self._rows(f"SELECT {DELAY_COLUMNS} FROM approval_delays WHERE payment_id = ?",
                          (payment_id,))
        return _delay(rows[0]) if rows else None

    def activations(self) -> list[tuple[int, int, int | None]]:
        rows = self._rows("SELECT version, activated_at_us, retired_at_us FROM "
                          "approval_rule_versions WHERE activated_at_us IS NOT NULL "
                          "ORDER BY activated_at_us")
        return [(int(v), int(a), None if r is None else int(r)) for v, a, r in rows]


class ApprovalWritesSql(_Reads):
    """The approvals tables inside a ledger write transaction."""

    def __init__(self, session: WriteSession) -> None:
        self._tx: Transaction = getattr(session, "tx")  # noqa: B009 - every SQL store's has it

    def _rows(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._tx.rows(query, params)

    def add_key(self, key: SigningKey) -> None:
        self._tx.execute(f"INSERT INTO approval_keys ({KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (key.id, key.user_id, key.username, key.name, key.public_key,
                          key.created_at_us, key.revoked_at_us))

    def revoke_key(self, key_id: str, at_us: int) -> None:
        self._tx.execute("UPDATE approval_keys SET revoked_at_us = ? WHERE id = ? "
                         "AND revoked_at_us IS NULL", (at_us, key_id))

    def set_totp(self, record: TotpRecord) -> None:
        self._tx.execute(
            "INSERT INTO approval_totp (user_id, secret, pending_secret, confirmed_at_us, "
            "last_step) VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
            "secret = excluded.secret, pending_secret = excluded.pending_secret, "
            "confirmed_at_us = excluded.confirmed_at_us, last_step = excluded.last_step",
            (record.user_id, record.secret, record.pending_secret, record.confirmed_at_us,
             record.last_step))

    def next_version(self) -> int:
        return int(self._tx.one("SELECT coalesce(max(version), 0) FROM approval_rule_versions"
                                )[0]) + 1

    def add_version(self, version: RulesVersion) -> None:
        self._tx.execute(
            f"INSERT INTO approval_rule_versions ({VERSION_COLUMNS}, author_who) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (version.version, version.text, version.digest, version.note, version.state.value,
             version.created_at_us, actor_text(version.author), version.activated_at_us,
             version.retired_at_us, version.author.who))

    def set_version_state(self, version: int, state: RulesState, at_us: int) -> None:
        column = "activated_at_us" if state is RulesState.ACTIVE else "retired_at_us"
        self._tx.execute(f"UPDATE approval_rule_versions SET state = ?, {column} = ? "
                         "WHERE version = ?", (state.value, at_us, version))

    def add_vote(self, vote: Vote) -> None:
        self._tx.execute("INSERT INTO approval_rule_votes (version, voter_who, voter, at_us) "
                         "VALUES (?, ?, ?, ?)",
                         (vote.version, vote.voter.who, actor_text(vote.voter), vote.at_us))

    def add_plan(self, plan: Plan) -> None:
        doc = {"stages": list(plan.stages), "risk": plan.risk,
               "totp_required": plan.totp_required}
        self._tx.execute(
            "INSERT INTO approval_plans (payment_id, round, rules_version, plan, created_at_us) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (payment_id, round) DO NOTHING",
            (plan.payment_id, plan.round, plan.rules_version, _text(doc), plan.created_at_us))

    def add_signature(self, signature: Signature) -> None:
        self._tx.execute(
            "INSERT INTO approval_signatures (payment_id, round, stage, decision, approver_who, "
            "approver, key_id, signature, digest, note, at_us) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (signature.payment_id, signature.round, signature.stage, signature.decision.value,
             signature.approver.who, actor_text(signature.approver), signature.key_id,
             signature.signature, signature.digest, signature.note, signature.at_us))

    def set_delay(self, delay: Delay) -> None:
        self._tx.execute(
            f"INSERT INTO approval_delays ({DELAY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (payment_id) DO UPDATE SET round = excluded.round, "
            "release_at_us = excluded.release_at_us, state = excluded.state, "
            "cancellable_by = excluded.cancellable_by",
            (delay.payment_id, delay.pool, delay.round, delay.release_at_us, delay.state.value,
             json.dumps(list(delay.cancellable_by))))

    def set_delay_state(self, payment_id: str, state: DelayState) -> None:
        self._tx.execute("UPDATE approval_delays SET state = ? WHERE payment_id = ?",
                         (state.value, payment_id))

    def add_action(self, action: ApprovalAction) -> None:
        self._tx.execute(
            "INSERT INTO approval_actions (at_us, action, object_kind, object_id, actor, "
            "details) VALUES (?, ?, ?, ?, ?, ?)",
            (action.at_us, action.action, action.object_kind, action.object_id,
             actor_text(action.actor), _text(dict(action.details))))


class SqlApprovalStore(_Reads):
    """The approvals tables in a ledger store's database, read on its read connection."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store
        self.db: Database = database_of(store)
        self._ready = False

    def ensure(self) -> None:
        if not self._ready:
            migrate.ensure(self.db, migrate.APPROVALS)
            self._ready = True

    def writes(self, session: WriteSession) -> ApprovalWritesSql:
        self.ensure()
        return ApprovalWritesSql(session)

    def _rows(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        self.ensure()
        return self.db.rows(query, params)

    def due(self, now_us: int, limit: int) -> list[Delay]:
        rows = self._rows(f"SELECT {DELAY_COLUMNS} FROM approval_delays WHERE state = ? AND "
                          f"release_at_us <= ? ORDER BY release_at_us LIMIT {int(limit)}",
                          (DelayState.WAITING.value, now_us))
        return [_delay(r) for r in rows]

