"""What the approvals browser tests share: users made through the API, a signing key made in the
browser on the keys page (the TOTP code computed with pyotp from the secret the page shows),
or made here and registered through the API (then imported into a browser from its PEM file),
payouts that wait for approval, and approval rules activated through the API."""

from __future__ import annotations

import base64
import hashlib
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyotp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.console.harness import Server, expect
from tests.waiting import wait_until

LIVE_S = 60.0  # what the server's engine does on its own clock (screen, route, submit)
SETTLE_S = 120.0
TOTP_STEP_S = 30


@dataclass(frozen=True)
class User:
    username: str
    password: str

    def api(self, server: Server) -> httpx.Client:
        token = server.sign_in(self.username, self.password)
        return httpx.Client(base_url=server.base, timeout=30,
                            headers={"Authorization": f"Bearer {token}"})


def add_user(server: Server, username: str, roles: list[str]) -> User:
    password = f"{username}-password-{uuid.uuid4().hex[:6]}"
    with server.api("admin") as api:
        made = api.post("/v1/users", json={"username": username, "password": password,
                                           "roles": roles},
                        headers={"Idempotency-Key": str(uuid.uuid4())})
        assert made.status_code in (200, 201), made.text
    return User(username, password)


def known_user(server: Server, role: str) -> User:
    username, password = server.users[role]
    return User(username, password)


def sign_in_as(page: Any, server: Server, user: User) -> None:
    """Through the login page, as a person does."""
    page.goto(server.url("/console/login"))
    page.wait_for_function("() => window.did_handshake === true")
    page.get_by_test_id("username").fill(user.username)
    page.get_by_test_id("password").fill(user.password)
    page.get_by_test_id("submit").click()
    page.wait_for_url(server.url("/console/"))
    page.wait_for_function("() => window.did_handshake === true")


def to_keys(page: Any) -> None:
    """To the keys page from the header, and once the browser's key has been read."""
    page.get_by_test_id("nav-keys").click()
    page.wait_for_url("**/console/keys")
    page.wait_for_function("() => window.did_handshake === true")
    expect(page.get_by_test_id("key-import")).to_be_visible()


def to_inbox(page: Any) -> None:
    page.get_by_test_id("nav-approvals").click()
    page.wait_for_url("**/console/approvals")
    page.wait_for_function("() => window.did_handshake === true")


def enrol_in_browser(page: Any, name: str = "laptop") -> tuple[str, str]:
    """On the keys page: begin the authenticator's enrolment, read its secret off the page,
    create a key in the browser and register it with the current code. (secret, key id)."""
    to_keys(page)
    page.get_by_test_id("totp-begin").click()
    shown = page.get_by_test_id("totp-secret")
    expect(shown).to_be_visible()
    secret = str(shown.get_attribute("data-secret"))
    assert shown.inner_text().replace(" ", "") == secret  # grouped for typing, same letters
    expect(page.get_by_test_id("totp-uri")).to_contain_text("otpauth://totp/")
    page.get_by_test_id("key-name").fill(name)
    page.get_by_test_id("totp-code").fill(code_at_step(secret, int(time.time()) // TOTP_STEP_S))
    page.get_by_test_id("key-create").click()
    expect(page.get_by_test_id("browser-key-state")).to_have_attribute("data-state",
                                                                       "registered")
    key_id = str(page.get_by_test_id("browser-key-id").get_attribute("data-key-id"))
    expect(page.get_by_test_id(f"key-{key_id}")).to_have_attribute("data-state", "active")
    return secret, key_id


@dataclass(frozen=True)
class ApiKey:
    """A key made here and registered through the API, with its PEM file for a browser."""

    private: Ed25519PrivateKey
    key_id: str
    secret: str
    pem: Path


def key_id_of(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


_USED_STEPS: dict[str, int] = {}  # secret -> the last TOTP step a code of it was used for


def code_at_step(secret: str, step: int) -> str:
    _USED_STEPS[secret] = max(step, _USED_STEPS.get(secret, 0))
    return pyotp.TOTP(secret).at(step * TOTP_STEP_S)


def previous_code(secret: str) -> str:
    """The code of the step before this one: still accepted, and it leaves the current step's
    code for the user's next action (a code is good once)."""
    return code_at_step(secret, int(time.time()) // TOTP_STEP_S - 1)


def fresh_code(secret: str, what: str) -> str:
    """A code of a step later than any this test used for `secret` (waiting for the next
    step, at most one, when the current one was used)."""
    used = _USED_STEPS.get(secret, -1)
    wait_until(lambda: int(time.time()) // TOTP_STEP_S > used, within_s=TOTP_STEP_S + 5,
               poll_s=0.2, what=f"the next TOTP step for {what}")
    return code_at_step(secret, int(time.time()) // TOTP_STEP_S)


def enrol_by_api(api: httpx.Client, folder: Path, name: str) -> ApiKey:
    begun = api.post("/v1/me/totp")
    assert begun.status_code == 200, begun.text
    secret = str(begun.json()["secret"])
    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
    body = {"public_key": base64.b64encode(raw).decode(), "name": name,
            "totp": previous_code(secret)}
    made = api.post("/v1/me/signing-keys", json=body)
    if made.status_code != 201 and made.json().get("code") == "totp_expired":
        made = api.post("/v1/me/signing-keys", json={**body, "totp": fresh_code(secret, name)})
    assert made.status_code == 201, made.text
    assert made.json()["id"] == key_id_of(raw)
    pem = folder / f"{name}.pem"
    pem.write_bytes(private.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return ApiKey(private, key_id_of(raw), secret, pem)


def import_key(page: Any, pem: Path) -> None:
    """On the keys page: choose the PEM file with "Import a key file"."""
    to_keys(page)
    page.get_by_test_id("key-import-file").set_input_files(str(pem))
    expect(page.get_by_test_id("browser-key-state")).to_have_attribute("data-state",
                                                                       "registered")


def activate_rules(server: Server, author: User, voter: httpx.Client, voter_secret: str,
                   text: str) -> int:
    """Draft `text` as `author` and activate it with `voter`'s vote (the first version's
    governance: one admin, never the author)."""
    with author.api(server) as api:
        drafted = api.post("/v1/approval-rules", json={"text": text, "note": "console tests"},
                           headers={"Idempotency-Key": str(uuid.uuid4())})
        assert drafted.status_code == 201, drafted.text
        version = int(drafted.json()["version"])
    voted = voter.post(f"/v1/approval-rules/{version}/approve",
                       json={"totp": fresh_code(voter_secret, "the vote")})
    assert voted.status_code == 200, voted.text
    assert voted.json()["state"] == "active", voted.json()
    return version


def activate_policy(server: Server, admin: httpx.Client, version: int) -> None:
    """Activate risk policy `version` as the admin, with a TOTP code (issue 17: policy
    activation is a sensitive action); the admin's authenticator is enrolled here when it
    is not yet."""
    enrolled = admin.get("/v1/me/totp").json().get("enrolled")
    secret = _ADMIN_SECRETS.get(server.base)
    if not enrolled or secret is None:
        with tempfile.TemporaryDirectory(prefix="fundpool-admin-") as folder:
            secret = _ADMIN_SECRETS[server.base] = enrol_by_api(admin, Path(folder),
                                                               "admin-policy").secret
    done = admin.post(f"/v1/risk/policies/{version}/activate",
                      json={"totp": fresh_code(secret, "the policy's activation")})
    assert done.status_code == 200, done.text


_ADMIN_SECRETS: dict[str, str] = {}  # per server: the admin's TOTP secret, once enrolled


def admin_secret(server: Server) -> str:
    """The admin's TOTP secret on `server` (enrolled by `activate_policy`)."""
    return _ADMIN_SECRETS[server.base]


def payment_of(server: Server, payment_id: str) -> dict[str, Any]:
    with server.api("auditor") as api:
        answer = api.get(f"/v1/payments/{payment_id}")
        answer.raise_for_status()
        found: dict[str, Any] = answer.json()
        return found


def approval_of(server: Server, payment_id: str) -> dict[str, Any]:
    with server.api("auditor") as api:
        answer = api.get(f"/v1/approvals/{payment_id}")
        answer.raise_for_status()
        found: dict[str, Any] = answer.json()
        return found


def waiting_payout(server: Server, api: httpx.Client, amount: str, payee: str,
                   destination: str = "acct-7700-0042") -> str:
    """A payout created through `api`, once it waits for approval (the engine screens and
    routes it by itself)."""
    body = {"kind": "payout", "asset": "USD", "amount": amount, "counterparty": payee,
            "destination": destination, "reference": f"sign-{uuid.uuid4()}"}
    made = api.post("/v1/payments", json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert made.status_code == 201, made.text
    payment_id: str = made.json()["id"]
    wait_until(lambda: payment_of(server, payment_id)["state"] == "pending_approval",
               within_s=LIVE_S, what=f"payout {payment_id} to wait for approval",
               detail=lambda: (payment_of(server, payment_id), server.log_tail()))
    return payment_id


def open_payment(page: Any, payment_id: str) -> Any:
    """Click the payment's row in the inbox; its dialog."""
    row = page.get_by_test_id(f"waiting-{payment_id}")
    expect(row).to_be_visible()
    row.click()
    dialog = page.get_by_test_id("decision")
    expect(dialog.get_by_test_id("decision-title")).to_contain_text(payment_id)
    return dialog
