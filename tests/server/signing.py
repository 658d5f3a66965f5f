"""Signed approvals through the API, for tests (docs/approvals.md): a `Signer` enrols its
principal's TOTP authenticator (`POST /v1/me/totp`), registers an Ed25519 key with a code
(`POST /v1/me/signing-keys`), reads a payment's approval (`GET /v1/approvals/{id}`) and signs
its `digest` with `cryptography`, then posts the signature to `POST /v1/payments/{id}/approve`
or `POST /v1/approvals/{id}/sign`.

It speaks to any `httpx.Client`: FastAPI's `TestClient` is one, and so is a client of a real
`fundpool serve`. TOTP codes are computed with pyotp from the secret the enrolment gave, on
the wall clock the server reads too; a code is good for its 30-second step and the one before,
and once only, so `code()` hands out each step's code once (waiting for the next step when
both usable ones were used)."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import httpx
import pyotp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

TOTP_STEP_S = 30
EDGE_S = 1.5  # a code computed this close to a step's end may be one step older on arrival


def raw_public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.Raw,
                                             serialization.PublicFormat.Raw)


def public_b64(private: Ed25519PrivateKey) -> str:
    """The public key as `POST /v1/me/signing-keys` takes it: base64 of the 32 raw bytes."""
    return base64.b64encode(raw_public(private)).decode("ascii")


def sign_digest(private: Ed25519PrivateKey, digest_hex: str) -> str:
    """The base64 Ed25519 signature of the 32 bytes `digest_hex` spells."""
    return base64.b64encode(private.sign(bytes.fromhex(digest_hex))).decode("ascii")


def now_step() -> int:
    return int(time.time()) // TOTP_STEP_S


def code_at_step(secret: str, step: int) -> str:
    return pyotp.TOTP(secret).at(step * TOTP_STEP_S)


def _clear_of_the_edge() -> None:
    """Wait out the last moments of a step, so that a code is of the step it was made for."""
    into = time.time() % TOTP_STEP_S
    if into > TOTP_STEP_S - EDGE_S:
        time.sleep(TOTP_STEP_S - into + 0.05)


def sign_in(client: httpx.Client, username: str, password: str) -> dict[str, str]:
    answer = client.post("/v1/sessions", json={"username": username, "password": password})
    assert answer.status_code in (200, 201), answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def add_user(client: httpx.Client, admin: dict[str, str], username: str,
             roles: list[str]) -> dict[str, str]:
    """A user made through the API (`POST /v1/users`), signed in: its headers."""
    password = f"{username}-password-{uuid.uuid4().hex[:8]}"
    made = client.post("/v1/users", headers=admin, json={"username": username,
                                                          "password": password,
                                                          "roles": roles})
    assert made.status_code in (200, 201), made.text
    return sign_in(client, username, password)


class Codes:
    """The TOTP codes of one secret, each step's handed out once."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.used_step = -1  # the last step a code was handed out for

    def code(self) -> str:
        """A code of a step not used yet: the one before now, now's, or the next one."""
        _clear_of_the_edge()
        step = now_step()
        if self.used_step >= step:
            time.sleep(TOTP_STEP_S - time.time() % TOTP_STEP_S + 0.05)
            step = now_step()
        self.used_step = max(step - 1, self.used_step + 1)
        return code_at_step(self.secret, self.used_step)

    def current(self) -> str:
        """A code of the current step (waiting for the next one if it was used): it stays good
        for 30 s at least, so that a test may send it twice (a reuse)."""
        _clear_of_the_edge()
        if self.used_step >= now_step():
            time.sleep(TOTP_STEP_S - time.time() % TOTP_STEP_S + 0.05)
        self.used_step = now_step()
        return code_at_step(self.secret, self.used_step)


class Signer:
    """A principal (its `headers`) that has, once `enrol()` is called, a TOTP authenticator
    and a registered signing key."""

    def __init__(self, client: httpx.Client, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers
        self.private = Ed25519PrivateKey.generate()
        self.codes = Codes("")
        self.key_id = ""

    @property
    def secret(self) -> str:
        return self.codes.secret

    @classmethod
    def enrolled(cls, client: httpx.Client, headers: dict[str, str],
                 name: str = "laptop") -> Signer:
        signer = cls(client, headers)
        signer.enrol(name)
        return signer

    # --- TOTP ------------------------------------------------------------------------------

    def begin_totp(self) -> str:
        begun = self.client.post("/v1/me/totp", headers=self.headers)
        assert begun.status_code == 200, begun.text
        assert begun.json()["uri"].startswith("otpauth://totp/")
        self.codes = Codes(str(begun.json()["secret"]))
        return self.secret

    def code(self) -> str:
        return self.codes.code()

    def current_code(self) -> str:
        return self.codes.current()

    # --- keys ------------------------------------------------------------------------------

    def register(self, public_key: str, name: str = "laptop",
                 totp: str | None = None) -> httpx.Response:
        return self.client.post("/v1/me/signing-keys", headers=self.headers, json={
            "public_key": public_key, "name": name,
            "totp": self.code() if totp is None else totp})

    def enrol(self, name: str = "laptop") -> str:
        """Begin TOTP enrolment and register this signer's key with a code (which confirms
        the enrolment): the key's id."""
        self.begin_totp()
        made = self.register(public_b64(self.private), name)
        assert made.status_code == 201, made.text
        self.key_id = str(made.json()["id"])
        return self.key_id

    # --- approvals -------------------------------------------------------------------------

    def approval(self, payment_id: str) -> dict[str, Any]:
        answer = self.client.get(f"/v1/approvals/{payment_id}", headers=self.headers)
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def body(self, payment_id: str, **changes: Any) -> dict[str, Any]:
        """What `/approve` and `/sign` take: this signer's signature of the payment's digest as
        `GET /v1/approvals/{id}` gives it now (with a TOTP code when the approval asks for
        one), `changes` put over it."""
        view = self.approval(payment_id)
        body: dict[str, Any] = {"key_id": self.key_id, "digest": view["digest"],
                                "signature": sign_digest(self.private, view["digest"])}
        if view["totp_required"]:
            body["totp"] = self.code()
        body.update(changes)
        return body

    def approve(self, payment_id: str, **changes: Any) -> httpx.Response:
        """`POST /v1/payments/{id}/approve` with a signature."""
        return self.client.post(f"/v1/payments/{payment_id}/approve", headers=self.headers,
                                json=self.body(payment_id, **changes))

    def sign(self, payment_id: str, **changes: Any) -> httpx.Response:
        """`POST /v1/approvals/{id}/sign` with a signature."""
        return self.client.post(f"/v1/approvals/{payment_id}/sign", headers=self.headers,
                                json=self.body(payment_id, **changes))
