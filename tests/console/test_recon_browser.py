"""The reconciliation workbench in a real browser, against a live server of its own: no traffic
simulator, so that nothing moves on the channels unless the test moves it (a statement's
balances must meet the ledger's to the cent).

- Two deposits on `sepa` (EUR) made by the cashier through the API and settled by the server's
  payment engine; a camt.053 of today with those deposits (their end-to-end ids are the
  payments') and a bank charge of 2.50 EUR the books lack, opening at 0.00. The admin opens
  Reconciliation from the header, picks SEPA, uploads the file: the charge is a break on the
  statement side, the statement "not reconciled". Resolve on the charge, a note, "book the
  difference", confirm: the break is gone and the statement is reconciled. The deposit's own
  detail in the transaction stream says it is matched.
- On `rtp`, as the cashier: a statement imported; the same file again is refused
  (`duplicate_statement`), in English and in 简体中文, and nothing changes; a truncated
  camt.053 is refused (`file_refused`) naming the place. On the way: an expected payment
  announced and cancelled, "Match again", and Resolve without "book the difference" (the
  cashier may not post adjustments).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fundpool.channels.iso20022.camt import write_camt053
from fundpool.recon.model import (
    DAY_US,
    Balance,
    LineKind,
    Statement,
    StatementLine,
    end_to_end_of,
)
from tests.console.conftest import browser_pages, served_console
from tests.console.harness import Server, expect, save_screenshot, sign_in
from tests.waiting import instant_us, wait_until

pytestmark = pytest.mark.slow
SETTLE_S = 60.0  # a deposit on an instant rail clears and settles within seconds
CHANNEL = "sepa"
ASSET = "EUR"
SCALES = {"EUR": 2, "USD": 2}
DEPOSITS = ("120.00", "75.40")
CHARGE_MINOR = -250  # the bank's charge the books lack: -2.50 EUR
ACCOUNT = "DE89370400440532013000"
# The rails the tests use never fail nor return in the server's simulated rails.
SURE_RAILS = (CHANNEL, "rtp")


@pytest.fixture(scope="module")
def recon_server(chromium: Path) -> Iterator[Server]:
    """`fundpool serve` with the console and the payment engine, without the simulator
    (conftest's `console_server` runs one at 20 payments/s): nothing moves unless a test
    moves it."""
    with served_console("recon", sure_rails=SURE_RAILS) as server:
        yield server


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[[], Any]]:
    with browser_pages(browser) as make:
        yield make


RESOLVE_TRIES = 3
RESOLVE_WAIT_MS = 10_000


def open_resolve(page: Any, button: Any) -> None:
    """Click a row's Resolve and see its dialog. A refresh of the open lists (after Match
    again, or the page's own) may redraw the row between finding its button and the click,
    which then lands on the row being replaced: click the new one again (bounded)."""
    dialog = page.get_by_test_id("resolve-dialog")
    for _ in range(RESOLVE_TRIES):
        button.click()
        try:
            expect(dialog).to_be_visible(timeout=RESOLVE_WAIT_MS)
            return
        except AssertionError:
            continue
    expect(dialog).to_be_visible()


def _json(answer: Any) -> Any:
    assert answer.status_code < 300, answer.text
    return answer.json()


def deposit(server: Server, amount: str) -> str:
    body = {"kind": "deposit", "asset": ASSET, "amount": amount, "channel": CHANNEL,
            "counterparty": "Recon Test GmbH", "reference": f"recon-{uuid.uuid4().hex[:12]}"}
    with server.api("cashier") as api:
        made = _json(api.post("/v1/payments", json=body,
                              headers={"Idempotency-Key": str(uuid.uuid4())}))
    return str(made["id"])


def settled(server: Server, payment_id: str) -> dict[str, Any]:
    with server.api("cashier") as api:
        def found() -> dict[str, Any]:
            payment: dict[str, Any] = _json(api.get(f"/v1/payments/{payment_id}"))
            return payment if payment["state"] == "settled" else {}

        return wait_until(found, within_s=SETTLE_S, poll_s=0.2,
                          what=f"deposit {payment_id} to be settled", detail=server.log_tail)


def day_of(instant: str) -> int:
    """The start (UTC) of the day of an instant of the API, in µs."""
    at_us = instant_us(instant)
    return at_us - at_us % DAY_US


def camt053(lines: list[StatementLine], day_us: int, statement_id: str) -> bytes:
    """A bank's camt.053 of one day: opening 0.00 at its start, closing the sum of its
    lines."""
    now_us = int(datetime.now(UTC).timestamp() * 1_000_000)
    statement = Statement(statement_id, ACCOUNT, lines[0].asset, now_us, tuple(lines),
                          opening=Balance(0, day_us),
                          closing=Balance(sum(line.amount_minor for line in lines), day_us),
                          sequence="1")
    return write_camt053([statement], message_id=f"MSG-{uuid.uuid4().hex[:12]}",
                         created_at_us=now_us, scales=SCALES)


def statements(server: Server, channel: str) -> list[dict[str, Any]]:
    with server.api("viewer") as api:
        found: list[dict[str, Any]] = _json(api.get("/v1/recon/statements",
                                                    params={"channel": channel}))
    return found


def files(server: Server, channel: str) -> list[dict[str, Any]]:
    with server.api("viewer") as api:
        found: list[dict[str, Any]] = _json(api.get("/v1/recon/files",
                                                    params={"channel": channel}))
    return found


# --- in the browser ---------------------------------------------------------------------------


def to_channel(page: Any, channel: str) -> None:
    """To the workbench the way a person goes: the header's link, then the channel."""
    page.get_by_test_id("nav-recon").click()
    page.wait_for_url("**/console/recon")
    page.wait_for_function("() => window.did_handshake === true")
    page.get_by_test_id(f"recon-channel-{channel}").click()
    page.wait_for_url(f"**/console/recon?channel={channel}")
    page.wait_for_function("() => window.did_handshake === true")
    expect(page.get_by_test_id("recon-channel-title")).to_have_attribute("data-channel", channel)


def upload(page: Any, name: str, data: bytes) -> None:
    page.get_by_test_id("recon-upload").locator("input[type=file]").set_input_files(
        {"name": name, "mimeType": "application/xml", "buffer": data})


def test_a_camt053_with_a_bank_charge_is_resolved_by_booking_it(
        recon_server: Server, new_page: Callable[[], Any]) -> None:
    server = recon_server
    payments = [settled(server, deposit(server, amount)) for amount in DEPOSITS]
    # The bank books the deposits on the day they arrived (their clearing).
    cleared = [next(e["at"] for e in p["events"] if e["action"] == "clear") for p in payments]
    day_us = day_of(cleared[0])
    lines = [StatementLine(f"L{index}", int(p["amount_minor"]), ASSET, day_us, day_us,
                           end_to_end_id=end_to_end_of(p["id"]), counterparty=p["counterparty"])
             for index, p in enumerate(payments, start=1)]
    lines += [StatementLine(f"F{index}", -int(p["fee_minor"]), ASSET, day_us, day_us,
                            kind=LineKind.CHARGE, end_to_end_id=end_to_end_of(p["id"]))
              for index, p in enumerate(payments, start=1) if int(p["fee_minor"])]
    lines.append(StatementLine("C1", CHARGE_MINOR, ASSET, day_us, day_us, kind=LineKind.CHARGE,
                               bank_ref=f"CHG-{uuid.uuid4().hex[:8]}"))
    statement_id = f"STMT-{uuid.uuid4().hex[:10]}"
    data = camt053(lines, day_us, statement_id)

    page = new_page()
    sign_in(page, server, "admin")
    to_channel(page, CHANNEL)
    expect(page.get_by_test_id("recon-no-statements")).to_be_visible()
    upload(page, "sepa-statement.xml", data)
    done = page.get_by_test_id("recon-import-done")
    expect(done).to_have_text("Imported sepa-statement.xml (camt.053.001.08): statements 1, "
                              f"lines {len(lines)}.")
    run = page.get_by_test_id("recon-import-run")
    expect(run).to_have_attribute("data-breaks", "1")
    expect(run).to_have_attribute("data-matched", str(len(lines) - 1))

    [stored] = [s for s in statements(server, CHANNEL)
                if s["statement"]["statement_id"] == statement_id]
    stored_id = stored["statement"]["id"]
    badge = page.get_by_test_id(f"balance-{stored_id}")
    expect(badge).to_have_attribute("data-reconciled", "false")
    expect(badge).to_have_text("Not reconciled")
    expect(page.get_by_test_id(f"closing-diff-{stored_id}")).to_have_attribute(
        "data-difference", "-2.50")
    expect(page.get_by_test_id(f"opening-diff-{stored_id}")).to_have_attribute(
        "data-difference", "0.00")

    # The charge, a break on the statement side; the books have nothing open.
    side = page.get_by_test_id("recon-open-statement")
    charge = side.locator('[data-state="break"][data-amount="-2.50"]')
    expect(charge).to_have_count(1)
    expect(charge).to_have_attribute("data-reason", "not_in_books")
    expect(charge.get_by_test_id("open-reason")).to_have_text(
        "the bank has it, the books do not · bank charge")
    expect(charge.get_by_test_id("open-age")).to_have_text("0 d old")
    expect(page.get_by_test_id("recon-open-books-none")).to_be_visible()
    expect(page.get_by_test_id("recon-count-breaks")).to_have_attribute("data-count", "1")
    expect(page.get_by_test_id("recon-age-0_1")).to_have_attribute("data-count", "1")
    line_id = str(charge.get_attribute("data-testid")).removeprefix("open-row-")
    page.get_by_test_id("recon-balances-card").evaluate(
        "(card) => card.scrollIntoView({block: 'start'})")
    save_screenshot(page, "console-recon.png")

    # The statement's lines, each with where it stands.
    page.get_by_test_id(f"statement-open-{stored_id}").click()
    listed = page.get_by_test_id("statement-lines")
    expect(listed.get_by_test_id("statement-title")).to_contain_text(statement_id)
    expect(listed.locator('[data-state="matched"]')).to_have_count(len(lines) - 1)
    expect(listed.locator('[data-state="break"]')).to_have_count(1)
    page.get_by_test_id("statement-close").click()
    expect(listed).to_be_hidden()

    # Resolve: a note is asked for before anything is sent; then booked.
    open_resolve(page, page.get_by_test_id(f"resolve-{line_id}"))
    dialog = page.get_by_test_id("resolve-dialog")
    page.get_by_test_id("resolve-confirm").click()
    expect(page.get_by_test_id("resolve-error")).to_have_text(
        "Write a note saying why: a resolution needs one.")
    page.get_by_test_id("resolve-note").fill(
        "SEPA account fee for the day, on the bank's tariff")
    book = page.get_by_test_id("resolve-book")
    expect(book).to_be_visible()  # the admin may post adjustments
    book.click()
    page.get_by_test_id("resolve-confirm").click()
    expect(dialog).to_be_hidden()

    expect(page.get_by_test_id(f"open-row-{line_id}")).to_have_count(0)
    expect(page.get_by_test_id("recon-open-statement-none")).to_be_visible()
    expect(badge).to_have_attribute("data-reconciled", "true")
    expect(badge).to_have_text("Reconciled")
    expect(page.get_by_test_id(f"closing-diff-{stored_id}")).to_have_attribute(
        "data-difference", "0.00")
    expect(page.get_by_test_id("recon-count-breaks")).to_have_attribute("data-count", "0")
    expect(page.get_by_test_id("recon-resolutions").locator('[data-action="booked"]')) \
        .to_contain_text("booked -2.50 EUR")
    [checked] = [s for s in statements(server, CHANNEL) if s["statement"]["id"] == stored_id]
    assert checked["reconciled"] is True, checked
    assert checked["closing_difference"] == "0.00", checked

    # A deposit's own detail says where it stands against the bank.
    page.get_by_test_id("nav-stream").click()
    page.wait_for_url("**/console/stream")
    page.wait_for_function("() => window.did_handshake === true")
    first = payments[0]["id"]
    page.get_by_test_id("stream-grid").locator(".ag-row").filter(has_text=first[-12:]).first \
        .locator('[col-id="counterparty"]').click()
    expect(page.get_by_test_id("detail-title")).to_contain_text(first)
    state = page.get_by_test_id("detail-recon")
    expect(state).to_have_attribute("data-state", "matched")
    expect(state.get_by_test_id("detail-recon-state")).to_have_text("matched")


def test_the_same_file_twice_and_a_truncated_file_are_refused_saying_why(
        recon_server: Server, new_page: Callable[[], Any]) -> None:
    server = recon_server
    channel = "rtp"
    today_us = int(datetime.now(UTC).timestamp() * 1_000_000) // DAY_US * DAY_US
    statement_id = f"RTP-{uuid.uuid4().hex[:10]}"
    data = camt053([StatementLine("C1", -100, "USD", today_us, today_us, kind=LineKind.CHARGE,
                                  bank_ref="RTP-FEE")], today_us, statement_id)

    page = new_page()
    sign_in(page, server, "cashier")
    to_channel(page, channel)
    upload(page, "rtp.xml", data)
    expect(page.get_by_test_id("recon-import-run")).to_have_attribute("data-breaks", "1")
    assert len(files(server, channel)) == 1
    before = statements(server, channel)

    upload(page, "rtp-again.xml", data)
    refused = page.get_by_test_id("recon-import-error")
    expect(refused).to_have_attribute("data-code", "duplicate_statement")
    expect(refused).to_contain_text("rtp-again.xml was refused, nothing imported: This "
                                    "statement was imported before: nothing was imported "
                                    "again. (file rtp-again.xml, imported before as rtp.xml)"
                                    " (duplicate_statement)")
    # An expected payment announced, then cancelled; matching again finds nothing new.
    expect(page.get_by_test_id("recon-expected-none")).to_be_visible()
    page.get_by_test_id("recon-expect").click()
    expect(page.get_by_test_id("recon-expect-error")).to_have_text(
        "Fill in the asset, both amounts and both dates.")
    page.get_by_test_id("recon-expected-amount_min").fill("250.00")
    page.get_by_test_id("recon-expected-amount_max").fill("260.00")
    page.get_by_test_id("recon-expected-reference").fill("INV-2026-001")
    page.get_by_test_id("recon-expected-counterparty").fill("Acme Pte")
    page.get_by_test_id("recon-expect").click()
    announced = page.get_by_test_id("recon-expected").locator('[data-state="open"]')
    expect(announced).to_have_count(1)
    expect(announced).to_contain_text("250.00 – 260.00 USD")
    expect(announced).to_contain_text("INV-2026-001 · Acme Pte")
    announced.get_by_role("button").click()
    expect(page.get_by_test_id("recon-expected").locator('[data-state="cancelled"]')) \
        .to_have_count(1)
    page.get_by_test_id("recon-match").click()
    expect(page.get_by_test_id("recon-match-result")).to_have_text(
        "Matched again: lines matched 0, ambiguous 0, breaks 1.")

    # A cashier may resolve with a note, never book an adjustment.
    charge = page.get_by_test_id("recon-open-statement").locator('[data-state="break"]')
    open_resolve(page, charge.get_by_role("button"))
    expect(page.get_by_test_id("resolve-book")).to_be_hidden()
    page.get_by_test_id("resolve-cancel").click()

    page.get_by_test_id("language").click()
    page.wait_for_url(f"**/console/recon?channel={channel}")
    page.wait_for_function("() => window.did_handshake === true")
    expect(page.get_by_test_id("page-title")).to_have_text("对账工作台")
    upload(page, "rtp-again.xml", data)
    refused = page.get_by_test_id("recon-import-error")
    expect(refused).to_have_attribute("data-code", "duplicate_statement")
    expect(refused).to_contain_text("该对账单此前已导入：本次未重复导入。")
    expect(refused).to_contain_text("（duplicate_statement）")

    # Cut short: not well-formed XML, refused naming where it ends.
    upload(page, "rtp-cut.xml", data[:len(data) // 2])
    refused = page.get_by_test_id("recon-import-error")
    expect(refused).to_have_attribute("data-code", "file_refused")
    expect(refused).to_contain_text("rtp-cut.xml 被拒绝，未导入任何内容：该文件无法导入。")
    expect(refused).to_contain_text("位置 line ")
    expect(page.get_by_test_id("recon-import-detail")).to_contain_text("not well-formed")

    assert len(files(server, channel)) == 1  # nothing of the refused files was kept
    assert statements(server, channel) == before
