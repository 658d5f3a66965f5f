"""A limit lowered by a policy group's automatic response, in a real browser against a live
server of its own (tests/console/conftest.py): the module's policy, drafted by the risk
officer and activated by the admin, lowers a watched payee's limit when a payout to it is
decided, and raises a warning alert (`risk group fired: <group>`).

- The review queue's limits tab lists the limit: who is limited, the amount, the group that
  set it. Lifting it asks for a note first and calls nothing without one; with the note the
  limit is lifted and leaves the list. A role without `risk:policy` sees the list read-only.
- The group's alert is said in 简体中文 on the Chinese console and opens the review queue.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.console.approvers import activate_policy
from tests.console.harness import Server, expect, save_screenshot, sign_in
from tests.console.test_risk_browser import LIVE_S, _json, payout, to_queue
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
GROUP = "watched payee"
WATCHED = "Watched Payee Ltd"
POLICY = f"""thresholds: {{review: 30, hold: 60, block: 90}}
lists:
  watched_payees: ["{WATCHED}"]
groups:
  - name: {GROUP}
    when: [{{listed: {{field: payee, list: watched_payees}}}}]
    score: 10
    respond:
      alert: warning
      lower_limit: {{per: payee, amount: {{USD: "50.00"}}, for: 1h}}
  - name: burst to one payee
    when:
      - payment: {{kinds: [payout]}}
      - velocity: {{per: payee, window: 10m, count_over: 3}}
    score: 40
"""
NOTE = "called the payee: a known supplier"


@pytest.fixture(scope="module")
def limits_server(console_server: Server) -> Server:
    """The module's server with `POLICY` active."""
    server = console_server
    with server.api("risk") as risk:
        draft = _json(risk.post("/v1/risk/policies",
                                json={"text": POLICY, "note": "the limits tests' policy"}))
    with server.api("admin") as admin:
        activate_policy(server, admin, int(draft['version']))
    return server


def limits_of(server: Server) -> list[dict[str, Any]]:
    with server.api("risk") as api:
        found: list[dict[str, Any]] = _json(api.get("/v1/risk/limits"))["data"]
        return found


def test_a_risk_officer_lifts_a_lowered_limit_with_a_note(
        limits_server: Server, new_page: Callable[[], Any]) -> None:
    server = limits_server
    payout(server, WATCHED, amount="20.00", destination="GB33BUKB20201555555555")
    limit = wait_until(lambda: next((x for x in limits_of(server) if x["key"] == WATCHED),
                                    None),
                       within_s=LIVE_S, what=f"the limit lowered for {WATCHED}",
                       detail=server.log_tail)
    assert (limit["per"], limit["asset"], limit["max_minor"], limit["group"]) == \
        ("payee", "USD", "5000", GROUP)

    # read-only without risk:policy
    reader = new_page()
    sign_in(reader, server, "approver")
    to_queue(reader)
    reader.get_by_test_id("tab-limits").click()
    expect(reader.get_by_test_id(f"limit-{limit['id']}")).to_be_visible()
    expect(reader.get_by_test_id("limits-read-only")).to_contain_text("approver")
    expect(reader.get_by_test_id(f"lift-{limit['id']}")).to_have_count(0)

    page = new_page()
    sign_in(page, server, "risk")
    to_queue(page)
    expect(page.get_by_test_id("tab-limits-count")).to_have_text("1")
    page.get_by_test_id("tab-limits").click()
    row = page.get_by_test_id(f"limit-{limit['id']}")
    expect(row.locator('[data-col="who"]')).to_have_text(f"payee {WATCHED}")
    expect(row.locator('[data-col="amount"]')).to_have_text("50.00 USD")
    expect(row.locator('[data-col="set"]')).to_contain_text(f"group {GROUP}")
    expect(row.locator('[data-col="until"]')).to_contain_text(re.compile(r"ends in 5\d min"))
    expect(row.locator('[data-col="payment"]')).to_have_text(limit["payment_id"][-12:])
    save_screenshot(page, "console-risk-limits.png", settle_ms=300)

    # A lift says why: without a note the dialog asks for one and calls nothing.
    page.get_by_test_id(f"lift-{limit['id']}").click()
    expect(page.get_by_test_id("lift-title")).to_have_text(f"Lift the limit on payee {WATCHED}")
    page.get_by_test_id("lift-confirm").click()
    expect(page.get_by_test_id("lift-error")).to_have_text(
        "Write a note saying why: it is kept with the limit.")
    assert [x["id"] for x in limits_of(server)] == [limit["id"]]

    page.get_by_test_id("lift-note").fill(NOTE)
    page.get_by_test_id("lift-confirm").click()
    expect(page.get_by_test_id(f"limit-{limit['id']}")).to_have_count(0)
    expect(page.get_by_test_id("limits-none")).to_be_visible()
    assert limits_of(server) == []

    # The group's alert response, in 简体中文; its "Open" leads to the review queue.
    with server.api("risk") as api:
        alert = wait_until(lambda: next(
            (a for a in _json(api.get("/v1/monitoring/alerts",
                                      params={"state": "active", "limit": 200}))["data"]
             if a["rule"] == f"risk.response:{GROUP}"), None),
            within_s=LIVE_S, what="the group's alert response", detail=server.log_tail)
    assert (alert["subject"], alert["severity"]) == ("risk:review", "warning")
    page.get_by_test_id("nav-stream").click()
    page.wait_for_url("**/console/stream")
    page.get_by_test_id("language").click()
    chip = page.get_by_test_id(f"alert-{alert['id']}")
    expect(chip).to_contain_text(f"风控规则组已触发：{GROUP}")
    with page.expect_navigation():
        chip.get_by_test_id("alert-go").click()
    page.wait_for_function("() => window.did_handshake === true")
    assert page.url.endswith("/console/risk")
    expect(page.get_by_test_id("tab-cases")).to_contain_text("案件")
