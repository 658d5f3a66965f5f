"""A log past one 1024-leaf block, on SQLite and PostgreSQL: the store's proofs (upper nodes
from memory, read lazily and extended as the log grows; lower ones by block; the lowest made
from the leaves) are the reference's, and verify compares every stored node."""

from __future__ import annotations

import random

from fundpool.audit.records import AuditRecord
from fundpool.audit.service import AuditService
from fundpool.ledger.ports import LedgerStore
from fundpool.stores.audit_sql import UPPER_BLOCK
from tests.audit.test_merkle import ref_mth, ref_path, ref_subproof


def records(start: int, count: int) -> list[AuditRecord]:
    return [AuditRecord("outbox", str(i), 1_000 + i, "payment.create", "payment", f"p{i}",
                        {"kind": "user", "id": f"u{i % 3}", "name": f"user {i % 3}"},
                        details={"n": i}) for i in range(start, start + count)]


def check(audit: AuditService, leaves: list[bytes], rng: random.Random) -> None:
    size = len(leaves)
    assert audit.root(size) == ref_mth(leaves)
    for seq in [0, size - 1, *rng.sample(range(size), 12)]:
        assert audit.proof(seq, size) == ref_path(seq, leaves)
    for first in [1, 1024, size - 1, *rng.sample(range(1, size), 6)]:
        doc = audit.consistency(first, size)
        assert [bytes.fromhex(p) for p in doc["proof"]] == \
            ref_subproof(first, leaves[:size], True)
        assert doc["first_root"] == ref_mth(leaves[:first]).hex()


def test_proofs_and_verify_past_a_block(store: LedgerStore, audit: AuditService) -> None:
    rng = random.Random(5)
    size = 0
    for count in (700, 1500, 333):
        size = audit.store.append(records(size, count))
    leaves = [e.leaf for e in audit.store.entries(0, size)]
    check(audit, leaves, rng)  # reads the upper nodes into memory
    upper_before = len(audit.store._upper)  # type: ignore[attr-defined]
    assert upper_before > 0
    for count in (1024, 5):  # completes nodes of level 10 and 11 after the first read
        size = audit.store.append(records(size, count))
    leaves = [e.leaf for e in audit.store.entries(0, size)]
    check(audit, leaves, rng)
    assert len(audit.store._upper) > upper_before  # type: ignore[attr-defined]
    audit.checkpoint()
    report = audit.verify()
    assert report.ok, report.to_dict()
    # a stored upper node and a stored lower one changed: both named
    db = audit.store.db  # type: ignore[attr-defined]
    with db.transaction() as tx:
        tx.execute("UPDATE audit_nodes SET hash = ? WHERE block = ? AND level = 10 AND idx = 1",
                   (b"\x01" * 32, UPPER_BLOCK))
        tx.execute("UPDATE audit_nodes SET hash = ? WHERE block = 2 AND level = 5 AND idx = 70",
                   (b"\x02" * 32,))
    found = {(f.code, f.seq) for f in audit.verify().findings}
    assert ("node_mismatch", 1024) in found
    assert ("node_mismatch", 70 * 32) in found
