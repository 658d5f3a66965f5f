"""Risk control in a real browser, against a live server (tests/console/conftest.py) whose
risk policy this module sets up through the API as people would: the synthetic sanctions list
loaded, a policy drafted by the risk officer and activated by the admin (maker-checker).

- A burst of payouts to one payee: the fourth and fifth are held for review. A risk officer
  goes to the review queue from the header, opens the case, claims it, writes a note and
  releases it; the payment moves on by itself and settles.
- A payout to "Viktor Sanctionov" (on the synthetic list) is blocked: the alert bar's critical
  alert opens the payment, whose risk section says block, with the hit and why it matched.
- The policy editor: a policy with an unknown field is refused with its line, and nothing is
  saved; a valid one is validated (summary and diff), backtested, saved as a draft, refused to
  its own author's activation, activated by the admin, and shown active; a rollback, after its
  confirmation, brings back the version before.
- Three payees paid into one account: the review queue's rings tab lists them as a suspected
  ring with the account they share, and the alert bar's critical rings alert opens that tab.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.console.approvers import activate_policy, admin_secret, fresh_code
from tests.console.harness import REPO, Server, expect, save_screenshot, sign_in
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
LIVE_S = 90.0  # what the server's engine does on its own clock (screen, route, settle)
SYNTHETIC_LIST = REPO / "src" / "fundpool" / "risk" / "screening" / "data" / "synthetic.ftm.json"
POLICY = """thresholds: {review: 30, hold: 60, block: 90}
groups:
  - name: sanctioned payee
    when: [{sanctions: {threshold: 85}}]
    outcome: block
  - name: burst to one payee
    when: [{payment: {kinds: [payout]}}, {velocity: {per: payee, window: 10m, count_over: 3}}]
    score: 40
"""
FILL_TRIES = 3  # typing the bad policy again if the page put the active text back
FILL_WAIT_MS = 10_000
BURST = 5  # payouts to one payee: more than 3 in 10 minutes holds the 4th and the 5th
AMOUNT = "120.00"
RAIL = "rtp"  # an instant credit: a released payout settles within seconds
DESTINATION = "acct-7700-0042"
SANCTIONED = "Viktor Sanctionov"  # on the synthetic list (every name in it invented)
RING_PAYEES = ("ring-a", "ring-b", "ring-c")
RING_DESTINATION = "GB33BUKB20201555555555"  # the one account the three payees are paid into
RING_AMOUNT = "20.00"


def _json(answer: Any) -> Any:
    assert answer.status_code < 300, answer.text
    return answer.json()


@pytest.fixture(scope="module")
def risk_server(console_server: Server) -> Server:
    """The module's server with the synthetic list and `POLICY` active (once per server: a
    test that changes the policy keeps its two groups)."""
    server = console_server
    with server.api("admin") as admin:
        if _json(admin.get("/v1/risk/policies/active"))["policy"] is None:
            _json(admin.put("/v1/risk/lists/synthetic",
                            json={"content": SYNTHETIC_LIST.read_text(encoding="utf-8")}))
            with server.api("risk") as risk:
                draft = _json(risk.post("/v1/risk/policies",
                                        json={"text": POLICY, "note": "the tests' policy"}))
            activate_policy(server, admin, int(draft['version']))
    return server


def payment_of(server: Server, payment_id: str) -> dict[str, Any]:
    with server.api("auditor") as api:
        found: dict[str, Any] = _json(api.get(f"/v1/payments/{payment_id}"))
        return found


def payout(server: Server, payee: str, *, amount: str = AMOUNT,
           destination: str = DESTINATION) -> str:
    """A payout created by the cashier through the API, as the operations panel sends it."""
    body = {"kind": "payout", "asset": "USD", "amount": amount, "channel": RAIL,
            "counterparty": payee, "destination": destination,
            "reference": f"risk-{uuid.uuid4()}"}
    with server.api("cashier") as api:
        made = api.post("/v1/payments", json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
        assert made.status_code == 201, made.text
        payment_id: str = made.json()["id"]
        return payment_id


def reached(server: Server, payment_id: str, state: str) -> dict[str, Any]:
    """The payment once it is in `state`."""
    def found() -> dict[str, Any] | None:
        payment = payment_of(server, payment_id)
        return payment if payment["state"] == state else None

    return wait_until(found, within_s=LIVE_S, what=f"payment {payment_id} to be {state}",
                      detail=lambda: (payment_of(server, payment_id), server.log_tail()))


def screened(server: Server, payment_id: str) -> dict[str, Any]:
    """The payment once the engine's screening step decided it (screen, hold or reject)."""
    def found() -> dict[str, Any] | None:
        payment = payment_of(server, payment_id)
        steps = {e["action"] for e in payment["events"]}
        return payment if steps & {"screen", "hold", "reject"} else None

    return wait_until(found, within_s=LIVE_S, what=f"payment {payment_id} to be screened",
                      detail=lambda: (payment_of(server, payment_id), server.log_tail()))


def case_of(server: Server, payment_id: str) -> str:
    with server.api("risk") as api:
        cases = _json(api.get(f"/v1/risk/decisions/{payment_id}"))["cases"]
    assert len(cases) == 1, cases
    case_id: str = cases[0]["id"]
    return case_id


def to_queue(page: Any) -> None:
    """From any page to the review queue the way a person goes: the header's link."""
    page.get_by_test_id("nav-risk").click()
    page.wait_for_url("**/console/risk")
    page.wait_for_function("() => window.did_handshake === true")


def to_policies(page: Any) -> None:
    to_queue(page)
    page.get_by_test_id("to-policies").click()
    page.wait_for_url("**/console/risk/policies")
    page.wait_for_function("() => window.did_handshake === true")


def test_a_risk_officer_releases_a_held_burst_payout_and_it_settles(
        risk_server: Server, new_page: Callable[[], Any]) -> None:
    server = risk_server
    payee = f"payee-burst-{uuid.uuid4().hex[:8]}"
    payments = [payout(server, payee) for _ in range(BURST)]
    steps = [[e["action"] for e in screened(server, p)["events"]] for p in payments]
    assert ["hold" in s for s in steps] == [False, False, False, True, True], steps
    held = [reached(server, payment_id, "held") for payment_id in payments[3:]]
    assert all(p["events"][-1]["reason"] == "risk review: burst to one payee" for p in held)
    payment_id = payments[3]
    case_id = case_of(server, payment_id)

    page = new_page()
    officer = sign_in(page, server, "risk")
    to_queue(page)
    row = page.get_by_test_id(f"case-{case_id}")
    expect(row).to_be_visible()
    expect(row).to_have_attribute("data-kind", "review")
    expect(row.locator('[data-col="payment"]')).to_have_text(payment_id[-12:])
    expect(row.locator('[data-col="state"]')).to_have_text("open")
    expect(row.locator('[data-col="summary"]')).to_contain_text("burst to one payee")
    save_screenshot(page, "console-risk-queue.png", settle_ms=300)

    row.click()
    page.wait_for_url(f"**/console/risk/cases/{case_id}")
    page.wait_for_function("() => window.did_handshake === true")
    expect(page.get_by_test_id("case-state")).to_have_attribute("data-state", "open")
    expect(page.get_by_test_id("case-payee")).to_have_text(payee)
    expect(page.get_by_test_id("case-amount")).to_have_text("120.00 USD")
    expect(page.get_by_test_id("case-destination")).to_have_text(DESTINATION)
    expect(page.get_by_test_id("case-initiator")).to_have_text(server.users["cashier"][0])
    expect(page.get_by_test_id("case-payment-state")).to_have_attribute("data-state", "held")
    decision = page.get_by_test_id("case-decision")
    expect(decision.get_by_test_id("risk-outcome")).to_have_attribute("data-outcome", "review")
    expect(decision.get_by_test_id("risk-score")).to_have_text("score 40")
    expect(decision.locator('[data-kind="velocity"]')).to_have_text(
        f"· 4 payments for payee {payee} within 10m, more than 3")
    expect(page.get_by_test_id("note-1")).to_have_attribute("data-action", "opened")

    # A release says why: without a note the page asks for one and calls nothing.
    page.get_by_test_id("case-release").click()
    expect(page.get_by_test_id("case-error")).to_have_text(
        "Write a note saying why: it is kept with the case.")
    assert payment_of(server, payment_id)["state"] == "held"

    page.get_by_test_id("case-claim").click()
    expect(page.get_by_test_id("case-state")).to_have_attribute("data-state", "claimed")
    expect(page.get_by_test_id("case-claimed")).to_have_text(officer)
    claimed = page.get_by_test_id("note-2")
    expect(claimed).to_have_attribute("data-action", "claimed")
    expect(claimed).to_contain_text(officer)

    note = f"called the payee: a payroll run {uuid.uuid4().hex[:6]}"
    page.get_by_test_id("case-note").fill(note)
    save_screenshot(page, "console-risk-case.png", settle_ms=300)
    page.get_by_test_id("case-release").click()
    expect(page.get_by_test_id("case-state")).to_have_attribute("data-state", "released")
    released = page.get_by_test_id("note-3")
    expect(released).to_have_attribute("data-action", "released")
    expect(released).to_contain_text(note)
    expect(released).to_contain_text(officer)
    expect(page.get_by_test_id("case-release")).to_be_hidden()

    # and on by itself: the engine routes what was released, and the rail settles it
    settled = reached(server, payment_id, "settled")
    release = [e for e in settled["events"] if e["action"] == "release"]
    assert [e["actor"]["name"] for e in release] == [officer]
    assert note in release[0]["reason"]
    expect(page.get_by_test_id("case-payment-state")).to_have_attribute("data-state",
                                                                        "settled")
    to_queue(page)  # decided: off the queue; the fifth payout's case still on it
    expect(page.get_by_test_id(f"case-{case_of(server, payments[4])}")).to_be_visible()
    expect(page.get_by_test_id(f"case-{case_id}")).to_have_count(0)


def test_a_payout_to_a_sanctioned_name_is_blocked_and_its_page_says_why(
        risk_server: Server, new_page: Callable[[], Any]) -> None:
    server = risk_server
    payment_id = payout(server, SANCTIONED)
    blocked = reached(server, payment_id, "rejected")
    assert blocked["events"][-1]["reason"] == "risk block: sanctioned payee"
    # The alert engine (every second here) puts the blocked payout in the alert bar.
    with server.api("risk") as api:
        alert = wait_until(lambda: next(
            (a for a in _json(api.get("/v1/monitoring/alerts",
                                      params={"state": "active", "limit": 200}))["data"]
             if a["subject"] == f"payment:{payment_id}"), None),
            within_s=LIVE_S, what=f"the sanctions alert of {payment_id}",
            detail=server.log_tail)
    assert alert["severity"] == "critical"

    page = new_page()
    sign_in(page, server, "risk")
    chip = page.get_by_test_id(f"alert-{alert['id']}")
    expect(chip).to_contain_text(SANCTIONED)
    with page.expect_navigation():
        chip.get_by_test_id("alert-go").click()
    page.wait_for_function("() => window.did_handshake === true")
    assert "/console/stream" in page.url
    assert payment_id in page.url
    expect(page.get_by_test_id("detail-title")).to_contain_text(payment_id)
    risk = page.get_by_test_id("detail-risk")
    expect(risk.get_by_test_id("risk-outcome")).to_have_attribute("data-outcome", "block")
    expect(risk.get_by_test_id("risk-outcome")).to_have_text("block")
    expect(risk.get_by_test_id("risk-policy")).to_contain_text("policy v")
    expect(risk.locator('[data-group="sanctioned payee"]')).to_contain_text("forces block")
    expect(risk.locator('[data-kind="sanctions"]')).to_have_text(
        f"· {SANCTIONED} matches {SANCTIONED} on the list synthetic: score 100 "
        "(threshold 85)")
    explanation = risk.get_by_test_id("risk-hit-explanation").first
    expect(explanation).to_contain_text("'viktor sanctionov' ~ 'viktor sanctionov'")
    expect(explanation).to_contain_text("score 100")
    expect(page.get_by_test_id("detail-timeline")).to_contain_text(
        "Risk control: block (sanctioned payee)")
    save_screenshot(page, "console-risk-blocked.png", settle_ms=300)

    # The same in 简体中文: the outcome in words, the list's explanation as the list gives it.
    page.get_by_test_id("language").click()
    expect(page.get_by_test_id("language")).to_have_text("English")
    risk = page.get_by_test_id("detail-risk")
    expect(risk.get_by_test_id("risk-outcome")).to_have_text("拦截")
    expect(risk.locator('[data-kind="sanctions"]')).to_contain_text("匹配：得分 100")


def _bad_policy() -> tuple[str, int]:
    """`POLICY` with an unknown field in its burst group, and the line it is on."""
    lines = POLICY.splitlines()
    line = next(i for i, text in enumerate(lines, 1) if "count_over" in text)
    lines[line - 1] = lines[line - 1].replace("count_over: 3", "count_over: 3, colour: red")
    return "\n".join(lines) + "\n", line


def test_the_policy_editor_refuses_a_bad_policy_and_a_second_person_activates_a_good_one(
        risk_server: Server, new_page: Callable[[], Any]) -> None:
    server = risk_server
    with server.api("risk") as api:
        versions_before = len(_json(api.get("/v1/risk/policies"))["data"])
        active_before = _json(api.get("/v1/risk/policies/active"))["policy"]["version"]

    page = new_page()
    officer = sign_in(page, server, "risk")
    to_policies(page)
    expect(page.get_by_test_id("policy-active-title")).to_have_attribute(
        "data-version", str(active_before))
    editor = page.get_by_test_id("policy-text")
    expect(editor).to_have_value(POLICY)  # a draft starts from the active text

    bad, line = _bad_policy()
    error = page.get_by_test_id("policy-error")
    for _ in range(FILL_TRIES):
        # Under load the page may resync the editor from the server (a websocket reconnect)
        # before the typed text reached it, putting the active text back: type it again.
        editor.fill(bad)
        expect(editor).to_have_value(bad)
        page.get_by_test_id("policy-validate").click()
        try:
            expect(error).to_be_visible(timeout=FILL_WAIT_MS)
            break
        except AssertionError:
            continue
    expect(error).to_have_attribute("data-line", str(line))
    expect(error).to_contain_text(f"The policy is not valid, line {line}:")
    expect(error).to_contain_text("unknown field 'colour'")
    expect(page.get_by_test_id("policy-error-line")).to_contain_text(f"{line}  ")
    expect(page.get_by_test_id("policy-error-line")).to_contain_text("colour: red")
    page.get_by_test_id("policy-note").fill("should never be saved")
    page.get_by_test_id("policy-save").click()  # refused the same way: nothing is saved
    expect(page.get_by_test_id("policy-error")).to_have_attribute("data-line", str(line))
    with server.api("risk") as api:
        assert len(_json(api.get("/v1/risk/policies"))["data"]) == versions_before

    good = POLICY.replace("review: 30", "review: 35")
    editor.fill(good)
    page.get_by_test_id("policy-validate").click()
    expect(page.get_by_test_id("policy-valid")).to_have_text("The policy is valid.")
    expect(page.get_by_test_id("policy-summary")).to_contain_text(
        "thresholds: review 35, hold 60, block 90")
    diff = page.get_by_test_id("policy-diff")
    expect(diff.locator(".fp-diff-add")).to_contain_text(["+thresholds: {review: 35"])
    expect(diff.locator(".fp-diff-remove")).to_contain_text(["-thresholds: {review: 30"])

    page.get_by_test_id("policy-days").fill("1")
    page.get_by_test_id("policy-backtest").click()
    expect(page.get_by_test_id("backtest-summary")).to_contain_text("payments of the last 1 days")
    expect(page.get_by_test_id("backtest-outcomes")).to_contain_text("review")
    expect(page.get_by_test_id("confusion-active")).to_be_visible()
    expect(page.get_by_test_id("confusion-draft")).to_be_visible()

    note = f"raise the review threshold {uuid.uuid4().hex[:6]}"
    page.get_by_test_id("policy-note").fill(note)
    page.get_by_test_id("policy-save").click()
    expect(page.get_by_test_id("policy-message")).to_contain_text("Saved as draft v")
    with server.api("risk") as api:
        newest = _json(api.get("/v1/risk/policies"))["data"][0]
    version = newest["version"]
    assert (newest["state"], newest["note"], newest["created_by"]["name"]) == \
        ("draft", note, officer)
    row = page.get_by_test_id(f"policy-version-{version}")
    expect(row).to_have_attribute("data-state", "draft")
    expect(row).to_contain_text(note)
    save_screenshot(page, "console-risk-policies.png", settle_ms=300)

    # Maker-checker: its author may not activate it, and is told so (before any code).
    row.get_by_test_id("policy-activate").click()
    page.get_by_test_id("activate-submit").click()
    expect(page.get_by_test_id("activate-error")).to_contain_text(
        "You wrote this policy version: another person must activate it.")
    page.get_by_test_id("activate-cancel").click()
    expect(row).to_have_attribute("data-state", "draft")

    admin_page = new_page()
    admin = sign_in(admin_page, server, "admin")
    to_policies(admin_page)
    admin_row = admin_page.get_by_test_id(f"policy-version-{version}")
    admin_row.get_by_test_id("policy-activate").click()
    # Without a code, the activation is refused and said; with the admin's current code it
    # goes through (issue 17: TOTP for sensitive actions).
    admin_page.get_by_test_id("activate-submit").click()
    expect(admin_page.get_by_test_id("activate-error")).to_contain_text("totp_required")
    admin_page.get_by_test_id("activate-totp").fill(
        fresh_code(admin_secret(server), "the policy's activation"))
    admin_page.get_by_test_id("activate-submit").click()
    expect(admin_row).to_have_attribute("data-state", "active")
    expect(admin_row).to_contain_text(f"activated by {admin}")
    expect(admin_page.get_by_test_id("policy-active-title")).to_have_text(
        f"Active policy: v{version}")
    expect(admin_page.get_by_test_id("policy-active")).to_contain_text("review: 35")
    expect(admin_page.get_by_test_id(f"policy-version-{active_before}")) \
        .to_have_attribute("data-state", "retired")
    with server.api("risk") as api:
        assert _json(api.get("/v1/risk/policies/active"))["policy"]["version"] == version

    # A rollback asks first; then the version before is active again, this one a draft.
    admin_page.get_by_test_id("policy-rollback").click()
    expect(admin_page.get_by_test_id("rollback-question")).to_be_visible()
    admin_page.get_by_test_id("rollback-yes").click()
    expect(admin_page.get_by_test_id("policy-active-title")).to_have_text(
        f"Active policy: v{active_before}")
    expect(admin_page.get_by_test_id(f"policy-version-{version}")) \
        .to_have_attribute("data-state", "draft")
    with server.api("risk") as api:
        assert _json(api.get("/v1/risk/policies/active"))["policy"]["version"] == active_before


def test_the_alert_bars_review_alert_opens_the_review_queue(
        risk_server: Server, new_page: Callable[[], Any]) -> None:
    server = risk_server
    payee = f"payee-burst-{uuid.uuid4().hex[:8]}"
    payments = [payout(server, payee) for _ in range(BURST)]
    reached(server, payments[-1], "held")
    case_id = case_of(server, payments[-1])
    with server.api("risk") as api:
        alert = wait_until(lambda: next(
            (a for a in _json(api.get("/v1/monitoring/alerts",
                                      params={"state": "active", "limit": 200}))["data"]
             if a["subject"] == "risk:review"), None),
            within_s=LIVE_S, what="the review queue's alert", detail=server.log_tail)
    page = new_page()
    sign_in(page, server, "approver")  # risk:read: reads the queue, decides nothing
    chip = page.get_by_test_id(f"alert-{alert['id']}")
    expect(chip).to_contain_text("payments wait for risk review")
    with page.expect_navigation():
        chip.get_by_test_id("alert-go").click()
    page.wait_for_function("() => window.did_handshake === true")
    assert page.url.endswith("/console/risk")
    expect(page.get_by_test_id("page-title")).to_have_text("Review queue")
    expect(page.get_by_test_id(f"case-{case_id}")).to_be_visible()
    expect(page.get_by_test_id("read-only")).to_contain_text("approver")


def test_payees_paid_into_one_account_are_listed_as_a_suspected_ring(
        risk_server: Server, new_page: Callable[[], Any]) -> None:
    server = risk_server
    for payee in RING_PAYEES:
        payout(server, payee, amount=RING_AMOUNT, destination=RING_DESTINATION)
    with server.api("risk") as api:
        found = _json(api.get("/v1/risk/rings"))["data"]
    rings = [r for r in found if set(RING_PAYEES) <= set(r["payees"])]
    assert [sorted(r["payees"]) for r in rings] == [list(RING_PAYEES)], found
    ring_id = rings[0]["id"]

    page = new_page()
    sign_in(page, server, "risk")
    to_queue(page)
    expect(page.get_by_test_id("tab-rings-count")).to_be_visible()
    page.get_by_test_id("tab-rings").click()
    row = page.get_by_test_id(f"ring-{ring_id}")  # polled until the tab's refresh shows it
    expect(row.locator('[data-col="payees"]')).to_have_text(", ".join(RING_PAYEES))
    expect(row.locator('[data-col="shared"]')).to_have_text(
        f"destination {RING_DESTINATION} (3 payees)")
    expect(row.locator('[data-col="payouts"]')).to_have_text("3")
    expect(row.locator('[data-col="amounts"]')).to_have_text("60.00 USD")
    save_screenshot(page, "console-risk-rings.png", settle_ms=300)

    # The alert engine's ring search (once a minute) raises a critical alert; its "Open"
    # leads to the same tab.
    with server.api("risk") as api:
        alert = wait_until(lambda: next(
            (a for a in _json(api.get("/v1/monitoring/alerts",
                                      params={"state": "active", "limit": 200}))["data"]
             if a["subject"] == "risk:rings"), None),
            within_s=LIVE_S, what="the suspected rings' alert", detail=server.log_tail)
    assert alert["severity"] == "critical"
    assert alert["rule"] == "risk.fraud_rings"
    page.get_by_test_id("nav-stream").click()
    page.wait_for_url("**/console/stream")
    chip = page.get_by_test_id(f"alert-{alert['id']}")
    expect(chip).to_contain_text("payees share accounts: suspected fraud rings")
    with page.expect_navigation():
        chip.get_by_test_id("alert-go").click()
    page.wait_for_function("() => window.did_handshake === true")
    assert page.url.endswith("/console/risk?view=rings")
    row = page.get_by_test_id(f"ring-{ring_id}")
    expect(row.locator('[data-col="shared"]')).to_have_text(
        f"destination {RING_DESTINATION} (3 payees)")

    # The same in 简体中文.
    page.get_by_test_id("language").click()
    expect(page.get_by_test_id("tab-rings")).to_contain_text("疑似团伙")
    expect(page.get_by_test_id(f"ring-{ring_id}").locator('[data-col="shared"]')).to_have_text(
        f"收款账户 {RING_DESTINATION}（3 个收款方）")
    expect(page.get_by_test_id(f"alert-{alert['id']}")).to_contain_text(
        "多个收款方共用账户：疑似欺诈团伙")
