"""The payment engine in a real `fundpool serve`, used as its users would: payouts created
through the API move by themselves to the end; a large one waits for a second person's
signature; the initiator cannot approve their own; a raw posting to a pool account by a cashier
is refused; and a server killed (SIGKILL) while payments are in flight, then started again,
finishes every one of them exactly once, with no rail sent anything twice and the chain intact.
On SQLite (one process) and on PostgreSQL with two workers (the engine's leader killed, another
takes over).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fundpool.channels.rail_journal import journal_submissions
from tests.conftest import PG_URL, new_pg_schema, require_postgres
from tests.server.signing import Signer
from tests.serving import Served
from tests.waiting import wait_until

SETTLE_WITHIN_S = 90.0  # instant rails settle in seconds; generous for a busy machine
FINISHED = {"settled", "failed", "returned", "rejected", "cancelled"}
# Instant rails (a few seconds each), named so that a failure fails rather than fails over to
# a wire that would take hours.
RAILS = (("rtp", "USD", "25.00"), ("sepa", "EUR", "12.50"), ("ecny-rail", "E-CNY", "88.00"))


def payout(amount: str = "50.00", asset: str = "USD", channel: str | None = "rtp",
           **more: object) -> dict[str, object]:
    body: dict[str, object] = {"kind": "payout", "asset": asset, "amount": amount,
                               "counterparty": "Ada Lovelace",
                               "destination": "GB33BUKB20201555555555",
                               "reference": f"t-{uuid.uuid4().hex[:12]}", **more}
    if channel is not None:
        body["channel"] = channel
    return body


def create(served: Served, body: dict[str, object], role: str = "cashier") -> dict[str, object]:
    answer = served.post("/v1/payments", body, role)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def state_of(served: Served, payment_id: object) -> str:
    return str(served.get(f"/v1/payments/{payment_id}")["state"])


def wait_state(served: Served, payment_id: object, wanted: set[str],
               within_s: float = SETTLE_WITHIN_S) -> str:
    return wait_until(lambda: (s := state_of(served, payment_id)) in wanted and s,
                      within_s=within_s, what=f"payment {payment_id} in {sorted(wanted)}",
                      poll_s=0.2, detail=served.log_tail)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = Served(tmp_path_factory.mktemp("engine-serve"))
    server.prepare()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def signer_of(served: Served, role: str) -> Iterator[Signer]:
    with httpx.Client(base_url=served.url(""), timeout=30) as client:
        yield Signer.enrolled(client, served.headers(role))


@pytest.fixture(scope="module")
def approver(served: Served) -> Iterator[Signer]:
    """serve-approver, with a TOTP authenticator and a signing key (once: the server is the
    module's)."""
    yield from signer_of(served, "approver")


@pytest.fixture(scope="module")
def admin(served: Served) -> Iterator[Signer]:
    yield from signer_of(served, "admin")


def test_a_payout_created_through_the_api_settles_by_itself(served: Served) -> None:
    created = create(served, payout())
    assert created["state"] == "initiated"  # acknowledged; the engine does the rest
    assert wait_state(served, created["id"], FINISHED) == "settled"
    detail = served.get(f"/v1/payments/{created['id']}")
    actions = [e["action"] for e in detail["events"]]
    assert actions[:5] == ["create", "screen", "route", "approve", "submit"]
    assert actions[-1] == "settle"
    creator = detail["events"][0]["actor"]
    assert (creator["kind"], creator["name"]) == ("user", "serve-cashier")
    assert creator["session_id"]
    assert creator["request_id"]
    assert {e["actor"]["kind"] for e in detail["events"][1:]} == {"engine"}
    assert detail["initiated_by"]["name"] == "serve-cashier"


def test_above_the_threshold_it_waits_for_another_person(served: Served,
                                                         approver: Signer) -> None:
    created = create(served, payout("20000.00"))  # the USD threshold is 10,000.00
    assert wait_state(served, created["id"], {"pending_approval"}) == "pending_approval"
    # A cashier may not approve at all, signature or not; the approver signs, and the payment
    # moves on.
    signed = approver.body(str(created["id"]), note="checked the invoice")
    refused = served.post(f"/v1/payments/{created['id']}/approve", signed, "cashier")
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "forbidden"
    unsigned = served.post(f"/v1/payments/{created['id']}/approve", {}, "approver")
    assert unsigned.status_code == 400, unsigned.text
    assert unsigned.json()["code"] == "signature_required"
    assert state_of(served, created["id"]) == "pending_approval"
    approved = served.post(f"/v1/payments/{created['id']}/approve", signed, "approver")
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "approved"
    assert wait_state(served, created["id"], FINISHED) == "settled"
    events = served.get(f"/v1/payments/{created['id']}")["events"]
    approval = next(e for e in events if e["action"] == "approve")
    assert approval["actor"]["name"] == "serve-approver"
    # The approver's note is kept with the signature.
    (signature,) = approver.approval(str(created["id"]))["stages"][0]["signed"]
    assert (signature["name"], signature["key_id"], signature["note"]) == (
        "serve-approver", approver.key_id, "checked the invoice")


def test_the_initiator_cannot_approve_their_own_payment(served: Served,
                                                        admin: Signer) -> None:
    created = create(served, payout("30000.00"), role="admin")
    wait_state(served, created["id"], {"pending_approval"})
    refused = admin.approve(str(created["id"]))  # a good signature, by the initiator
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "self_approval"
    assert refused.headers["content-type"].startswith("application/problem+json")
    time.sleep(0.5)  # the engine passes every 50 ms: it would have moved an approved payment
    assert state_of(served, created["id"]) == "pending_approval"
    assert admin.approval(str(created["id"]))["stages"][0]["signed"] == []


def test_a_payout_beyond_the_pools_funds_is_refused_at_creation(served: Served) -> None:
    body = payout("99999999999.00", channel=None)
    refused = served.post("/v1/payments", body, "cashier")
    assert refused.status_code in (409, 422), refused.text
    problem = refused.json()
    assert problem["code"] == "insufficient_funds"
    found = served.get("/v1/payments", "cashier", limit=200)["data"]
    assert not [p for p in found if p["reference"] == body["reference"]]


def test_a_cashiers_raw_posting_to_a_pool_account_is_refused(served: Served) -> None:
    refused = served.post("/v1/ledger/transactions", {"postings": [{
        "source": "pool:main:usd:rtp:available", "destination": "world:rtp",
        "asset": "USD", "amount": "1.00"}]}, "cashier")
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "adjustment_permission_required"


# --- a crash while payments are in flight ----------------------------------------------------


def create_many(served: Served, count: int) -> list[str]:
    ids = []
    for index in range(count):
        channel, asset, amount = RAILS[index % len(RAILS)]
        ids.append(str(create(served, payout(amount, asset, channel))["id"]))
    return ids


def check_every_payment_ended_once(served: Served, ids: list[str]) -> None:
    wait_until(lambda: all(state_of(served, pid) in FINISHED for pid in ids),
               within_s=SETTLE_WITHIN_S * 2, what="every payment finished", poll_s=0.5,
               detail=lambda: Counter(state_of(served, pid) for pid in ids))
    for pid in ids:
        actions = Counter(e["action"] for e in served.get(f"/v1/payments/{pid}")["events"])
        assert actions["submit"] <= 1, (pid, actions)
        assert actions["settle"] <= 1, (pid, actions)
        assert actions["settle"] + actions["fail"] + actions["reject"] == 1, (pid, actions)
    sent = Counter()
    for journal in sorted(served.rails.glob("*/*.jsonl")):
        seen = Counter(s.payment_id for s in journal_submissions(journal))
        twice = [pid for pid, n in seen.items() if n > 1]
        assert not twice, f"{journal.name} was sent {twice} more than once"
        sent.update(seen)
    assert all(sent[pid] >= 1 for pid in ids if state_of(served, pid) == "settled")
    verified = served.get("/v1/ledger/verify", "auditor")
    assert verified["ok"] is True, verified


def in_flight(served: Served, ids: list[str]) -> bool:
    """Some of `ids` sent to their rail and not yet settled (the rails take seconds)."""
    submitted = served.get("/v1/payments", state="submitted", limit=500)["data"]
    return bool({p["id"] for p in submitted} & set(ids))


def test_sigkill_while_payments_are_in_flight_sqlite(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    server = Served(tmp_path_factory.mktemp("engine-kill"))
    server.prepare()
    server.start()
    try:
        ids = create_many(server, 45)
        wait_until(lambda: in_flight(server, ids), within_s=30, poll_s=0.05,
                   what="payments in flight", detail=server.log_tail)
        server.kill()
        server.start()
        check_every_payment_ended_once(server, ids)
        (resumed,) = server.log_events("engine_resumed")  # the in-flight ones, asked
        assert resumed["in_transit"] > 0
    finally:
        server.stop()


@pytest.mark.postgres
def test_the_leader_worker_killed_another_takes_over_postgres(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    require_postgres()
    schema = new_pg_schema()
    server = Served(tmp_path_factory.mktemp("engine-pg"), db_url=f"{PG_URL}?schema={schema}",
                    workers=2)
    server.prepare()
    server.start()
    try:
        def leader() -> int | None:
            found = server.log_events("engine_leading")
            return int(found[-1]["pid"]) if found else None

        first = wait_until(leader, within_s=30, what="a worker leading the pool's engine",
                           detail=server.log_tail)
        ids = create_many(server, 30)
        wait_until(lambda: in_flight(server, ids), within_s=30, poll_s=0.05,
                   what="payments in flight", detail=server.log_tail)
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: (pid := leader()) is not None and pid != first, within_s=30,
                   what="another worker leading the engine", detail=server.log_tail)
        check_every_payment_ended_once(server, ids)
    finally:
        server.stop()
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_rails_dir_holds_one_journal_per_channel(served: Served) -> None:
    created = create(served, payout("7.00"))
    wait_state(served, created["id"], FINISHED)
    journals = {p.stem for p in Path(served.rails, "main").glob("*.jsonl")}
    assert "rtp" in journals


def test_an_approver_declines_a_waiting_payment_with_a_note(served: Served) -> None:
    created = create(served, payout("40000.00"))
    wait_state(served, created["id"], {"pending_approval"})
    path = f"/v1/payments/{created['id']}/decline"
    no_note = served.post(path, {}, "approver")
    assert no_note.status_code == 400, no_note.text
    assert no_note.json()["code"] == "reason_required"
    assert served.post(path, {"reason": "x"}, "cashier").status_code == 403
    declined = served.post(path, {"reason": "payee not on the vendor list"}, "approver")
    assert declined.status_code == 200, declined.text
    assert declined.json()["state"] == "rejected"
    assert declined.json()["payment"]["state"] == "rejected"
    assert [r["note"] for r in declined.json()["rejections"]] == [
        "payee not on the vendor list"]
    again = served.post(path, {"reason": "again"}, "approver")
    assert again.status_code == 409, again.text
    assert again.json()["code"] == "not_waiting"
    assert again.json()["facts"]["state"] == "rejected"
    reject = next(e for e in served.get(f"/v1/payments/{created['id']}")["events"]
                  if e["action"] == "reject")
    assert reject["actor"]["name"] == "serve-approver"
    assert reject["reason"] == "payee not on the vendor list"
