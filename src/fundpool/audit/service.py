"""The audit log's service: collect, checkpoint, prove, search, verify and export.

    audit = AuditService(store, key, clock)    # compose.audit_service(store)
    audit.sync()                               # every source's new records, in batches
    audit.checkpoint(publish_dir)              # a signed (size, root), when the log grew
    audit.inclusion(seq)                       # the proof of one entry, against the latest
    audit.consistency(first, second)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fundpool.audit import merkle
from fundpool.audit.checkpoint import Checkpoint, LogKey, publish
from fundpool.audit.errors import (
    AuditSeqOutOfRange,
    AuditSizeOutOfRange,
    AuditSizesOutOfOrder,
    InvalidAuditRange,
    NoAuditCheckpoint,
)
from fundpool.audit.merkle import Coordinate, ProofError
from fundpool.audit.ports import SYNC_BATCH_MAX, AuditStore, Search
from fundpool.audit.records import Entry
from fundpool.audit.verify import VerifyReport, verify
from fundpool.core.clock import Clock

SYNC_ROUNDS_MAX = 100  # batches one sync appends before it returns (the next one goes on)
EXPORT_FORMAT = "fundpool-audit-export v1"
EXPORT_ENTRIES_MAX = 10_000_000
EXPORT_CHECKPOINTS_MAX = 1_000
PROOF_CHUNK = 512  # entries whose proofs' nodes are read in one go


class AuditService:
    def __init__(self, store: AuditStore, key: Callable[[], LogKey], clock: Clock, *,
                 publish_dir: Path | None = None) -> None:
        self.store = store
        self._key_of = key
        self._key: LogKey | None = None
        self.clock = clock
        self.publish_dir = publish_dir

    @property
    def key(self) -> LogKey:
        """The log's signing key, read (or made) on first use."""
        if self._key is None:
            self._key = self._key_of()
        return self._key

    # --- growing ------------------------------------------------------------------------

    def sync(self, batch_max: int = SYNC_BATCH_MAX) -> dict[str, Any]:
        """Append what every source recorded since the last sync, a batch per transaction."""
        appended: dict[str, int] = {}
        size = 0  # what the first round's collect says
        skipped: tuple[str, ...] = ()
        for _ in range(SYNC_ROUNDS_MAX):
            got = self.store.collect(batch_max)
            for source, count in got.appended.items():
                appended[source] = appended.get(source, 0) + count
            size, skipped = got.size, got.skipped
            if got.total < batch_max:
                break
        return {"appended": appended, "size": size, "skipped": list(skipped)}

    def root(self, size: int) -> bytes:
        if size > self.store.size():
            raise AuditSizeOutOfRange(size=size, log_size=self.store.size())
        found = self.store.nodes(merkle.root_nodes(size))
        return merkle.root(size, _source(found))

    def checkpoint(self, publish_dir: Path | None = None, *, force: bool = False
                   ) -> tuple[Checkpoint, bool]:
        """A signed checkpoint of the log as it is, if it grew since the latest (or `force`):
        (the checkpoint, whether it is new). Published to `publish_dir` (or the service's)."""
        size = self.store.size()
        latest = self.store.latest_checkpoint()
        directory = publish_dir or self.publish_dir
        if latest is not None and latest.size == size and not force:
            if directory is not None:
                publish(latest, directory)
            return latest, False
        made = self.key.sign(size, self.root(size), self.clock.now_us())
        self.store.add_checkpoint(made)
        if directory is not None:
            publish(made, directory)
        return made, True

    # --- proofs -------------------------------------------------------------------------

    def latest(self) -> Checkpoint:
        found = self.store.latest_checkpoint()
        if found is None:
            raise NoAuditCheckpoint()
        return found

    def inclusion(self, seq: int, size: int | None = None) -> dict[str, Any]:
        """Entry `seq` with its inclusion proof against the latest checkpoint (or a tree of
        `size`)."""
        checkpoint = None
        if size is None:
            checkpoint = self.latest()
            size = checkpoint.size
        entry = self.store.entry(seq)
        if entry is None or not 0 <= seq < size:
            raise AuditSeqOutOfRange(seq=seq, size=size, log_size=self.store.size())
        proof = self.proof(seq, size)
        return {"entry": entry.to_dict(), "tree_size": size,
                "proof": [p.hex() for p in proof],
                "checkpoint": None if checkpoint is None else checkpoint.to_dict()}

    def proof(self, seq: int, size: int) -> list[bytes]:
        plan = merkle.inclusion_plan(seq, size)
        return merkle.proof_of(plan, _source(self.store.nodes(merkle.plan_nodes(plan))))

    def consistency(self, first: int, second: int) -> dict[str, Any]:
        if not 0 < first <= second:
            raise AuditSizesOutOfOrder(first=first, second=second)
        size = self.store.size()
        if second > size:
            raise AuditSizeOutOfRange(size=second, log_size=size)
        wanted = set(merkle.consistency_nodes(first, second))
        wanted.update(merkle.root_nodes(first))
        wanted.update(merkle.root_nodes(second))
        found = self.store.nodes(sorted(wanted))
        node = _source(found)
        proof = merkle.consistency_proof(first, second, node)
        return {"first": first, "second": second,
                "first_root": merkle.root(first, node).hex(),
                "second_root": merkle.root(second, node).hex(),
                "proof": [p.hex() for p in proof]}

    # --- reading ------------------------------------------------------------------------

    def entry(self, seq: int) -> Entry:
        found = self.store.entry(seq)
        if found is None:
            raise AuditSeqOutOfRange(seq=seq, log_size=self.store.size())
        return found

    def entries(self, search: Search) -> list[Entry]:
        return self.store.search(search)

    def status(self) -> dict[str, Any]:
        size = self.store.size()
        latest = self.store.latest_checkpoint()
        lag: dict[str, Any] = {}
        for source, (cursor, head) in self.store.positions().items():
            lag[source] = (None if head is None else
                           {"cursor": cursor, "head": head, "behind": max(head - cursor, 0)})
        last = self.store.last_verification()
        return {"size": size,
                "latest_checkpoint": None if latest is None else latest.to_dict(),
                "unsigned_entries": size - (0 if latest is None else latest.size),
                "sources": lag,
                "last_verify": None if last is None else {
                    "at_us": last[0], "size": last[1], "ok": last[2],
                    "findings": json.loads(last[3]).get("findings", [])}}

    def public_key(self) -> dict[str, Any]:
        return self.key.public_doc()

    # --- verification -------------------------------------------------------------------

    def verify(self, published_dir: Path | None = None) -> VerifyReport:
        report = verify(self.store, self.key.public,
                        published_dir=published_dir or self.publish_dir)
        self.store.save_verification(self.clock.now_us(), report.size, report.ok,
                                     json.dumps(report.to_dict(), sort_keys=True))
        return report

    # --- export -------------------------------------------------------------------------

    def export(self, first: int, end: int | None = None) -> Iterator[str]:
        """The entries first <= seq < end as JSON lines (docs/audit.md): a header, one line
        per entry with its inclusion proof against the export's checkpoint, the checkpoints
        from the range on with the consistency proofs between them, and a trailer that counts
        and hashes every line before it."""
        import hashlib

        size = self.store.size()
        end = size if end is None else min(end, size)
        if first < 0 or end <= first:
            raise InvalidAuditRange(first=first, end=end, log_size=size)
        if end - first > EXPORT_ENTRIES_MAX:
            raise InvalidAuditRange("the range is longer than an export holds", first=first,
                                    end=end, entries_max=EXPORT_ENTRIES_MAX)
        latest = self.store.latest_checkpoint()
        if latest is None or latest.size < end:
            latest, _ = self.checkpoint()
        tree = latest.size
        digest = hashlib.sha256()
        lines = 0

        def line(doc: dict[str, Any]) -> str:
            nonlocal lines
            text = json.dumps(doc, sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False) + "\n"
            digest.update(text.encode("utf-8"))
            lines += 1
            return text

        key = self.key.public_doc()
        yield line({"type": "header", "format": EXPORT_FORMAT, "key_id": key["key_id"],
                    "public_key_hex": key["public_key_hex"],
                    "public_key_pem": key["public_key_pem"], "first_seq": first,
                    "end_seq": end, "checkpoint_size": tree})
        for start in range(first, end, PROOF_CHUNK):
            chunk = self.store.entries(start, min(start + PROOF_CHUNK, end))
            wanted: dict[Coordinate, None] = {}
            for entry in chunk:
                for coordinate in merkle.inclusion_nodes(entry.seq, tree):
                    wanted[coordinate] = None
            node = _source(self.store.nodes(list(wanted)))
            for entry in chunk:
                yield line({"type": "entry", "seq": entry.seq, "at_us": entry.at_us,
                            "record": entry.record(), "leaf_hash": entry.leaf.hex(),
                            "tree_size": tree,
                            "proof": [p.hex() for p in merkle.inclusion_proof(
                                entry.seq, tree, node)]})
        shown = [c for c in self.store.checkpoints(after_size=first)
                 if c.size <= tree][-EXPORT_CHECKPOINTS_MAX:]
        if not shown or shown[-1].size != tree:
            shown.append(latest)
        previous: Checkpoint | None = None
        for checkpoint in shown:
            doc: dict[str, Any] = {"type": "checkpoint", **checkpoint.to_dict()}
            if previous is not None and 0 < previous.size < checkpoint.size:
                doc["consistency_from"] = previous.size
                doc["consistency"] = self.consistency(previous.size,
                                                      checkpoint.size)["proof"]
            yield line(doc)
            previous = checkpoint
        trailer = {"type": "trailer", "count": end - first, "lines": lines,
                   "sha256": digest.hexdigest()}
        yield json.dumps(trailer, sort_keys=True, separators=(",", ":")) + "\n"

def _source(found: dict[Coordinate, bytes]) -> merkle.NodeSource:
    def node(level: int, index: int) -> bytes:
        value = found.get((level, index))
        if value is None:
            raise ProofError(f"the log has no node at level {level}, index {index}")
        return value

    return node
