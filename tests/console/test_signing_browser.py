"""Signed approvals in a real browser, against a live server (tests/console/conftest.py): keys
made in the browser (WebCrypto Ed25519, kept in IndexedDB) and registered with a TOTP code
read off the keys page; the inbox of approval rules' stages; signatures made in the browser.

The acceptance test: approval rules (activated through the API) ask two of a group of three
for payouts to one payee. A cashier who is also in the group creates one; they sign in, make a
key, open it from the inbox and sign it: refused, four eyes, said on the page. Two other
members each make a key in their own browser, open the payment by clicking and sign it; the
payment then moves on by itself and settles. A user whose browser holds no key is told so and
led to the keys page; a key exported from one browser signs in another after import."""

from __future__ import annotations

import base64
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.console.approvers import (
    SETTLE_S,
    User,
    activate_rules,
    add_user,
    approval_of,
    enrol_by_api,
    enrol_in_browser,
    import_key,
    key_id_of,
    known_user,
    open_payment,
    payment_of,
    sign_in_as,
    to_inbox,
    to_keys,
    waiting_payout,
)
from tests.console.harness import Server, expect
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
SMALL_USD = "2500.00"  # under the pool's threshold: it waits because the rule says so
LARGE_USD = "25000.00"  # above the pool's USD approval threshold (10,000.00)


@dataclass(frozen=True)
class Signers:
    maker: User  # cashier and approver: initiates, and is one of the group
    first: User
    second: User
    outsider: User  # an approver outside the group, for the export/import test
    payee: str
    rule_name: str


@pytest.fixture(scope="module")
def signers(console_server: Server) -> Signers:
    server = console_server
    tag = uuid.uuid4().hex[:6]
    maker = add_user(server, f"maker-{tag}", ["cashier", "approver"])
    first = add_user(server, f"signer-a-{tag}", ["approver"])
    second = add_user(server, f"signer-b-{tag}", ["approver"])
    outsider = add_user(server, f"signer-c-{tag}", ["approver"])
    payee = f"vendor-{tag}"
    rule_name = f"Payouts to {payee} need two of the signers"
    rules = f"""
groups:
  signers: [{maker.username}, {first.username}, {second.username}]
governance:
  quorum: 1
  roles: [admin]
rules:
  - id: two-signers
    name: {rule_name}
    when:
      - kind: [payout]
        counterparty: [{payee}]
    require:
      approvers: 2
      group: signers
"""
    with tempfile.TemporaryDirectory(prefix="fundpool-keys-") as folder, \
            server.api("admin") as admin:
        voter = enrol_by_api(admin, Path(folder), "admin-vote")
        activate_rules(server, known_user(server, "risk"), admin, voter.secret, rules)
    return Signers(maker, first, second, outsider, payee, rule_name)


def test_two_of_three_sign_in_their_browsers_and_the_payment_settles(
        console_server: Server, signers: Signers, new_page: Callable[[], Any]) -> None:
    server = console_server
    with signers.maker.api(server) as maker_api:
        payment_id = waiting_payout(server, maker_api, SMALL_USD, signers.payee)
    approval = approval_of(server, payment_id)
    assert [s["rule_id"] for s in approval["stages"]] == ["two-signers"]

    # The initiator, also one of the group, signs: four eyes, refused by the API.
    page = new_page()
    sign_in_as(page, server, signers.maker)
    enrol_in_browser(page, "maker's laptop")
    to_inbox(page)
    row = page.get_by_test_id(f"waiting-{payment_id}")
    expect(row.locator('[data-col="signatures"]')).to_have_text("0 of 2 signed")
    expect(row.locator('[data-col="rules"]')).to_have_text(signers.rule_name)
    expect(row.locator('[data-col="initiator"]')).to_have_text(signers.maker.username)
    dialog = open_payment(page, payment_id)
    expect(dialog.get_by_test_id("decision-why")).to_have_attribute("data-why",
                                                                    "self_approval")
    expect(dialog.get_by_test_id("decision-key-here")).to_be_visible()
    dialog.get_by_test_id("decision-sign").click()
    expect(dialog.get_by_test_id("decision-error")).to_have_text(
        "You initiated this payment: another person must approve it.")
    assert approval_of(server, payment_id)["stages"][0]["signed"] == []
    assert payment_of(server, payment_id)["state"] == "pending_approval"

    # Two other members of the group, each in their own browser.
    for signed, user in enumerate((signers.first, signers.second), start=1):
        page = new_page()
        sign_in_as(page, server, user)
        _, key_id = enrol_in_browser(page)
        to_inbox(page)
        dialog = open_payment(page, payment_id)
        now = approval_of(server, payment_id)
        expect(dialog.get_by_test_id("decision-digest")).to_have_text(now["digest"])
        expect(dialog.get_by_test_id("document-amount")).to_have_text("2,500.00 USD")
        expect(dialog.get_by_test_id("document-payee")).to_have_text(signers.payee)
        expect(dialog.get_by_test_id("document-destination")).to_have_text("acct-7700-0042")
        expect(dialog.get_by_test_id("decision-key-here")).to_have_attribute("data-key-id",
                                                                             key_id)
        expect(dialog.get_by_test_id("decision-why")).to_have_attribute("data-why", "")
        dialog.get_by_test_id("decision-sign").click()
        stage = dialog.get_by_test_id("stage-0")
        expect(stage).to_have_attribute("data-signed", str(signed))
        expect(stage.locator(f'[data-name="{user.username}"]')).to_contain_text(key_id)
        if signed == 1:
            expect(dialog.get_by_test_id("decision-approval-state")).to_have_attribute(
                "data-state", "waiting")
            expect(page.get_by_test_id(f"waiting-{payment_id}")
                   .locator('[data-col="signatures"]')).to_have_text("1 of 2 signed")
        else:
            expect(dialog.get_by_test_id("decision-approval-state")).to_have_attribute(
                "data-state", "approved")
            expect(dialog.get_by_test_id("decision-sign")).to_be_hidden()
            expect(page.get_by_test_id(f"waiting-{payment_id}")).to_have_count(0)

    done = approval_of(server, payment_id)
    assert [s["name"] for s in done["stages"][0]["signed"]] == [signers.first.username,
                                                                signers.second.username]
    wait_until(lambda: payment_of(server, payment_id)["state"] == "settled",
               within_s=SETTLE_S, what=f"payout {payment_id} to settle once signed",
               detail=lambda: (payment_of(server, payment_id), server.log_tail()))


def test_a_user_without_a_key_is_led_to_the_keys_page(
        console_server: Server, signers: Signers, new_page: Callable[[], Any]) -> None:
    server = console_server
    with server.api("cashier") as cashier:
        payment_id = waiting_payout(server, cashier, LARGE_USD, f"desk-{uuid.uuid4().hex[:8]}")
    page = new_page()
    sign_in_as(page, server, known_user(server, "approver"))
    to_inbox(page)
    dialog = open_payment(page, payment_id)
    expect(dialog.get_by_test_id("decision-why")).to_have_attribute("data-why",
                                                                    "no_signing_key")
    expect(dialog.get_by_test_id("decision-key-missing")).to_have_text(
        "This browser holds no signing key of yours: create or import one on your keys page "
        "to sign.")
    dialog.get_by_test_id("decision-key-link").click()
    page.wait_for_url("**/console/keys")
    page.wait_for_function("() => window.did_handshake === true")
    expect(page.get_by_test_id("browser-none")).to_be_visible()
    expect(page.get_by_test_id("key-create")).to_be_visible()
    expect(page.get_by_test_id("totp-begin")).to_be_visible()
    assert payment_of(server, payment_id)["state"] == "pending_approval"


def test_an_exported_key_is_the_cli_s_file_and_signs_in_another_browser(
        console_server: Server, signers: Signers, new_page: Callable[[], Any],
        tmp_path: Path) -> None:
    server = console_server
    page = new_page()
    sign_in_as(page, server, signers.outsider)
    _, key_id = enrol_in_browser(page, "desk")
    with page.expect_download() as download:
        page.get_by_test_id("key-export").click()
    pem = tmp_path / "exported.pem"
    download.value.save_as(str(pem))
    # The file `fundpool approve --key FILE` reads: an unencrypted PKCS#8 Ed25519 key, whose
    # public half is the registered one.
    private = serialization.load_pem_private_key(pem.read_bytes(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    raw = private.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
    assert key_id_of(raw) == key_id
    with signers.outsider.api(server) as api:
        (registered,) = [k for k in api.get("/v1/me/signing-keys").json()["data"]
                         if k["id"] == key_id]
    assert base64.b64decode(registered["public_key"]) == raw

    other = new_page()  # another browser: no key until the file is imported
    sign_in_as(other, server, signers.outsider)
    to_keys(other)
    expect(other.get_by_test_id("browser-none")).to_be_visible()
    import_key(other, pem)
    expect(other.get_by_test_id("browser-key-id")).to_have_attribute("data-key-id", key_id)
    # and a file that is no key is refused in words
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key\n")
    other.get_by_test_id("key-import-file").set_input_files(str(junk))
    expect(other.get_by_test_id("keys-error")).to_have_text(
        "Not a key file: choose the PKCS#8 PEM file exported here or by the CLI.")
