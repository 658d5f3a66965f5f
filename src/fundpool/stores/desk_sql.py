"""The treasury desk's tables, in the ledger's database on SQLite or PostgreSQL:
`SqlDeskStore` implements `fundpool.desk.ports.DeskStore`.

The tables are the `desk` component's migrations, created on first use. An object's body is
JSON text (amounts in it are decimal strings of exact minor units); its state is a column, so
that `move` writes only from the state the caller read (a compare-and-set in one UPDATE). Each
write is one transaction with its `desk_actions` row, which the audit log reads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fundpool.desk.ports import DeskAction, DeskConflict, DeskObject
from fundpool.ledger.ports import LedgerStore
from fundpool.sql import migrate
from fundpool.sql.database import LOOKUP_CHUNK, Database, Transaction, database_of
from fundpool.stores.actor_json import actor_from_text, actor_text

COLUMNS = "kind, id, pool, state, created_at_us, updated_at_us, actor, body"


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _object(row: Sequence[Any]) -> DeskObject:
    kind, oid, pool, state, created, updated, actor, body = row
    return DeskObject(pool, kind, oid, state, int(created), int(updated),
                      actor_from_text(actor), json.loads(body))


class SqlDeskStore:
    lock = "fundpool.desk"

    def __init__(self, store: LedgerStore) -> None:
        self.db: Database = database_of(store)
        self._ready = False

    def ensure(self) -> None:
        if not self._ready:
            migrate.ensure(self.db, migrate.DESK)
            self._ready = True

    @staticmethod
    def _action(tx: Transaction, action: DeskAction) -> None:
        tx.execute("INSERT INTO desk_actions (at_us, action, object_kind, object_id, actor, "
                   "details) VALUES (?, ?, ?, ?, ?, ?)",
                   (action.at_us, action.action, action.object_kind, action.object_id,
                    actor_text(action.actor), _json(action.details)))

    def add(self, objects: Sequence[DeskObject], action: DeskAction) -> None:
        self.ensure()
        try:
            with self.db.transaction(self.lock) as tx:
                tx.many(f"INSERT INTO desk_objects ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [(o.kind, o.id, o.pool, o.state, o.created_at_us, o.updated_at_us,
                          actor_text(o.actor), _json(o.body)) for o in objects])
                self._action(tx, action)
        except self.db.dialect.integrity_errors as error:
            raise DeskConflict(kind=objects[0].kind if objects else None,
                               ids=[o.id for o in objects][:20]) from error

    def move(self, obj: DeskObject, from_state: str, action: DeskAction | None) -> bool:
        self.ensure()
        with self.db.transaction(self.lock) as tx:
            cursor = tx.execute(
                "UPDATE desk_objects SET state = ?, updated_at_us = ?, body = ? "
                "WHERE kind = ? AND id = ? AND state = ?",
                (obj.state, obj.updated_at_us, _json(obj.body), obj.kind, obj.id, from_state))
            if cursor.rowcount != 1:
                return False
            if action is not None:
                self._action(tx, action)
        return True

    def move_many(self, objects: Sequence[DeskObject], from_state: str,
                  action: DeskAction | None) -> int:
        self.ensure()
        moved = 0
        with self.db.transaction(self.lock) as tx:
            for obj in objects:
                cursor = tx.execute(
                    "UPDATE desk_objects SET state = ?, updated_at_us = ?, body = ? "
                    "WHERE kind = ? AND id = ? AND state = ?",
                    (obj.state, obj.updated_at_us, _json(obj.body), obj.kind, obj.id,
                     from_state))
                moved += cursor.rowcount
            if action is not None:
                self._action(tx, action)
        return moved

    def get(self, kind: str, object_id: str) -> DeskObject | None:
        self.ensure()
        rows = self.db.rows(f"SELECT {COLUMNS} FROM desk_objects WHERE kind = ? AND id = ?",
                            (kind, object_id))
        return _object(rows[0]) if rows else None

    def get_many(self, kind: str, object_ids: Sequence[str]) -> list[DeskObject]:
        self.ensure()
        found: list[DeskObject] = []
        for start in range(0, len(object_ids), LOOKUP_CHUNK):
            chunk = list(object_ids[start:start + LOOKUP_CHUNK])
            marks = ", ".join("?" for _ in chunk)
            found += [_object(r) for r in self.db.rows(
                f"SELECT {COLUMNS} FROM desk_objects WHERE kind = ? AND id IN ({marks})",
                (kind, *chunk))]
        return found

    def find(self, pool: str, kind: str, states: Sequence[str] | None = None,
             limit: int = 100) -> list[DeskObject]:
        self.ensure()
        query = f"SELECT {COLUMNS} FROM desk_objects WHERE pool = ? AND kind = ?"
        params: list[Any] = [pool, kind]
        if states:
            query += f" AND state IN ({', '.join('?' for _ in states)})"
            params += list(states)
        query += " ORDER BY created_at_us DESC, id DESC LIMIT ?"
        return [_object(r) for r in self.db.rows(query, (*params, limit))]

    def actions(self, limit: int = 100) -> list[tuple[int, DeskAction]]:
        self.ensure()
        rows = self.db.rows("SELECT id, at_us, action, object_kind, object_id, actor, details "
                            "FROM desk_actions ORDER BY id DESC LIMIT ?", (limit,))
        return [(int(i), DeskAction(int(at), a, k, o, actor_from_text(actor), json.loads(d)))
                for i, at, a, k, o, actor, d in rows]
