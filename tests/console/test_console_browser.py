"""The web console in a real browser, against a live server with the traffic simulator on:
sign-in, live figures that are the API's to the minor unit, the stream's filters and a
payment's detail, a CSV batch, the language switch, what each role is offered, and a session
that ends under the browser's feet (tests/console/conftest.py starts it all)."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests.console.harness import Server, save_screenshot
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
# How long an expectation waits for the page before it fails: the live server (and its
# simulator) shares the machine with the browser and, under pytest -n 2, with other tests. It
# costs nothing when the page is ready early. Playwright's own default is 5 s.
EXPECT_TIMEOUT_MS = 30_000
# How long a test waits for what the server does on its own clock: the figures' next entry,
# an alert rule's evaluation, a session the API no longer trusts (auth_cache_s is 5 s).
LIVE_TIMEOUT_MS = 60_000
CARDS_SETTLE_S_MAX = 30.0

CARDS = ("total", "available", "locked", "in_transit", "pending_settlement", "fees")
GRID_ROWS_JS = """() => {
  const grid = document.querySelector('[data-testid="stream-grid"]');
  if (!grid) return [];
  return [...grid.querySelectorAll('.ag-row')]
    .filter((row) => row.querySelector('[col-id="asset"]'))
    .map((row) => Object.fromEntries([...row.querySelectorAll('[col-id]')]
      .map((cell) => [cell.getAttribute('col-id'), cell.textContent.trim()])));
}"""
CARDS_JS = """(names) => {
  const box = document.querySelector('[data-testid="cards"]');
  const before = box ? box.getAttribute('data-seq') : null;
  const cards = {};
  for (const name of names) {
    const value = document.querySelector(`[data-testid="card-${name}-value"]`);
    cards[name] = value
      ? {minor: value.getAttribute('data-minor'), text: value.textContent.trim()} : null;
  }
  const after = box ? box.getAttribute('data-seq') : null;
  return {before, after, cards};
}"""


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    playwright_expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    return playwright_expect(target)


def goto(page: Any, server: Server, path: str) -> None:
    """Open a console page and wait until its websocket is up (events reach the server)."""
    page.goto(server.url(path))
    page.wait_for_function("() => window.did_handshake === true")


def sign_in(page: Any, server: Server, role: str) -> str:
    username, password = server.users[role]
    goto(page, server, "/console/login")
    page.get_by_test_id("username").fill(username)
    page.get_by_test_id("password").fill(password)
    page.get_by_test_id("submit").click()
    page.wait_for_url(server.url("/console/"))
    page.wait_for_function("() => window.did_handshake === true")
    return username


def query_of(page: Any) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query)


def grouped(decimal_text: str) -> str:
    """The API's exact decimal text as the console shows it: `57121442.42` → `57,121,442.42`."""
    sign = "-" if decimal_text.startswith("-") else ""
    whole, dot, fraction = decimal_text.lstrip("-").partition(".")
    return f"{sign}{int(whole):,}{dot}{fraction}"


def wait_seq(page: Any) -> int:
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"cards\"]')?.getAttribute('data-seq')")
    return int(page.get_by_test_id("cards").get_attribute("data-seq"))


def grid_rows(page: Any, *, timeout_ms: int = 15_000) -> list[dict[str, str]]:
    """The stream grid's rendered rows (cells by col-id), once it shows at least one."""
    page.wait_for_function(f"() => ({GRID_ROWS_JS})().length > 0", timeout=timeout_ms)
    rows: list[dict[str, str]] = page.evaluate(GRID_ROWS_JS)
    assert rows
    return rows


# --- 1. sign-in ---------------------------------------------------------------------------------


def test_sign_in_wrong_then_right_password_and_redirect_without_session(
        console_server: Server, new_page: Callable[[], Any]) -> None:
    server = console_server
    username, password = server.users["viewer"]
    page = new_page()
    goto(page, server, "/console/login")
    expect(page.get_by_test_id("login-notice")).to_have_count(0)
    page.get_by_test_id("username").fill(username)
    page.get_by_test_id("password").fill("not-the-password-123")
    page.get_by_test_id("submit").click()
    expect(page.get_by_test_id("login-error")).to_have_text("Wrong username or password.")
    assert urlparse(page.url).path == "/console/login"
    expect(page.get_by_test_id("password")).to_have_value("")  # cleared after a failure
    expect(page.get_by_test_id("who")).to_have_count(0)

    page.get_by_test_id("password").fill(password)
    page.get_by_test_id("submit").click()
    page.wait_for_url(server.url("/console/"))
    expect(page.get_by_test_id("who")).to_contain_text(username)
    expect(page.get_by_test_id("who")).to_contain_text("viewer")
    expect(page.get_by_test_id("cards")).to_be_visible()

    # Another browser, never signed in: the stream sends it to sign in, and back after.
    other = new_page()
    other.goto(server.url("/console/stream"))
    other.wait_for_url(re.compile(r"/console/login\?"))
    assert query_of(other) == {"next": ["/stream"], "why": ["required"]}
    expect(other.get_by_test_id("login-notice")).to_have_text("Sign in to continue.")
    expect(other.get_by_test_id("stream-grid")).to_have_count(0)
    other.wait_for_function("() => window.did_handshake === true")
    other.get_by_test_id("username").fill(username)
    other.get_by_test_id("password").fill(password)
    other.get_by_test_id("submit").click()
    other.wait_for_url(server.url("/console/stream"))
    expect(other.get_by_test_id("stream-grid")).to_be_visible()


# --- 2, 3. the overview -------------------------------------------------------------------------


def test_overview_numbers_are_live(console_server: Server, page: Any) -> None:
    sign_in(page, console_server, "viewer")
    first = wait_seq(page)
    page.wait_for_function(
        "(seq) => Number(document.querySelector('[data-testid=\"cards\"]')"
        ".getAttribute('data-seq')) > seq", arg=first, timeout=LIVE_TIMEOUT_MS)
    later = wait_seq(page)
    assert later > first
    minor = page.get_by_test_id("card-total-value").get_attribute("data-minor")
    assert minor is not None
    assert re.fullmatch(r"\d+", minor), minor
    assert int(minor) > 0  # the example pool is funded
    expect(page.get_by_test_id("as-of")).to_contain_text("as of entry #")


def test_overview_equals_the_api_at_the_same_entry(console_server: Server, page: Any) -> None:
    server = console_server
    sign_in(page, server, "viewer")
    wait_seq(page)

    def one_entry() -> dict[str, Any] | None:
        """The cards, when they all show the figures of one entry (none redrawn meanwhile)."""
        read: dict[str, Any] = page.evaluate(CARDS_JS, list(CARDS))
        complete = all(read["cards"][n] and read["cards"][n]["minor"] for n in CARDS)
        return read if read["before"] and read["before"] == read["after"] and complete else None

    read = wait_until(one_entry, within_s=CARDS_SETTLE_S_MAX, poll_s=0.2,
                      what="the cards to show one whole entry's figures",
                      detail=lambda: page.evaluate(CARDS_JS, list(CARDS)))
    seq = int(read["before"])
    with server.api("admin") as api:
        answer = api.get("/v1/pools/main/view", params={"seq": seq})
    assert answer.status_code == 200, answer.text
    view = answer.json()
    assert view["as_of_seq"] == seq
    total = view["reporting_total"]
    for name in CARDS:
        shown = read["cards"][name]
        assert shown["minor"] == total[f"{name}_minor"], (name, shown, total)
        assert shown["text"] == grouped(total[name]), (name, shown, total)
    assert read["cards"]["total"]["text"] == grouped(total["total"])
    assert int(total["total_minor"]) == sum(int(total[f"{n}_minor"]) for n in CARDS[1:5])

    expect(page.get_by_test_id("health").locator("tbody tr").first).to_be_visible()
    save_screenshot(page, "console-overview.png", settle_ms=500)  # the charts' first frame


# --- 4, 5. the stream ---------------------------------------------------------------------------


def test_stream_filters(console_server: Server, page: Any) -> None:
    server = console_server
    sign_in(page, server, "viewer")
    goto(page, server, "/console/stream?asset=USD")
    rows = grid_rows(page)
    assert {row["asset"] for row in rows} == {"USD"}, rows
    assert query_of(page) == {"asset": ["USD"]}

    # The status filter is a Quasar select: choosing "settled" puts it in the URL.
    page.get_by_test_id("filter-state").click()
    page.get_by_role("option", name="settled", exact=True).click()
    page.wait_for_url(re.compile(r"state=settled"))
    assert query_of(page) == {"asset": ["USD"], "state": ["settled"]}
    page.wait_for_function("() => window.did_handshake === true")
    expect(page.get_by_test_id("filter-state")).to_contain_text("settled")
    rows = grid_rows(page)
    assert {(row["asset"], row["state"]) for row in rows} == {("USD", "settled")}, rows

    goto(page, server, "/console/stream?min=100")
    expect(page.get_by_test_id("filter-min")).to_have_value("100")
    rows = grid_rows(page)
    amounts = [Decimal(row["amount"].replace(",", "")) for row in rows]
    assert min(amounts) >= 100, rows


def test_stream_expands_a_settled_payout(console_server: Server, page: Any) -> None:
    server = console_server
    sign_in(page, server, "viewer")
    goto(page, server, "/console/stream?kind=payout&state=settled")
    grid_rows(page)
    page.get_by_test_id("pause").click()  # hold the grid still while a row is clicked
    expect(page.get_by_test_id("stream-status")).to_contain_text("Paused")
    row = page.evaluate(GRID_ROWS_JS)[0]
    assert (row["kind"], row["state"]) == ("payout", "settled"), row
    short = row["short"]
    assert re.fullmatch(r"[0-9a-f]{12}", short), row
    page.get_by_test_id("stream-grid").locator(".ag-row").filter(has_text=short).first \
        .locator('[col-id="counterparty"]').click()

    title = page.get_by_test_id("detail-title")
    expect(title).to_contain_text(short)
    payment_id = title.inner_text().removeprefix("Payment").strip()
    assert payment_id.endswith(short), payment_id
    timeline = page.get_by_test_id("detail-timeline").locator(".q-timeline__entry")
    expect(timeline.first).to_be_visible()
    steps = timeline.locator(".q-timeline__title").all_inner_texts()
    assert (steps[0], steps[-1]) == ("initiated", "settled"), steps
    expect(page.get_by_test_id("detail-postings").locator("tbody tr").first).to_be_visible()
    routing = page.get_by_test_id("detail-routing")
    expect(routing.locator("table tbody tr").first).to_be_visible()
    shown_channels = routing.locator("tbody tr td:first-child").all_inner_texts()
    assert f"{row['channel']} ✓" in shown_channels, (row, shown_channels)

    with server.api("admin") as api:
        payment = api.get(f"/v1/payments/{payment_id}").json()
        decisions = api.get("/v1/channels/decisions", params={"payment_id": payment_id}).json()
    assert (payment["kind"], payment["state"], payment["channel"]) == \
        ("payout", "settled", row["channel"])
    candidates = {c["channel"] for d in decisions["data"] for c in d["candidates"]}
    assert {text.removesuffix(" ✓") for text in shown_channels} == candidates

    # Each posting row says how many payments its entry covers, as the entry's metadata does
    # (a payout's approve, submit and settle are booked with their wave: ADR 0008).
    with server.api("admin") as api:
        covers = {}
        for event in payment["events"]:
            for entry_id in event["entries"]:
                entry = api.get(f"/v1/ledger/transactions/{entry_id}").json()
                covers[entry_id[-12:]] = int((entry.get("metadata") or {}).get("payments", "1"))
    postings = page.get_by_test_id("detail-postings").locator("tbody tr")
    for index in range(postings.count()):
        cells = postings.nth(index).locator("td").all_inner_texts()
        assert int(cells[1].replace(",", "")) == covers[cells[0]], (cells, covers)
    expect(page.get_by_test_id("detail-shared")).to_have_count(
        1 if any(count > 1 for count in covers.values()) else 0)

    page.evaluate("""() => {
      const detail = document.querySelector('[data-testid="detail"]');
      window.scrollTo(0, detail.getBoundingClientRect().top + window.scrollY - 320);
    }""")
    save_screenshot(page, "console-stream.png", settle_ms=200)  # the scroll


# --- 6. a CSV batch -----------------------------------------------------------------------------


def test_csv_batch_with_a_bad_row_then_a_file_that_is_not_csv(console_server: Server,
                                                              page: Any) -> None:
    server = console_server
    sign_in(page, server, "cashier")
    goto(page, server, "/console/operations")
    run = uuid.uuid4().hex[:10]
    csv = ("payee,account,amount,asset,reference\n"
           f"Alice Example,US00TEST0001,10.00,USD,console-{run}-1\n"
           f"Bob Example,US00TEST0002,11.00,USD,console-{run}-2\n"
           f"Carol Example,US00TEST0003,12.345,USD,console-{run}-3\n").encode()
    upload = page.get_by_test_id("upload").locator("input[type=file]")
    upload.set_input_files({"name": "payouts.csv", "mimeType": "text/csv", "buffer": csv})
    summary = page.get_by_test_id("preview-summary")
    expect(summary).to_have_text("2 of 3 rows valid, 1 with errors")
    preview = page.get_by_test_id("preview")
    expect(preview).to_be_visible()
    bad = preview.locator("tbody tr").filter(has_text="bad_amount")
    expect(bad).to_have_count(1)
    expect(bad.locator("td").first).to_have_text("4")  # the file's line (after the header)
    expect(bad).to_contain_text("amount")
    expect(preview.locator("tbody tr").filter(has_text="ok")).to_have_count(2)
    submit = page.get_by_test_id("batch-submit")
    expect(submit).to_have_text("Submit 2 valid rows")
    save_screenshot(page, "console-operations.png")

    submit.click()
    expect(summary).to_have_text(re.compile(r"^Batch [0-9a-f]{16}: 2 payouts created$"))
    batch_id = re.search(r"Batch ([0-9a-f]{16})", summary.inner_text()).group(1)  # type: ignore[union-attr]
    assert batch_id == hashlib.sha256(csv).hexdigest()[:16]  # the API's id of the file
    expect(page.get_by_test_id("batch-progress-label")).to_have_text(
        re.compile(r"^[0-2] of 2 finished \([0-2] settled, [0-2] failed\)$"))
    with server.api("cashier") as api:
        progress = api.get(f"/v1/payments/batches/{batch_id}", params={"pool": "main"})
    assert progress.status_code == 200, progress.text
    assert progress.json()["total"] == 2

    # A picture named .csv: refused whole, said on screen, nothing created.
    png = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02"
           b"\x00\x00\x00\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00"
           b"\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
    upload.set_input_files({"name": "x.csv", "mimeType": "text/csv", "buffer": png})
    message = page.get_by_test_id("batch-message")
    expect(message).to_contain_text("The file was refused")
    expect(summary).to_have_text("")
    expect(preview).to_be_hidden()
    expect(submit).to_be_hidden()
    with server.api("cashier") as api:
        nothing = api.get(f"/v1/payments/batches/{hashlib.sha256(png).hexdigest()[:16]}",
                          params={"pool": "main"})
    assert nothing.status_code == 404, nothing.text
    assert nothing.json()["code"] == "unknown_payout_batch"


# --- 7. the language ----------------------------------------------------------------------------


def test_language_switch(console_server: Server, page: Any) -> None:
    sign_in(page, console_server, "viewer")
    expect(page.get_by_test_id("nav-overview")).to_have_text("Overview")
    page.get_by_test_id("language").click()
    expect(page.get_by_test_id("nav-overview")).to_have_text("资金池总览")
    expect(page.get_by_test_id("card-total")).to_contain_text("总资产")
    expect(page.get_by_test_id("nav-stream")).to_have_text("实时交易流水")
    expect(page.get_by_test_id("language")).to_have_text("English")
    wait_seq(page)
    expect(page.get_by_test_id("health").locator("tbody tr").first).to_be_visible()
    save_screenshot(page, "console-overview-zh.png", settle_ms=500)

    page.get_by_test_id("language").click()
    expect(page.get_by_test_id("nav-overview")).to_have_text("Overview")
    expect(page.get_by_test_id("card-total")).to_contain_text("Total assets (TOTAL)")
    expect(page.get_by_test_id("language")).to_have_text("中文")


# --- 8. roles -----------------------------------------------------------------------------------


def test_roles_see_what_they_may_do(console_server: Server,
                                    new_page: Callable[[], Any]) -> None:
    server = console_server

    viewer = new_page()
    sign_in(viewer, server, "viewer")
    expect(viewer.get_by_test_id("nav-operations")).to_be_visible()  # payments:read
    goto(viewer, server, "/console/operations")
    expect(viewer.get_by_test_id("not-allowed")).to_contain_text("viewer")
    expect(viewer.get_by_test_id("batch")).to_have_count(0)
    expect(viewer.get_by_test_id("upload")).to_have_count(0)
    expect(viewer.get_by_test_id("export")).to_be_visible()

    cashier = new_page()
    sign_in(cashier, server, "cashier")
    goto(cashier, server, "/console/operations")
    expect(cashier.get_by_test_id("batch")).to_be_visible()
    expect(cashier.get_by_test_id("not-allowed")).to_have_count(0)

    # Alerts: the risk officer may acknowledge them, the auditor only reads them.
    chips = '[data-testid="alert-bar"] [data-severity]'
    risk = new_page()
    sign_in(risk, server, "risk")
    risk.wait_for_selector(chips, timeout=LIVE_TIMEOUT_MS)
    expect(risk.get_by_test_id("alert-ack").first).to_be_visible()
    auditor = new_page()
    sign_in(auditor, server, "auditor")
    auditor.wait_for_selector(chips, timeout=LIVE_TIMEOUT_MS)
    assert auditor.locator(chips).count() >= 1
    expect(auditor.get_by_test_id("alert-ack")).to_have_count(0)


# --- 9. a session that ends -------------------------------------------------------------------


def test_disabled_user_is_sent_to_sign_in(console_server: Server, page: Any) -> None:
    server = console_server
    username, password = f"console-gone-{uuid.uuid4().hex[:8]}", "console-gone-password"
    with server.api("admin") as api:
        made = api.post("/v1/users", json={"username": username, "password": password,
                                           "roles": ["viewer"]},
                        headers={"Idempotency-Key": str(uuid.uuid4())})
        assert made.status_code == 201, made.text
        goto(page, server, "/console/login")
        page.get_by_test_id("username").fill(username)
        page.get_by_test_id("password").fill(password)
        page.get_by_test_id("submit").click()
        page.wait_for_url(server.url("/console/"))
        expect(page.get_by_test_id("who")).to_contain_text(username)
        gone = api.post(f"/v1/users/{username}/disable",
                        headers={"Idempotency-Key": str(uuid.uuid4())})
        assert gone.status_code == 200, gone.text

    # The open overview polls the API every second: once the API refuses the session (it may
    # trust a checked one for auth_cache_s, 5 s), the page itself goes to sign in, saying why.
    page.wait_for_url(re.compile(r"/console/login\?(.*&)?why=expired"), timeout=LIVE_TIMEOUT_MS)
    expect(page.get_by_test_id("login-notice")).to_have_text(
        "Your session has expired: sign in again.")

    # The browser is signed out of the console: reloading the overview asks to sign in, and
    # still says why (the page's timers noticing the end first must not turn it into a bare
    # "sign in"); once said, a later visit just asks to sign in.
    page.goto(server.url("/console/"))
    page.wait_for_url(re.compile(r"/console/login\?"))
    assert query_of(page) == {"next": ["/"], "why": ["expired"]}
    expect(page.get_by_test_id("login-notice")).to_have_text(
        "Your session has expired: sign in again.")
    expect(page.get_by_test_id("who")).to_have_count(0)
    page.goto(server.url("/console/"))
    page.wait_for_url(re.compile(r"/console/login\?"))
    assert query_of(page) == {"next": ["/"], "why": ["required"]}
    expect(page.get_by_test_id("login-notice")).to_have_text("Sign in to continue.")

    page.wait_for_function("() => window.did_handshake === true")
    page.get_by_test_id("username").fill(username)
    page.get_by_test_id("password").fill(password)
    page.get_by_test_id("submit").click()
    expect(page.get_by_test_id("login-error")).to_have_text("This user is disabled.")
    assert urlparse(page.url).path == "/console/login"
