"""Reconciliation through the API (docs/reconciliation.md), on the app `fundpool serve` runs:
a deposit settled on the SEPA rail, the bank's camt.053 with a charge the books lack, imported
as the raw body; the break listed with its age and the line; the payment's state; resolving
by booking needs `ledger:adjust`; refusals (the same file twice, a bomb, a truncated file, an
unknown channel, a blank note) answer a problem with a stable code, name the file and the
place, and change nothing; expected payments; saved CSV mappings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fundpool.auth.roles import Role
from fundpool.channels.iso20022.camt import write_camt053
from fundpool.payments.model import Action
from fundpool.payments.service import Step
from fundpool.recon.model import Balance, LineKind, Statement, StatementLine, end_to_end_of
from tests.server.api_helpers import Server, assert_problem, running_server

OCTET = {"Content-Type": "application/octet-stream"}
ACCOUNT = "DE02120300000000202051"
DAY_US = 86_400_000_000


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path) as running:
        yield running


def settled_deposit(server: Server, amount: str) -> dict[str, Any]:
    made = server.client.post("/v1/payments", headers=server.admin, json={
        "kind": "deposit", "asset": "EUR", "amount": amount, "channel": "sepa",
        "counterparty": "Acme GmbH", "reference": "INV-1"})
    assert made.status_code == 201, made.text
    payment: dict[str, Any] = made.json()
    service = server.api.payments("main")
    service.act_many([Step(payment["id"], a) for a in (Action.SCREEN, Action.CLEAR,
                                                       Action.SETTLE)])
    return payment


def statement(payment_id: str, amount_minor: int, statement_id: str = "STMT-API-1") -> bytes:
    today = server_day()
    lines = (StatementLine("x:1", amount_minor, "EUR", today, today,
                           end_to_end_id=end_to_end_of(payment_id), bank_ref="B1"),
             StatementLine("x:2", -3_75, "EUR", today, today, kind=LineKind.CHARGE,
                           reference="MONTHLY FEE", bank_ref="B2"))
    closing = sum(x.amount_minor for x in lines)
    return write_camt053([Statement(statement_id, ACCOUNT, "EUR", today, lines,
                                    opening=Balance(0, today), closing=Balance(closing, today))],
                         message_id=f"M-{statement_id}", created_at_us=today,
                         scales={"EUR": 2})


def server_day() -> int:
    import time

    now_us = time.time_ns() // 1_000
    return now_us - now_us % DAY_US


def imported(server: Server, data: bytes, name: str, headers: dict[str, str],
             status: int = 201, **params: Any) -> Any:
    return server.client.post("/v1/recon/imports", headers={**headers, **OCTET}, content=data,
                              params={"channel": "sepa", "name": name, **params})


def test_import_break_resolve_and_the_channel_reconciled(server: Server) -> None:
    cashier = server.as_role(Role.CASHIER)
    viewer = server.as_role(Role.VIEWER)
    deposit = settled_deposit(server, "80.00")
    data = statement(deposit["id"], 80_00)

    assert_problem(imported(server, data, "s.xml", viewer), 403, "forbidden")
    answer = imported(server, data, "s.xml", cashier)
    assert answer.status_code == 201, answer.text
    report = answer.json()
    assert report["file"]["message"] == "camt.053.001.08"
    assert report["file"]["imported_by"]["roles"] == ["cashier"]
    assert (report["run"]["matched_lines"], report["run"]["breaks"]) == (1, 1)

    (brk,) = server.get("/v1/recon/breaks", headers=viewer, channel="sepa")
    assert (brk["side"], brk["reason"], brk["amount"], brk["age_days"]) == (
        "statement", "not_in_books", "-3.75", 0)
    assert brk["line"]["reference"] == "MONTHLY FEE"
    (check,) = server.get("/v1/recon/statements", headers=viewer, channel="sepa")
    assert (check["closing_difference"], check["reconciled"]) == ("-3.75", False)
    state = server.get(f"/v1/recon/payments/{deposit['id']}", headers=viewer)
    assert state["state"] == "matched"

    body = {"side": "statement", "id": brk["id"], "note": "monthly account fee", "book": True}
    assert_problem(server.client.post("/v1/recon/resolve", headers=cashier, json=body), 403,
                   "adjustment_permission_required")
    assert_problem(server.client.post("/v1/recon/resolve", headers=cashier,
                                      json={**body, "book": False, "note": " "}),
                   400, "recon_note_required")
    done = server.client.post("/v1/recon/resolve", headers=server.admin, json=body)
    assert done.status_code == 200, done.text
    assert (done.json()["action"], done.json()["amount"]) == ("booked", "-3.75")
    assert server.get("/v1/recon/breaks", headers=viewer, channel="sepa") == []
    (check,) = server.get("/v1/recon/statements", headers=viewer, channel="sepa")
    assert (check["closing_difference"], check["reconciled"]) == ("0.00", True)
    (channel,) = [c for c in server.get("/v1/recon/channels", headers=viewer)
                  if c["channel"] == "sepa"]
    assert channel["latest"]["reconciled"] is True
    lines = server.get(f"/v1/recon/statements/{check['statement']['id']}",
                       headers=viewer)["lines"]
    assert [x["state"]["state"] for x in lines] == ["matched", "matched"]


BOMB = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>\n'
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">&lol2;</Document>')


def test_bad_files_are_refused_naming_the_place_and_nothing_is_stored(server: Server) -> None:
    cashier = server.as_role(Role.CASHIER)
    deposit = settled_deposit(server, "10.00")
    data = statement(deposit["id"], 10_00, "STMT-API-2")
    assert imported(server, data, "first.xml", cashier).status_code == 201
    twice = assert_problem(imported(server, data, "again.xml", cashier), 409,
                           "duplicate_statement")
    assert twice["facts"]["file"] == "again.xml"
    bomb = assert_problem(imported(server, BOMB, "bomb.xml", cashier), 400, "file_refused")
    assert (bomb["facts"]["file"], bomb["facts"]["place"]) == ("bomb.xml", "line 2, column 1")
    cut = assert_problem(imported(server, data[:300], "cut.xml", cashier), 400,
                         "file_refused")
    assert cut["facts"]["place"].startswith("line ")
    assert_problem(imported(server, data, "x.xml", cashier, channel="nowhere"), 404,
                   "unknown_channel")
    files = server.get("/v1/recon/files", headers=cashier, channel="sepa")
    assert [f["name"] for f in files] == ["first.xml"]


def test_expected_payments_and_mappings(server: Server) -> None:
    cashier = server.as_role(Role.CASHIER)
    made = server.client.post("/v1/recon/expected", headers=cashier, json={
        "channel": "sepa", "asset": "EUR", "amount_min": "99.00", "amount_max": "101.00",
        "from": "2026-12-01T00:00:00Z", "until": "2026-12-31T00:00:00Z",
        "reference": "INV-9", "counterparty": "Globex"})
    assert made.status_code == 201, made.text
    expected = made.json()
    assert (expected["state"], expected["amount_min"]) == ("open", "99.00")
    assert_problem(server.client.post("/v1/recon/expected", headers=cashier, json={
        "channel": "sepa", "asset": "EUR", "amount_min": "5.00", "amount_max": "1.00",
        "from": "2026-12-01T00:00:00Z", "until": "2026-12-31T00:00:00Z"}), 400,
        "invalid_expected_payment")
    cancelled = server.client.post(f"/v1/recon/expected/{expected['id']}/cancel",
                                   headers=cashier)
    assert cancelled.status_code == 200, cancelled.text
    assert_problem(server.client.post(f"/v1/recon/expected/{expected['id']}/cancel",
                                      headers=cashier), 404, "recon_not_found")

    wrong = server.client.put("/v1/recon/mappings/bank-x", headers=cashier,
                              json={"text": "name: bank-x\nfavourite: blue\n"})
    assert_problem(wrong, 400, "invalid_csv_mapping")
    assert server.get("/v1/recon/mappings", headers=cashier) == []
