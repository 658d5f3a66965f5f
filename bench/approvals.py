"""Approval signature checks per second (issue 17, point 7), against the bare Ed25519 check of
the same signatures in the same run.

Prints one JSON line per figure:
  {"bench": "approvals", "workload": ..., "value": ..., "unit": ..., "baseline": ...,
   "baseline_value": ..., "ratio": ...}

- `signature_checks`: what the approvals service does for each signature before it records
  one (approvals/signing.py): the payment's document and its canonical digest, the base64
  signature's decoding and length check, and Ed25519 verification against the registered raw
  public key. Baseline: `Ed25519PublicKey.verify` alone on the same (key, signature, digest)
  triples, the key objects made beforehand.
- `signed_approvals`: whole approvals through `ApprovalService.sign` on a SQLite store, each in
  its own transaction (the plan pinned, every check above, the signature and the audit trail
  written, and the payment approved: one stage of one approver), against the same payments
  approved by an unsigned step in one transaction each (`PaymentService.act`): what signing
  adds to an approval.

Usage: python bench/approvals.py [--checks 20000] [--approvals 500]
"""

from __future__ import annotations

import argparse
import base64
import json
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fundpool import compose
from fundpool.approvals import signing, totp
from fundpool.core.actor import Actor
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.ledger.model import Posting, Transfer
from fundpool.payments.model import (
    Action,
    Payment,
    PaymentKind,
    PaymentRequest,
    PaymentState,
    Step,
)
from fundpool.pool.accounts import PoolState, pool_account, world_account
from fundpool.pool.config import load_config
from fundpool.pool.setup import init_pool

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pool.toml"
KEYS = 16


def line(workload: str, value: float, unit: str, baseline: str, baseline_value: float,
         **extra: object) -> None:
    print(json.dumps({"bench": "approvals", "workload": workload, "value": round(value, 1),
                      "unit": unit, "baseline": baseline,
                      "baseline_value": round(baseline_value, 1),
                      "ratio": round(value / baseline_value, 3), **extra}), flush=True)


def signature_checks(count: int) -> None:
    keys = [Ed25519PrivateKey.generate() for _ in range(KEYS)]
    raws = [signing.raw_public(k) for k in keys]
    payments = [Payment(f"p-{i:08d}", "main", PaymentKind.PAYOUT, "USD", 1_000_00 + i, 25,
                        "rtp", None, f"payee {i}", f"ref-{i}", PaymentState.PENDING_APPROVAL,
                        True, 1, 1, destination="GB33BUKB20201555555555")
                for i in range(count)]
    docs = [signing.document(p, 5, 2, 3) for p in payments]
    digests = [signing.digest_of(d) for d in docs]
    signatures = [signing.sign(keys[i % KEYS], d) for i, d in enumerate(digests)]

    started = time.perf_counter()
    for i, payment in enumerate(payments):
        digest = signing.digest_of(signing.document(payment, 5, 2, 3))
        signing.verify(raws[i % KEYS], signing.parse_signature(signatures[i]), digest)
    checked_s = time.perf_counter() - started

    objects = [k.public_key() for k in keys]
    raw_signatures = [base64.b64decode(s) for s in signatures]
    started = time.perf_counter()
    for i, digest in enumerate(digests):
        objects[i % KEYS].verify(raw_signatures[i], digest)
    bare_s = time.perf_counter() - started
    line("signature_checks", count / checked_s, "checks/s", "ed25519_verify_only",
         count / bare_s, checks=count)


def signed_approvals(count: int) -> None:
    with tempfile.TemporaryDirectory() as root:
        store = compose.sqlite_ledger(root)
        store.initialise()
        config = load_config(EXAMPLE)
        pool = config.pool(None)
        clock = ManualClock()
        ids = Uuid7Ids.seeded(11)
        ledger = compose.ledger(store, clock, ids)
        init_pool(ledger, config)
        (funded,) = ledger.submit([Transfer((Posting(
            world_account("rtp"), pool_account("main", "USD", "rtp", PoolState.AVAILABLE),
            "USD", 10_000_000_000_00),), {"purpose": "float"})])
        assert funded.error is None
        payments = compose.payment_service(store, config, pool, clock=clock, ids=ids)
        approvals = compose.approval_service(store, config, lambda _p: payments, clock=clock)
        auth = compose.auth_store(store)
        cashier = Actor("user", "u-cashier", "cashier", ("cashier",))
        user = auth.add_user("approver", "a-long-password-1", ["approver"], now_us=1)
        approver = Actor("user", user.id, "approver", ("approver",))
        key = Ed25519PrivateKey.generate()
        secret = approvals.begin_totp(approver)["secret"]
        clock.advance(seconds=30)
        key_id = approvals.register_key(
            approver, base64.b64encode(signing.raw_public(key)).decode(), "bench",
            totp.code_at(secret, clock.now_us())).id

        def waiting(prefix: str) -> list[str]:
            found = []
            for i in range(count):
                # Over the pool's USD threshold (examples/pool.toml): each waits for approval.
                p = payments.create(PaymentRequest(
                    PaymentKind.PAYOUT, "USD", 20_000_00 + i, channel="rtp",
                    counterparty="Ada", reference=f"{prefix}-{i}",
                    destination="GB33BUKB20201555555555"), idempotency_key=f"{prefix}-{i}",
                    actor=cashier)
                for action in (Action.SCREEN, Action.ROUTE, Action.REQUEST_APPROVAL):
                    payments.act(Step(p.id, action, channel="rtp" if action is Action.ROUTE
                                      else None))
                found.append(p.id)
            return found

        signed = waiting("signed")
        started = time.perf_counter()
        for pid in signed:
            view = approvals.view(pid, approver)
            approvals.sign(pid, approver, key_id=key_id,
                           signature=signing.sign(key, view.digest), digest=view.digest.hex())
        signed_s = time.perf_counter() - started
        plain = waiting("plain")
        started = time.perf_counter()
        for pid in plain:
            payments.act(Step(pid, Action.APPROVE), actor=approver)
        plain_s = time.perf_counter() - started
        assert set(payments.states(signed).values()) == {PaymentState.APPROVED}
        store.close()
    line("signed_approvals", count / signed_s, "approvals/s", "unsigned_approve_step",
         count / plain_s, approvals=count, note="view (read the digest) + sign, each its own "
         "transactions, SQLite")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=20_000)
    parser.add_argument("--approvals", type=int, default=500)
    args = parser.parse_args()
    signature_checks(args.checks)
    signed_approvals(args.approvals)


if __name__ == "__main__":
    main()
