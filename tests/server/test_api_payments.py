"""`/v1/payments` through the app `fundpool serve` runs: creation with idempotency, lists and
their cursors, the review and approval actions with their permissions, and payout files."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from fundpool.auth.roles import Role
from fundpool.core.actor import ENGINE
from fundpool.payments.model import Action, PaymentState, Step
from tests.server.api_helpers import Server, assert_problem, running_server
from tests.server.signing import Signer

IBAN = "DE89370400440532013000"
PAYOUT = {"kind": "payout", "asset": "USD", "amount": "12.50", "counterparty": "Bob",
          "destination": IBAN}
CSV = {"Content-Type": "text/csv"}
# Line 5 needs an approver (USD 10,000 and up); line 6 has a formula and too many decimals.
PAYOUTS = b"""payee,account,amount,asset,reference,channel
Alice,DE89370400440532013000,120.50,EUR,inv-1,
Bob,GB29NWBK60161331926819,99.00,EUR,inv-2,sepa
Carol,US-ACCT-1,250.00,USD,inv-3,rtp
Dora,US-ACCT-2,25000.00,USD,inv-4,
=HYPERLINK("x"),ACC,1.005,USD,inv-5,
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    # No payment engine: each test moves its payments itself, step by step.
    with running_server(tmp_path / "data", upload_max_bytes=4_096, engine=False) as running:
        for channel, asset in (("sepa", "EUR"), ("rtp", "USD"), ("bank-a", "USD")):
            running.fund(channel, asset, "50000.00")
        yield running


def create(server: Server, body: dict[str, Any] | None = None, key: str | None = None,
           status: int = 201) -> dict[str, Any]:
    headers = dict(server.admin) if key is None else {**server.admin, "Idempotency-Key": key}
    response = server.client.post("/v1/payments", headers=headers, json=body or PAYOUT)
    assert response.status_code == status, response.text
    doc: dict[str, Any] = response.json()
    return doc


def upload(server: Server, data: bytes, status: int = 201, **params: Any) -> dict[str, Any]:
    response = server.client.post("/v1/payments/batches", headers={**server.admin, **CSV},
                                  content=data, params=params)
    assert response.status_code == status, response.text
    doc: dict[str, Any] = response.json()
    return doc


# --- creation --------------------------------------------------------------------------------


def test_a_payment_is_created_with_amounts_as_decimal_text(server: Server) -> None:
    doc = create(server, {**PAYOUT, "reference": "inv-9", "metadata": {"order": "42"}})
    assert doc["state"] == "initiated"
    assert doc["pool"] == "main"
    assert (doc["amount"], doc["amount_minor"]) == ("12.50", "1250")
    assert (doc["fee"], doc["fee_minor"]) == ("0.00", "0")
    assert doc["metadata"] == {"order": "42"}
    assert doc["version"] == 1


def test_a_retry_with_the_key_replays_and_another_body_conflicts(server: Server) -> None:
    first = create(server, key="pay-1")
    headers = {**server.admin, "Idempotency-Key": "pay-1"}
    again = server.client.post("/v1/payments", headers=headers, json=PAYOUT)
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first
    other = server.client.post("/v1/payments", headers=headers, json={**PAYOUT, "amount": "13"})
    problem = assert_problem(other, 409, "idempotency_conflict")
    assert problem["facts"]["payment_id"] == first["id"]
    listed = server.get("/v1/payments")["data"]
    assert [p["id"] for p in listed] == [first["id"]]


def test_a_replay_answers_the_payment_as_it_stands(server: Server) -> None:
    first = create(server, key="pay-2")
    server.client.post(f"/v1/payments/{first['id']}/cancel", headers=server.admin)
    again = create(server, key="pay-2", status=200)
    assert (again["id"], again["state"]) == (first["id"], "cancelled")


def test_a_bad_request_body_is_refused_with_its_code(server: Server) -> None:
    post = server.client.post
    assert_problem(post("/v1/payments", headers=server.admin, json={**PAYOUT, "colour": "red"}),
                   422, "invalid_request")
    assert_problem(post("/v1/payments", headers=server.admin, json={**PAYOUT, "amount": 12.5}),
                   422, "invalid_request")
    assert_problem(post("/v1/payments", headers=server.admin,
                        json={**PAYOUT, "counterparty": "a\x00b"}), 422, "invalid_request")
    assert_problem(post("/v1/payments", headers=server.admin, json={**PAYOUT, "amount": "1.005"}),
                   400, "too_many_decimals")
    assert_problem(post("/v1/payments", headers=server.admin, json={**PAYOUT, "asset": "XYZ"}),
                   404, "unknown_asset")
    assert_problem(post("/v1/payments", headers=server.admin, json={**PAYOUT, "pool": "other"}),
                   404, "unknown_pool")
    assert_problem(post("/v1/payments", headers=server.admin,
                        json={**PAYOUT, "channel": "book"}), 400, "invalid_payment")
    assert_problem(post("/v1/payments", headers={**server.admin, "Idempotency-Key": "a b"},
                        json=PAYOUT), 400, "invalid_idempotency_key")
    assert server.get("/v1/payments")["data"] == []


def test_creating_needs_the_permission(server: Server) -> None:
    viewer = server.as_role(Role.VIEWER)
    assert_problem(server.client.post("/v1/payments", headers=viewer, json=PAYOUT),
                   403, "forbidden")
    cashier = server.as_role(Role.CASHIER)
    assert server.client.post("/v1/payments", headers=cashier, json=PAYOUT).status_code == 201
    assert_problem(server.client.post("/v1/payments", json=PAYOUT), 401, "unauthenticated")


# --- reads -----------------------------------------------------------------------------------


def test_a_payment_reads_with_its_timeline(server: Server) -> None:
    payment = create(server)
    server.client.post(f"/v1/payments/{payment['id']}/hold", headers=server.admin,
                       json={"reason": "check the payee"})
    doc = server.get(f"/v1/payments/{payment['id']}")
    assert doc["state"] == "held"
    assert [(e["action"], e["from"], e["to"]) for e in doc["events"]] == [
        ("create", None, "initiated"), ("hold", "initiated", "held")]
    assert doc["events"][1]["reason"] == "check the payee"
    assert server.get(f"/v1/payments/{payment['id']}/events") == doc["events"]


def test_an_unknown_payment_is_a_404_problem(server: Server) -> None:
    for path in ("/v1/payments/nope", "/v1/payments/nope/events"):
        problem = assert_problem(server.client.get(path, headers=server.admin), 404,
                                 "unknown_payment")
        assert problem["facts"] == {"payment_id": "nope"}
    assert_problem(server.client.post("/v1/payments/nope/cancel", headers=server.admin),
                   404, "unknown_payment")


def test_lists_filter_and_page_without_gaps_or_duplicates(server: Server) -> None:
    made = [create(server, {**PAYOUT, "amount": f"{n}.00"})["id"] for n in range(1, 8)]
    made.append(create(server, {"kind": "deposit", "asset": "USD", "amount": "5.00",
                                "channel": "card-acq"})["id"])
    made.append(create(server, {"kind": "payout", "asset": "EUR", "amount": "5.00",
                                "destination": IBAN})["id"])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 4, **({} if cursor is None else {"cursor": cursor})}
        page = server.get("/v1/payments", **params)
        seen += [p["id"] for p in page["data"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted(made, reverse=True)  # newest first: ids are time-ordered
    assert [p["id"] for p in server.get("/v1/payments", kind="deposit")["data"]] == [made[7]]
    assert [p["id"] for p in server.get("/v1/payments", asset="EUR")["data"]] == [made[8]]
    assert [p["id"] for p in server.get("/v1/payments", channel="card-acq")["data"]] == [
        made[7]]
    server.client.post(f"/v1/payments/{made[0]}/cancel", headers=server.admin)
    assert [p["id"] for p in server.get("/v1/payments", state="cancelled")["data"]] == [made[0]]
    filtered = server.get("/v1/payments", kind="payout", asset="USD", limit=5)
    rest = server.get("/v1/payments", kind="payout", asset="USD", limit=5,
                      cursor=filtered["next_cursor"])
    assert [p["id"] for p in filtered["data"] + rest["data"]] == sorted(made[:7], reverse=True)
    assert rest["next_cursor"] is None


def test_a_bad_cursor_is_refused(server: Server) -> None:
    for _ in range(3):
        create(server)
    page = server.get("/v1/payments", limit=2)
    get = server.client.get
    assert_problem(get("/v1/payments", headers=server.admin, params={"cursor": "not-a-cursor"}),
                   400, "invalid_cursor")
    # A cursor is good only for the list and filters it was made for.
    assert_problem(get("/v1/payments", headers=server.admin,
                       params={"cursor": page["next_cursor"], "kind": "deposit"}),
                   400, "invalid_cursor")
    assert_problem(get("/v1/channels/decisions", headers=server.admin,
                       params={"cursor": page["next_cursor"]}), 400, "invalid_cursor")
    assert_problem(get("/v1/payments", headers=server.admin, params={"state": "lost"}),
                   422, "invalid_request")


# --- actions ---------------------------------------------------------------------------------


def test_cancel_and_an_illegal_transition(server: Server) -> None:
    payment = create(server)
    path = f"/v1/payments/{payment['id']}/cancel"
    cancelled = server.client.post(path, headers=server.admin, json={"reason": "duplicate"})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    again = assert_problem(server.client.post(path, headers=server.admin), 409,
                           "illegal_transition")
    assert again["facts"]["state"] == "cancelled"
    assert_problem(server.client.post(path, headers=server.admin, json={"note": "x"}),
                   422, "invalid_request")


def test_actions_are_idempotent_per_caller_with_a_key(server: Server) -> None:
    payment = create(server)
    headers = {**server.admin, "Idempotency-Key": "hold-1"}
    path = f"/v1/payments/{payment['id']}"
    first = server.client.post(f"{path}/hold", headers=headers, json={"reason": "look"})
    assert first.status_code == 200
    again = server.client.post(f"{path}/hold", headers=headers, json={"reason": "look"})
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert_problem(server.client.post(f"{path}/release", headers=headers), 409,
                   "idempotency_conflict")
    assert len(server.get(f"{path}/events")) == 2  # the replay did nothing


def test_review_moves_hold_release_and_reject(server: Server) -> None:
    risk = server.as_role(Role.RISK)
    payment = create(server)
    path = f"/v1/payments/{payment['id']}"
    for action, state in (("hold", "held"), ("release", "screened"), ("reject", "rejected")):
        response = server.client.post(f"{path}/{action}", headers=risk)
        assert response.status_code == 200, response.text
        assert response.json()["state"] == state
    cashier = server.as_role(Role.CASHIER)
    assert_problem(server.client.post(f"{path}/hold", headers=cashier), 403, "forbidden")


def test_approving_needs_the_approver_permission(server: Server) -> None:
    doc = upload(server, PAYOUTS)
    waiting = next(row for row in doc["rows"] if row["line"] == 5)
    assert waiting["state"] == "pending_approval"
    path = f"/v1/payments/{waiting['payment_id']}/approve"
    approver = Signer.enrolled(server.client, server.as_role(Role.APPROVER))
    signed = approver.body(waiting["payment_id"])  # a good signature: only the role lacks
    for role in (Role.VIEWER, Role.CASHIER, Role.RISK):
        problem = assert_problem(server.client.post(path, headers=server.as_role(role),
                                                    json=signed), 403, "forbidden")
        assert problem["facts"]["permission"] == "payments:approve"
    assert server.get(f"/v1/payments/{waiting['payment_id']}")["state"] == "pending_approval"
    approved = server.client.post(path, headers=approver.headers, json=signed)
    assert approved.status_code == 200, approved.text
    view = approved.json()  # an approval view, its payment inside
    assert (view["state"], view["payment"]["state"]) == ("approved", "approved")
    assert [s["key_id"] for s in view["stages"][0]["signed"]] == [approver.key_id]
    events = server.get(f"/v1/payments/{waiting['payment_id']}/events")
    assert events[-1]["action"] == "approve"
    assert events[-1]["entries"]  # the funds were locked by a ledger entry
    again = assert_problem(approver.approve(waiting["payment_id"]), 409, "not_waiting")
    assert again["facts"]["state"] == "approved"
    fresh = create(server)
    admin = Signer.enrolled(server.client, server.admin)
    assert_problem(admin.approve(fresh["id"]), 409, "not_waiting")
    assert server.get(f"/v1/payments/{fresh['id']}")["state"] == "initiated"


# --- payout files ----------------------------------------------------------------------------


def test_a_payout_file_creates_its_valid_rows_once(server: Server) -> None:
    doc = upload(server, PAYOUTS)
    assert (doc["row_count"], doc["valid_count"], doc["invalid_count"]) == (5, 4, 1)
    assert doc["dry_run"] is False
    assert len(doc["batch_id"]) == 16
    assert doc["sha256"].startswith(doc["batch_id"])
    rows = {row["line"]: row for row in doc["rows"]}
    assert [rows[line]["state"] for line in (2, 3, 4, 5)] == [
        "approved", "approved", "approved", "pending_approval"]
    assert [(e["column"], e["code"]) for e in rows[6]["errors"]] == [
        ("payee", "formula_injection"), ("amount", "bad_amount")]
    assert rows[6]["payment_id"] is None
    assert doc["payment_ids"] == [rows[line]["payment_id"] for line in (2, 3, 4, 5)]
    assert doc["progress"]["by_state"] == {"approved": 3, "pending_approval": 1}
    payout = server.get(f"/v1/payments/{rows[4]['payment_id']}")
    assert (payout["channel"], payout["reference"], payout["amount"]) == ("rtp", "inv-3",
                                                                          "250.00")
    # The rows are keyed by reference: the same file again creates nothing new.
    again = upload(server, PAYOUTS)
    assert again["payment_ids"] == doc["payment_ids"]
    assert again["batch_id"] == doc["batch_id"]
    assert len(server.get("/v1/payments")["data"]) == 4


def test_a_payout_file_reports_its_progress(server: Server) -> None:
    doc = upload(server, PAYOUTS)
    progress = server.get(f"/v1/payments/batches/{doc['batch_id']}")
    assert progress == {"batch_id": doc["batch_id"], "pool": "main", "total": 4,
                        "finished": 0, "done": False,
                        "by_state": {"approved": 3, "pending_approval": 1}}
    waiting = doc["payment_ids"][3]
    server.client.post(f"/v1/payments/{waiting}/cancel", headers=server.admin)
    progress = server.get(f"/v1/payments/batches/{doc['batch_id']}")
    assert (progress["finished"], progress["by_state"]) == (1, {"approved": 3, "cancelled": 1})
    assert_problem(server.client.get("/v1/payments/batches/0123456789abcdef",
                                     headers=server.admin), 404, "unknown_payout_batch")


def test_a_dry_run_checks_and_creates_nothing(server: Server) -> None:
    doc = upload(server, PAYOUTS, status=200, dry_run="true")
    assert doc["dry_run"] is True
    assert (doc["valid_count"], doc["invalid_count"]) == (4, 1)
    assert doc["payment_ids"] == []
    assert doc["progress"] is None
    assert all(row["payment_id"] is None for row in doc["rows"])
    assert server.get("/v1/payments")["data"] == []
    assert_problem(server.client.get(f"/v1/payments/batches/{doc['batch_id']}",
                                     headers=server.admin), 404, "unknown_payout_batch")


def test_all_or_nothing_refuses_a_file_with_a_bad_row(server: Server) -> None:
    response = server.client.post("/v1/payments/batches", headers={**server.admin, **CSV},
                                  content=PAYOUTS, params={"all_or_nothing": "true"})
    problem = assert_problem(response, 400, "payout_file_has_errors")
    assert problem["facts"]["first_line"] == 6
    assert [row["line"] for row in problem["facts"]["rows"]] == [6]
    assert server.get("/v1/payments")["data"] == []
    good = b"\n".join(PAYOUTS.splitlines()[:5]) + b"\n"
    doc = upload(server, good, all_or_nothing="true")
    assert len(doc["payment_ids"]) == 4


def test_a_file_that_cannot_be_read_is_refused(server: Server) -> None:
    post = server.client.post
    too_large = PAYOUTS + b"Eve,ACC,1.00,USD,inv-x,\n" * 200
    assert len(too_large) > 4_096
    assert_problem(post("/v1/payments/batches", headers={**server.admin, **CSV},
                        content=too_large), 413, "payload_too_large")
    assert_problem(post("/v1/payments/batches", headers={**server.admin, **CSV},
                        content=b"name,amount\nx,1\n"), 400, "csv_bad_header")
    assert_problem(post("/v1/payments/batches", headers={**server.admin, **CSV},
                        content=b"payee,account\x00"), 400, "csv_nul_byte")
    assert_problem(post("/v1/payments/batches", headers={**server.admin,
                                                          "Content-Type": "application/json"},
                        content=PAYOUTS), 415, "unsupported_media_type")
    assert_problem(post("/v1/payments/batches",
                        headers={**server.admin, **CSV, "Idempotency-Key": "a b"},
                        content=PAYOUTS), 400, "invalid_idempotency_key")
    assert_problem(post("/v1/payments/batches", headers={**server.as_role(Role.APPROVER), **CSV},
                        content=PAYOUTS), 403, "forbidden")
    assert server.get("/v1/payments")["data"] == []


# --- the reconciliation export ---------------------------------------------------------------

EXPORT = "/v1/payments/export"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def export(server: Server, since: str, until: str, form: str = "csv",
           headers: dict[str, str] | None = None, **params: Any) -> Any:
    return server.client.get(EXPORT, headers=headers or server.admin,
                             params={"from": since, "to": until, "format": form, **params})


def stamp(at: str) -> str:
    """2026-11-01T00:00:00.000000Z as the file name writes it: 20261101T000000Z."""
    return at[:19].replace("-", "").replace(":", "") + "Z"


def test_the_export_lists_the_periods_payments_as_csv(server: Server) -> None:
    first = create(server, {**PAYOUT, "reference": "inv-1"})
    hostile = create(server, {**PAYOUT, "amount": "0.01", "counterparty": "=cmd|' /C calc'!A0",
                              "reference": "+1, \"two\""})
    last = create(server, {"kind": "deposit", "asset": "EUR", "amount": "99.90",
                           "channel": "sepa", "counterparty": "@Carol"})
    since, until = first["created_at"], _days_after(first["created_at"], 31)
    response = export(server, since, until)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="fundpool-main-{stamp(since)}-{stamp(until)}.csv"')
    table = list(csv.reader(io.StringIO(response.content.decode("utf-8"), newline="")))
    assert table[0] == ["payment_id", "created_at", "kind", "state", "asset", "amount", "fee",
                        "channel", "counterparty", "reference", "updated_at", "entry_ids"]
    assert [row[0] for row in table[1:]] == [first["id"], hostile["id"], last["id"]]
    assert table[1][1:10] == [first["created_at"], "payout", "initiated", "USD", "12.50",
                              "0.00", "", "Bob", "inv-1"]
    assert table[2][8:10] == ["'=cmd|' /C calc'!A0", "'+1, \"two\""]
    assert table[3][4:9] == ["EUR", "99.90", "0.00", "sepa", "'@Carol"]
    for row in table[1:]:
        assert not any(cell.startswith(FORMULA_PREFIXES) for cell in row), row


def _days_after(at: str, days: int) -> str:
    moment = datetime.fromisoformat(at.replace("Z", "+00:00")) + timedelta(days=days)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_the_period_includes_from_and_excludes_to(server: Server) -> None:
    one, two = create(server), create(server, {**PAYOUT, "amount": "1.00"})
    assert one["created_at"] < two["created_at"]

    def ids(since: str, until: str) -> list[str]:
        response = export(server, since, until)
        assert response.status_code == 200, response.text
        return [line.split(",")[0] for line in response.text.splitlines()[1:]]

    assert ids(one["created_at"], two["created_at"]) == [one["id"]]
    assert ids(two["created_at"], _days_after(two["created_at"], 1)) == [two["id"]]
    assert ids(one["created_at"], _days_after(two["created_at"], 1)) == [one["id"], two["id"]]
    assert ids(_days_after(one["created_at"], -1), one["created_at"]) == []


def test_the_export_as_xlsx_reads_back_as_text(server: Server) -> None:
    server.fund("bank-a", "USD", "1234567.89")  # creation refuses a payout beyond the pool's
    payment = create(server, {**PAYOUT, "amount": "1234567.89", "counterparty": "-2+3"})
    since = payment["created_at"]
    until = _days_after(since, 1)
    response = export(server, since, until, "xlsx")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX
    assert response.headers["content-disposition"].endswith(
        f'{stamp(since)}-{stamp(until)}.xlsx"')
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet.title == f"{stamp(since)[:-3]}Z-{stamp(until)[:-3]}Z"
    header, row = list(sheet.iter_rows())
    assert [c.value for c in header][:6] == ["payment_id", "created_at", "kind", "state",
                                             "asset", "amount"]
    assert all(c.font.bold for c in header)
    assert (row[0].value, row[5].value, row[8].value) == (payment["id"], "1234567.89", "'-2+3")
    assert all(c.data_type == "s" for c in row if c.value is not None)


def test_a_bad_export_request_is_a_4xx_problem(server: Server) -> None:
    create(server)
    at = "2026-11-01T00:00:00Z"
    assert_problem(export(server, at, at), 400, "invalid_period")
    assert_problem(export(server, "2026-11-02T00:00:00Z", at), 400, "invalid_period")
    problem = assert_problem(export(server, at, "2026-12-02T00:00:00.000001Z"), 400,
                             "invalid_period")
    assert problem["facts"]["days_max"] == 31
    assert export(server, at, "2026-12-02T00:00:00Z").status_code == 200  # 31 days: fine
    assert_problem(export(server, "2026-11-01", "2026-11-02T00:00:00Z"), 400, "invalid_time")
    assert_problem(export(server, "nope", at), 400, "invalid_time")
    assert_problem(export(server, at, "2026-11-02T00:00:00Z", "pdf"), 422, "invalid_request")
    assert_problem(server.client.get(EXPORT, headers=server.admin, params={"from": at}), 422,
                   "invalid_request")
    assert_problem(export(server, at, "2026-11-02T00:00:00Z", pool="other"), 404,
                   "unknown_pool")


def test_too_many_payments_is_export_too_large(server: Server,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from fundpool.payments import export as module

    for _ in range(3):
        create(server)
    monkeypatch.setattr(module, "EXPORT_ROWS_MAX", 2)
    since = server.get("/v1/payments", limit=3)["data"][-1]["created_at"]
    problem = assert_problem(export(server, since, _days_after(since, 1)), 400,
                             "export_too_large")
    assert problem["facts"]["rows_max"] == 2


def test_exporting_needs_payments_read(server: Server) -> None:
    at = "2026-11-01T00:00:00Z"
    _, scoped = server.api.auth.create_key("pool-only", [Role.VIEWER], scopes=["pool:read"],
                                           now_us=server.api.clock.now_us())
    problem = assert_problem(export(server, at, "2026-11-02T00:00:00Z",
                                    headers={"Authorization": f"Bearer {scoped}"}),
                             403, "forbidden")
    assert problem["facts"]["permission"] == "payments:read"
    assert_problem(server.client.get(EXPORT, params={"from": at, "to": at}), 401,
                   "unauthenticated")
    for role in Role:  # every role reads payments
        assert export(server, at, "2026-11-02T00:00:00Z",
                      headers=server.as_role(role)).status_code == 200, role


def test_the_openapi_document_declares_each_route(server: Server) -> None:
    spec = server.client.get("/openapi.json").json()
    permissions = {
        ("post", "/v1/payments"): "payments:create",
        ("get", "/v1/payments"): "payments:read",
        ("get", "/v1/payments/{payment_id}"): "payments:read",
        ("get", "/v1/payments/{payment_id}/events"): "payments:read",
        ("post", "/v1/payments/{payment_id}/cancel"): "payments:cancel",
        ("post", "/v1/payments/{payment_id}/approve"): "payments:approve",
        ("post", "/v1/payments/{payment_id}/reject"): "payments:review",
        ("post", "/v1/payments/{payment_id}/hold"): "payments:review",
        ("post", "/v1/payments/{payment_id}/release"): "payments:review",
        ("post", "/v1/payments/batches"): "payments:create",
        ("get", "/v1/payments/batches/{batch_id}"): "payments:read",
        ("get", "/v1/payments/export"): "payments:read",
    }
    for (method, path), permission in permissions.items():
        assert spec["paths"][path][method]["x-permission"] == permission, (method, path)
    upload_body = spec["paths"]["/v1/payments/batches"]["post"]["requestBody"]
    assert list(upload_body["content"]) == ["text/csv"]
    event = spec["components"]["schemas"]["PaymentEventOut"]
    assert "from" in event["properties"]
    exported = spec["paths"]["/v1/payments/export"]["get"]["responses"]["200"]["content"]
    assert list(exported) == ["text/csv", XLSX]


# --- who did it, four eyes, funds, destinations (issue 14) -----------------------------------

BIG = {**PAYOUT, "amount": "20000.00"}  # above the USD approval threshold of 10,000.00


def act(server: Server, payment_id: str, action: str, headers: dict[str, str]) -> Any:
    return server.client.post(f"/v1/payments/{payment_id}/{action}", headers=headers)


def waiting_for_approval(server: Server, headers: dict[str, str]) -> dict[str, Any]:
    """A payout created by `headers`' principal, taken to `pending_approval` as the engine
    takes it (screen, route to bank-a, request approval)."""
    response = server.client.post("/v1/payments", headers=headers, json=BIG)
    assert response.status_code == 201, response.text
    payment: dict[str, Any] = response.json()
    service = server.api.payments("main")
    out = service.act_many([Step(payment["id"], Action.SCREEN),
                            Step(payment["id"], Action.ROUTE, channel="bank-a"),
                            Step(payment["id"], Action.REQUEST_APPROVAL)], actor=ENGINE)
    assert [getattr(o, "state", o) for o in out] == [
        PaymentState.SCREENED, PaymentState.ROUTED, PaymentState.PENDING_APPROVAL]
    return payment


def test_creation_and_every_action_record_who_did_it(server: Server) -> None:
    cashier = server.as_role(Role.CASHIER)
    created = server.client.post("/v1/payments", headers=cashier, json=PAYOUT)
    assert created.status_code == 201, created.text
    payment = created.json()
    initiator = payment["initiated_by"]
    assert (initiator["kind"], initiator["name"], initiator["roles"]) == (
        "key", "test-cashier", ["cashier"])
    assert initiator["key_id"] == initiator["id"]
    assert initiator["request_id"] == created.headers["x-request-id"]
    assert payment["destination"] == IBAN
    risk = server.as_role(Role.RISK)
    held = act(server, payment["id"], "hold", risk)
    assert held.status_code == 200, held.text
    doc = server.get(f"/v1/payments/{payment['id']}")
    assert doc["initiated_by"] == initiator
    assert [e["actor"]["name"] for e in doc["events"]] == ["test-cashier", "test-risk"]
    assert doc["events"][1]["actor"]["request_id"] == held.headers["x-request-id"]
    # The list shows the initiator from the payment's row.
    listed = server.get("/v1/payments")["data"]
    assert [p["initiated_by"] for p in listed] == [initiator]


def test_the_initiator_may_not_approve_their_own_payment(server: Server) -> None:
    payment = waiting_for_approval(server, server.admin)  # admin holds payments:approve
    path = f"/v1/payments/{payment['id']}"
    initiator = Signer.enrolled(server.client, server.admin)
    problem = assert_problem(initiator.approve(payment["id"]), 403, "self_approval")
    assert problem["facts"]["payment_id"] == payment["id"]
    assert_problem(initiator.sign(payment["id"]), 403, "self_approval")  # either route
    doc = server.get(path)
    assert doc["state"] == "pending_approval"  # nothing changed
    assert len(doc["events"]) == 4
    assert initiator.approval(payment["id"])["stages"][0]["signed"] == []
    assert initiator.approval(payment["id"])["you"]["why_not"] == "self_approval"
    approver = Signer.enrolled(server.client, server.as_role(Role.APPROVER))
    approved = approver.approve(payment["id"])
    assert approved.status_code == 200, approved.text
    assert approved.json()["payment"]["state"] == "approved"
    # Once approved it waits no more: a second signature, by the same approver or another,
    # is refused with the payment's state (two signatures of one approver on a payment that
    # needs two: tests/server/test_api_approvals.py, `already_signed`).
    again = assert_problem(approver.approve(payment["id"]), 409, "not_waiting")
    assert (again["facts"]["state"], again["facts"]["approval"]) == ("approved", "approved")
    second = Signer.enrolled(server.client, server.as_role(Role.APPROVER))
    other = assert_problem(second.approve(payment["id"]), 409, "not_waiting")
    assert (other["facts"]["state"], other["facts"]["approval"]) == ("approved", "approved")
    events = server.get(f"{path}/events")
    assert [e["action"] for e in events][-1] == "approve"
    assert events[-1]["actor"]["name"] == "test-approver"
    signed = approved.json()["stages"][0]["signed"]
    assert [s["who"] for s in signed] == [f"key:{events[-1]['actor']['key_id']}"]
    assert len(events) == 5


def test_the_engine_never_approves_what_waits_for_an_approver(server: Server) -> None:
    payment = waiting_for_approval(server, server.admin)
    service = server.api.payments("main")
    (outcome,) = service.act_many([Step(payment["id"], Action.APPROVE)], actor=ENGINE)
    assert getattr(outcome, "code", None) == "approval_required"
    assert service.get(payment["id"]).state is PaymentState.PENDING_APPROVAL


def test_an_approval_of_a_payment_not_waiting_says_its_state(server: Server) -> None:
    payment = create(server)
    approver = Signer.enrolled(server.client, server.as_role(Role.APPROVER))
    signed = approver.body(payment["id"])  # a well-formed signature of its digest
    problem = assert_problem(approver.approve(payment["id"]), 409, "not_waiting")
    assert (problem["facts"]["payment_id"], problem["facts"]["state"]) == (payment["id"],
                                                                           "initiated")
    assert server.get(f"/v1/payments/{payment['id']}")["state"] == "initiated"
    assert_problem(server.client.post("/v1/payments/nope/approve", headers=approver.headers,
                                      json=signed), 404, "unknown_payment")


def test_a_payout_beyond_the_pools_funds_is_refused_with_the_figures(server: Server) -> None:
    # The fixture holds 50,000.00 USD on each of rtp and bank-a, nothing on card-acq.
    problem = assert_problem(server.client.post("/v1/payments", headers=server.admin,
                                                json={**PAYOUT, "amount": "100000.01"}),
                             409, "insufficient_funds")
    assert problem["facts"]["asset"] == "USD"
    assert problem["facts"]["requested_minor"] == 10_000_001
    assert problem["facts"]["available_minor"] == 10_000_000
    assert sorted(problem["facts"]["channels"]) == ["bank-a", "card-acq", "rtp"]
    assert server.get("/v1/payments")["data"] == []
    assert create(server, {**PAYOUT, "amount": "100000.00"})["state"] == "initiated"
    # A transfer is held to its source rail's funds; a deposit to none.
    transfer = {"kind": "internal", "asset": "USD", "amount": "50000.01", "channel": "rtp",
                "destination_channel": "bank-a"}
    problem = assert_problem(server.client.post("/v1/payments", headers=server.admin,
                                                json=transfer), 409, "insufficient_funds")
    assert (problem["facts"]["available_minor"], problem["facts"]["channels"]) == (
        5_000_000, ["rtp"])
    assert create(server, {"kind": "deposit", "asset": "USD", "amount": "40000.00",
                           "channel": "card-acq"})["state"] == "initiated"


@pytest.mark.parametrize(("destination", "code"), [
    (None, "destination_required"),
    ("DE89370400440532013001", "invalid_destination"),  # a wrong check digit
    ("0x12", "invalid_destination"),
])
def test_a_payouts_destination_is_required_and_checked(server: Server, destination: str | None,
                                                        code: str) -> None:
    body = {**PAYOUT, "destination": destination}
    assert_problem(server.client.post("/v1/payments", headers=server.admin, json=body), 400,
                   code)
    assert server.get("/v1/payments")["data"] == []


def test_an_evm_rail_takes_only_an_evm_address(server: Server) -> None:
    server.fund("arb-l2", "ETH", "2")
    body = {"kind": "payout", "asset": "ETH", "amount": "1", "channel": "arb-l2"}
    assert_problem(server.client.post("/v1/payments", headers=server.admin,
                                      json={**body, "destination": IBAN}),
                   400, "invalid_destination")
    address = "0x52908400098527886E0F7030069857D2E4169EE7"
    assert create(server, {**body, "destination": address})["destination"] == address


def test_the_shares_of_a_waves_payments_add_up_to_its_entries(server: Server) -> None:
    """Approve, submit and settle of a wave are each ONE summed entry (ADR 0008): each
    payment's detail shows its own postings in it, and together they are the entry."""
    bodies = [{**PAYOUT, "amount": amount, "channel": channel}
              for amount, channel in (("10.00", "bank-a"), ("20.00", "bank-a"),
                                      ("30.00", "rtp"), ("5.00", "bank-a"))]
    ids = [create(server, body)["id"] for body in bodies]
    service = server.api.payments("main")
    for action in (Action.SCREEN, Action.ROUTE, Action.APPROVE, Action.SUBMIT, Action.SETTLE):
        out = service.act_many([Step(pid, action) for pid in ids], actor=ENGINE)
        assert all(not isinstance(o, Exception) for o in out), out
    docs = [server.get(f"/v1/payments/{pid}") for pid in ids]
    summed: dict[str, Counter[tuple[str, str, str]]] = {}
    for doc in docs:
        for event in doc["events"]:
            if event["action"] in ("approve", "submit", "settle"):
                assert len(event["entries"]) == 1
                assert {s["entry_id"] for s in event["shares"]} == set(event["entries"])
            for share in event["shares"]:
                key = (share["source"], share["destination"], share["asset"])
                summed.setdefault(share["entry_id"], Counter())[key] += int(
                    share["amount_minor"])
    entries = {e for doc in docs for event in doc["events"] for e in event["entries"]}
    assert len(entries) == 3  # one approve, one submit, one settle entry for all four
    for entry_id in entries:
        body = server.api.ledger.entry(entry_id)
        assert body is not None
        legs = Counter({(p["source"], p["destination"], p["asset"]): int(p["amount_minor"])
                        for p in body.body["postings"]})
        assert summed[entry_id] == legs, entry_id
    # One payment's approve share is its own gross on its own rail, not the wave's.
    first = docs[0]
    (approve,) = [e for e in first["events"] if e["action"] == "approve"]
    gross = int(first["amount_minor"]) + int(first["fee_minor"])
    assert [(s["source"], s["destination"], s["amount_minor"], s["amount"])
            for s in approve["shares"]] == [
        ("pool:main:usd:bank-a:available", "pool:main:usd:bank-a:locked", str(gross),
         f"{gross // 100}.{gross % 100:02d}")]
