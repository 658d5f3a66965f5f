"""Reconciliation as the workbench shows it (fundpool.console.recon): counts over both sides,
breaks by age, what a row says about itself, a statement's balance check and period, an
import's answer, and words for every code the API gives (in both languages)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from fundpool.client import Client
from fundpool.console.i18n import STRINGS, t
from fundpool.console.recon import (
    AGE_BUCKETS,
    AGE_KEYS,
    ITEM_KEYS,
    KIND_KEYS,
    REASON_KEYS,
    STATE_KEYS,
    STATE_TONES,
    Counts,
    age_bucket,
    balance_view,
    breaks_by_age,
    candidates_of,
    counts_of,
    import_summary,
    is_zero,
    item_kind,
    may_book,
    missing_fields,
    period_text,
    reason_text,
    references,
    split_sides,
    state_text,
    target_text,
    when_text,
)
from fundpool.console.texts import PROBLEM_CODES, problem_text
from fundpool.recon.model import BreakReason, LineKind
from fundpool.reconciliation.model import State

PAYMENT = "01a25274-8011-77e4-8228-b88ab984b99b"
STATEMENT = "01a25275-0124-76b5-a0ca-805931763cb6"
# What `GET /v1/recon/statements` answered for a day's statement with a charge still open.
BALANCE_DOC: dict[str, Any] = {
    "statement": {"id": STATEMENT, "channel": "sepa", "account": "DE89370400440532013000",
                  "asset": "EUR", "statement_id": "STMT-ed3895", "opening": "0.00",
                  "closing": "192.90", "from": "2026-12-07T00:00:00.000000Z",
                  "until": "2026-12-07T23:59:59.999999Z", "lines": 3},
    "ledger_opening": "0.00", "ledger_closing": "195.40", "booked_after": "0.00",
    "opening_difference": "0.00", "closing_difference": "-2.50", "open_lines": 1,
    "reconciled": False}
CHARGE_ROW: dict[str, Any] = {
    "side": "statement", "id": f"{STATEMENT}:3", "channel": "sepa", "state": "break",
    "reason": "not_in_books", "amount": "-2.50", "asset": "EUR",
    "at": "2026-12-07T00:00:00.000000Z", "age_days": 0, "related": [], "payment_id": None,
    "line": {"kind": "charge", "bank_ref": "CHG-1", "end_to_end_id": None, "parts": []}}
ITEM_ROW: dict[str, Any] = {
    "side": "books", "id": f"{PAYMENT}:out", "state": "ambiguous", "reason": None,
    "amount": "-10.00", "asset": "EUR", "age_days": 3,
    "related": [f"{STATEMENT}:1", f"{STATEMENT}:2"], "payment_id": PAYMENT}


def test_counts_add_both_sides_or_read_one() -> None:
    doc = {"statement": {"matched": 2, "break": 1}, "books": {"matched": 2, "ambiguous": 3,
                                                               "resolved": 1}}
    assert counts_of(doc) == Counts(matched=4, ambiguous=3, breaks=1, resolved=1)
    assert counts_of(doc, "statement") == Counts(matched=2, breaks=1)
    assert counts_of(doc).open == 4
    assert counts_of(None) == Counts() == counts_of({})


@pytest.mark.parametrize(("age", "bucket"), [(0, "0_1"), (1, "0_1"), (2, "2_7"), (7, "2_7"),
                                             (8, "over_7"), (400, "over_7"), (-1, "0_1")])
def test_a_break_falls_in_one_age_bucket(age: int, bucket: str) -> None:
    assert age_bucket(age) == bucket


def test_breaks_by_age_count_breaks_only_and_name_every_bucket() -> None:
    rows = [{"state": "break", "age_days": 0}, {"state": "break", "age_days": 5},
            {"state": "break", "age_days": 30}, {"state": "break", "age_days": 31},
            {"state": "ambiguous", "age_days": 40}]
    assert breaks_by_age(rows) == {"0_1": 1, "2_7": 1, "over_7": 2}
    assert breaks_by_age([]) == {"0_1": 0, "2_7": 0, "over_7": 0}
    assert [b for b, _, _ in AGE_BUCKETS] == list(AGE_KEYS)


def test_open_rows_split_by_side_keeping_their_order() -> None:
    later = {**CHARGE_ROW, "id": f"{STATEMENT}:4"}
    statement, books = split_sides([CHARGE_ROW, ITEM_ROW, later])
    assert [r["id"] for r in statement] == [CHARGE_ROW["id"], later["id"]]
    assert books == [ITEM_ROW]


def test_a_statement_line_says_its_references_and_a_book_item_its_payment() -> None:
    assert references(CHARGE_ROW, "en") == ["bank ref CHG-1"]
    assert references(CHARGE_ROW, "zh-CN") == ["银行参考号 CHG-1"]
    batched = {"side": "statement", "line": {"batch_ref": "B-7", "parts": ["a", "b", "c"],
                                             "reference": "INV 12", "counterparty": "ACME"}}
    assert references(batched, "en") == ["remittance “INV 12”", "batch B-7", "from/to ACME",
                                         "3 transactions"]
    assert references(ITEM_ROW, "en") == ["payout", f"payment {PAYMENT}"]
    assert references({"side": "books", "id": "adjustment:r1"}, "en") == [
        "adjustment booked in reconciliation"]


@pytest.mark.parametrize(("item_id", "kind"), [
    (f"{PAYMENT}:in", "in"), (f"{PAYMENT}:fee", "fee"), (f"{PAYMENT}:return", "return"),
    ("adjustment:01a2:x", "adjustment"), (PAYMENT, None), (f"{PAYMENT}:what", None)])
def test_a_book_items_id_says_what_it_is(item_id: str, kind: str | None) -> None:
    assert item_kind(item_id) == kind


def test_booking_is_offered_for_a_statement_break_to_whoever_may_adjust() -> None:
    assert may_book(CHARGE_ROW, may_adjust=True)
    assert not may_book(CHARGE_ROW, may_adjust=False)  # a cashier: a note only
    assert not may_book({**CHARGE_ROW, "state": "ambiguous"}, may_adjust=True)
    assert not may_book({**ITEM_ROW, "state": "break"}, may_adjust=True)


def test_candidates_are_the_other_sides_ids() -> None:
    assert candidates_of(ITEM_ROW) == [f"{STATEMENT}:1", f"{STATEMENT}:2"]
    assert candidates_of(CHARGE_ROW) == []


def test_times_are_dates_for_whole_days_and_seconds_otherwise() -> None:
    assert when_text("2026-12-07T00:00:00.000000Z") == "2026-12-07"
    assert when_text("2026-12-07T23:59:59.999999Z") == "2026-12-07"
    assert when_text("2026-12-07T21:41:37.546825Z") == "2026-12-07 21:41:37"
    assert when_text(None) == "—"
    assert period_text("2026-12-07T00:00:00.000000Z", "2026-12-07T23:59:59.999999Z") == \
        "2026-12-07"
    assert period_text("2026-12-01T00:00:00.000000Z", "2026-12-07T23:59:59.999999Z") == \
        "2026-12-01 – 2026-12-07"


def test_a_balance_check_keeps_the_apis_exact_amounts() -> None:
    view = balance_view(BALANCE_DOC)
    assert (view.id, view.statement_id, view.asset) == (STATEMENT, "STMT-ed3895", "EUR")
    assert (view.opening, view.ledger_opening, view.opening_difference) == (
        "0.00", "0.00", "0.00")
    assert (view.closing, view.ledger_closing, view.closing_difference) == (
        "192.90", "195.40", "-2.50")
    assert (view.open_lines, view.lines, view.reconciled) == (1, 3, False)
    assert view.period == "2026-12-07"
    without = balance_view({"statement": {"id": "s"}, "reconciled": True})
    assert (without.opening, without.closing_difference, without.reconciled) == (
        "—", "—", True)


@pytest.mark.parametrize(("text", "zero"), [("0.00", True), ("-0", True), ("0", True),
                                            ("0.000000000000000000", True), ("-2.50", False),
                                            ("0.01", False), ("", False), ("—", False)])
def test_a_difference_is_zero_only_when_every_digit_is(text: str, zero: bool) -> None:
    assert is_zero(text) is zero


def test_an_imports_answer_in_numbers() -> None:
    summary = import_summary({"file": {"name": "s.xml", "message": "camt.053.001.08",
                                       "statements": 1, "lines": 3},
                              "run": {"matched_lines": 2, "ambiguous": 0, "breaks": 1}})
    assert (summary.name, summary.message, summary.statements, summary.lines) == (
        "s.xml", "camt.053.001.08", 1, 3)
    assert (summary.matched, summary.ambiguous, summary.breaks) == (2, 0, 1)


def test_a_resolved_target_reads_as_the_banks_statement_and_line() -> None:
    known = {STATEMENT: "STMT-ed3895"}
    assert target_text(f"{STATEMENT}:3", known, "en") == "statement STMT-ed3895 line 3"
    assert target_text(f"{STATEMENT}:3", known, "zh-CN") == "对账单 STMT-ed3895 第 3 行"
    assert target_text(f"{PAYMENT}:in", known, "en") == f"payment {PAYMENT} (money in)"
    assert target_text("other:3", known, "en") == "other:3"


def test_missing_fields_in_the_order_asked() -> None:
    assert missing_fields({"asset": "EUR", "amount_min": " ", "until": None},
                          ("asset", "amount_min", "amount_max", "until")) == [
        "amount_min", "amount_max", "until"]


def test_every_state_reason_and_kind_of_the_api_has_words_in_both_languages() -> None:
    for code, keys in (([*State, "unreconciled"], STATE_KEYS),
                       (list(BreakReason), REASON_KEYS), (list(LineKind), KIND_KEYS)):
        for value in code:
            assert str(value) in keys, value
    for key in (*STATE_KEYS.values(), *REASON_KEYS.values(), *KIND_KEYS.values(),
                *ITEM_KEYS.values(), *AGE_KEYS.values()):
        english, chinese = STRINGS[key]
        assert english != chinese, key
    assert set(STATE_TONES) == set(STATE_KEYS)
    assert state_text("break", "zh-CN") == "差异"
    assert reason_text("not_in_books", "en") == "the bank has it, the books do not"
    assert state_text("brand_new", "en") == "brand_new"  # as the API wrote it
    assert reason_text(None, "en") == "—"


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_a_refused_file_names_the_file_and_the_place(locale: str) -> None:
    facts = {"file": "bad.xml", "place": "line 1, column 119", "why": "no element found"}
    said = problem_text("file_refused", "the file cannot be imported", facts,
                        locale)  # type: ignore[arg-type]
    assert said.startswith(t("problem.file_refused", locale))  # type: ignore[arg-type]
    assert "bad.xml" in said
    assert "line 1, column 119" in said
    for code in ("duplicate_statement", "unknown_message", "balances_do_not_add_up",
                 "recon_not_open", "recon_note_required", "recon_nothing_to_book",
                 "recon_not_found", "invalid_expected_payment",
                 "adjustment_permission_required"):
        assert code in PROBLEM_CODES
        assert problem_text(code, "api title", None, locale) != "Api title."  # type: ignore[arg-type]


# --- the client's reconciliation calls (client/_api.py), as sent ------------------------------


def test_the_clients_reconciliation_calls_send_what_the_routes_take() -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        listed = request.method == "GET" and not request.url.path.startswith(
            ("/v1/recon/statements/", "/v1/recon/payments/"))
        return httpx.Response(200, json=[] if listed else {"ok": True})

    with Client("http://fundpool.test", "fpk_test", retries=0,
                transport=httpx.MockTransport(answer)) as api:
        api.recon_channels(pool="main")
        api.recon_import(b"<Document/>", "sepa", "day.xml", format="camt.053")
        api.recon_files("sepa", limit=5)
        api.recon_match("sepa", pool="main")
        api.recon_breaks("sepa", side="statement", states=["break", "ambiguous"])
        api.recon_statements("sepa")
        api.recon_statement("s-1")
        api.recon_resolve("statement", "s-1:3", "bank fee", book=True)
        api.recon_resolutions("sepa")
        api.recon_payment("p-1")
        api.recon_expected("sepa", state="open")
        api.recon_expect("sepa", "EUR", "10.00", "12.00", "2026-12-07T00:00:00Z",
                         "2026-12-14T00:00:00Z", reference="INV-1")
        api.recon_cancel_expected("e-1")
        api.recon_mappings()
        api.recon_save_mapping("bank-x", "name: Bank X\n")
    calls = [(r.method, r.url.path, dict(r.url.params.multi_items())) for r in sent]
    assert calls[0] == ("GET", "/v1/recon/channels", {"pool": "main"})
    assert calls[1] == ("POST", "/v1/recon/imports",
                        {"channel": "sepa", "name": "day.xml", "format": "camt.053"})
    assert sent[1].content == b"<Document/>"  # the raw file, as it is
    assert sent[1].headers["content-type"] == "application/octet-stream"
    assert sent[1].headers["idempotency-key"]
    assert calls[2] == ("GET", "/v1/recon/files", {"channel": "sepa", "limit": "5"})
    assert calls[3] == ("POST", "/v1/recon/channels/sepa/match", {"pool": "main"})
    assert sent[4].url.params.get_list("state") == ["break", "ambiguous"]
    assert calls[6][:2] == ("GET", "/v1/recon/statements/s-1")
    assert json.loads(sent[7].content) == {"side": "statement", "id": "s-1:3",
                                           "note": "bank fee", "book": True}
    assert calls[9][:2] == ("GET", "/v1/recon/payments/p-1")
    assert calls[10] == ("GET", "/v1/recon/expected", {"channel": "sepa", "state": "open",
                                                      "limit": "500"})
    assert json.loads(sent[11].content) == {
        "channel": "sepa", "asset": "EUR", "amount_min": "10.00", "amount_max": "12.00",
        "from": "2026-12-07T00:00:00Z", "until": "2026-12-14T00:00:00Z",
        "reference": "INV-1", "counterparty": None}
    assert calls[12][:2] == ("POST", "/v1/recon/expected/e-1/cancel")
    assert (sent[14].method, sent[14].url.path) == ("PUT", "/v1/recon/mappings/bank-x")
    assert json.loads(sent[14].content) == {"text": "name: Bank X\n"}
    with pytest.raises(TypeError):  # an amount is never a float
        Client("http://fundpool.test").recon_expect(
            "sepa", "EUR", 10.0, "12.00", "2026-12-07T00:00:00Z",  # type: ignore[arg-type]
            "2026-12-14T00:00:00Z")
