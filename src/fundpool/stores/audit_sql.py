"""The audit log's tables, beside the ledger on SQLite or PostgreSQL: `SqlAuditStore`
implements `fundpool.audit.ports.AuditStore` (docs/audit.md).

The tables are the `audit` component's migrations, created on first use, on a connection of
the store's own. One transaction appends a batch: its entries (canonical JSON and leaf hash),
the (name, id) of each actor it names not seen yet (`audit_actors`), every Merkle subtree they
complete (`audit_nodes`), and, for the collector, the cursors of the sources it read them
from: a crash leaves a batch appended whole or not at all, and never a record read twice or
skipped.

Proofs: a node of level >= `BLOCK_LEVEL` (10) is one of few (about n / 512) and never changes
once stored, so the store keeps them all in memory, read the first time a proof needs one and
extended as the log grows (`_upper`). A lower node is stored with the other nodes of its
1024-leaf block, so the lower half of a proof is a few neighbouring rows, and its sibling leaf
one entry read by seq. Nodes below level 4 (`STORED_LEVEL_MIN`) are not stored (they would be
seven rows in eight): the store makes one from its 2 to 8 leaves, neighbouring entries read in
one range.

Reading the sources: the outbox's `pos` and `risk_policies.version` are assigned as the last
plus one under the ledger's writer lock, so they follow commit order. `auth_changes.id`,
`approval_actions.id`, `recon_actions.id` and `desk_actions.id` are taken from a sequence
when the row is inserted, which on PostgreSQL may commit out of order: the collector first
takes a SHARE lock on those tables (and on `risk_case_notes`), which waits for the
transactions writing them to end, so every row below the largest it then reads has
committed. On SQLite every writer holds the whole file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

from fundpool.audit import merkle, sources
from fundpool.audit.checkpoint import Checkpoint
from fundpool.audit.merkle import Coordinate
from fundpool.audit.ports import (
    BLOCK_LEVEL,
    SEARCH_LIMIT_MAX,
    STORED_LEVEL_MIN,
    SYNC_BATCH_MAX,
    Collected,
    Search,
)
from fundpool.audit.records import AuditRecord, Entry
from fundpool.core.actor import ACTOR_KINDS
from fundpool.ledger.ports import LedgerStore
from fundpool.sql import migrate
from fundpool.sql.database import Database, Transaction, database_of
from fundpool.sql.query import Where, limit, order_by

LOCK = "fundpool.audit"
ENTRY_COLUMNS = ("seq, at_us, source, source_id, action, object_kind, object_id, actor_id, "
                 "data, leaf")
_ENTRY_TYPES = ("int8", "int8", "text", "text", "text", "text", "text", "text", "bytea",
                "bytea")
_NODE_TYPES = ("int8", "int4", "int8", "bytea")
UPPER_BLOCK = -1  # the `block` of every node of level >= BLOCK_LEVEL
# Tables a collector locks on PostgreSQL before reading them (see the module's text).
_SHARE_LOCKED = (sources.AUTH, sources.APPROVALS, sources.RISK_CASE, sources.RECON,
                 sources.DESK)
NODES_PER_READ = 300  # (block, level, idx) triples in one statement
DUPLICATES_MAX = 1_000  # doubled (source, source_id) keys `duplicates` names at most


def block_of(level: int, index: int) -> int:
    """The `block` a node is stored under: its first leaf's 1024-leaf block, or UPPER_BLOCK."""
    return index >> (BLOCK_LEVEL - level) if level < BLOCK_LEVEL else UPPER_BLOCK


def _bytes(value: Any) -> bytes:
    return bytes(value)


def _made(leaves: dict[int, bytes], level: int, index: int) -> bytes | None:
    """The subtree (level, index) made from its leaves; None if one is missing."""
    first = index << level
    try:
        hashes = [leaves[seq] for seq in range(first, first + (1 << level))]
    except KeyError:
        return None
    node_hash = merkle.node_hash
    while len(hashes) > 1:
        hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


def _entry(row: Sequence[Any]) -> Entry:
    seq, at_us, data, leaf = row
    return Entry(int(seq), int(at_us), _bytes(data), _bytes(leaf))


def _has_table(tx: Transaction, name: str) -> bool:
    if tx.dialect.is_postgres:
        return bool(tx.one("SELECT to_regclass(?) IS NOT NULL", (name,))[0])
    return int(tx.one("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                      (name,))[0]) > 0


class SqlAuditStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._present: set[str] = set()  # the source tables found (they never go away)
        self._ready = False
        # every stored node of level >= BLOCK_LEVEL read so far, and how many of each level
        self._upper: dict[Coordinate, bytes] = {}
        self._upper_count: dict[int, int] = {}

    @classmethod
    def beside(cls, store: LedgerStore) -> SqlAuditStore:
        """On a connection of its own to the ledger's database (and schema)."""
        return cls(Database(database_of(store).location))

    def ensure(self) -> None:
        if not self._ready:
            migrate.ensure(self.db, migrate.AUDIT)
            self._ready = True

    def close(self) -> None:
        self.db.close()

    # --- appending ----------------------------------------------------------------------

    def size(self) -> int:
        self.ensure()
        return int(self.db.rows("SELECT coalesce(max(seq) + 1, 0) FROM audit_entries")[0][0])

    def append(self, records: Sequence[AuditRecord]) -> int:
        self.ensure()
        with self.db.transaction(LOCK) as tx:
            return self._append(tx, records)

    def _append(self, tx: Transaction, records: Sequence[AuditRecord]) -> int:
        size = int(tx.one("SELECT coalesce(max(seq) + 1, 0) FROM audit_entries")[0])
        if not records:
            return size
        frontier = self._nodes(tx.rows, merkle.root_nodes(size))
        datas = [record.data() for record in records]
        sha256, prefix = hashlib.sha256, merkle.LEAF_PREFIX
        leaves = [sha256(prefix + data).digest() for data in datas]
        grown = merkle.append(size, frontier, leaves)
        rows = []
        actors: set[tuple[str, str]] = set()
        for seq, r, data, leaf in zip(range(size, size + len(records)), records, datas, leaves,
                                      strict=True):
            who = r.actor_who
            if who is not None:
                actors.add((r.actor_name or "", who))
            rows.append((seq, r.at_us, r.source, r.source_id, r.action, r.object_kind,
                         r.object_id, who, data, leaf))
        nodes = [(index >> (BLOCK_LEVEL - level) if level < BLOCK_LEVEL else UPPER_BLOCK,
                  level, index, value) for level, index, value in grown.nodes
                 if level >= STORED_LEVEL_MIN]
        if tx.dialect.is_postgres:
            tx.copy(f"audit_entries ({ENTRY_COLUMNS})", rows, _ENTRY_TYPES)
            tx.copy("audit_nodes (block, level, idx, hash)", nodes, _NODE_TYPES)
        else:
            tx.send_many(f"INSERT INTO audit_entries ({ENTRY_COLUMNS}) VALUES "
                         "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            tx.send_many("INSERT INTO audit_nodes (block, level, idx, hash) VALUES "
                         "(?, ?, ?, ?)", nodes)
        tx.many("INSERT INTO audit_actors (name, actor_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                sorted(actors))
        return size + len(records)

    def collect(self, batch_max: int = SYNC_BATCH_MAX) -> Collected:
        self.ensure()
        with self.db.transaction(LOCK) as tx:
            cursors = {s: int(p) for s, p in tx.rows("SELECT source, position FROM "
                                                     "audit_cursors")}
            # A table once there stays there: only the missing ones are looked up again.
            for source, table in sources.SOURCE_TABLES.items():
                if source not in self._present and _has_table(tx, table):
                    self._present.add(source)
            present = {s: s in self._present for s in sources.SOURCE_TABLES}
            if tx.dialect.is_postgres:
                for source in _SHARE_LOCKED:
                    if present[source]:
                        tx.execute(f"LOCK TABLE {sources.SOURCE_TABLES[source]} IN SHARE MODE")
            records: list[AuditRecord] = []
            appended: dict[str, int] = {}
            moved: dict[str, int] = {}
            readers = {sources.OUTBOX: self._outbox, sources.AUTH: self._auth,
                       sources.APPROVALS: self._approvals,
                       sources.RISK_POLICY: self._policies, sources.RISK_CASE: self._notes,
                       sources.RECON: self._recon, sources.DESK: self._desk}
            for source, read in readers.items():
                room = batch_max - len(records)
                if not present[source] or room <= 0:
                    continue
                found, position = read(tx, cursors.get(source, -1 if source == sources.OUTBOX
                                                       else 0), room)
                records.extend(found)
                appended[source] = len(found)
                if position != cursors.get(source):
                    moved[source] = position
            size = self._append(tx, records)
            tx.many("INSERT INTO audit_cursors (source, position) VALUES (?, ?) ON CONFLICT "
                    "(source) DO UPDATE SET position = excluded.position",
                    sorted(moved.items()))
        skipped = tuple(s for s in sources.SOURCES if not present[s])
        return Collected(appended, size, skipped)

    def _outbox(self, tx: Transaction, after: int, room: int
                ) -> tuple[list[AuditRecord], int]:
        rows = tx.rows("SELECT pos, pool, id, type, at_us, data FROM outbox WHERE pos > ? "
                       "ORDER BY pos LIMIT ?", (after, room))
        if not rows:
            return [], after
        wanted = [(int(pos), pool, eid, kind, int(at), sources.loads(data))
                  for pos, pool, eid, kind, at, data in rows if kind in sources.AUDITED_EVENTS]
        seqs = [d["entry_seq"] for _, _, _, kind, _, d in wanted
                if kind == sources.LEDGER_EVENT]
        bodies = {int(seq): sources.loads(_bytes(canonical)) for seq, canonical in tx.rows_in(
            "SELECT seq, canonical FROM journal WHERE {match}", "seq", seqs)}
        alert_ids = [d["alert_id"] for _, _, _, kind, _, d in wanted
                     if kind == "alert.acknowledged"]
        actors: dict[str, Any] = {}
        if alert_ids and _has_table(tx, "alerts"):
            actors = {aid: sources.loads(text) for aid, text in tx.rows_in(
                "SELECT id, acknowledged_actor FROM alerts WHERE {match}", "id", alert_ids)
                if text is not None}
        found: list[AuditRecord] = []
        for pos, pool, eid, kind, at_us, data in wanted:
            if kind == sources.PAYMENT_EVENT:
                found.append(sources.payment_record(pos, eid, pool, at_us, data))
            elif kind == sources.LEDGER_EVENT:
                body = bodies.get(int(data["entry_seq"]))
                if body is not None and sources.audited_entry(body):
                    found.append(sources.ledger_record(pos, eid, pool, at_us, body))
            else:
                actor = actors.get(data["alert_id"]) if kind == "alert.acknowledged" else None
                found.append(sources.alert_record(pos, eid, kind, pool, at_us, data, actor))
        return found, int(rows[-1][0])

    def _auth(self, tx: Transaction, after: int, room: int) -> tuple[list[AuditRecord], int]:
        rows = tx.rows("SELECT id, at_us, action, target_kind, target_id, target_name, actor, "
                       "details FROM auth_changes WHERE id > ? ORDER BY id LIMIT ?",
                       (after, room))
        found = [sources.auth_record(int(i), int(at), a, k, t, n, actor, details)
                 for i, at, a, k, t, n, actor, details in rows]
        return found, int(rows[-1][0]) if rows else after

    def _approvals(self, tx: Transaction, after: int, room: int
                   ) -> tuple[list[AuditRecord], int]:
        rows = tx.rows("SELECT id, at_us, action, object_kind, object_id, actor, details "
                       "FROM approval_actions WHERE id > ? ORDER BY id LIMIT ?", (after, room))
        found = [sources.approval_record(int(i), int(at), a, k, o, actor, details)
                 for i, at, a, k, o, actor, details in rows]
        return found, int(rows[-1][0]) if rows else after

    def _recon(self, tx: Transaction, after: int, room: int) -> tuple[list[AuditRecord], int]:
        rows = tx.rows("SELECT id, at_us, action, object_kind, object_id, actor, details "
                       "FROM recon_actions WHERE id > ? ORDER BY id LIMIT ?", (after, room))
        found = [sources.recon_record(int(i), int(at), a, k, o, actor, details)
                 for i, at, a, k, o, actor, details in rows]
        return found, int(rows[-1][0]) if rows else after

    def _desk(self, tx: Transaction, after: int, room: int) -> tuple[list[AuditRecord], int]:
        rows = tx.rows("SELECT id, at_us, action, object_kind, object_id, actor, details "
                       "FROM desk_actions WHERE id > ? ORDER BY id LIMIT ?", (after, room))
        found = [sources.desk_record(int(i), int(at), a, k, o, actor, details)
                 for i, at, a, k, o, actor, details in rows]
        return found, int(rows[-1][0]) if rows else after

    def _policies(self, tx: Transaction, after: int, room: int
                  ) -> tuple[list[AuditRecord], int]:
        rows = tx.rows("SELECT version, digest, note, created_at_us, created_by FROM "
                       "risk_policies WHERE version > ? ORDER BY version LIMIT ?",
                       (after, room))
        found = [sources.policy_record(int(v), d, n, int(at), by) for v, d, n, at, by in rows]
        return found, int(rows[-1][0]) if rows else after

    def _notes(self, tx: Transaction, watermark: int, room: int
               ) -> tuple[list[AuditRecord], int]:
        """Case notes at or after the watermark less the window that are not logged yet; the
        watermark is the newest logged note's time."""
        since = watermark - sources.CASE_NOTE_WINDOW_US if watermark else 0
        notes = tx.rows("SELECT case_id, seq, at_us, actor, action, note FROM risk_case_notes "
                        "WHERE at_us >= ? ORDER BY at_us, case_id, seq", (since,))
        if not notes:  # most seconds: no note in the window, and nothing else to read
            return [], watermark
        # The source is written into the text: the partial index audit_entries_case_notes
        # serves it (a bound parameter would not prove its predicate).
        logged = {key for (key,) in tx.rows(
            f"SELECT source_id FROM audit_entries WHERE source = '{sources.RISK_CASE}' "
            "AND at_us >= ?", (int(notes[0][2]),))}
        found: list[AuditRecord] = []
        newest = watermark
        for case_id, seq, at_us, actor, action, note in notes:
            if sources.case_note_key(case_id, int(seq)) in logged:
                continue
            if len(found) == room:
                break
            found.append(sources.case_note_record(case_id, int(seq), int(at_us), actor, action,
                                                  note))
            newest = max(newest, int(at_us))
        return found, newest

    def positions(self) -> dict[str, tuple[int, int | None]]:
        self.ensure()
        cursors = {s: int(p) for s, p in self.db.rows("SELECT source, position FROM "
                                                      "audit_cursors")}
        heads = {sources.OUTBOX: "SELECT coalesce(max(pos), -1) FROM outbox",
                 sources.AUTH: "SELECT coalesce(max(id), 0) FROM auth_changes",
                 sources.APPROVALS: "SELECT coalesce(max(id), 0) FROM approval_actions",
                 sources.RISK_POLICY: "SELECT coalesce(max(version), 0) FROM risk_policies",
                 sources.RISK_CASE: "SELECT coalesce(max(at_us), 0) FROM risk_case_notes",
                 sources.RECON: "SELECT coalesce(max(id), 0) FROM recon_actions",
                 sources.DESK: "SELECT coalesce(max(id), 0) FROM desk_actions"}
        out: dict[str, tuple[int, int | None]] = {}
        for source, query in heads.items():
            start = -1 if source == sources.OUTBOX else 0
            head = (int(self.db.rows(query)[0][0])
                    if self.db.has_table(sources.SOURCE_TABLES[source]) else None)
            out[source] = (cursors.get(source, start), head)
        return out

    # --- reading ------------------------------------------------------------------------

    def entry(self, seq: int) -> Entry | None:
        self.ensure()
        rows = self.db.rows("SELECT seq, at_us, data, leaf FROM audit_entries WHERE seq = ?",
                            (seq,))
        return _entry(rows[0]) if rows else None

    def entries(self, first: int, end: int) -> list[Entry]:
        self.ensure()
        return [_entry(r) for r in self.db.rows(
            "SELECT seq, at_us, data, leaf FROM audit_entries WHERE seq >= ? AND seq < ? "
            "ORDER BY seq", (first, end))]

    def scan(self, first: int = 0, chunk: int = 50_000) -> Iterator[list[Entry]]:
        self.ensure()
        after = first - 1
        while True:
            rows = self.db.rows("SELECT seq, at_us, data, leaf FROM audit_entries WHERE "
                                f"seq > ? ORDER BY seq LIMIT {int(chunk)}", (after,))
            if not rows:
                return
            page = [_entry(r) for r in rows]
            yield page
            after = page[-1].seq

    def search(self, search: Search) -> list[Entry]:
        self.ensure()
        where = Where()
        if search.actor is not None:
            # `kind:id` as it is; a bare id under every kind of actor; or every actor that
            # went by that name
            whos = ([search.actor] if ":" in search.actor
                    else [f"{kind}:{search.actor}" for kind in sorted(ACTOR_KINDS)])
            for (who,) in self.db.rows("SELECT actor_id FROM audit_actors WHERE name = ?",
                                       (search.actor,)):
                if who not in whos:
                    whos.append(who)
            where.add(f"actor_id IN ({', '.join('?' * len(whos))})", *whos)
        where = (where.eq("object_kind", search.object_kind).eq("object_id", search.object_id)
                 .eq("action", search.action).at_least("at_us", search.from_us)
                 .add_if(search.to_us, "at_us <= ?").after("seq", search.after_seq))
        count = min(max(search.limit, 1), SEARCH_LIMIT_MAX)
        return [_entry(r) for r in self.db.rows(
            f"SELECT seq, at_us, data, leaf FROM audit_entries{where}{order_by('seq')}"
            f"{limit(count)}", where.params)]

    def seq_at(self, at_us: int) -> int:
        self.ensure()
        row = self.db.rows("SELECT min(seq) FROM audit_entries WHERE at_us > ?", (at_us,))[0]
        return self.size() if row[0] is None else int(row[0])

    def nodes(self, coordinates: Sequence[Coordinate]) -> dict[Coordinate, bytes]:
        """The hashes asked for: the upper ones from memory (read the first time, and again
        when one asked for is newer than what was read), the others in one statement."""
        self.ensure()
        found: dict[Coordinate, bytes] = {}
        lower: list[Coordinate] = []
        upper = self._upper
        missing = False
        for coordinate in coordinates:
            if coordinate[0] < BLOCK_LEVEL:
                lower.append(coordinate)
            elif coordinate in upper:
                found[coordinate] = upper[coordinate]
            else:
                missing = True
        if missing:
            self._read_upper()
            for coordinate in coordinates:
                if coordinate[0] >= BLOCK_LEVEL and coordinate in upper:
                    found[coordinate] = upper[coordinate]
        if lower:
            found.update(self._nodes(self.db.rows, lower))
        return found

    def _read_upper(self) -> None:
        """Read the upper nodes stored since the last time, level by level from the lowest:
        a level with no new node means none above it either."""
        level = BLOCK_LEVEL
        while level <= merkle.LEVELS_MAX:
            first = self._upper_count.get(level, 0)
            rows = self.db.rows("SELECT idx, hash FROM audit_nodes WHERE block = ? AND "
                                "level = ? AND idx >= ? ORDER BY idx",
                                (UPPER_BLOCK, level, first))
            if not rows:
                return
            for idx, value in rows:
                self._upper[(level, int(idx))] = _bytes(value)
            self._upper_count[level] = int(rows[-1][0]) + 1
            level += 1

    @staticmethod
    def _nodes(rows: Any, coordinates: Sequence[Coordinate]) -> dict[Coordinate, bytes]:
        """The hashes of `coordinates`, read through `rows` (a connection's or a
        transaction's) in one statement: the leaves below STORED_LEVEL_MIN are made from
        (neighbouring entries, by seq ranges), the others by their (block, level, idx)."""
        found: dict[Coordinate, bytes] = {}
        low = [(level, index) for level, index in coordinates if level < STORED_LEVEL_MIN]
        merged: list[list[int]] = []
        for start, end in sorted((index << level, (index + 1) << level) for level, index in low):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        inner = sorted((block_of(level, index), level, index)
                       for level, index in coordinates if level >= STORED_LEVEL_MIN)
        leaves: dict[int, bytes] = {}
        at_range = at_node = 0
        while at_range < len(merged) or at_node < len(inner):
            ranges = merged[at_range:at_range + NODES_PER_READ]
            triples = inner[at_node:at_node + NODES_PER_READ]
            at_range += NODES_PER_READ
            at_node += NODES_PER_READ
            parts: list[str] = []
            if ranges:
                parts.append("SELECT 0, seq, leaf FROM audit_entries WHERE " + " OR ".join(
                    "(seq >= ? AND seq < ?)" for _ in ranges))
            if triples:
                parts.append("SELECT level, idx, hash FROM audit_nodes WHERE " + " OR ".join(
                    "(block = ? AND level = ? AND idx = ?)" for _ in triples))
            params = [v for pair in ranges for v in pair] + [v for t in triples for v in t]
            for level, idx, value in rows(" UNION ALL ".join(parts), params):
                if level == 0:
                    leaves[int(idx)] = _bytes(value)
                else:
                    found[(int(level), int(idx))] = _bytes(value)
        for level, index in low:
            made = _made(leaves, level, index)
            if made is not None:
                found[(level, index)] = made
        return found

    def lower_nodes(self, first: int, end: int) -> dict[Coordinate, bytes]:
        self.ensure()
        found: dict[Coordinate, bytes] = {}
        if end <= first:
            return found
        for level, idx, value in self.db.rows(
                "SELECT level, idx, hash FROM audit_nodes WHERE block >= ? AND block <= ?",
                (first >> BLOCK_LEVEL, (end - 1) >> BLOCK_LEVEL)):
            if first <= int(idx) << int(level) < end:
                found[(int(level), int(idx))] = _bytes(value)
        return found

    def level_nodes(self, level: int, first: int, last: int) -> dict[int, bytes]:
        self.ensure()
        if level >= BLOCK_LEVEL:
            blocks = (UPPER_BLOCK, UPPER_BLOCK)
        else:
            blocks = (first >> (BLOCK_LEVEL - level), last >> (BLOCK_LEVEL - level))
        return {int(i): _bytes(h) for i, h in self.db.rows(
            "SELECT idx, hash FROM audit_nodes WHERE block >= ? AND block <= ? AND level = ? "
            "AND idx >= ? AND idx <= ?", (*blocks, level, first, last))}

    def duplicates(self, limit: int = DUPLICATES_MAX) -> list[tuple[str, str, int, int]]:
        """(source, source_id, first seq, entries) of each key more than one entry holds, by
        first seq: one pass over the entries (no index keeps the key unique)."""
        self.ensure()
        return [(str(source), str(source_id), int(first), int(count))
                for source, source_id, first, count in self.db.rows(
                    "SELECT source, source_id, min(seq), count(*) FROM audit_entries GROUP BY "
                    "source, source_id HAVING count(*) > 1 ORDER BY min(seq) LIMIT ?",
                    (limit,))]

    # --- checkpoints and verifications --------------------------------------------------

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        self.ensure()
        with self.db.transaction(LOCK) as tx:
            tx.execute("INSERT INTO audit_checkpoints (size, root, at_us, key_id, signature) "
                       "VALUES (?, ?, ?, ?, ?) ON CONFLICT (size, root) DO NOTHING",
                       (checkpoint.size, checkpoint.root, checkpoint.at_us, checkpoint.key_id,
                        checkpoint.signature))

    def checkpoints(self, *, after_size: int | None = None, limit: int | None = None
                    ) -> list[Checkpoint]:
        self.ensure()
        where = Where().after("size", after_size)
        count = "" if limit is None else f" LIMIT {int(limit)}"
        return [Checkpoint(int(s), _bytes(r), int(at), k, _bytes(sig)) for s, r, at, k, sig in
                self.db.rows("SELECT size, root, at_us, key_id, signature FROM "
                             f"audit_checkpoints{where} ORDER BY size, at_us{count}",
                             where.params)]

    def latest_checkpoint(self) -> Checkpoint | None:
        self.ensure()
        rows = self.db.rows("SELECT size, root, at_us, key_id, signature FROM audit_checkpoints "
                            "ORDER BY size DESC, at_us DESC LIMIT 1")
        if not rows:
            return None
        s, r, at, k, sig = rows[0]
        return Checkpoint(int(s), _bytes(r), int(at), k, _bytes(sig))

    def save_verification(self, at_us: int, size: int, ok: bool, report: str) -> None:
        self.ensure()
        with self.db.transaction(LOCK) as tx:
            tx.execute("INSERT INTO audit_verifications (at_us, size, ok, report) "
                       "VALUES (?, ?, ?, ?)", (at_us, size, ok, report))

    def last_verification(self) -> tuple[int, int, bool, str] | None:
        self.ensure()
        rows = self.db.rows("SELECT at_us, size, ok, report FROM audit_verifications "
                            "ORDER BY id DESC LIMIT 1")
        if not rows:
            return None
        at, size, ok, report = rows[0]
        return int(at), int(size), bool(ok), str(report)
