"""`fundpool audit verify`: the log recomputed from its entries' data, and every finding named.

- `entry_tampered` (seq): the leaf of the entry's data is not the stored leaf;
- `entry_missing` (seq): a seq is absent (a deleted row): the first missing one of a gap;
- `entries_reordered` (seq): a source's position goes back (each source is appended in its
  own order, so an entry moved past another of its source shows here);
- `entry_duplicated` (seq): the entry holds the (source, source_id) of an earlier one (no
  index keeps the pair unique: the collector appends a record once by construction, so a
  double is a write from outside; found by one grouping pass over the entries);
- `node_mismatch` (level, index): a stored subtree hash is not the one recomputed from the
  entries' data (the tree was edited, or the entries under it were);
- `fork` (size): two different roots for one size (among the stored and the published
  checkpoints), a signed root that the log, intact otherwise, no longer gives (history was
  rewritten and re-hashed), or two checkpoints that no consistency proof joins;
- `root_mismatch` (size): a checkpoint's root differs from the log's because of a finding
  above (named once, there);
- `checkpoint_truncated` (size): a checkpoint larger than the log, or malformed (a short root
  or signature);
- `bad_checkpoint_signature` (size): not the log key's signature over the checkpoint's text.

The walk streams the entries (a chunk at a time) and keeps only the tree's right edge, so a
log of any size verifies in memory bounded by the chunk.
"""

from __future__ import annotations

import bisect
import itertools
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from fundpool.audit import merkle, sources
from fundpool.audit.checkpoint import Checkpoint, published
from fundpool.audit.merkle import Coordinate, ProofError
from fundpool.audit.ports import BLOCK_LEVEL, STORED_LEVEL_MIN, AuditStore

FINDINGS_PER_CODE_MAX = 20  # beyond this a code is counted, not listed
SCAN_CHUNK = 50_000
ORDERED_SOURCES = (sources.OUTBOX, sources.AUTH, sources.APPROVALS, sources.RISK_POLICY,
                   sources.RECON, sources.DESK)


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    detail: str
    seq: int | None = None
    size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"code": self.code, "detail": self.detail}
        if self.seq is not None:
            doc["seq"] = self.seq
        if self.size is not None:
            doc["size"] = self.size
        return doc


@dataclass
class VerifyReport:
    size: int = 0
    checkpoints: int = 0
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.counts

    def add(self, finding: Finding) -> None:
        self.counts[finding.code] = self.counts.get(finding.code, 0) + 1
        if self.counts[finding.code] <= FINDINGS_PER_CODE_MAX:
            self.findings.append(finding)

    def codes(self) -> set[str]:
        return set(self.counts)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "size": self.size, "checkpoints": self.checkpoints,
                "counts": dict(self.counts), "findings": [f.to_dict() for f in self.findings]}


class _Walk:
    """The tree recomputed from the entries' data, leaf by leaf, its nodes compared with the
    stored ones, its root taken at each checkpoint's size."""

    def __init__(self, store: AuditStore, report: VerifyReport, sizes: list[int]) -> None:
        self.store = store
        self.report = report
        self.sizes = sorted(set(sizes))
        self.frontier: dict[Coordinate, bytes] = {}
        self.size = 0
        self.roots: dict[int, bytes] = {0: merkle.EMPTY_ROOT} if 0 in self.sizes else {}
        self.broken_at: int | None = None  # the first position a finding spoiled
        self.spoiled: list[int] = []  # every position an entry finding named, ascending

    def push(self, leaves: list[bytes]) -> None:
        start = 0
        while start < len(leaves):
            stop = len(leaves)
            for size in self.sizes:  # a checkpoint inside this run ends a step there
                if self.size < size < self.size + stop - start:
                    stop = start + size - self.size
                    break
            grown = merkle.append(self.size, self.frontier, leaves[start:stop])
            self._compare(grown.nodes)
            self.frontier = grown.frontier
            self.size += stop - start
            if self.size in self.sizes:
                self.roots[self.size] = merkle.fold(
                    [self.frontier[c] for c in merkle.root_nodes(self.size)])
            start = stop

    def _compare(self, nodes: list[tuple[int, int, bytes]]) -> None:
        by_level: dict[int, dict[int, bytes]] = defaultdict(dict)
        nodes = [node for node in nodes if node[0] >= STORED_LEVEL_MIN]  # the stored ones
        for level, index, value in nodes:
            by_level[level][index] = value
        lower = [(index << level, (index + 1) << level) for level, index, _ in nodes
                 if level < BLOCK_LEVEL]
        below = (self.store.lower_nodes(min(a for a, _ in lower), max(b for _, b in lower))
                 if lower else {})
        for level, made in sorted(by_level.items()):
            if level < BLOCK_LEVEL:
                stored = {i: v for (lv, i), v in below.items() if lv == level}
            else:
                stored = self.store.level_nodes(level, min(made), max(made))
            for index, value in sorted(made.items()):
                first_leaf = index << level
                if stored.get(index) != value and not self._explained(first_leaf, level):
                    self.spoil(first_leaf)
                    what = "missing" if index not in stored else "not the recomputed hash"
                    self.report.add(Finding(
                        "node_mismatch", f"the stored node at level {level}, index {index} "
                        f"(leaves {first_leaf}..{first_leaf + (1 << level) - 1}) is {what}",
                        seq=first_leaf))

    def _explained(self, first_leaf: int, level: int) -> bool:
        """Whether an entry finding already names a leaf under this node."""
        at = bisect.bisect_left(self.spoiled, first_leaf)
        return at < len(self.spoiled) and self.spoiled[at] < first_leaf + (1 << level)

    def spoil(self, seq: int) -> None:
        if not self.spoiled or seq > self.spoiled[-1]:
            self.spoiled.append(seq)
        else:
            bisect.insort(self.spoiled, seq)
        if self.broken_at is None or seq < self.broken_at:
            self.broken_at = seq


def verify(store: AuditStore, public: Ed25519PublicKey, *,
           published_dir: Path | None = None, chunk: int = SCAN_CHUNK) -> VerifyReport:
    report = VerifyReport(size=store.size())
    stored = store.checkpoints()
    outside = [] if published_dir is None or not published_dir.is_dir() else \
        published(published_dir)
    checkpoints: list[Checkpoint] = []
    for found in [*stored, *outside]:
        if isinstance(found, str):
            report.add(Finding("checkpoint_truncated", f"the published file {found} is not a "
                               "checkpoint"))
        else:
            checkpoints.append(found)
    report.checkpoints = len(checkpoints)
    good = _check_checkpoints(checkpoints, public, report)
    walk = _Walk(store, report, [c.size for c in good])
    doubled = {(source, source_id): first
               for source, source_id, first, _ in store.duplicates()}
    expected = 0
    last: dict[str, int] = {}
    stopped = False
    for page in store.scan(0, chunk):
        leaves: list[bytes] = []
        for entry in page:
            if entry.seq != expected:
                report.add(Finding("entry_missing", f"seq {expected} to {entry.seq - 1} are "
                                   "missing", seq=expected))
                walk.spoil(expected)
                stopped = True  # positions after a gap cannot be recomputed
                expected = entry.seq
            leaf = merkle.leaf_hash(entry.data)
            if leaf != entry.leaf:
                report.add(Finding("entry_tampered", f"the data of seq {entry.seq} does not "
                                   "hash to its stored leaf", seq=entry.seq))
                walk.spoil(entry.seq)
            _check_order(entry.seq, entry.data, last, report, walk, doubled)
            if not stopped:
                leaves.append(leaf)
            expected += 1
        if leaves:
            walk.push(leaves)
    _check_roots(good, walk, report, store)
    return report


def _check_order(seq: int, data: bytes, last: dict[str, int], report: VerifyReport,
                 walk: _Walk, doubled: dict[tuple[str, str], int]) -> None:
    try:
        record = json.loads(data)
        source, source_id = record["source"], record["source_id"]
    except (ValueError, KeyError, TypeError):
        return  # unreadable data is a tampered entry, named by its leaf
    if not isinstance(source, str) or not isinstance(source_id, str | int):
        return
    first = doubled.get((source, str(source_id))) if doubled else None
    if first is not None and first != seq:
        report.add(Finding("entry_duplicated", f"seq {seq} holds {source} {source_id}, as "
                           f"seq {first} does", seq=seq))
        walk.spoil(seq)
        return
    if source not in ORDERED_SOURCES:
        return
    try:
        position = int(source_id)
    except (ValueError, TypeError):
        return
    if position <= last.get(source, -2**63):
        report.add(Finding("entries_reordered", f"seq {seq} holds {source} position "
                           f"{position}, after position {last[source]}", seq=seq))
        walk.spoil(seq)
    last[source] = max(position, last.get(source, position))


def _check_checkpoints(checkpoints: list[Checkpoint], public: Ed25519PublicKey,
                       report: VerifyReport) -> list[Checkpoint]:
    """The well-formed, validly signed checkpoints no larger than the log; findings for the
    others, and a fork for two roots of one size."""
    good: list[Checkpoint] = []
    roots: dict[int, set[bytes]] = defaultdict(set)
    for checkpoint in checkpoints:
        why = checkpoint.malformed()
        if why is not None:
            report.add(Finding("checkpoint_truncated", f"the checkpoint of size "
                               f"{checkpoint.size} is malformed: {why}", size=checkpoint.size))
            continue
        if not checkpoint.signed_by(public):
            report.add(Finding("bad_checkpoint_signature", f"the checkpoint of size "
                               f"{checkpoint.size} (key {checkpoint.key_id}) is not signed "
                               "by the log's key", size=checkpoint.size))
            continue
        roots[checkpoint.size].add(checkpoint.root)
        if checkpoint.size > report.size:
            report.add(Finding("checkpoint_truncated", f"a checkpoint of size "
                               f"{checkpoint.size} is larger than the log ({report.size} "
                               "entries): entries it covered are gone", size=checkpoint.size))
            continue
        good.append(checkpoint)
    for size, found in sorted(roots.items()):
        if len(found) > 1:
            report.add(Finding("fork", f"{len(found)} different signed roots for size {size}",
                               size=size))
    return good


def _reader(found: dict[Coordinate, bytes]) -> merkle.NodeSource:
    def node(level: int, index: int) -> bytes:
        return found[(level, index)]

    return node


def _check_roots(good: list[Checkpoint], walk: _Walk, report: VerifyReport,
                 store: AuditStore) -> None:
    forked = {f.size for f in report.findings if f.code == "fork"}
    for checkpoint in good:
        recomputed = walk.roots.get(checkpoint.size)
        if recomputed is None or recomputed == checkpoint.root or checkpoint.size in forked:
            continue
        forked.add(checkpoint.size)  # one finding per size
        explained = walk.broken_at is not None and walk.broken_at < checkpoint.size
        if explained:
            report.add(Finding("root_mismatch", f"the checkpoint of size {checkpoint.size} "
                               f"differs from the log from seq {walk.broken_at} on (named "
                               "above)", size=checkpoint.size))
        else:
            report.add(Finding("fork", f"the signed root of size {checkpoint.size} is not "
                               "the root of the log's entries: its history was rewritten",
                               size=checkpoint.size))
    distinct: dict[int, Checkpoint] = {}
    for checkpoint in good:
        distinct.setdefault(checkpoint.size, checkpoint)
    ordered = [distinct[s] for s in sorted(distinct) if s > 0]
    for first, second in itertools.pairwise(ordered):
        wanted = merkle.consistency_nodes(first.size, second.size)
        found = store.nodes(wanted)
        try:
            proof = merkle.consistency_proof(first.size, second.size, _reader(found))
            consistent = merkle.verify_consistency(first.size, second.size, first.root,
                                                   second.root, proof)
        except (KeyError, ProofError):
            consistent = False
        if not consistent:
            broken = walk.broken_at is not None and walk.broken_at < second.size
            report.add(Finding("root_mismatch" if broken else "fork",
                               f"no consistency proof from the log joins the checkpoints of "
                               f"size {first.size} and {second.size}", size=second.size))
