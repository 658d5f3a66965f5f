"""Signed approvals through the API (docs/approvals.md), on the app `fundpool serve` runs: no
route approves a payment without a valid signature by a registered key (nor does the CLI on a
local store); a payment that needs two signatures takes two people, each once; every route's
bad input (signatures, public keys, TOTP codes, rules) answers a problem with its stable code
and changes nothing; and separation of duties holds whatever the role: nobody changes their
own roles, nobody activates the risk policy they wrote, and activations need a TOTP code."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from fundpool.auth.roles import Role
from fundpool.cli.main import app as cli_app
from tests.server.api_helpers import EXAMPLE, Server, assert_problem, running_server
from tests.server.signing import Signer, add_user, code_at_step, now_step, public_b64, sign_digest
from tests.server.test_api_payments import waiting_for_approval

RULES = """\
groups:
  leads: [lead-1, lead-2, lead-3]
governance: {quorum: 1, roles: [admin]}
rules:
  - id: big
    name: Big payouts need two leads
    when:
      - kind: [payout]
        amount_at_least: {USD: 1000000}
    require: {approvers: 2, group: leads}
"""
RISK_POLICY = """\
thresholds: {review: 30, hold: 60, block: 90}
groups:
  - name: payouts
    when:
      - payment: {kinds: [payout]}
    score: 40
"""


class People:
    """Users made through the API when a test first needs them (a password costs an argon2
    hash), signed in: `boss` (admin), `writer` (risk: drafts rules and policies), `rita`
    (risk), and `lead(i)`: lead-i (approver)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._made: dict[str, Signer] = {}

    def person(self, username: str, role: str) -> Signer:
        if username not in self._made:
            client = self.server.client
            self._made[username] = Signer(client, add_user(client, self.server.admin,
                                                             username, [role]))
        return self._made[username]

    @property
    def boss(self) -> Signer:
        return self.person("boss", "admin")

    @property
    def writer(self) -> Signer:
        return self.person("writer", "risk")

    @property
    def rita(self) -> Signer:
        return self.person("rita", "risk")

    def lead(self, number: int) -> Signer:
        return self.person(f"lead-{number}", "approver")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path / "data", engine=False) as running:
        running.fund("bank-a", "USD", "50000.00")
        yield running


@pytest.fixture
def people(server: Server) -> People:
    return People(server)


def state(server: Server, payment_id: str) -> str:
    return str(server.get(f"/v1/payments/{payment_id}")["state"])


def signed(server: Server, payment_id: str) -> list[list[str]]:
    """Who signed each stage of the payment's approval."""
    view = server.get(f"/v1/approvals/{payment_id}")
    return [[s["name"] for s in stage["signed"]] for stage in view["stages"]]


def my_keys(signer: Signer) -> list[dict[str, Any]]:
    answer = signer.client.get("/v1/me/signing-keys", headers=signer.headers)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["data"]
    return found


def activate_rules(server: Server, people: People, text: str) -> int:
    """`text` drafted by the writer and activated by the boss's vote (the first version's
    governance: one admin, never the author)."""
    boss, writer = people.boss, people.writer  # the governance's voter, the author
    drafted = server.client.post("/v1/approval-rules", headers=writer.headers,
                                 json={"text": text, "note": "tests"})
    assert drafted.status_code == 201, drafted.text
    version = int(drafted.json()["version"])
    if not boss.key_id:
        boss.enrol()
    voted = server.client.post(f"/v1/approval-rules/{version}/approve",
                               headers=boss.headers, json={"totp": boss.code()})
    assert voted.status_code == 200, voted.text
    assert voted.json()["state"] == "active"
    return version


# --- signatures ------------------------------------------------------------------------------


def test_two_of_three_leads_sign_each_once(server: Server, people: People) -> None:
    activate_rules(server, people, RULES)
    payment = waiting_for_approval(server, server.admin)["id"]
    first, second = people.lead(1), people.lead(2)
    first.enrol()
    second.enrol()
    view = first.approval(payment)
    assert [(s["rule_id"], s["approvers"], s["eligible"]) for s in view["stages"]] == [
        ("big", 2, 3)]
    signed_once = first.sign(payment)
    assert signed_once.status_code == 200, signed_once.text
    assert signed_once.json()["state"] == "waiting"
    assert signed_once.json()["you"]["why_not"] == "already_signed"
    # The same approver again, with a fresh signature or the same one (a replay), by either
    # route: refused, and still one signature.
    assert_problem(first.sign(payment), 409, "already_signed")
    assert_problem(first.approve(payment), 409, "already_signed")
    # An admin holds payments:approve, and is not a lead (enrolled: it voted the rules in).
    assert_problem(people.boss.sign(payment), 403, "not_eligible")
    assert signed(server, payment) == [["lead-1"]]
    assert state(server, payment) == "pending_approval"
    done = second.approve(payment)
    assert done.status_code == 200, done.text
    assert (done.json()["state"], done.json()["payment"]["state"]) == ("approved", "approved")
    assert signed(server, payment) == [["lead-1", "lead-2"]]
    approve = server.get(f"/v1/payments/{payment}/events")[-1]
    assert (approve["action"], approve["actor"]["name"]) == ("approve", "lead-2")


def test_no_route_approves_without_a_valid_signature(server: Server) -> None:
    payment = waiting_for_approval(server, server.admin)["id"]
    other = waiting_for_approval(server, server.admin)["id"]
    approver = Signer.enrolled(server.client, server.as_role(Role.APPROVER))
    someone = Signer.enrolled(server.client, server.as_role(Role.APPROVER))
    sign_path, approve_path = f"/v1/approvals/{payment}/sign", f"/v1/payments/{payment}/approve"
    post = server.client.post
    assert_problem(post(approve_path, headers=approver.headers), 400, "signature_required")
    assert_problem(post(approve_path, headers=approver.headers, json={}), 400,
                   "signature_required")
    assert_problem(post(sign_path, headers=approver.headers), 400, "signature_required")
    assert_problem(approver.sign(payment, key_id=None), 400, "signature_required")
    digest = approver.approval(payment)["digest"]
    theirs = approver.body(other)  # a good signature, of the other payment
    cases: list[tuple[dict[str, Any], int, str]] = [
        (theirs, 409, "payment_changed"),  # another payment's signature and digest
        ({**theirs, "digest": digest}, 403, "signature_mismatch"),  # this digest, its signature
        ({"signature": sign_digest(Ed25519PrivateKey.generate(), digest)}, 403,
         "signature_mismatch"),  # forged: a key nobody registered
        ({"key_id": someone.key_id}, 403, "unknown_signing_key"),  # another's key
        ({"key_id": "0" * 16}, 403, "unknown_signing_key"),
        ({"signature": base64.b64encode(b"\x01" * 63).decode()}, 400, "invalid_signature"),
        ({"signature": base64.b64encode(b"\x01" * 65).decode()}, 400, "invalid_signature"),
        ({"signature": "not base64!"}, 400, "invalid_signature"),
        ({"digest": "zz" * 32}, 400, "invalid_approval_input"),
        ({"digest": digest[:-2]}, 400, "invalid_approval_input"),
    ]
    for changes, status, code in cases:
        for path in (sign_path, approve_path):
            body = {**approver.body(payment), **changes}
            assert_problem(post(path, headers=approver.headers, json=body), status, code)
    assert_problem(post(f"/v1/approvals/{payment}/reject", headers=approver.headers,
                        json={"reason": " "}), 400, "invalid_approval_input")
    assert_problem(post(f"/v1/approvals/{payment}/cancel", headers=approver.headers,
                        json={"reason": "no"}), 409, "not_waiting")  # no delay window
    # The CLI on the local store neither: `fundpool approve` signs with a key file.
    result = CliRunner().invoke(cli_app, [
        "payment", "act", payment, "approve", "--config", str(EXAMPLE),
        "--data-dir", str(server.api.settings.data_dir), "--json"])
    assert result.exit_code == 2, result.output
    assert json.loads(result.stdout)["code"] == "signature_required"
    for pid in (payment, other):
        assert state(server, pid) == "pending_approval"
        assert signed(server, pid) == [[]]
        assert len(server.get(f"/v1/payments/{pid}/events")) == 4
    # Refused only for what was wrong: the approver's good signature approves it.
    approved = approver.sign(payment)
    assert approved.status_code == 200, approved.text
    assert state(server, payment) == "approved"


# --- keys and TOTP ---------------------------------------------------------------------------


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo
                                         ).decode()


def test_bad_keys_and_totp_codes_register_nothing(server: Server, people: People) -> None:
    lead = people.lead(1)
    assert_problem(lead.register(public_b64(lead.private), totp="123456"), 403,
                   "totp_not_enrolled")
    lead.begin_totp()
    good = public_b64(lead.private)
    wrong_keys = [
        pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        pem(ec.generate_private_key(ec.SECP256R1())),
        base64.b64encode(b"\x02" * 31).decode(),  # one byte short
        base64.b64encode(b"\x02" * 33).decode(),
        "not a key at all!",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
    ]
    for text in wrong_keys:
        # Refused before the code is looked at: a good code, never spent.
        assert_problem(lead.register(text, totp=code_at_step(lead.secret, now_step())), 400,
                       "invalid_public_key")
    stale = code_at_step(lead.secret, now_step() - 3)  # a minute and a half old
    assert_problem(lead.register(good, totp=stale), 403, "totp_expired")
    assert_problem(lead.register(good, totp="12ab56"), 403, "totp_invalid")
    assert_problem(lead.client.post("/v1/me/signing-keys", headers=lead.headers,
                                    json={"public_key": good, "name": "laptop"}),
                   403, "totp_required")
    assert my_keys(lead) == []
    totp = lead.client.get("/v1/me/totp", headers=lead.headers).json()
    assert (totp["enrolled"], totp["pending"]) == (False, True)

    code = lead.current_code()
    made = lead.register(good, totp=code)
    assert made.status_code == 201, made.text
    lead.key_id = made.json()["id"]
    assert lead.client.get("/v1/me/totp", headers=lead.headers).json()["enrolled"] is True
    # The same key again: by its owner, or by another (whose code is not spent on it).
    assert_problem(lead.register(good, totp=code), 409, "key_already_registered")
    other = people.lead(2)
    other.begin_totp()
    assert_problem(other.register(good, totp=code_at_step(other.secret, now_step())), 409,
                   "key_already_registered")
    assert my_keys(other) == []
    # A code is good once: a second key, or a revocation, with the code just used.
    second = public_b64(Ed25519PrivateKey.generate())
    assert_problem(lead.register(second, totp=code), 403, "totp_reused")
    assert_problem(lead.client.post(f"/v1/me/signing-keys/{lead.key_id}/revoke",
                                    headers=lead.headers, json={"totp": code}),
                   403, "totp_reused")
    assert_problem(lead.client.post(f"/v1/me/signing-keys/{lead.key_id}/revoke",
                                    headers=lead.headers, json={"totp": stale}),
                   403, "totp_expired")
    assert [(k["id"], k["revoked_at_us"]) for k in my_keys(lead)] == [(lead.key_id, None)]
    # Enrolled once: a new secret is refused (the one enrolled stays).
    assert_problem(lead.client.post("/v1/me/totp", headers=lead.headers), 409,
                   "totp_already_enrolled")
    assert_problem(lead.register(second, totp=code_at_step(lead.secret, now_step() - 3)),
                   403, "totp_expired")
    every = server.get("/v1/signing-keys", server.as_role(Role.AUDITOR))["data"]
    assert [(k["id"], k["username"]) for k in every] == [(lead.key_id, "lead-1")]


# --- rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "line", "field"), [
    (RULES + "    colour: red\n", 11, "rules[0].colour"),  # an unknown field
    (RULES + "colour: red\n", 11, "colour"),
    (RULES.replace("approvers: 2, group: leads", "approvers: 4, group: leads"), 10,
     "rules[0].require.approvers"),  # M > N: the group has 3
    (RULES.replace("approvers: 2, group: leads", "approvers: 4, roles: [approver]"), 10,
     "rules[0].require.approvers"),  # M > N: fewer users hold the role
])
def test_bad_rules_are_refused_with_the_line_and_nothing_is_drafted(
        server: Server, people: People, text: str, line: int, field: str) -> None:
    for path in ("/v1/approval-rules/validate", "/v1/approval-rules"):
        problem = assert_problem(server.client.post(path, headers=people.writer.headers,
                                                    json={"text": text}),
                                 400, "invalid_approval_rules")
        assert (problem["facts"]["line"], problem["facts"]["field"]) == (line, field)
    assert server.get("/v1/approval-rules")["data"] == []
    assert_problem(server.client.get("/v1/approval-rules/1", headers=server.admin), 404,
                   "unknown_rules_version")


def test_rules_are_activated_by_another_with_a_totp_code(server: Server,
                                                         people: People) -> None:
    boss = people.boss  # an admin user: the governance's voter
    drafted = server.client.post("/v1/approval-rules", headers=people.writer.headers,
                                 json={"text": RULES})
    assert drafted.status_code == 201, drafted.text
    vote = f"/v1/approval-rules/{drafted.json()['version']}/approve"
    assert_problem(server.client.post(vote, headers=people.writer.headers, json={}), 403,
                   "self_activation")  # its author, whatever the governance says
    assert_problem(server.client.post(vote, headers=boss.headers, json={}), 403,
                   "totp_not_enrolled")
    boss.enrol()
    assert_problem(server.client.post(vote, headers=boss.headers, json={}), 403,
                   "totp_required")
    assert_problem(server.client.post(vote, headers=boss.headers, json={
        "totp": code_at_step(boss.secret, now_step() - 3)}), 403, "totp_expired")
    assert [v["state"] for v in server.get("/v1/approval-rules")["data"]] == ["draft"]
    voted = server.client.post(vote, headers=boss.headers, json={"totp": boss.code()})
    assert voted.status_code == 200, voted.text
    assert (voted.json()["state"], [v["name"] for v in voted.json()["votes"]]) == (
        "active", ["boss"])


# --- separation of duties --------------------------------------------------------------------


def test_nobody_changes_their_own_roles(server: Server, people: People) -> None:
    boss = people.boss
    boss.enrol()
    code = boss.current_code()
    mine = server.client.post("/v1/users/boss/roles", headers=boss.headers,
                              json={"roles": ["admin", "approver"], "totp": code})
    assert_problem(mine, 403, "self_grant")
    people.lead(1)
    roles = {u["username"]: u["roles"] for u in server.get("/v1/users")}
    assert (roles["boss"], roles["lead-1"]) == (["admin"], ["approver"])
    theirs = "/v1/users/lead-1/roles"
    assert_problem(server.client.post(theirs, headers=boss.headers,
                                      json={"roles": ["approver", "risk"]}),
                   403, "totp_required")
    # The refused self-grant spent no code: the same one changes another's roles.
    changed = server.client.post(theirs, headers=boss.headers,
                                 json={"roles": ["approver", "risk"], "totp": code})
    assert changed.status_code == 200, changed.text
    assert sorted(changed.json()["roles"]) == ["approver", "risk"]
    assert_problem(server.client.post(theirs, headers=boss.headers,
                                      json={"roles": ["approver"], "totp": code}),
                   403, "totp_reused")


def test_a_risk_policys_author_never_activates_it_even_an_admin(server: Server,
                                                                people: People) -> None:
    boss, rita = people.boss, people.rita
    drafted = server.client.post("/v1/risk/policies", headers=boss.headers,
                                 json={"text": RISK_POLICY, "note": "the boss's own"})
    assert drafted.status_code == 201, drafted.text
    activate = f"/v1/risk/policies/{drafted.json()['version']}/activate"
    boss.enrol()
    problem = assert_problem(server.client.post(activate, headers=boss.headers,
                                                json={"totp": boss.code()}),
                             403, "self_activation")
    assert problem["facts"]["author"] == "boss"
    rita.enrol()
    assert_problem(server.client.post(activate, headers=rita.headers), 403, "totp_required")
    assert_problem(server.client.post(activate, headers=rita.headers, json={
        "totp": code_at_step(rita.secret, now_step() - 3)}), 403, "totp_expired")
    assert server.get("/v1/risk/policies/active")["policy"] is None
    activated = server.client.post(activate, headers=rita.headers, json={"totp": rita.code()})
    assert activated.status_code == 200, activated.text
    active = server.get("/v1/risk/policies/active")["policy"]
    assert active["version"] == drafted.json()["version"]
