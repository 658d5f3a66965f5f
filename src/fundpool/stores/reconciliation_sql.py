"""Reconciliation's tables, in the ledger's database on SQLite or PostgreSQL:
`SqlReconStore` implements `fundpool.reconciliation.ports.ReconStore`.

The tables are the `recon` component's migrations, created on first use. Each write (an
import, a run, a resolution) is one transaction with its `recon_actions` row, so the audit
log's trail has every action that changed something and nothing that did not. Amounts are
TEXT (exact integers); actors JSON text (stores/actor_json.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fundpool.core.actor import SYSTEM, Actor
from fundpool.ledger.ports import LedgerStore
from fundpool.recon.model import DuplicateStatement, LineKind, LineStatus, Side, StatementLine
from fundpool.reconciliation.model import (
    ActionRecord,
    Expected,
    ExpectedState,
    FileRecord,
    MatchRow,
    Resolution,
    ResolutionAction,
    State,
    StateRow,
    StoredLine,
    StoredStatement,
)
from fundpool.sql import migrate
from fundpool.sql.database import LOOKUP_CHUNK, Database, Transaction, database_of
from fundpool.sql.query import Where
from fundpool.stores.actor_json import actor_from_text, actor_text

FILE_COLUMNS = ("id, pool, channel, name, format, message, sha256, statements, lines, "
                "imported_at_us, imported_by")
STATEMENT_COLUMNS = ("id, file_id, pool, channel, account, asset, statement_id, sequence, "
                     "created_at_us, opening_minor, opening_at_us, closing_minor, "
                     "closing_at_us, first_at_us, last_at_us, lines")
LINE_COLUMNS = ("id, statement, position, pool, channel, asset, amount_minor, booked_at_us, "
                "value_at_us, status, kind, end_to_end_id, batch_ref, bank_ref, reference, "
                "counterparty, counterparty_account, reason, parts")
STATE_COLUMNS = ("pool, channel, side, id, state, match_id, reason, amount_minor, asset, "
                 "at_us, related, payment_id, updated_at_us")
MATCH_COLUMNS = ("id, pool, channel, rule, shape, difference_minor, lines, items, at_us, "
                 "actor")
RESOLUTION_COLUMNS = ("id, pool, channel, side, target, action, note, asset, amount_minor, "
                      "entry_id, at_us, actor")
EXPECTED_COLUMNS = ("id, pool, channel, asset, amount_min_minor, amount_max_minor, from_us, "
                    "until_us, reference, counterparty, state, credit_id, created_at_us, "
                    "created_by, matched_at_us")
OPEN = (State.AMBIGUOUS.value, State.BREAK.value)


def _marks(columns: str) -> str:
    return ", ".join("?" for _ in columns.split(","))


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _file(row: Sequence[Any]) -> FileRecord:
    fid, pool, channel, name, fmt, message, sha, statements, lines, at, by = row
    return FileRecord(fid, pool, channel, name, fmt, message, sha, int(statements), int(lines),
                      int(at), actor_from_text(by))


def _statement(row: Sequence[Any]) -> StoredStatement:
    (sid, fid, pool, channel, account, asset, bank_id, sequence, created, opening, opening_at,
     closing, closing_at, first, last, lines) = row
    return StoredStatement(sid, fid, pool, channel, account, asset, bank_id, sequence,
                           int(created), _optional_int(opening), _optional_int(opening_at),
                           _optional_int(closing), _optional_int(closing_at), int(first),
                           int(last), int(lines))


def _line_row(stored: StoredLine) -> tuple[Any, ...]:
    line = stored.line
    return (line.line_id, stored.statement, stored.position, stored.pool, stored.channel,
            line.asset, str(line.amount_minor), line.booked_at_us, line.value_at_us,
            line.status.value, line.kind.value, line.end_to_end_id, line.batch_ref,
            line.bank_ref, line.reference, line.counterparty, line.counterparty_account,
            line.reason, " ".join(line.parts))


def _line(row: Sequence[Any]) -> StoredLine:
    (lid, statement, position, pool, channel, asset, amount, booked, value, status, kind,
     e2e, batch, bank_ref, reference, counterparty, account, reason, parts) = row
    return StoredLine(statement, int(position), pool, channel, StatementLine(
        lid, int(amount), asset, int(booked), int(value), LineStatus(status), LineKind(kind),
        e2e, batch, bank_ref, reference, counterparty, account, reason,
        tuple(parts.split()) if parts else ()))


def _state_row(row: StateRow) -> tuple[Any, ...]:
    return (row.pool, row.channel, row.side.value, row.id, row.state.value, row.match_id,
            row.reason, str(row.amount_minor), row.asset, row.at_us, json.dumps(row.related),
            row.payment_id, row.updated_at_us)


def _state(row: Sequence[Any]) -> StateRow:
    (pool, channel, side, sid, state, match_id, reason, amount, asset, at, related, payment,
     updated) = row
    return StateRow(pool, channel, Side(side), sid, State(state), match_id, reason,
                    int(amount), asset, int(at), tuple(json.loads(related)), payment,
                    int(updated))


def _match(row: Sequence[Any]) -> MatchRow:
    mid, pool, channel, rule, shape, difference, lines, items, at, actor = row
    return MatchRow(mid, pool, channel, rule, shape, int(difference),
                    tuple(json.loads(lines)), tuple(json.loads(items)), int(at),
                    actor_from_text(actor))


def _resolution(row: Sequence[Any]) -> Resolution:
    rid, pool, channel, side, target, action, note, asset, amount, entry, at, actor = row
    return Resolution(rid, pool, channel, Side(side), target, ResolutionAction(action), note,
                      asset, int(amount), entry, int(at), actor_from_text(actor) or SYSTEM)


def _expected(row: Sequence[Any]) -> Expected:
    (eid, pool, channel, asset, low, high, since, until, reference, counterparty, state,
     credit, created, by, matched) = row
    return Expected(eid, pool, channel, asset, int(low), int(high), int(since), int(until),
                    reference, counterparty, ExpectedState(state), credit, int(created),
                    actor_from_text(by), _optional_int(matched))


class SqlReconStore:
    """The reconciliation tables in a ledger store's database."""

    lock = "fundpool.recon"

    def __init__(self, store: LedgerStore) -> None:
        self.db: Database = database_of(store)
        self._ready = False

    def ensure(self) -> None:
        if not self._ready:
            migrate.ensure(self.db, migrate.RECON)
            self._ready = True

    def _rows(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        self.ensure()
        return self.db.rows(query, params)

    def _rows_in(self, query: str, column: str, values: Sequence[Any], *first: Any
                 ) -> list[Any]:
        """Rows of `query` whose `{match}` is `column IN (...)`, in chunks of marks."""
        self.ensure()
        rows: list[Any] = []
        for start in range(0, len(values), LOOKUP_CHUNK):
            chunk = values[start:start + LOOKUP_CHUNK]
            match = f"{column} IN ({', '.join('?' * len(chunk))})"
            rows.extend(self.db.rows(query.format(match=match), (*first, *chunk)))
        return rows

    @staticmethod
    def _action(tx: Transaction, action: ActionRecord) -> None:
        tx.execute("INSERT INTO recon_actions (at_us, action, object_kind, object_id, actor, "
                   "details) VALUES (?, ?, ?, ?, ?, ?)",
                   (action.at_us, action.action, action.object_kind, action.object_id,
                    actor_text(action.actor),
                    json.dumps(action.details, sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False)))

    # --- imports ------------------------------------------------------------------------------

    def imported(self, pool: str, channel: str, sha256: str) -> FileRecord | None:
        rows = self._rows(f"SELECT {FILE_COLUMNS} FROM recon_files WHERE pool = ? AND "
                          "channel = ? AND sha256 = ?", (pool, channel, sha256))
        return _file(rows[0]) if rows else None

    def known_statements(self, pool: str, channel: str,
                         keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        wanted = set(keys)
        rows = self._rows_in("SELECT account, statement_id FROM recon_statements WHERE "
                             "pool = ? AND channel = ? AND {match}", "statement_id",
                             sorted({statement_id for _, statement_id in keys}), pool, channel)
        return {(account, statement_id) for account, statement_id in rows
                if (account, statement_id) in wanted}

    def add_file(self, record: FileRecord, statements: Sequence[StoredStatement],
                 lines: Sequence[StoredLine], action: ActionRecord) -> None:
        self.ensure()
        try:
            with self.db.transaction(self.lock) as tx:
                tx.execute(f"INSERT INTO recon_files ({FILE_COLUMNS}) VALUES "
                           f"({_marks(FILE_COLUMNS)})",
                           (record.file_id, record.pool, record.channel, record.name,
                            record.format, record.message, record.sha256, record.statements,
                            record.lines, record.imported_at_us,
                            actor_text(record.imported_by)))
                tx.many(f"INSERT INTO recon_statements ({STATEMENT_COLUMNS}) VALUES "
                        f"({_marks(STATEMENT_COLUMNS)})",
                        [(s.id, s.file_id, s.pool, s.channel, s.account, s.asset,
                          s.statement_id, s.sequence, s.created_at_us,
                          None if s.opening_minor is None else str(s.opening_minor),
                          s.opening_at_us,
                          None if s.closing_minor is None else str(s.closing_minor),
                          s.closing_at_us, s.first_at_us, s.last_at_us, s.lines)
                         for s in statements])
                tx.many(f"INSERT INTO recon_lines ({LINE_COLUMNS}) VALUES "
                        f"({_marks(LINE_COLUMNS)})", [_line_row(line) for line in lines])
                self._action(tx, action)
        except self.db.dialect.integrity_errors as error:
            raise DuplicateStatement("another import took this file or statement first",
                                     file=record.name) from error

    def files(self, pool: str, channel: str | None, limit: int) -> list[FileRecord]:
        where = Where().eq("pool", pool).eq("channel", channel)
        return [_file(r) for r in self._rows(
            f"SELECT {FILE_COLUMNS} FROM recon_files{where} ORDER BY imported_at_us DESC, id "
            f"DESC LIMIT {int(limit)}", where.params)]

    def statements(self, pool: str, channel: str | None, limit: int) -> list[StoredStatement]:
        where = Where().eq("pool", pool).eq("channel", channel)
        return [_statement(r) for r in self._rows(
            f"SELECT {STATEMENT_COLUMNS} FROM recon_statements{where} ORDER BY last_at_us DESC, "
            f"id DESC LIMIT {int(limit)}", where.params)]

    def statement(self, statement_id: str) -> StoredStatement | None:
        rows = self._rows(f"SELECT {STATEMENT_COLUMNS} FROM recon_statements WHERE id = ?",
                          (statement_id,))
        return _statement(rows[0]) if rows else None

    def lines(self, statement_id: str) -> list[StoredLine]:
        return [_line(r) for r in self._rows(
            f"SELECT {LINE_COLUMNS} FROM recon_lines WHERE statement = ? ORDER BY position",
            (statement_id,))]

    def lines_by_id(self, ids: Sequence[str]) -> dict[str, StoredLine]:
        rows = self._rows_in(f"SELECT {LINE_COLUMNS} FROM recon_lines WHERE {{match}}", "id",
                             list(ids))
        return {row[0]: _line(row) for row in rows}

    def open_lines(self, pool: str, channel: str) -> list[StoredLine]:
        rows = self._rows(
            f"SELECT {', '.join('l.' + c.strip() for c in LINE_COLUMNS.split(','))} "
            "FROM recon_lines l LEFT JOIN recon_state s ON s.pool = l.pool AND "
            "s.side = 'statement' AND s.id = l.id WHERE l.pool = ? AND l.channel = ? AND "
            "(s.state IS NULL OR s.state IN (?, ?)) ORDER BY l.statement, l.position",
            (pool, channel, *OPEN))
        return [_line(r) for r in rows]

    # --- runs and states ----------------------------------------------------------------------

    def final_items(self, pool: str, ids: Sequence[str]) -> set[str]:
        rows = self._rows_in("SELECT id FROM recon_state WHERE pool = ? AND side = 'books' AND "
                             "state IN ('matched', 'resolved') AND {match}", "id", list(ids),
                             pool)
        return {row[0] for row in rows}

    def open_items(self, pool: str, channel: str) -> list[StateRow]:
        return [_state(r) for r in self._rows(
            f"SELECT {STATE_COLUMNS} FROM recon_state WHERE pool = ? AND channel = ? AND "
            "side = 'books' AND state IN (?, ?)", (pool, channel, *OPEN))]

    def _upsert_states(self, tx: Transaction, states: Sequence[StateRow]) -> None:
        tx.many(f"INSERT INTO recon_state ({STATE_COLUMNS}) VALUES ({_marks(STATE_COLUMNS)}) "
                "ON CONFLICT (pool, side, id) DO UPDATE SET channel = excluded.channel, "
                "state = excluded.state, match_id = excluded.match_id, "
                "reason = excluded.reason, amount_minor = excluded.amount_minor, "
                "asset = excluded.asset, at_us = excluded.at_us, related = excluded.related, "
                "payment_id = excluded.payment_id, updated_at_us = excluded.updated_at_us",
                [_state_row(row) for row in states])

    def _insert_matches(self, tx: Transaction, matches: Sequence[MatchRow]) -> None:
        tx.many(f"INSERT INTO recon_matches ({MATCH_COLUMNS}) VALUES ({_marks(MATCH_COLUMNS)})",
                [(m.id, m.pool, m.channel, m.rule, m.shape, str(m.difference_minor),
                  json.dumps(m.lines), json.dumps(m.items), m.at_us, actor_text(m.actor))
                 for m in matches])

    def save_run(self, matches: Sequence[MatchRow], states: Sequence[StateRow],
                 expected: Sequence[tuple[str, str, int]], action: ActionRecord) -> None:
        self.ensure()
        with self.db.transaction(self.lock) as tx:
            self._insert_matches(tx, matches)
            self._upsert_states(tx, states)
            tx.many("UPDATE recon_expected SET state = 'matched', credit_id = ?, "
                    "matched_at_us = ? WHERE id = ? AND state = 'open'",
                    [(credit, at, eid) for eid, credit, at in expected])
            self._action(tx, action)

    def states(self, pool: str, *, channel: str | None = None, states: Sequence[State] = (),
               side: Side | None = None, limit: int = 1_000) -> list[StateRow]:
        where = (Where().eq("pool", pool).eq("channel", channel)
                 .eq("side", None if side is None else side.value)
                 .within("state", [s.value for s in states] if states else None))
        return [_state(r) for r in self._rows(
            f"SELECT {STATE_COLUMNS} FROM recon_state{where} ORDER BY at_us, id "
            f"LIMIT {int(limit)}", where.params)]

    def state_counts(self, pool: str, channel: str | None) -> dict[tuple[str, str, str], int]:
        where = Where().eq("pool", pool).eq("channel", channel)
        rows = self._rows(f"SELECT channel, side, state, count(*) FROM recon_state{where} "
                          "GROUP BY channel, side, state", where.params)
        return {(c, s, st): int(n) for c, s, st, n in rows}

    def states_of(self, pool: str, ids: Sequence[tuple[Side, str]]
                  ) -> dict[tuple[Side, str], StateRow]:
        wanted = set(ids)
        rows = self._rows_in(f"SELECT {STATE_COLUMNS} FROM recon_state WHERE pool = ? AND "
                             "{match}", "id", sorted({i for _, i in ids}), pool)
        found = {}
        for row in rows:
            state = _state(row)
            if (state.side, state.id) in wanted:
                found[(state.side, state.id)] = state
        return found

    def states_of_payment(self, payment_id: str) -> list[StateRow]:
        return [_state(r) for r in self._rows(
            f"SELECT {STATE_COLUMNS} FROM recon_state WHERE payment_id = ? ORDER BY id",
            (payment_id,))]

    def match(self, match_id: str) -> MatchRow | None:
        rows = self._rows(f"SELECT {MATCH_COLUMNS} FROM recon_matches WHERE id = ?",
                          (match_id,))
        return _match(rows[0]) if rows else None

    # --- resolutions --------------------------------------------------------------------------

    def resolve(self, resolution: Resolution, states: Sequence[StateRow],
                match: MatchRow | None, action: ActionRecord) -> None:
        self.ensure()
        r = resolution
        with self.db.transaction(self.lock) as tx:
            tx.execute(f"INSERT INTO recon_resolutions ({RESOLUTION_COLUMNS}) VALUES "
                       f"({_marks(RESOLUTION_COLUMNS)})",
                       (r.id, r.pool, r.channel, r.side.value, r.target, r.action.value,
                        r.note, r.asset, str(r.amount_minor), r.entry_id, r.at_us,
                        actor_text(r.actor)))
            if match is not None:
                self._insert_matches(tx, [match])
            self._upsert_states(tx, states)
            self._action(tx, action)

    def resolutions(self, pool: str, channel: str | None, limit: int) -> list[Resolution]:
        where = Where().eq("pool", pool).eq("channel", channel)
        return [_resolution(r) for r in self._rows(
            f"SELECT {RESOLUTION_COLUMNS} FROM recon_resolutions{where} ORDER BY at_us DESC, "
            f"id DESC LIMIT {int(limit)}", where.params)]

    def booked(self, pool: str, channel: str, since_us: int, until_us: int) -> list[Resolution]:
        return [_resolution(r) for r in self._rows(
            f"SELECT {RESOLUTION_COLUMNS} FROM recon_resolutions WHERE pool = ? AND "
            "channel = ? AND action = 'booked' AND at_us >= ? AND at_us < ? ORDER BY at_us",
            (pool, channel, since_us, until_us))]

    def booked_for(self, line_ids: Sequence[str]) -> list[Resolution]:
        rows = self._rows_in(f"SELECT {RESOLUTION_COLUMNS} FROM recon_resolutions WHERE "
                             "action = 'booked' AND {match}", "target", list(line_ids))
        return [_resolution(r) for r in rows]

    # --- expected payments --------------------------------------------------------------------

    def add_expected(self, expected: Expected, action: ActionRecord) -> None:
        self.ensure()
        e = expected
        with self.db.transaction(self.lock) as tx:
            tx.execute(f"INSERT INTO recon_expected ({EXPECTED_COLUMNS}) VALUES "
                       f"({_marks(EXPECTED_COLUMNS)})",
                       (e.id, e.pool, e.channel, e.asset, str(e.amount_min_minor),
                        str(e.amount_max_minor), e.from_us, e.until_us, e.reference,
                        e.counterparty, e.state.value, e.credit_id, e.created_at_us,
                        actor_text(e.created_by), e.matched_at_us))
            self._action(tx, action)

    def expected(self, pool: str, *, channel: str | None = None,
                 state: ExpectedState | None = None, limit: int = 1_000) -> list[Expected]:
        where = (Where().eq("pool", pool).eq("channel", channel)
                 .eq("state", None if state is None else state.value))
        return [_expected(r) for r in self._rows(
            f"SELECT {EXPECTED_COLUMNS} FROM recon_expected{where} ORDER BY from_us, id "
            f"LIMIT {int(limit)}", where.params)]

    def cancel_expected(self, expected_id: str, at_us: int, action: ActionRecord) -> bool:
        self.ensure()
        with self.db.transaction(self.lock) as tx:
            changed = tx.execute("UPDATE recon_expected SET state = 'cancelled', "
                                 "matched_at_us = ? WHERE id = ? AND state = 'open'",
                                 (at_us, expected_id))
            if not changed.rowcount:
                return False
            self._action(tx, action)
        return True

    # --- CSV column mappings ------------------------------------------------------------------

    def save_mapping(self, name: str, text: str, at_us: int, actor: Actor,
                     action: ActionRecord) -> None:
        self.ensure()
        with self.db.transaction(self.lock) as tx:
            tx.execute("INSERT INTO recon_mappings (name, text, saved_at_us, saved_by) VALUES "
                       "(?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET text = excluded.text, "
                       "saved_at_us = excluded.saved_at_us, saved_by = excluded.saved_by",
                       (name, text, at_us, actor_text(actor)))
            self._action(tx, action)

    def mapping(self, name: str) -> str | None:
        rows = self._rows("SELECT text FROM recon_mappings WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    def mappings(self) -> list[tuple[str, str, int]]:
        return [(r[0], r[1], int(r[2])) for r in self._rows(
            "SELECT name, text, saved_at_us FROM recon_mappings ORDER BY name")]

    # --- the audit trail ----------------------------------------------------------------------

    def actions(self, after_id: int, limit: int) -> list[tuple[int, ActionRecord]]:
        rows = self._rows("SELECT id, at_us, action, object_kind, object_id, actor, details "
                          f"FROM recon_actions WHERE id > ? ORDER BY id LIMIT {int(limit)}",
                          (after_id,))
        return [(int(r[0]), ActionRecord(int(r[1]), r[2], r[3], r[4], actor_from_text(r[5]),
                                         json.loads(r[6]))) for r in rows]
