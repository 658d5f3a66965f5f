"""The web console in a real browser, against a live server with the traffic simulator on:
sign-in, live figures that are the API's to the minor unit, the stream's filters and a
payment's detail, a CSV batch, the language switch, what each role is offered, and a session
that ends under the browser's feet (tests/console/conftest.py starts it all)."""

from __future__ import annotations

import hashlib
import itertools
import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests.console.harness import Server, expect, goto, save_screenshot, sign_in
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
# How long an expectation waits for the page before it fails: the live server (and its
# simulator) shares the machine with the browser and, under pytest -n 2, with other tests. It
# costs nothing when the page is ready early. Playwright's own default is 5 s.
# How long a test waits for what the server does on its own clock: the figures' next entry,
# an alert rule's evaluation, a session the API no longer trusts (auth_cache_s is 5 s).
LIVE_TIMEOUT_MS = 60_000
CARDS_SETTLE_S_MAX = 30.0

CARDS = ("total", "available", "locked", "in_transit", "pending_settlement", "fees")
GRID_ROWS_JS = """() => {
  const grid = document.querySelector('[data-testid="stream-grid"]');
  if (!grid) return [];
  // In the order shown (row-index), not the DOM's: the grid moves rows it sorts by style.
  return [...grid.querySelectorAll('.ag-center-cols-container .ag-row')]
    .filter((row) => row.querySelector('[col-id="asset"]'))
    .sort((a, b) => Number(a.getAttribute('row-index')) - Number(b.getAttribute('row-index')))
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


def test_overview_says_how_long_approvals_wait_and_opens_the_desk(console_server: Server,
                                                                  page: Any) -> None:
    server = console_server
    sign_in(page, server, "approver")
    link = page.get_by_test_id("approvals-waiting")
    expect(link).to_contain_text("waiting for approval", timeout=LIVE_TIMEOUT_MS)
    waiting = link.get_attribute("data-waiting")
    assert waiting is not None
    assert re.fullmatch(r"\d+", waiting), waiting
    click_and_land(page, link, "/console/approvals")
    expect(page).to_have_title("Approvals · fundpool console")


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


# --- 3b. every link a person clicks -----------------------------------------------------------

# The header's links: test id, heading of the page it opens, its path.
NAVIGATION = (("nav-overview", "Overview", "/console/"),
              ("nav-stream", "Transaction stream", "/console/stream"),
              ("nav-operations", "Operations panel", "/console/operations"),
              ("nav-approvals", "Approvals", "/console/approvals"))
NOT_FOUND_TEXT = "This page doesn't exist."  # NiceGUI's 404 page


def click_and_land(page: Any, link: Any, path: str) -> None:
    """Click `link` as a person does, and check the browser landed on `path` with a page (the
    answer to the navigation 200, no 404 page), its websocket up."""
    with page.expect_navigation() as navigation:
        link.click()
    response = navigation.value
    assert response is not None, page.url
    assert response.status == 200, (response.status, page.url)
    assert urlparse(page.url).path == path, page.url
    page.wait_for_function("() => window.did_handshake === true")
    expect(page.get_by_text(NOT_FOUND_TEXT)).to_have_count(0)


def test_every_header_link_and_the_alert_links_open_their_page(console_server: Server,
                                                               page: Any) -> None:
    server = console_server
    sign_in(page, server, "admin")  # sees every page
    # From each page, every header link: the links are the frame's, on every page alike.
    for _, _, start in NAVIGATION[:2]:
        if urlparse(page.url).path != start:
            goto(page, server, start)
        for testid, heading, path in NAVIGATION:
            click_and_land(page, page.get_by_test_id(testid), path)
            expect(page).to_have_title(f"{heading} · fundpool console")
            expect(page.locator(".nicegui-content").get_by_text(heading, exact=True).first) \
                .to_be_visible()
    goto(page, server, "/console/")

    # The alert about the pool opens the overview; the one about USD on bank-a (subject
    # `asset:USD,channel:bank-a`) opens that asset on that channel, with its account.
    bar = page.get_by_test_id("alert-bar")
    pool_alert = bar.locator('[data-severity="info"]').filter(
        has_text="Demo pool: simulated traffic is running")
    expect(pool_alert).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    goto(page, server, "/console/stream")
    click_and_land(page, pool_alert.get_by_test_id("alert-go"), "/console/")
    expect(page.get_by_test_id("page-title")).to_have_text("Overview")

    depth_alert = bar.locator('[data-severity="warning"]').filter(
        has_text="(asset:USD,channel:bank-a)")
    expect(depth_alert).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    click_and_land(page, depth_alert.get_by_test_id("alert-go"), "/console/drill")
    assert query_of(page) == {"asset": ["USD"], "channel": ["bank-a"]}
    expect(page.get_by_test_id("drill-title")).to_have_text(
        "Channel bank-a · USD: accounts and payments")
    accounts = page.get_by_test_id("drill-accounts").locator("tbody tr")
    expect(accounts.first).to_contain_text("pool:main:usd:bank-a:available")
    assert all(":usd:bank-a:" in text for text in accounts.all_inner_texts())

    # The drill page's own way back.
    click_and_land(page, page.get_by_text("Back to the overview"), "/console/")
    expect(page.get_by_test_id("page-title")).to_have_text("Overview")


CHART_OPTION_JS = """(name) => {
  const element = document.querySelector(`[data-testid="${name}"]`);
  const chart = element && getElement(element).chart;
  return chart ? chart.getOption() : null;
}"""


def test_overview_trend_over_7_days_and_the_heatmaps_legend(console_server: Server,
                                                            page: Any) -> None:
    server = console_server
    sign_in(page, server, "viewer")
    # 7 days of a pool minutes old: the points it has, drawn as points, and a note saying
    # why the line is short (the series' empty hours before the pool were drawn as zeros,
    # which left the whole history in one pixel at the right edge: a blank box).
    page.get_by_test_id("trend-range").get_by_text("7d", exact=True).click()
    page.wait_for_url(re.compile(r"range=7d"))
    page.wait_for_function("() => window.did_handshake === true")
    trend = page.get_by_test_id("chart-trend")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"chart-trend\"]')"
        "?.getAttribute('data-points') !== null", timeout=LIVE_TIMEOUT_MS)
    points = int(trend.get_attribute("data-points"))
    option = page.evaluate(CHART_OPTION_JS, "chart-trend")
    series = option["series"]
    assert [len(line["data"]) for line in series] == [points, points]
    assert points >= 1
    assert all(float(value) > 0 for value in series[0]["data"]), series[0]["data"]
    if points < 3:
        assert all(line["showSymbol"] for line in series)
        expect(page.get_by_test_id("trend-note")).to_contain_text("point(s) since")

    # The heatmap's colour legend stands beside the grid, not over the channel axis.
    page.wait_for_function(f"() => ({CHART_OPTION_JS})('chart-heatmap')?.xAxis[0].data.length")
    heat = page.evaluate(CHART_OPTION_JS, "chart-heatmap")
    legend, grid = heat["visualMap"][0], heat["grid"][0]
    assert legend["orient"] == "vertical", legend
    assert legend["right"] < grid["right"], (legend, grid)
    assert grid["right"] >= 100, grid


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
    # An amount shown rounded says so (`≈`); rounding to six decimals keeps it >= 100.
    amounts = [Decimal(row["amount"].replace(",", "").removeprefix("≈")) for row in rows]
    assert min(amounts) >= 100, rows


def test_stream_is_newest_first_with_amounts_a_person_reads(console_server: Server,
                                                            page: Any) -> None:
    """Rows by the time of their status, newest first, however they came (backfill, live
    events, a payment moving on); ETH amounts at six decimals at most, never cut silently,
    with the exact amount in the tooltip."""
    server = console_server
    sign_in(page, server, "viewer")
    goto(page, server, "/console/stream")
    grid_rows(page)

    def ordered() -> list[str] | None:
        times = [row["time"] for row in page.evaluate(GRID_ROWS_JS)]
        return times if len(times) >= 10 else None

    # Live for a while (payments move on and come back to the top), then held still.
    wait_until(ordered, within_s=30, poll_s=0.5, what="ten rows in the stream")
    page.wait_for_timeout(2_000)  # nothing waits on this: live traffic reorders the grid
    page.get_by_test_id("pause").click()
    expect(page.get_by_test_id("stream-status")).to_contain_text("Paused")
    times = [row["time"] for row in page.evaluate(GRID_ROWS_JS)]
    # HH:MM:SS.mmm in UTC: newest first is descending text, but across midnight.
    assert all(newer >= older or (newer.startswith("00:") and older.startswith("23:"))
               for newer, older in itertools.pairwise(times)), times

    goto(page, server, "/console/stream?asset=ETH")
    rows = grid_rows(page)
    for row in rows:
        for name in ("amount", "fee"):
            text = row[name]
            assert re.fullmatch(r"(≈|<)?[\d,]+(\.\d{1,6})?", text), (name, row)
    with server.api("admin") as api:
        found = api.get("/v1/payments", params={"asset": "ETH", "limit": 1}).json()["data"]
    assert found
    assert len(found[0]["amount"].split(".")[1]) == 18  # the API's exact text: 18 decimals


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

    # The decision in whole units of the asset (the router's own summary counts minor
    # units), and latencies as a person reads them (never "172,803.6 s").
    decision = decisions["data"][0]
    summary = routing.get_by_test_id("routing-summary").first.inner_text()
    asset = re.escape(payment["asset"])
    assert re.search(rf"expected cost [≈<]?[\d,.]+ {asset} = fee [≈<]?[\d,.]+ {asset}",
                     summary), summary
    assert f"fee {decision['fee_minor']} +" not in summary or decision["fee_minor"] == "0"
    latencies = routing.locator("tbody tr td:nth-child(4)").all_inner_texts()
    duration = re.compile(r"\d+ ms|\d+\.\d s|\d+ (min \d+ s|h \d+ min|d \d+ h)")
    assert all(not text or duration.fullmatch(text) for text in latencies), latencies

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


def test_an_adjustment_is_marked_in_the_stream(console_server: Server, page: Any) -> None:
    """A person's raw posting on the pool's accounts is an adjustment: it comes into the
    live stream as a row of its own, marked, with who made it and why."""
    server = console_server
    sign_in(page, server, "viewer")
    token = uuid.uuid4().hex[:8]
    reason = f"console test {token}: move float to rtp"
    # Filtered on the reason (it stands where a payment's counterparty does): this row only.
    goto(page, server, f"/console/stream?cp={token}")
    # The page has joined the live feed once it has shown its first (empty) rows.
    expect(page.get_by_test_id("stream-count")).to_contain_text("0 rows")
    with server.api("admin") as api:
        made = api.post("/v1/ledger/transactions", json={
            "postings": [{"source": "pool:main:usd:bank-a:available",
                          "destination": "pool:main:usd:rtp:available", "asset": "USD",
                          "amount": "1.25"}], "reason": reason},
            headers={"Idempotency-Key": str(uuid.uuid4())})
    assert made.status_code in (200, 201), made.text

    def marked() -> dict[str, str] | None:
        found = [row for row in page.evaluate(GRID_ROWS_JS) if row["counterparty"] == reason]
        return found[0] if found else None

    row = wait_until(marked, within_s=30, poll_s=0.25, what="the adjustment's row")
    assert (row["kind"], row["amount"], row["asset"]) == ("adjustment", "1.25", "USD"), row
    assert row["state"] == f"adjusted by {server.users['admin'][0]}", row
    assert row["short"] == made.json()["id"][-12:], row


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
    # Each row shows its fields, not only its line: which payout a line is, at a glance.
    expect(bad).to_contain_text("Carol Example")
    expect(bad).to_contain_text("12.345")
    expect(bad).to_contain_text(f"console-{run}-3")
    alice = preview.locator("tbody tr").filter(has_text="Alice Example")
    expect(alice).to_contain_text("US00TEST0001")
    expect(alice.locator("td").first).to_have_text("2")
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


# --- 6b. the single payout form ------------------------------------------------------------------

TRUNCATED_LABELS_JS = """() => [...document.querySelectorAll('.q-field__label')]
  .filter((label) => label.offsetParent !== null && label.scrollWidth > label.clientWidth + 1)
  .map((label) => label.textContent.trim())"""


def notifications(page: Any) -> list[str]:
    return [text.strip() for text in page.locator(".q-notification").all_inner_texts()]


def test_payout_form_double_click_makes_one_payment_with_its_destination(
        console_server: Server, page: Any) -> None:
    server = console_server
    username = sign_in(page, server, "cashier")
    goto(page, server, "/console/operations")
    expect(page.get_by_test_id("payout")).to_be_visible()
    assert page.evaluate(TRUNCATED_LABELS_JS) == []  # "From c…", "Ass…" no more
    reference = f"console-dbl-{uuid.uuid4().hex[:10]}"
    page.get_by_test_id("payout-asset").click()
    page.get_by_role("option", name="USD", exact=True).click()
    page.get_by_test_id("payout-amount").fill("10.00")
    page.get_by_test_id("payout-payee").fill("Double Click")
    page.get_by_test_id("payout-destination").fill("DE89 3704 0044 0532 0130 00")
    page.get_by_test_id("payout-reference").fill(reference)
    page.get_by_test_id("payout-create").dblclick()
    created = page.locator(".q-notification").filter(has_text=re.compile(r"Payment \S+ "))
    expect(created.first).to_be_visible()
    payment_id = re.search(r"Payment (\S+) ", created.first.inner_text()).group(1)  # type: ignore[union-attr]
    assert not [text for text in notifications(page) if "Payment" not in text]
    page.wait_for_timeout(1_500)  # a second payment, if any, would have been made by now
    with server.api("admin") as api:
        recent = api.get("/v1/payments", params={"kind": "payout", "limit": 1000}).json()
        payment = api.get(f"/v1/payments/{payment_id}").json()
    ours = [p for p in recent["data"] if p["reference"] == reference]
    assert [p["id"] for p in ours] == [payment_id], ours
    assert (payment["amount"], payment["asset"], payment["counterparty"]) == \
        ("10.00", "USD", "Double Click")
    assert payment["destination"] == "DE89 3704 0044 0532 0130 00"
    assert payment["idempotency_key"].startswith("console-")
    if "initiated_by" in payment:
        assert payment["initiated_by"]["name"] == username

    # Its timeline says who did each step: the cashier created it, the engine took it on.
    goto(page, server, f"/console/stream?payment={payment_id}")
    expect(page.get_by_test_id("detail-title")).to_contain_text(payment_id)
    timeline = page.get_by_test_id("detail-timeline")
    expect(timeline.locator(".q-timeline__entry").first).to_be_visible()
    with server.api("admin") as api:
        events = api.get(f"/v1/payments/{payment_id}").json()["events"]
    if "actor" in events[0]:
        expect(page.get_by_test_id("detail-initiated-by")).to_have_text(
            f"initiated by {username}")
        expect(timeline.locator(".q-timeline__entry").first).to_contain_text(f"by {username}")
        if any((e["actor"] or {}).get("kind") == "engine" for e in events):
            expect(timeline).to_contain_text("by engine")


def test_a_refusal_is_said_in_the_users_language(console_server: Server, page: Any) -> None:
    server = console_server
    sign_in(page, server, "cashier")
    goto(page, server, "/console/operations")
    for language, said in (("en", "The amount must be a positive number such as 12.50"),
                           ("zh-CN", "金额须为正数，例如 12.50")):
        if language == "zh-CN":
            page.get_by_test_id("language").click()
            expect(page.get_by_test_id("language")).to_have_text("English")
            page.wait_for_function("() => window.did_handshake === true")
            assert page.evaluate(TRUNCATED_LABELS_JS) == []
        page.get_by_test_id("payout-amount").fill("-5")
        page.get_by_test_id("payout-payee").fill("Minus Five")
        page.get_by_test_id("payout-destination").fill("US00TEST0009")
        page.get_by_test_id("payout-create").click()
        refusal = page.locator(".q-notification").filter(has_text=said)
        expect(refusal).to_have_count(1)
        text = refusal.inner_text()
        assert "invalid_request" in text  # the stable code, for a ticket
        assert "pattern" not in text
        assert "[0-9]" not in text
    # More than the pool holds: refused at creation, with what was asked and what there is.
    page.get_by_test_id("payout-asset").click()
    page.get_by_role("option", name="USD", exact=True).click()
    page.get_by_test_id("payout-amount").fill("99999999999.00")
    page.get_by_test_id("payout-create").click()
    beyond = page.locator(".q-notification").filter(has_text="insufficient_funds")
    expect(beyond).to_have_count(1)
    text = beyond.inner_text()
    assert "99,999,999,999.00" in text, text  # 申请 (requested), in the reader's language
    assert "可用" in text, text  # available


# --- 7. the language ----------------------------------------------------------------------------


def test_language_switch(console_server: Server, page: Any) -> None:
    sign_in(page, console_server, "viewer")
    expect(page.get_by_test_id("nav-overview")).to_have_text("Overview")
    page.get_by_test_id("language").click()
    expect(page.get_by_test_id("nav-overview")).to_have_text("资金池总览")
    expect(page.get_by_test_id("card-total")).to_contain_text("总资产")
    expect(page.get_by_test_id("nav-stream")).to_have_text("实时交易流水")
    expect(page.get_by_test_id("language")).to_have_text("English")
    # An alert of the engine's own template, said in 简体中文; its severity too.
    depth = page.get_by_test_id("alert-bar").locator('[data-severity="warning"]').filter(
        has_text="深度（可用）（币种 USD · 通道 bank-a）为")
    expect(depth).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    expect(depth).to_contain_text("警告")
    expect(depth).to_contain_text("不低于 0")
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
    # Acknowledged, the alert says by whom (the API's actor, by name).
    chip = risk.get_by_test_id("alert-bar").locator('[data-severity="info"]').filter(
        has_text="Demo pool: simulated traffic is running")
    if chip.get_by_test_id("alert-ack").count():
        chip.get_by_test_id("alert-ack").click()
    expect(chip.get_by_test_id("alert-acked")).to_have_text(
        f"Acknowledged by {server.users['risk'][0]}")
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
