"""The audit log (issue 17, point 4): batched appends per second on SQLite beside raw SHA-256
of the same leaves, and inclusion and consistency proofs, made and checked, at 10,000,000
entries (targets: >= 50,000 appends/s; < 1 ms per proof).

Prints one JSON line per figure:
  {"bench": "audit", "workload": ..., "value": ..., "unit": ..., "baseline": ...,
   "baseline_value": ..., ...}

The log is built with the store's own batched append path (`SqlAuditStore.append`, 10,000
records a transaction: canonical JSON, leaf hashes, entries, completed nodes; the collector
appends the same way), on a SQLite file with the audit migration's indexes. Records are
payment steps as the collector writes them (about 500 bytes of canonical JSON). The append
rate is measured over the first `--measure` records; the baseline is SHA-256 of those same
records' canonical bytes alone (the leaf hashing, nothing stored). Proofs are measured on the
full log at random positions (and random first sizes for consistency): making one is
`SqlAuditStore.nodes` (the nodes of level >= 10 from memory, read at the first proof; one
statement for the rest: a few rows of one 1024-leaf block and the 16 neighbouring leaves the
lowest ones are made from) and the hashing; checking one is RFC 9162's algorithm. The
baseline of a proof is one entry read by its seq (primary key), same run.

Usage: python bench/audit.py [--entries 10000000] [--measure 200000] [--proofs 2000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from fundpool.audit import merkle
from fundpool.audit.records import AuditRecord
from fundpool.runtime import tune_gc
from fundpool.sql.database import Database
from fundpool.sql.url import DatabaseUrl
from fundpool.stores.audit_sql import SqlAuditStore

BATCH = 10_000
T0 = 1_767_225_600_000_000


def records(start: int, count: int) -> list[AuditRecord]:
    out = []
    for i in range(start, start + count):
        actor = {"kind": "user", "id": f"u-{i % 50}", "name": f"operator-{i % 50}",
                 "roles": ["cashier"], "session_id": f"s-{i % 997}",
                 "request_id": f"req-{i:012d}"}
        out.append(AuditRecord(
            "outbox", str(i), T0 + i * 1_000, "payment.approve", "payment",
            f"0193a1b2-{i:012x}", actor, before={"state": "initiated"},
            after={"state": "approved"},
            details={"pool": "main", "event_id": f"ev-{i:016x}", "kind": "payout",
                     "asset": "USD", "amount_minor": str(1_000 + i % 99_999),
                     "fee_minor": "50", "channel": "bank-a", "counterparty": f"payee {i % 2000}",
                     "reason": None, "payment_version": 2}))
    return out


def percentiles(samples_us: list[float]) -> dict[str, float]:
    ordered = sorted(samples_us)
    return {"p50": round(statistics.median(ordered), 1),
            "p99": round(ordered[int(len(ordered) * 0.99) - 1], 1)}


def line(doc: dict[str, object]) -> None:
    print(json.dumps({"bench": "audit", **doc}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--measure", type=int, default=200_000)
    parser.add_argument("--proofs", type=int, default=2_000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    tune_gc()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        store = SqlAuditStore(Database(DatabaseUrl("sqlite", str(Path(tmp) / "audit.sqlite3"))))
        store.ensure()
        measure = min(args.measure, args.entries)
        # --- appends, and raw SHA-256 of the same leaves --------------------------------
        batches = [records(start, min(BATCH, measure - start))
                   for start in range(0, measure, BATCH)]
        datas = [r.data() for batch in batches for r in batch]
        started = time.perf_counter()
        for data in datas:
            hashlib.sha256(b"\x00" + data).digest()
        raw_s = time.perf_counter() - started
        started = time.perf_counter()
        for batch in batches:
            store.append(batch)
        append_s = time.perf_counter() - started
        line({"workload": f"append, batches of {BATCH:,} (SQLite, canonical JSON + leaf + "
              "entry row + completed nodes, one transaction a batch)",
              "value": round(measure / append_s), "unit": "entries/s",
              "baseline": "raw SHA-256 of the same leaves (canonical bytes given)",
              "baseline_value": round(measure / raw_s), "unit_baseline": "hashes/s",
              "entries": measure, "record_bytes_mean": round(sum(map(len, datas)) / len(datas)),
              "target": ">= 50,000/s"})
        # --- the rest of the log, by the same path ---------------------------------------
        started = time.perf_counter()
        for start in range(measure, args.entries, BATCH):
            store.append(records(start, min(BATCH, args.entries - start)))
        build_s = time.perf_counter() - started
        size = store.size()
        if args.entries > measure:
            line({"workload": f"build to {size:,} entries (same append path)",
                  "value": round((size - measure) / build_s), "unit": "entries/s",
                  "seconds": round(build_s, 1)})
        # --- proofs at full size ---------------------------------------------------------
        rng = random.Random(17)
        root = merkle.root(size, lambda lv, ix: found[(lv, ix)]) if (
            found := store.nodes(merkle.root_nodes(size))) else merkle.EMPTY_ROOT
        make_us, check_us, read_us = [], [], []
        for _ in range(args.proofs):
            seq = rng.randrange(size)
            t0 = time.perf_counter()
            plan = merkle.inclusion_plan(seq, size)  # as AuditService.proof does
            nodes = store.nodes(merkle.plan_nodes(plan))
            proof = merkle.proof_of(plan, lambda lv, ix, nodes=nodes: nodes[(lv, ix)])
            t1 = time.perf_counter()
            leaf = nodes.get((0, seq)) or store.nodes([(0, seq)])[(0, seq)]
            t2 = time.perf_counter()
            ok = merkle.verify_inclusion(seq, size, leaf, proof, root)
            t3 = time.perf_counter()
            store.entry(seq)
            t4 = time.perf_counter()
            assert ok
            make_us.append((t1 - t0) * 1e6)
            check_us.append((t3 - t2) * 1e6)
            read_us.append((t4 - t3) * 1e6)
        base = percentiles(read_us)
        line({"workload": f"inclusion proof, make (node read + hashing), size {size:,}",
              "unit": "us", **percentiles(make_us), "baseline": "one entry read by seq",
              "baseline_p50": base["p50"], "baseline_p99": base["p99"],
              "proof_hashes": len(proof), "target": "< 1 ms"})
        line({"workload": f"inclusion proof, verify (RFC 9162), size {size:,}", "unit": "us",
              **percentiles(check_us), "target": "< 1 ms"})
        make_us, check_us = [], []
        for _ in range(args.proofs):
            first = rng.randrange(1, size)
            t0 = time.perf_counter()
            wanted = merkle.consistency_nodes(first, size) + merkle.root_nodes(first)
            nodes = store.nodes(wanted)
            proof = merkle.consistency_proof(first, size,
                                             lambda lv, ix, nodes=nodes: nodes[(lv, ix)])
            first_root = merkle.root(first, lambda lv, ix, nodes=nodes: nodes[(lv, ix)])
            t1 = time.perf_counter()
            ok = merkle.verify_consistency(first, size, first_root, root, proof)
            t2 = time.perf_counter()
            assert ok
            make_us.append((t1 - t0) * 1e6)
            check_us.append((t2 - t1) * 1e6)
        line({"workload": f"consistency proof, make (with the first root), size {size:,}",
              "unit": "us", **percentiles(make_us), "baseline": "one entry read by seq",
              "baseline_p50": base["p50"], "baseline_p99": base["p99"],
              "target": "< 1 ms"})
        line({"workload": f"consistency proof, verify (RFC 9162), size {size:,}", "unit": "us",
              **percentiles(check_us), "target": "< 1 ms"})
        store.close()


if __name__ == "__main__":
    main()
