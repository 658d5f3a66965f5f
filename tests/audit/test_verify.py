"""`verify` names each corruption made directly in the database, on SQLite and PostgreSQL; and
the standalone verifier (tools/verify_audit_export.py, run as a process) checks a real export
and refuses a cut, a tampered and a reordered one, naming the line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fundpool.audit.checkpoint import public_pem
from fundpool.audit.service import AuditService
from fundpool.core.clock import ManualClock
from fundpool.ledger.ports import LedgerStore
from fundpool.sql.database import Database
from fundpool.stores.audit_sql import block_of
from tests.audit.conftest import BOB, emit, fill, payment_event

TOOL = Path(__file__).resolve().parents[2] / "tools" / "verify_audit_export.py"


def grown(store: LedgerStore, clock: ManualClock, audit: AuditService) -> int:
    """A log of two checkpoints; its size."""
    fill(store, clock, payments=5)
    audit.sync()
    audit.checkpoint()
    emit(store, [payment_event(clock, f"q{i}", "create", None, "initiated", BOB)
                 for i in range(6)])
    audit.sync()
    return audit.checkpoint()[0].size


def db_of(audit: AuditService) -> Database:
    db: Database = audit.store.db  # type: ignore[attr-defined]
    return db


def change(audit: AuditService, sql: str, params: tuple[object, ...] = ()) -> None:
    with db_of(audit).transaction() as tx:
        tx.execute(sql, params)


def codes(audit: AuditService) -> dict[str, list[int | None]]:
    report = audit.verify()
    found: dict[str, list[int | None]] = {}
    for finding in report.findings:
        found.setdefault(finding.code, []).append(
            finding.seq if finding.seq is not None else finding.size)
    return found


def test_an_intact_log_verifies(store: LedgerStore, clock: ManualClock,
                                audit: AuditService) -> None:
    grown(store, clock, audit)
    report = audit.verify()
    assert report.ok, report.to_dict()
    assert report.checkpoints == 2


def test_entry_tampered(store: LedgerStore, clock: ManualClock, audit: AuditService) -> None:
    grown(store, clock, audit)
    data = audit.store.entry(5).data  # type: ignore[union-attr]
    change(audit, "UPDATE audit_entries SET data = ? WHERE seq = 5",
           (data.replace(b"initiated", b"Initiated", 1),))
    found = codes(audit)
    assert found["entry_tampered"] == [5]
    assert "fork" not in found  # the checkpoints' mismatch is put down to the entry


def test_entry_missing(store: LedgerStore, clock: ManualClock, audit: AuditService) -> None:
    grown(store, clock, audit)
    change(audit, "DELETE FROM audit_entries WHERE seq = 7")
    assert codes(audit)["entry_missing"] == [7]


def test_entries_reordered(store: LedgerStore, clock: ManualClock,
                           audit: AuditService) -> None:
    grown(store, clock, audit)
    five, six = audit.store.entry(5), audit.store.entry(6)
    assert five is not None
    assert six is not None
    change(audit, "UPDATE audit_entries SET seq = -1 WHERE seq = 5")
    change(audit, "UPDATE audit_entries SET seq = 5 WHERE seq = 6")
    change(audit, "UPDATE audit_entries SET seq = 6 WHERE seq = -1")
    found = codes(audit)
    assert found["entries_reordered"] == [6]
    assert "entry_tampered" not in found  # each row is intact: only its place changed


def test_fork(store: LedgerStore, clock: ManualClock, audit: AuditService) -> None:
    size = grown(store, clock, audit)
    other = audit.key.sign(size, b"\x07" * 32, clock.now_us() + 1)  # the key's own signature
    audit.store.add_checkpoint(other)
    assert codes(audit)["fork"] == [size]


def test_history_rewritten_and_rehashed_is_a_fork(store: LedgerStore, clock: ManualClock,
                                                  audit: AuditService) -> None:
    """An operator who edits an entry and recomputes its leaf and every node above it leaves
    a log consistent with itself, but not with the checkpoint signed before."""
    from fundpool.audit import merkle

    size = grown(store, clock, audit)
    entries = audit.store.entries(0, size)
    entries[2] = type(entries[2])(2, entries[2].at_us, entries[2].data + b" ",
                                  merkle.leaf_hash(entries[2].data + b" "))
    nodes = merkle.append(0, {}, [e.leaf for e in entries]).nodes
    change(audit, "UPDATE audit_entries SET data = ?, leaf = ? WHERE seq = 2",
           (entries[2].data, entries[2].leaf))
    change(audit, "DELETE FROM audit_nodes")
    with db_of(audit).transaction() as tx:
        tx.many("INSERT INTO audit_nodes (block, level, idx, hash) VALUES (?, ?, ?, ?)",
                [(block_of(level, idx), level, idx, value) for level, idx, value in nodes])
    found = codes(audit)
    assert set(found) == {"fork"}, found


def test_checkpoint_truncated(store: LedgerStore, clock: ManualClock,
                              audit: AuditService) -> None:
    size = grown(store, clock, audit)
    change(audit, "DELETE FROM audit_entries WHERE seq >= ?", (size - 2,))
    assert codes(audit)["checkpoint_truncated"] == [size]


def test_malformed_checkpoint(store: LedgerStore, clock: ManualClock,
                              audit: AuditService) -> None:
    size = grown(store, clock, audit)
    root = audit.store.latest_checkpoint().root  # type: ignore[union-attr]
    change(audit, "UPDATE audit_checkpoints SET root = ? WHERE size = ?", (root[:20], size))
    assert codes(audit)["checkpoint_truncated"] == [size]


def test_bad_checkpoint_signature(store: LedgerStore, clock: ManualClock,
                                  audit: AuditService) -> None:
    size = grown(store, clock, audit)
    signature = audit.store.latest_checkpoint().signature  # type: ignore[union-attr]
    change(audit, "UPDATE audit_checkpoints SET signature = ? WHERE size = ?",
           (bytes([signature[0] ^ 1]) + signature[1:], size))
    assert codes(audit)["bad_checkpoint_signature"] == [size]


# --- the standalone verifier -----------------------------------------------------------


def run_tool(export: Path, key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(TOOL), str(export), "--public-key", key],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def exported(store: LedgerStore, clock: ManualClock, audit: AuditService,
             tmp_path: Path) -> tuple[Path, Path]:
    grown(store, clock, audit)
    export = tmp_path / "export.jsonl"
    export.write_text("".join(audit.export(1)), encoding="utf-8")
    key = tmp_path / "log.pub.pem"
    key.write_text(public_pem(audit.key.public), encoding="utf-8")
    return export, key


def test_the_tool_verifies_a_real_export(exported: tuple[Path, Path],
                                         audit: AuditService) -> None:
    export, key = exported
    done = run_tool(export, str(key))
    assert done.returncode == 0, done.stdout
    assert done.stdout.startswith("OK: ")
    raw_hex = audit.key.public_doc()["public_key_hex"]
    assert run_tool(export, raw_hex).returncode == 0


def test_the_tool_refuses_a_cut_export(exported: tuple[Path, Path]) -> None:
    export, key = exported
    lines = export.read_text(encoding="utf-8").splitlines(keepends=True)
    export.write_text("".join(lines[:5]), encoding="utf-8")
    done = run_tool(export, str(key))
    assert done.returncode == 1
    assert "no trailer" in done.stdout
    export.write_text("".join(lines)[:-30], encoding="utf-8")  # cut inside the trailer
    done = run_tool(export, str(key))
    assert done.returncode == 1
    assert f"line {len(lines)}" in done.stdout


def test_the_tool_refuses_a_tampered_export(exported: tuple[Path, Path]) -> None:
    export, key = exported
    lines = export.read_text(encoding="utf-8").splitlines(keepends=True)
    doc = json.loads(lines[3])
    doc["record"]["action"] = "payment.nothing"
    lines[3] = json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n"
    export.write_text("".join(lines), encoding="utf-8")
    done = run_tool(export, str(key))
    assert done.returncode == 1
    assert "FAILED at line 4" in done.stdout
    assert "was changed" in done.stdout


def test_the_tool_refuses_a_reordered_export(exported: tuple[Path, Path]) -> None:
    export, key = exported
    lines = export.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2], lines[3] = lines[3], lines[2]
    export.write_text("".join(lines), encoding="utf-8")
    done = run_tool(export, str(key))
    assert done.returncode == 1
    assert "FAILED at line 3" in done.stdout


def test_the_tool_refuses_another_key(exported: tuple[Path, Path]) -> None:
    from fundpool.audit.checkpoint import LogKey

    export, _ = exported
    done = run_tool(export, LogKey.generate().public_doc()["public_key_hex"])
    assert done.returncode == 1
    assert "FAILED at line 1" in done.stdout


def test_entry_duplicated(store: LedgerStore, clock: ManualClock, audit: AuditService) -> None:
    """No index keeps (source, source_id) unique: a row written twice from outside is named."""
    size = grown(store, clock, audit)
    twice = audit.store.entry(4)
    assert twice is not None
    change(audit, "INSERT INTO audit_entries (seq, at_us, source, source_id, action, "
           "object_kind, object_id, actor_id, data, leaf) SELECT ?, at_us, source, source_id, "
           "action, object_kind, object_id, actor_id, data, leaf FROM audit_entries "
           "WHERE seq = 4", (size,))
    found = codes(audit)
    assert found["entry_duplicated"] == [size]
    assert "entries_reordered" not in found  # named once, as what it is
    assert "fork" not in found
