"""The approval rules editor and the audit log browser in a real browser, against a live
server (tests/console/conftest.py, one per module: no rules version is active when it starts,
so the default governance holds, one admin's vote).

- A risk officer opens the approval rules from the header, writes a version whose rule asks
  for more approvers than its group has: Validate names the line and the field, marked in the
  text's listing. Fixed, it validates (its diff shown) and is saved as a draft. The officer's
  own vote is refused (`self_activation`), said on the page in English and in 简体中文. The
  admin, whose authenticator the test enrolled through the API (`POST /v1/me/totp`, then a
  key registered with a code, computed with pyotp), votes with a current code, and the
  version becomes active. The risk officer is offered no audit log link.
- An auditor opens the audit log from the header, searches the entries by an actor (the
  cashier, who created a payout through the API), opens the entry's proof (leaf hash, path,
  root) and sees it verified; "Verify now" says the chain is intact (in 简体中文 too).
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from typing import Any

import pyotp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fundpool.audit import merkle
from tests.console.harness import Server, expect, save_screenshot, sign_in
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
TOTP_STEP_S = 30
STEP_WAIT_S = TOTP_STEP_S + 5  # at most one step until a code not used yet
# Rules that hold no payment of the simulator's (their one rule is about a payee nobody pays),
# with a group of two: a rule asking for three of them is refused.
GOOD_RULES = """groups:
  console-test-leads: [console-approver, console-admin]
governance:
  quorum: 1
  roles: [admin]
rules:
  - id: console-test-payee
    name: Payouts to the console test payee need an approver
    when:
      - kind: [payout]
        counterparty: [console-test-nobody]
    require:
      approvers: 1
      group: console-test-leads
"""
BAD_RULES = GOOD_RULES.replace("approvers: 1", "approvers: 3")
BAD_LINE = 13  # `approvers: 3`
BAD_FIELD = "rules[0].require.approvers"


def _json(answer: Any) -> Any:
    assert answer.status_code < 300, answer.text
    return answer.json()


def _step(at_s: float | None = None) -> int:
    return int(time.time() if at_s is None else at_s) // TOTP_STEP_S


def enrol_totp(server: Server, role: str) -> tuple[pyotp.TOTP, int]:
    """The authenticator of the server's user of `role`, enrolled as a person does through
    the API: the enrolment begun, then a signing key registered with a code, which confirms
    it. The code of the step before is used (still accepted), so that the current one is
    left for the test; returns the TOTP and the step whose code was used."""
    key = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw,
                                                                  PublicFormat.Raw)
    with server.api(role) as api:
        secret = _json(api.post("/v1/me/totp",
                                headers={"Idempotency-Key": str(uuid.uuid4())}))["secret"]
        totp = pyotp.TOTP(secret)
        step = _step() - 1
        registered = api.post("/v1/me/signing-keys",
                              json={"public_key": base64.b64encode(key).decode(),
                                    "name": "console test", "totp": totp.at(step * TOTP_STEP_S)},
                              headers={"Idempotency-Key": str(uuid.uuid4())})
        if registered.status_code != 201 and "totp_expired" in registered.text:
            step = _step()  # the step turned in between: the current code, then
            registered = api.post("/v1/me/signing-keys",
                                  json={"public_key": base64.b64encode(key).decode(),
                                        "name": "console test",
                                        "totp": totp.at(step * TOTP_STEP_S)},
                                  headers={"Idempotency-Key": str(uuid.uuid4())})
        _json(registered)
        assert _json(api.get("/v1/me/totp"))["enrolled"] is True
    return totp, step


def fresh_code(totp: pyotp.TOTP, used_step: int) -> str:
    """A current code of a step after `used_step` (waiting for the next step when the used one
    is the current one: a code is good once)."""
    wait_until(lambda: _step() > used_step, within_s=STEP_WAIT_S, poll_s=0.2,
               what=f"a TOTP step after {used_step}")
    return str(totp.now())


def versions(server: Server) -> list[dict[str, Any]]:
    with server.api("auditor") as api:
        found: list[dict[str, Any]] = _json(api.get("/v1/approval-rules"))["data"]
        return found


def to_rules(page: Any) -> None:
    """To the approval rules the way a person goes: the header's link."""
    page.get_by_test_id("nav-approval_rules").click()
    page.wait_for_url("**/console/approval-rules")
    page.wait_for_function("() => window.did_handshake === true")


def test_a_risk_officer_drafts_approval_rules_and_an_admin_votes_them_active(
        console_server: Server, new_page: Callable[[], Any]) -> None:
    server = console_server
    admin_totp, used_step = enrol_totp(server, "admin")
    before = versions(server)
    assert not any(v["state"] == "active" for v in before), before

    page = new_page()
    officer = sign_in(page, server, "risk")
    expect(page.get_by_test_id("nav-audit")).to_have_count(0)  # not an auditor's role
    to_rules(page)
    expect(page.get_by_test_id("rules-active-title")).to_have_attribute("data-version", "")
    editor = page.get_by_test_id("rules-text")

    # A rule asking for 3 of a group of 2: the line and the field are named.
    editor.fill(BAD_RULES)
    page.get_by_test_id("rules-validate").click()
    error = page.get_by_test_id("rules-error")
    expect(error).to_have_attribute("data-line", str(BAD_LINE))
    expect(error).to_have_attribute("data-field", BAD_FIELD)
    expect(error).to_contain_text(f"The rules are not valid: line {BAD_LINE}, {BAD_FIELD}:")
    expect(error).to_contain_text("needs 3 approvers of the group 'console-test-leads'")
    expect(page.get_by_test_id("rules-error-line")).to_have_text(f"{BAD_LINE:>4}      approvers: 3")
    assert len(versions(server)) == len(before)  # nothing saved

    # Fixed: valid, its diff against no active rules, saved as a draft.
    editor.fill(GOOD_RULES)
    page.get_by_test_id("rules-validate").click()
    expect(page.get_by_test_id("rules-valid")).to_have_text("The rules are valid (1 rules).")
    expect(page.get_by_test_id("rules-diff").locator(".fp-diff-add")).to_contain_text(
        ["+groups:"])
    note = f"a rule for the console test payee {uuid.uuid4().hex[:6]}"
    page.get_by_test_id("rules-note").fill(note)
    page.get_by_test_id("rules-save").click()
    expect(page.get_by_test_id("rules-message")).to_contain_text("saved as a draft")
    newest = versions(server)[0]
    version = newest["version"]
    assert (newest["state"], newest["note"], newest["author"]["name"]) == \
        ("draft", note, officer)
    row = page.get_by_test_id(f"rules-version-{version}")
    expect(row).to_have_attribute("data-state", "draft")
    expect(row.get_by_test_id("rules-votes")).to_have_text("votes 0 of 1 (admin)")
    expect(row.get_by_test_id("rules-author")).to_contain_text(f"written by {officer}")

    # Its author's vote is refused, and said so.
    row.get_by_test_id("rules-vote").click()
    page.get_by_test_id("vote-totp").fill("123456")
    page.get_by_test_id("vote-submit").click()
    expect(page.get_by_test_id("vote-error")).to_have_text(
        "You wrote this version: other people must vote to activate it. (self_activation)")
    page.get_by_test_id("vote-cancel").click()
    expect(row).to_have_attribute("data-state", "draft")
    # and in the officer's other language, as said in it
    page.get_by_test_id("language").click()
    expect(page.get_by_test_id("page-title")).to_have_text("审批规则")
    page.get_by_test_id(f"rules-version-{version}").get_by_test_id("rules-vote").click()
    page.get_by_test_id("vote-totp").fill("123456")
    page.get_by_test_id("vote-submit").click()
    expect(page.get_by_test_id("vote-error")).to_have_text(
        "此版本由您编写，须由他人投票启用。（self_activation）")
    assert versions(server)[0]["votes"] == []

    # The admin votes with a current code: the quorum of one is met, the version is active.
    admin_page = new_page()
    admin = sign_in(admin_page, server, "admin")
    to_rules(admin_page)
    admin_row = admin_page.get_by_test_id(f"rules-version-{version}")
    admin_row.get_by_test_id("rules-open").click()
    expect(admin_page.get_by_test_id("rules-opened")).to_have_text(
        f"Version {version}, and its changes against the active rules")
    expect(admin_page.get_by_test_id("rules-diff").locator(".fp-diff-add")).to_contain_text(
        ["+  - id: console-test-payee"])
    admin_row.get_by_test_id("rules-vote").click()
    expect(admin_page.get_by_test_id("vote-title")).to_have_text(
        f"Vote to activate version {version}")
    admin_page.get_by_test_id("vote-totp").fill(fresh_code(admin_totp, used_step))
    admin_page.get_by_test_id("vote-submit").click()
    expect(admin_page.get_by_test_id("rules-message")).to_have_text(
        f"Version {version} is now active.")
    expect(admin_row).to_have_attribute("data-state", "active")
    expect(admin_page.get_by_test_id("rules-active-title")).to_have_text(
        f"Active rules: version {version}")
    expect(admin_page.get_by_test_id("rules-active")).to_contain_text("console-test-payee")
    save_screenshot(admin_page, "console-approval-rules.png", settle_ms=300)
    activated = versions(server)[0]
    assert activated["state"] == "active"
    assert [v["name"] for v in activated["votes"]] == [admin]


# --- the audit log ----------------------------------------------------------------------------

AUDIT_S = 60.0  # the server syncs the log every second and signs a checkpoint every 3 s


def payout_by_cashier(server: Server) -> str:
    """A payout the cashier creates through the API, as the operations panel sends it."""
    body = {"kind": "payout", "asset": "USD", "amount": "12.00", "channel": "rtp",
            "counterparty": f"audit-payee-{uuid.uuid4().hex[:6]}",
            "destination": "acct-7700-0042", "reference": f"audit-{uuid.uuid4()}"}
    with server.api("cashier") as api:
        made = api.post("/v1/payments", json=body,
                        headers={"Idempotency-Key": str(uuid.uuid4())})
        assert made.status_code == 201, made.text
        payment_id: str = made.json()["id"]
        return payment_id


def signed_entry(server: Server, actor: str, payment_id: str) -> dict[str, Any]:
    """The log's entry of `actor` creating `payment_id`, once a signed checkpoint covers it."""
    def found() -> dict[str, Any] | None:
        with server.api("auditor") as api:
            entries = _json(api.get("/v1/audit/entries", params={"actor": actor}))["data"]
            latest = _json(api.get("/v1/audit/status"))["latest_checkpoint"]
        mine = [e for e in entries if e["record"]["object"]["id"] == payment_id]
        if not mine or latest is None or latest["size"] <= mine[0]["seq"]:
            return None
        entry: dict[str, Any] = mine[0]
        return entry

    return wait_until(found, within_s=AUDIT_S, poll_s=0.5,
                      what=f"a signed audit entry of {actor} for {payment_id}",
                      detail=server.log_tail)


def test_an_auditor_searches_the_log_by_actor_and_verifies_a_proof_and_the_chain(
        console_server: Server, new_page: Callable[[], Any]) -> None:
    server = console_server
    cashier = server.users["cashier"][0]
    payment_id = payout_by_cashier(server)
    entry = signed_entry(server, cashier, payment_id)
    seq = entry["seq"]

    page = new_page()
    sign_in(page, server, "auditor")
    page.get_by_test_id("nav-audit").click()
    page.wait_for_url("**/console/audit")
    page.wait_for_function("() => window.did_handshake === true")
    expect(page.get_by_test_id("audit-checkpoint")).to_contain_text("Latest checkpoint:")

    page.get_by_test_id("audit-actor").fill(cashier)
    page.get_by_test_id("audit-search").click()
    row = page.get_by_test_id(f"audit-entry-{seq}")
    expect(row).to_have_attribute("data-action", "payment.create")
    expect(page.get_by_test_id("audit-count")).to_have_attribute("data-count", "1")
    expect(row.get_by_test_id("audit-who")).to_have_text(cashier)
    expect(row.get_by_test_id("audit-roles")).to_have_text("cashier")
    expect(row.get_by_test_id("audit-object")).to_have_text(f"payment:{payment_id}")
    request_id = entry["record"]["actor"]["request_id"]
    expect(row.get_by_test_id("audit-request")).to_have_text(request_id or "—")
    expect(row.get_by_test_id("audit-change")).to_have_text('— → {"state": "initiated"}')

    row.get_by_test_id("audit-proof-open").click()
    proof = page.get_by_test_id("audit-proof")
    expect(proof.get_by_test_id("proof-verdict")).to_have_attribute("data-ok", "true")
    expect(proof.get_by_test_id("proof-verdict")).to_contain_text(
        f"Verified here: entry {seq} is in the log")
    expect(proof.get_by_test_id("proof-leaf")).to_have_text(entry["leaf_hash"])
    expect(proof.get_by_test_id("proof-who")).to_have_text(f"{cashier} (cashier)")
    expect(proof.get_by_test_id("proof-action")).to_have_text("payment.create")
    # The root shown is a signed checkpoint's (checkpoints come every few seconds here, so
    # not necessarily the latest by now), and the path shown leads from the entry's leaf to
    # it: checked here with the log's own Merkle code, apart from the console's verdict.
    shown_root = proof.get_by_test_id("proof-root").inner_text().strip()
    with server.api("auditor") as api:
        signed = {c["root"]: c for c in _json(api.get(
            "/v1/audit/checkpoints", params={"limit": 1000}))["data"]}
    assert shown_root in signed, (shown_root, list(signed)[:3])
    size = signed[shown_root]["size"]
    assert size > seq
    path = [line.split()[1] for line in
            proof.get_by_test_id("proof-path").locator("div").all_inner_texts()]
    assert merkle.verify_inclusion(seq, size, bytes.fromhex(entry["leaf_hash"]),
                                   [bytes.fromhex(node) for node in path],
                                   bytes.fromhex(shown_root))
    save_screenshot(page, "console-audit-proof.png", settle_ms=300)
    page.get_by_test_id("audit-proof-close").click()

    page.get_by_test_id("audit-verify").click()
    verdict = page.get_by_test_id("audit-verdict")
    expect(verdict).to_have_attribute("data-ok", "true")
    expect(verdict).to_contain_text("The chain is intact:")
    expect(page.get_by_test_id("audit-finding")).to_have_count(0)
    expect(page.get_by_test_id("audit-last-verify")).to_contain_text("intact")
    page.get_by_test_id("language").click()
    expect(page.get_by_test_id("page-title")).to_have_text("审计日志")
    expect(page.get_by_test_id("audit-last-verify")).to_contain_text("完整")
