"""The approvals inbox in a real browser, against a live server (tests/console/conftest.py),
with no approval rules active: a payout above the pool's approval threshold (examples/pool.toml:
10,000.00 USD) waits for one approver holding `payments:approve` (the threshold's stage). An
approver whose key is imported into the browser reaches the inbox from the header, opens the
payment, signs it, and it leaves the list with their signature and name, then moves on by
itself. The initiator is refused their own approval (four eyes), in the language they chose; a
rejection needs a note and keeps it; a role that may not decide sees the list read-only; the
list's refresh leaves an open payment and its note alone. (Keys made in the browser, rules'
stages and the 2-of-3 acceptance test: test_signing_browser.py.)"""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console.approvers import (
    LIVE_S,
    ApiKey,
    approval_of,
    enrol_by_api,
    import_key,
    known_user,
    open_payment,
    payment_of,
    sign_in_as,
    to_inbox,
    waiting_payout,
)
from tests.console.harness import Server, expect, goto, save_screenshot, sign_in
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
LARGE_USD = "25000.00"  # above the pool's USD approval threshold (10,000.00)
DESTINATION = "acct-7700-0042"  # a domestic account number: taken as text on a bank rail
AFTER_APPROVAL = ("approved", "submitted", "cleared", "settled")


@pytest.fixture(scope="module")
def keys(console_server: Server) -> Iterator[dict[str, ApiKey]]:
    """The approver's and the admin's signing keys, registered through the API; each test
    imports its user's into its own browser."""
    with tempfile.TemporaryDirectory(prefix="fundpool-keys-") as folder:
        made = {}
        for role in ("approver", "admin"):
            with known_user(console_server, role).api(console_server) as api:
                made[role] = enrol_by_api(api, Path(folder), role)
        yield made


def large_payout(server: Server, role: str) -> str:
    with server.api(role) as api:
        return waiting_payout(server, api, LARGE_USD, f"desk-{uuid.uuid4().hex[:8]}",
                              DESTINATION)


def refreshes(page: Any) -> int:
    return int(page.get_by_test_id("waiting-count").get_attribute("data-refreshes") or 0)


def test_an_approver_signs_a_large_payout_from_the_inbox(
        console_server: Server, keys: dict[str, ApiKey], new_page: Callable[[], Any]) -> None:
    server = console_server
    payment_id = large_payout(server, "cashier")
    cashier_name = server.users["cashier"][0]
    page = new_page()
    approver = sign_in(page, server, "approver")
    import_key(page, keys["approver"].pem)
    to_inbox(page)
    row = page.get_by_test_id(f"waiting-{payment_id}")
    expect(row).to_be_visible()
    expect(row.locator('[data-col="amount"]')).to_have_text("25,000.00 USD")
    expect(row.locator('[data-col="payee"]')).to_contain_text(DESTINATION)
    expect(row.locator('[data-col="route"]')).to_contain_text("fee")
    expect(row.locator('[data-col="initiator"]')).to_have_text(cashier_name)
    expect(row.locator('[data-col="waiting"]')).to_have_text(re.compile(r"^\d+ (s|min)$"))
    expect(row.locator('[data-col="signatures"]')).to_have_text("0 of 1 signed")
    expect(row.locator('[data-col="rules"]')).to_have_text("the pool's approval threshold")
    assert page.get_by_test_id("read-only").count() == 0
    # The longest waiting first: the rows in the API's updated_at order, ascending (of those
    # still waiting now: the simulator's own payouts are approved within seconds).
    shown = page.locator('tr[data-testid^="waiting-"]').evaluate_all(
        "rows => rows.map((row) => row.dataset.testid.slice('waiting-'.length))")
    assert payment_id in shown
    found = [payment_of(server, p) for p in shown]
    since = [p["updated_at"] for p in found if p["state"] == "pending_approval"]
    assert since == sorted(since)

    dialog = open_payment(page, payment_id)
    expect(dialog.get_by_test_id("decision-state")).to_have_attribute("data-state",
                                                                      "pending_approval")
    expect(dialog.get_by_test_id("decision-initiator")).to_have_text(cashier_name)
    expect(dialog.get_by_test_id("decision-timeline")).to_contain_text("pending approval")
    expect(dialog.get_by_test_id("decision-digest")).to_have_text(
        approval_of(server, payment_id)["digest"])
    expect(dialog.get_by_test_id("decision-key-here")).to_have_attribute(
        "data-key-id", keys["approver"].key_id)
    note = f"checked the invoice {uuid.uuid4().hex[:6]}"
    dialog.get_by_test_id("decision-note").fill(note)
    save_screenshot(page, "console-approvals.png", settle_ms=300)
    dialog.get_by_test_id("decision-sign").click()

    expect(dialog.get_by_test_id("decision-approval-state")).to_have_attribute("data-state",
                                                                               "approved")
    expect(dialog.get_by_test_id("stage-0")).to_have_attribute("data-signed", "1")
    expect(dialog.get_by_test_id("decision-timeline").locator('[data-action="approve"]')) \
        .to_contain_text(approver)
    expect(dialog.get_by_test_id("decision-sign")).to_be_hidden()
    expect(page.get_by_test_id(f"waiting-{payment_id}")).to_have_count(0)

    (signed,) = approval_of(server, payment_id)["stages"][0]["signed"]
    assert (signed["name"], signed["key_id"], signed["note"]) == (
        approver, keys["approver"].key_id, note)
    # and on by itself: the engine submits what was approved
    wait_until(lambda: payment_of(server, payment_id)["state"] in AFTER_APPROVAL[1:],
               within_s=LIVE_S, what=f"approved payout {payment_id} to be submitted",
               detail=lambda: payment_of(server, payment_id))


def test_the_initiator_may_not_approve_their_own_payment(
        console_server: Server, keys: dict[str, ApiKey], new_page: Callable[[], Any]) -> None:
    """Four eyes, held by the service: an admin (who may approve) created the payment."""
    server = console_server
    payment_id = large_payout(server, "admin")
    page = new_page()
    sign_in_as(page, server, known_user(server, "admin"))
    import_key(page, keys["admin"].pem)
    page.get_by_test_id("language").click()  # the refusal comes in the user's language
    expect(page.get_by_test_id("language")).to_have_text("English")
    to_inbox(page)
    dialog = open_payment(page, payment_id)
    expect(dialog.get_by_test_id("decision-initiator")).to_have_text(server.users["admin"][0])
    expect(dialog.get_by_test_id("decision-why")).to_have_text(
        "此支付由您发起，须由他人审批（四眼原则）。")
    dialog.get_by_test_id("decision-note").fill("我自己批准")
    dialog.get_by_test_id("decision-sign").click()
    expect(dialog.get_by_test_id("decision-error")).to_have_text(
        "此支付由您发起，须由他人审批（四眼原则）。")
    expect(dialog.get_by_test_id("decision-sign")).to_be_enabled()  # another may try
    assert payment_of(server, payment_id)["state"] == "pending_approval"
    expect(page.get_by_test_id(f"waiting-{payment_id}")).to_be_visible()


def test_a_rejection_needs_a_note_and_keeps_it(
        console_server: Server, new_page: Callable[[], Any]) -> None:
    server = console_server
    payment_id = large_payout(server, "cashier")
    page = new_page()
    approver = sign_in(page, server, "approver")  # an approver's no: POST …/reject
    to_inbox(page)
    dialog = open_payment(page, payment_id)
    dialog.get_by_test_id("decision-reject").click()
    expect(dialog.get_by_test_id("decision-error")).to_have_text(
        "Write a note saying why it is rejected.")
    assert payment_of(server, payment_id)["state"] == "pending_approval"
    note = "payee not on the vendor list"
    dialog.get_by_test_id("decision-note").fill(note)
    dialog.get_by_test_id("decision-reject").click()
    expect(dialog.get_by_test_id("decision-state")).to_have_attribute("data-state", "rejected")
    expect(dialog.get_by_test_id("decision-rejection")).to_contain_text(note)
    rejection = dialog.get_by_test_id("decision-timeline").locator('[data-action="reject"]')
    expect(rejection).to_contain_text(note)
    expect(rejection).to_contain_text(approver)
    expect(page.get_by_test_id(f"waiting-{payment_id}")).to_have_count(0)
    found = payment_of(server, payment_id)
    assert found["state"] == "rejected"
    assert [e["reason"] for e in found["events"] if e["action"] == "reject"] == [note]


def test_a_role_that_may_not_decide_sees_the_list_read_only(
        console_server: Server, new_page: Callable[[], Any]) -> None:
    server = console_server
    payment_id = large_payout(server, "cashier")
    page = new_page()
    sign_in(page, server, "viewer")
    # No header link for a role that may not approve: the inbox is still readable by address.
    goto(page, server, "/console/approvals")
    expect(page.get_by_test_id("read-only")).to_contain_text("viewer")
    dialog = open_payment(page, payment_id)
    expect(dialog.get_by_test_id("decision-timeline")).to_contain_text("pending approval")
    expect(dialog.get_by_test_id("decision-stages")).to_contain_text("0 of 1 signed")
    expect(dialog.get_by_test_id("decision-note")).to_have_count(0)
    expect(dialog.get_by_test_id("decision-sign")).to_be_hidden()
    expect(dialog.get_by_test_id("decision-reject")).to_be_hidden()


def test_a_refresh_keeps_the_open_payment_and_its_note_and_says_when_it_stops_waiting(
        console_server: Server, new_page: Callable[[], Any]) -> None:
    server = console_server
    payment_id = large_payout(server, "cashier")
    page = new_page()
    sign_in(page, server, "approver")
    to_inbox(page)
    dialog = open_payment(page, payment_id)
    note = dialog.get_by_test_id("decision-note")
    note.fill("half-written note")
    seen = refreshes(page)
    page.wait_for_function(
        "(seen) => Number(document.querySelector('[data-testid=\"waiting-count\"]')"
        ".getAttribute('data-refreshes')) >= seen + 2", arg=seen)
    expect(dialog.get_by_test_id("decision-title")).to_be_visible()
    expect(note).to_have_value("half-written note")
    # Another person decides it meanwhile: the dialog says so and offers nothing more.
    with server.api("admin") as api:
        api.post(f"/v1/payments/{payment_id}/reject",
                 json={"reason": "decided elsewhere"}).raise_for_status()
    expect(dialog.get_by_test_id("decision-gone")).to_have_text(
        "No longer waiting for approval: it is rejected now.")
    expect(dialog.get_by_test_id("decision-sign")).to_be_hidden()
    expect(page.get_by_test_id(f"waiting-{payment_id}")).to_have_count(0)
