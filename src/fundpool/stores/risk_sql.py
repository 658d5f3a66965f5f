"""Risk control's tables, in the ledger's database on SQLite or PostgreSQL: `SqlRiskStore`
implements `fundpool.risk.ports.RiskStore`.

The tables are the `risk` component's migrations, created on first use. Decisions and cases
are written on the ledger transaction's own connection (`writes(session)`), so the payment step
a decision caused, the decision and the case it opened commit together or not at all. One SQL
text serves both databases (fundpool.sql). Actors are JSON text (stores/actor_json.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import orjson

from fundpool.core.actor import SYSTEM, Actor
from fundpool.ledger.ports import LedgerStore, WriteSession
from fundpool.risk.ports import REVISION_KINDS
from fundpool.risk.records import (
    CaseNote,
    CaseRecord,
    CaseState,
    Cleared,
    DecisionRecord,
    ListRecord,
    PartyRecord,
    PastPayment,
    PolicyState,
    PolicyVersion,
    ResponseRecord,
)
from fundpool.risk.rings import Payout
from fundpool.sql import migrate
from fundpool.sql.database import LOOKUP_CHUNK, Database, Transaction, database_of
from fundpool.sql.query import Where
from fundpool.stores.actor_json import actor_from_text, actor_text
from fundpool.stores.rows import chunks

POLICY_COLUMNS = ("version, text, digest, state, created_at_us, created_by, note, "
                  "activated_at_us, activated_by")
CASE_COLUMNS = ("id, pool, payment_id, kind, state, summary, opened_at_us, due_at_us, version, "
                "claimed_by, claimed_at_us, decided_at_us, decided_by, decision")
DECISION_COLUMNS = "payment_id, pool, policy_version, outcome, score, detail, at_us, channel"
PAST_PAGE = 5_000
RESPONSE_COLUMNS = ("id, pool, payment_id, group_name, kind, at_us, severity, per, key, asset, "
                    "max_minor, until_us")


def _response(row: Sequence[Any]) -> ResponseRecord:
    rid, pool, pid, group, kind, at_us, severity, per, key, asset, max_minor, until = row
    return ResponseRecord(rid, pool, pid, group, kind, int(at_us), severity, per, key, asset,
                          None if max_minor is None else int(max_minor),
                          None if until is None else int(until))

Rows = Callable[[str, Sequence[Any]], list[Any]]


def _actor(text: str | None) -> Actor:
    return actor_from_text(text) or SYSTEM


def _policy(row: Sequence[Any]) -> PolicyVersion:
    version, text, digest, state, created, by, note, activated, activated_by = row
    return PolicyVersion(int(version), text, digest, PolicyState(state), int(created),
                         _actor(by), note, None if activated is None else int(activated),
                         actor_from_text(activated_by))


def _case(row: Sequence[Any]) -> CaseRecord:
    (cid, pool, pid, kind, state, summary, opened, due, version, claimed_by, claimed_at,
     decided_at, decided_by, decision) = row
    return CaseRecord(cid, pool, pid, kind, CaseState(state), summary, int(opened), int(due),
                      int(version), actor_from_text(claimed_by),
                      None if claimed_at is None else int(claimed_at),
                      None if decided_at is None else int(decided_at),
                      actor_from_text(decided_by), decision)


def _case_row(case: CaseRecord) -> tuple[Any, ...]:
    return (case.id, case.pool, case.payment_id, case.kind, case.state.value, case.summary,
            case.opened_at_us, case.due_at_us, case.version, actor_text(case.claimed_by),
            case.claimed_at_us, case.decided_at_us, actor_text(case.decided_by),
            case.decision)


def _decision(row: Sequence[Any]) -> DecisionRecord:
    pid, pool, version, outcome, score, detail, at_us, channel = row
    return DecisionRecord(pid, pool, None if version is None else int(version), outcome,
                          int(score), orjson.loads(detail), int(at_us), channel)


def _revisions(rows: Rows) -> dict[str, int]:
    found = {kind: int(rev) for kind, rev in rows("SELECT kind, revision FROM risk_revisions",
                                                    ())}
    return {kind: found.get(kind, 0) for kind in REVISION_KINDS}


def _one_policy(rows: Rows, where: str, params: Sequence[Any]) -> PolicyVersion | None:
    found = rows(f"SELECT {POLICY_COLUMNS} FROM risk_policies WHERE {where}", params)
    return _policy(found[0]) if found else None


def _one_case(rows: Rows, where: str, params: Sequence[Any]) -> CaseRecord | None:
    found = rows(f"SELECT {CASE_COLUMNS} FROM risk_cases WHERE {where}", params)
    return _case(found[0]) if found else None


_DECIDED = (
    "SELECT p.id, p.kind, p.asset, p.amount_minor, p.created_at_us, p.counterparty, "
    "p.initiated_by, p.destination, p.reference, p.state, d.channel, "
    "CAST(p.metadata AS TEXT), d.outcome, d.at_us "
    "FROM risk_decisions d JOIN payments p ON p.id = d.payment_id WHERE d.pool = ? AND "
    "(d.at_us > ? OR (d.at_us = ? AND d.payment_id > ?)) ORDER BY d.at_us, d.payment_id "
    "LIMIT ?")


def _past(row: Sequence[Any]) -> PastPayment:
    (pid, kind, asset, amount, at, payee, by, destination, reference, state, channel,
     metadata, *decided) = row
    initiator = actor_from_text(by)
    country = orjson.loads(metadata).get("country") if metadata else None
    return PastPayment(pid, kind, asset, int(amount), int(at), payee,
                       None if initiator is None else initiator.who, destination, reference,
                       state, channel, decided[0] if decided else None,
                       int(decided[1]) if decided else 0,
                       country if isinstance(country, str) and country else None)


def _decided_after(rows: Rows, pool: str, after: tuple[int, str], limit: int
                   ) -> list[PastPayment]:
    return [_past(r) for r in rows(_DECIDED, (pool, after[0], after[0], after[1], limit))]


class RiskWritesSql:
    """The risk tables inside a ledger write transaction."""

    def __init__(self, session: WriteSession) -> None:
        self._tx: Transaction = getattr(session, "tx")  # noqa: B009 - every SQL store's has it

    def revisions(self) -> dict[str, int]:
        return _revisions(self._tx.rows)

    def bump(self, kind: str) -> None:
        self._tx.execute(
            "INSERT INTO risk_revisions (kind, revision) VALUES (?, 1) ON CONFLICT (kind) "
            "DO UPDATE SET revision = risk_revisions.revision + 1", (kind,))

    def active_policy(self) -> PolicyVersion | None:
        return _one_policy(self._tx.rows, "state = 'active'", ())

    def policy(self, version: int) -> PolicyVersion | None:
        return _one_policy(self._tx.rows, "version = ?", (version,))

    def next_policy_version(self) -> int:
        row = self._tx.one("SELECT coalesce(max(version), 0) FROM risk_policies")
        return int(row[0]) + 1

    def add_policy(self, policy: PolicyVersion) -> None:
        self._tx.execute(
            f"INSERT INTO risk_policies ({POLICY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (policy.version, policy.text, policy.digest, policy.state.value,
             policy.created_at_us, actor_text(policy.created_by), policy.note,
             policy.activated_at_us, actor_text(policy.activated_by)))

    def set_policy_state(self, version: int, state: str, at_us: int | None,
                         actor: Actor | None) -> None:
        if at_us is None:
            self._tx.execute("UPDATE risk_policies SET state = ? WHERE version = ?",
                             (state, version))
            return
        self._tx.execute(
            "UPDATE risk_policies SET state = ?, activated_at_us = ?, activated_by = ? "
            "WHERE version = ?", (state, at_us, actor_text(actor), version))

    def add_decisions(self, decisions: Sequence[DecisionRecord]) -> None:
        # A payment screened again (released to `screened` and failed over is not: only
        # `initiated` ones are screened) keeps its latest decision.
        self._tx.many(
            f"INSERT INTO risk_decisions ({DECISION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (payment_id) DO UPDATE SET policy_version = excluded.policy_version, "
            "outcome = excluded.outcome, score = excluded.score, detail = excluded.detail, "
            "at_us = excluded.at_us, channel = excluded.channel",
            [(d.payment_id, d.pool, d.policy_version, d.outcome, d.score,
              orjson.dumps(d.detail).decode(), d.at_us, d.channel) for d in decisions])

    def decided(self, payment_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunks(payment_ids, LOOKUP_CHUNK):
            where = Where().within("payment_id", chunk)
            found.update(r[0] for r in self._tx.rows(
                f"SELECT payment_id FROM risk_decisions{where}", where.params))
        return found

    def add_cases(self, cases: Sequence[CaseRecord], notes: Sequence[CaseNote]) -> None:
        self._tx.many(f"INSERT INTO risk_cases ({CASE_COLUMNS}) VALUES "
                      f"({', '.join('?' * 14)})", [_case_row(c) for c in cases])
        for note in notes:
            self.add_note(note)

    def case(self, case_id: str) -> CaseRecord | None:
        return _one_case(self._tx.rows, "id = ?", (case_id,))

    def open_case_of(self, payment_id: str) -> CaseRecord | None:
        return _one_case(self._tx.rows,
                         "payment_id = ? AND state IN ('open', 'claimed', 'escalated')",
                         (payment_id,))

    def update_case(self, case: CaseRecord, expected_version: int) -> bool:
        done = self._tx.execute(
            "UPDATE risk_cases SET state = ?, version = ?, claimed_by = ?, claimed_at_us = ?, "
            "decided_at_us = ?, decided_by = ?, decision = ? WHERE id = ? AND version = ?",
            (case.state.value, case.version, actor_text(case.claimed_by), case.claimed_at_us,
             case.decided_at_us, actor_text(case.decided_by), case.decision, case.id,
             expected_version))
        return bool(getattr(done, "rowcount", 1))

    def next_note_seq(self, case_id: str) -> int:
        row = self._tx.one("SELECT coalesce(max(seq), 0) FROM risk_case_notes "
                           "WHERE case_id = ?", (case_id,))
        return int(row[0]) + 1

    def add_note(self, note: CaseNote) -> None:
        self._tx.execute(
            "INSERT INTO risk_case_notes (case_id, seq, at_us, actor, action, note) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (note.case_id, note.seq, note.at_us, actor_text(note.actor), note.action,
             note.note))

    def put_list(self, record: ListRecord, content: bytes) -> None:
        self._tx.execute(
            "INSERT INTO risk_lists (name, version, format, entries, content, loaded_at_us, "
            "loaded_by) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
            "version = excluded.version, format = excluded.format, entries = excluded.entries,"
            " content = excluded.content, loaded_at_us = excluded.loaded_at_us, "
            "loaded_by = excluded.loaded_by",
            (record.name, record.version, record.format, record.entries, content,
             record.loaded_at_us, actor_text(record.loaded_by)))

    def add_cleared(self, cleared: Cleared) -> None:
        self._tx.execute(
            "INSERT INTO risk_cleared (query, entry_id, at_us, actor, note) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (query, entry_id) DO UPDATE SET "
            "at_us = excluded.at_us, actor = excluded.actor, note = excluded.note",
            (cleared.query, cleared.entry_id, cleared.at_us, actor_text(cleared.actor),
             cleared.note))

    def decided_after(self, pool: str, after: tuple[int, str], limit: int
                      ) -> list[PastPayment]:
        return _decided_after(self._tx.rows, pool, after, limit)

    def rejected_after(self, pool: str, after: tuple[int, str], limit: int
                       ) -> list[tuple[int, str, str, str, int]]:
        rows = self._tx.rows(
            "SELECT c.decided_at_us, c.id, p.counterparty, p.asset, p.amount_minor "
            "FROM risk_cases c JOIN payments p ON p.id = c.payment_id WHERE c.pool = ? "
            "AND c.decision = 'reject' AND p.kind = 'payout' AND p.counterparty IS NOT NULL "
            "AND (c.decided_at_us > ? OR (c.decided_at_us = ? AND c.id > ?)) "
            "ORDER BY c.decided_at_us, c.id LIMIT ?",
            (pool, after[0], after[0], after[1], limit))
        return [(int(at), cid, payee, asset, int(amount))
                for at, cid, payee, asset, amount in rows]

    def add_responses(self, responses: Sequence[ResponseRecord]) -> None:
        self._tx.many(
            f"INSERT INTO risk_responses ({RESPONSE_COLUMNS}) VALUES ({', '.join('?' * 12)})",
            [(r.id, r.pool, r.payment_id, r.group, r.kind, r.at_us, r.severity, r.per, r.key,
              r.asset, None if r.max_minor is None else str(r.max_minor), r.until_us)
             for r in responses])

    def end_limit(self, response_id: str, at_us: int, actor: Actor, note: str) -> bool:
        done = self._tx.execute(
            "UPDATE risk_responses SET until_us = ?, ended_by = ?, ended_note = ? "
            "WHERE id = ? AND kind = 'limit' AND until_us > ?",
            (at_us, actor_text(actor), note, response_id, at_us))
        return bool(getattr(done, "rowcount", 0))

    def put_party(self, party: PartyRecord) -> None:
        self._tx.execute(
            "INSERT INTO risk_parties (name, kyc, country, updated_at_us, updated_by) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET kyc = excluded.kyc, "
            "country = excluded.country, updated_at_us = excluded.updated_at_us, "
            "updated_by = excluded.updated_by",
            (party.name, party.kyc, party.country, party.updated_at_us,
             actor_text(party.updated_by)))


class SqlRiskStore:
    """The risk tables in a ledger store's database, read on its read connection."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store
        self.db: Database = database_of(store)
        self._ready = False

    def ensure(self) -> None:
        if not self._ready:
            migrate.ensure(self.db, migrate.RISK)
            self._ready = True

    def writes(self, session: WriteSession) -> RiskWritesSql:
        self.ensure()
        return RiskWritesSql(session)

    def _rows(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        self.ensure()
        return self.db.rows(query, params)

    def revisions(self) -> dict[str, int]:
        return _revisions(self._rows)

    def active_policy(self) -> PolicyVersion | None:
        return _one_policy(self._rows, "state = 'active'", ())

    def policy(self, version: int) -> PolicyVersion | None:
        return _one_policy(self._rows, "version = ?", (version,))

    def policies(self) -> list[PolicyVersion]:
        return [_policy(r) for r in self._rows(
            f"SELECT {POLICY_COLUMNS} FROM risk_policies ORDER BY version DESC")]

    def decision(self, payment_id: str) -> DecisionRecord | None:
        rows = self._rows(f"SELECT {DECISION_COLUMNS} FROM risk_decisions "
                          "WHERE payment_id = ?", (payment_id,))
        return _decision(rows[0]) if rows else None

    def decisions(self, payment_ids: Iterable[str]) -> dict[str, DecisionRecord]:
        found: dict[str, DecisionRecord] = {}
        for chunk in chunks(payment_ids, LOOKUP_CHUNK):
            where = Where().within("payment_id", chunk)
            found.update((d.payment_id, d) for d in map(_decision, self._rows(
                f"SELECT {DECISION_COLUMNS} FROM risk_decisions{where}", where.params)))
        return found

    def cases(self, *, pool: str | None = None, states: Iterable[str] = (),
              limit: int = 100) -> list[CaseRecord]:
        where = Where().eq("pool", pool)
        wanted = list(states)
        if wanted:
            where.within("state", wanted)
        rows = self._rows(f"SELECT {CASE_COLUMNS} FROM risk_cases{where} "
                          f"ORDER BY due_at_us, id LIMIT {max(1, min(limit, 1_000))}",
                          where.params)
        return [_case(r) for r in rows]

    def case(self, case_id: str) -> CaseRecord | None:
        return _one_case(self._rows, "id = ?", (case_id,))

    def cases_of(self, payment_id: str) -> list[CaseRecord]:
        rows = self._rows(f"SELECT {CASE_COLUMNS} FROM risk_cases WHERE payment_id = ? "
                          "ORDER BY opened_at_us, id", (payment_id,))
        return [_case(r) for r in rows]

    def notes(self, case_id: str) -> list[CaseNote]:
        return [CaseNote(case_id, int(seq), int(at_us), _actor(actor), action, note)
                for seq, at_us, actor, action, note in self._rows(
                    "SELECT seq, at_us, actor, action, note FROM risk_case_notes "
                    "WHERE case_id = ? ORDER BY seq", (case_id,))]

    def lists(self) -> list[ListRecord]:
        return [ListRecord(name, version, fmt, int(entries), int(at), _actor(by))
                for name, version, fmt, entries, at, by in self._rows(
                    "SELECT name, version, format, entries, loaded_at_us, loaded_by "
                    "FROM risk_lists ORDER BY name")]

    def list_content(self, name: str) -> bytes | None:
        rows = self._rows("SELECT content FROM risk_lists WHERE name = ?", (name,))
        return bytes(rows[0][0]) if rows else None

    def cleared(self) -> list[Cleared]:
        return [Cleared(query, entry, int(at), _actor(actor), note)
                for query, entry, at, actor, note in self._rows(
                    "SELECT query, entry_id, at_us, actor, note FROM risk_cleared "
                    "ORDER BY at_us, query")]

    def parties(self) -> list[PartyRecord]:
        return [PartyRecord(name, kyc, country, int(at), _actor(by))
                for name, kyc, country, at, by in self._rows(
                    "SELECT name, kyc, country, updated_at_us, updated_by FROM risk_parties "
                    "ORDER BY name")]

    def open_case_counts(self, now_us: int) -> list[tuple[str, str, int, int]]:
        rows = self._rows(
            "SELECT pool, kind, count(*), sum(CASE WHEN due_at_us < ? THEN 1 ELSE 0 END) "
            "FROM risk_cases WHERE state IN ('open', 'claimed', 'escalated') "
            "GROUP BY pool, kind ORDER BY pool, kind", (now_us,))
        return [(pool, kind, int(n), int(late or 0)) for pool, kind, n, late in rows]

    def blocked_since(self, since_us: int) -> list[DecisionRecord]:
        rows = self._rows(f"SELECT {DECISION_COLUMNS} FROM risk_decisions WHERE "
                          "outcome = 'block' AND at_us >= ? ORDER BY at_us DESC LIMIT 100",
                          (since_us,))
        return [_decision(r) for r in rows]

    def recent_payouts(self, pool: str, since_us: int, limit: int) -> list[Payout]:
        rows = self._rows(
            "SELECT counterparty, asset, amount_minor, destination, CAST(metadata AS TEXT) "
            "FROM payments "
            "WHERE pool = ? AND kind = 'payout' AND created_at_us >= ? AND counterparty IS NOT "
            f"NULL ORDER BY created_at_us DESC LIMIT {max(1, limit)}", (pool, since_us))
        out = []
        for payee, asset, amount, destination, metadata in rows:
            meta = orjson.loads(metadata) if metadata else {}  # text on both databases
            device, ip = meta.get("device"), meta.get("ip")
            out.append(Payout(payee, asset, int(amount), destination,
                              device if isinstance(device, str) else None,
                              ip if isinstance(ip, str) else None))
        return out

    def active_limits(self, now_us: int) -> list[ResponseRecord]:
        return [_response(r) for r in self._rows(
            f"SELECT {RESPONSE_COLUMNS} FROM risk_responses WHERE kind = 'limit' "
            "AND until_us > ? ORDER BY at_us DESC, id LIMIT 10000", (now_us,))]

    def response_alerts(self, since_us: int) -> list[tuple[str, str, str, int]]:
        rows = self._rows(
            "SELECT pool, group_name, severity, count(*) FROM risk_responses "
            "WHERE kind = 'alert' AND at_us >= ? GROUP BY pool, group_name, severity "
            "ORDER BY pool, group_name", (since_us,))
        return [(pool, group, severity, int(n)) for pool, group, severity, n in rows]

    def list_hits(self, since_us: int) -> list[tuple[str, str, str, int]]:
        rows = self._rows(
            "SELECT pool, group_name, min(key), count(*) FROM risk_responses "
            "WHERE kind = 'list_hit' AND at_us >= ? GROUP BY pool, group_name "
            "ORDER BY pool, group_name LIMIT 100", (since_us,))
        return [(pool, name, entry, int(n)) for pool, name, entry, n in rows]

    def counterparties(self) -> list[str]:
        return [r[0] for r in self._rows(
            "SELECT DISTINCT counterparty FROM payments WHERE counterparty IS NOT NULL")]

    def party(self, name: str) -> PartyRecord | None:
        rows = self._rows("SELECT name, kyc, country, updated_at_us, updated_by "
                          "FROM risk_parties WHERE name = ?", (name,))
        if not rows:
            return None
        name, kyc, country, at, by = rows[0]
        return PartyRecord(name, kyc, country, int(at), _actor(by))

    def past_payments(self, pool: str, since_us: int) -> Iterator[PastPayment]:
        """The pool's payments created since `since_us`, oldest first, a page at a time."""
        after: tuple[int, str] = (since_us - 1, "")
        while True:
            rows = self.db.rows(
                "SELECT id, kind, asset, amount_minor, created_at_us, counterparty, "
                "initiated_by, destination, reference, state, channel, CAST(metadata AS TEXT) "
                "FROM payments "
                "WHERE pool = ? AND (created_at_us > ? OR (created_at_us = ? AND id > ?)) "
                f"ORDER BY created_at_us, id LIMIT {PAST_PAGE}",
                (pool, after[0], after[0], after[1]))
            for row in rows:
                yield _past(row)
            if len(rows) < PAST_PAGE:
                return
            after = (int(rows[-1][4]), rows[-1][0])

    def decided_since(self, pool: str, since_us: int) -> Iterator[PastPayment]:
        after: tuple[int, str] = (since_us - 1, "")
        while True:
            page = _decided_after(self._rows, pool, after, PAST_PAGE)
            yield from page
            if len(page) < PAST_PAGE:
                return
            after = (page[-1].decided_at_us, page[-1].id)
