"""The audit log on SQLite and PostgreSQL: collected from every source once, in order, its
proofs checked against its signed checkpoints, searched, and exported."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from fundpool.audit import merkle
from fundpool.audit.checkpoint import Checkpoint, published
from fundpool.audit.errors import AuditSeqOutOfRange, AuditSizesOutOfOrder, NoAuditCheckpoint
from fundpool.audit.ports import Search
from fundpool.audit.records import canonical_json
from fundpool.audit.service import AuditService
from fundpool.core.clock import ManualClock
from fundpool.ledger.ports import LedgerStore
from tests.audit.conftest import ADA, BOB, emit, fill, payment_event


def actions(audit: AuditService) -> list[str]:
    return [e.record()["action"] for e in audit.store.entries(0, audit.store.size())]


def test_every_source_is_collected_once_in_order(store: LedgerStore, clock: ManualClock,
                                                  audit: AuditService) -> None:
    fill(store, clock)
    first = audit.sync(batch_max=4)  # several transactions, each with its cursors
    assert first["appended"]["outbox"] == 4 + 6  # definitions, adjustment; three payments x2
    assert first["appended"]["auth"] == 2
    assert first["appended"]["approvals"] == 1
    again = audit.sync()
    assert again["appended"] == {"outbox": 0, "auth": 0, "approvals": 0}
    # no risk or reconciliation tables in this store
    assert again["skipped"] == ["risk.policy", "risk.case", "recon", "desk"]
    found = actions(audit)
    assert found[:4] == ["ledger.asset_defined", "ledger.account_opened",
                         "ledger.account_opened", "ledger.adjustment"]
    assert found.count("payment.approve") == 3
    assert {"auth.user.created", "auth.user.roles_changed", "approvals.rules.drafted"} <= \
        set(found)
    entries = audit.store.entries(0, audit.store.size())
    assert [e.seq for e in entries] == list(range(len(entries)))
    adjustment = entries[3].record()
    assert adjustment["actor"]["id"] == ADA.id
    assert adjustment["actor"]["request_id"] == "req-1"
    assert adjustment["details"]["reason"] == "opening float"
    roles = next(e.record() for e in entries if e.record()["action"] ==
                 "auth.user.roles_changed")
    assert roles["before"] == {"roles": ["viewer"]}
    assert roles["after"] == {"roles": ["auditor"]}
    for entry in entries:  # the stored bytes are the record's canonical form, and its leaf
        assert canonical_json(entry.record()) == entry.data
        assert merkle.leaf_hash(entry.data) == entry.leaf
    # more of one source later: only the new ones, after the others
    emit(store, [payment_event(clock, "p9", "cancel", "initiated", "cancelled", BOB)])
    assert audit.sync()["appended"]["outbox"] == 1
    assert actions(audit)[-1] == "payment.cancel"


def test_proofs_against_signed_checkpoints(store: LedgerStore, clock: ManualClock,
                                           audit: AuditService, tmp_path: Path) -> None:
    fill(store, clock)
    with pytest.raises(NoAuditCheckpoint):
        audit.inclusion(0)
    audit.sync()
    publish = tmp_path / "published"
    first, made = audit.checkpoint(publish)
    assert made
    assert first.size == audit.store.size()
    assert first.signed_by(audit.key.public)
    assert audit.checkpoint(publish) == (first, False)  # not grown: no new one
    key_file = tmp_path / "keys" / "audit-log.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    emit(store, [payment_event(clock, f"q{i}", "create", None, "initiated", BOB)
                 for i in range(5)])
    audit.sync()
    second, _ = audit.checkpoint(publish)
    assert [c.size for c in published(publish) if isinstance(c, Checkpoint)] == \
        [first.size, second.size]
    for seq in range(second.size):
        doc = audit.inclusion(seq)
        leaf = bytes.fromhex(doc["entry"]["leaf_hash"])
        proof = [bytes.fromhex(p) for p in doc["proof"]]
        assert merkle.verify_inclusion(seq, second.size, leaf, proof, second.root)
    proof = audit.consistency(first.size, second.size)
    assert proof["first_root"] == first.root.hex()
    assert merkle.verify_consistency(first.size, second.size, first.root, second.root,
                                     [bytes.fromhex(p) for p in proof["proof"]])
    with pytest.raises(AuditSeqOutOfRange):
        audit.inclusion(second.size)
    with pytest.raises(AuditSizesOutOfOrder):
        audit.consistency(second.size, first.size)


def test_search(store: LedgerStore, clock: ManualClock, audit: AuditService) -> None:
    fill(store, clock, payments=4)
    audit.sync()
    by_name = audit.entries(Search(actor="ada"))
    by_id = audit.entries(Search(actor=ADA.id))
    by_who = audit.entries(Search(actor=f"user:{ADA.id}"))
    assert by_name == by_id == by_who
    assert len(by_name) == 1 + 4 + 2 + 1
    assert all(e.record()["actor"]["id"] == ADA.id for e in by_name)
    one = audit.entries(Search(object_kind="payment", object_id="p2"))
    assert [e.record()["action"] for e in one] == ["payment.create", "payment.approve"]
    page = audit.entries(Search(action="payment.create", limit=2))
    rest = audit.entries(Search(action="payment.create", after_seq=page[-1].seq))
    assert len(page) == 2
    assert len(rest) == 2
    assert rest[0].seq > page[-1].seq
    late = audit.entries(Search(from_us=clock.now_us() - 1_000, to_us=clock.now_us()))
    assert late
    assert all(clock.now_us() - 1_000 <= e.at_us <= clock.now_us() for e in late)


def test_risk_sources(store: LedgerStore, clock: ManualClock, audit: AuditService) -> None:
    """A policy drafted and a case's notes, written by risk's own store."""
    from fundpool import compose
    from fundpool.risk.records import CaseNote, PolicyState, PolicyVersion
    from fundpool.sql.database import database_of

    fill(store, clock, payments=0)
    risks = compose.risk_store(store)
    risks.ensure()

    class Session:
        def __init__(self, tx: object) -> None:
            self.tx = tx

    db = database_of(store)
    with db.transaction("fundpool.ledger") as tx:
        writes = risks.writes(Session(tx))  # type: ignore[arg-type]
        writes.add_policy(PolicyVersion(writes.next_policy_version(), "rules: []", "d1",
                                        PolicyState.DRAFT, clock.now_us(), ADA, "first"))
        writes.add_note(CaseNote("case-1", 1, clock.now_us(), BOB, "claim", None))
    audit.sync()
    with db.transaction("fundpool.ledger") as tx:
        risks.writes(Session(tx)).add_note(  # type: ignore[arg-type]
            CaseNote("case-1", 2, clock.now_us() - 5_000_000, BOB, "reject", "a mule"))
    audit.sync()  # an earlier time than the last note logged: still inside the window
    records = [e.record() for e in audit.store.entries(0, audit.store.size())]
    risk = [(r["action"], r["object"]["id"]) for r in records if r["source"].startswith("risk")]
    assert risk == [("risk.policy_drafted", "1"), ("risk.case_claim", "case-1"),
                    ("risk.case_reject", "case-1")]
    audit.sync()
    assert len([r for r in actions(audit) if r.startswith("risk")]) == 3


def test_status_and_lag(store: LedgerStore, clock: ManualClock, audit: AuditService) -> None:
    fill(store, clock)
    before = audit.status()
    assert before["size"] == 0
    assert before["sources"]["outbox"]["behind"] > 0
    audit.sync()
    audit.checkpoint()
    after = audit.status()
    assert after["size"] > 0
    assert after["unsigned_entries"] == 0
    assert all(v is None or v["behind"] == 0 for v in after["sources"].values())
    report = audit.verify()
    assert report.ok, report.to_dict()
    assert audit.status()["last_verify"]["ok"] is True


def test_export_lines(store: LedgerStore, clock: ManualClock, audit: AuditService) -> None:
    fill(store, clock)
    audit.sync()
    lines = [json.loads(line) for line in audit.export(2, 7)]
    assert lines[0]["type"] == "header"
    assert lines[0]["first_seq"] == 2
    assert [d["seq"] for d in lines if d["type"] == "entry"] == [2, 3, 4, 5, 6]
    assert lines[-1] == {**lines[-1], "type": "trailer", "count": 5, "lines": len(lines) - 1}
