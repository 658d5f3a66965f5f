"""The treasury desk in a real browser, against a live server of its own (no traffic
simulator: nothing moves on the channels unless the test moves it), whose treasury file is
the example's with quotes that hold 8 s, no auto-executed plans, and bands small enough for
a float of a few thousand dollars to be out of them.

- **The exchange.** The cashier opens Treasury from the header, gets a quote for selling
  100.00 EUR for USD, sees its rate and the countdown, accepts it, and sees it executed with
  its ledger entry, and the pair's P&L. A second quote is left to run out: the countdown
  reaches 0, the quote says it expired and Accept is disabled. Two more quotes are accepted
  too late from browsers whose clocks stand still (a tab asleep, a laptop lid closed: their
  countdowns never reach 0): the API refuses them (`fx_quote_expired`), and the page says so
  in English and in 简体中文; nothing is converted.
- **Rebalancing.** With rtp's USD above its band and the book channel's below it, the cashier
  proposes a plan: it has transfers from rtp and waits for approval. The approver opens the
  plan from the plans list and approves it: it is executing (or executed) with its payments.
  The admin proposes a plan and tries to approve it: the page says beforehand that another
  person approves, and the API's refusal (`plan_self_approval`) is said.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.console import conftest as console_conftest
from tests.console.conftest import _pool_config, browser_pages, served_console
from tests.console.harness import Server, expect, save_screenshot, sign_in
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
QUOTE_TTL_S = 8  # long enough to accept in, short enough to wait out
EXPIRY_WAIT_S = QUOTE_TTL_S + 30.0  # a quote expires; the page hears of it
SURE_RAILS = ("rtp", "sepa")
RATES_LINE = 'rates = "rates.toml"'
TREASURY_LINE = 'treasury = "treasury.toml"'
# The example's desk with quotes of 8 s, no sweeps nor credit lines (nothing moves on its
# own), no auto_execute (every plan waits for a person), and bands for rtp and the book
# channel in USD that a float of 3,000.00 on rtp puts out of balance.
TREASURY = f"""
[fx]
spread = "0.25"
quote_ttl_s = {QUOTE_TTL_S}

[netting]
partners = ["partner-pool-a", "agent-7"]

[liquidity]
stale_after_s = 30
sweep_every_s = 3600

[[bands]]
channel = "rtp"
asset = "USD"
min = "100.00"
target = "500.00"
max = "1000.00"

[[bands]]
channel = "book"
asset = "USD"
min = "1000.00"
target = "2000.00"
max = "5000.00"

[[splits]]
id = "marketplace"
asset = "USD"
remainder = "merchant"
parts = [
  {{ party = "platform", role = "platform", percent = "2.9", fixed = "0.30" }},
  {{ party = "partner-pool-a", role = "partner", percent = "1" }},
]
"""


def _pool_config_with_treasury(folder: Path, sure_rails: tuple[str, ...]) -> Path:
    """conftest's pool configuration, with the treasury file above beside it."""
    config = _pool_config(folder, sure_rails)
    text = config.read_text(encoding="utf-8")
    if TREASURY_LINE not in text:
        text = text.replace(RATES_LINE, f"{RATES_LINE}\n{TREASURY_LINE}", 1)
        config.write_text(text, encoding="utf-8")
    (folder / "treasury.toml").write_text(TREASURY, encoding="utf-8")
    return config


@pytest.fixture(scope="module")
def treasury_server(chromium: Path) -> Iterator[Server]:
    """`fundpool serve` with the console and the payment engine on the example pool with the
    treasury file above: conftest's `served_console`, whose configuration is written with
    that file beside it (its `_pool_config` is replaced while the server is set up only)."""
    with ExitStack() as stack:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(console_conftest, "_pool_config", _pool_config_with_treasury)
            server = stack.enter_context(served_console("treasury", sure_rails=SURE_RAILS))
        yield server


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[[], Any]]:
    with browser_pages(browser) as make:
        yield make


def _json(answer: Any) -> Any:
    assert answer.status_code < 300, answer.text
    return answer.json()


def fund(server: Server, channel: str, asset: str, amount: str) -> None:
    """Money on a rail of the pool from its outside world: the admin's adjustment."""
    with server.api("admin") as api:
        _json(api.post("/v1/ledger/transactions", json={
            "postings": [{"source": f"world:{channel}",
                          "destination": f"pool:main:{asset.lower()}:{channel}:available",
                          "asset": asset, "amount": amount}],
            "reason": "test set-up: the pool's float"},
            headers={"Idempotency-Key": str(uuid.uuid4())}))


def expired_at_the_server(server: Server, *quote_ids: str) -> None:
    """Until the API says each quote has no time left (its accept would be refused)."""
    with server.api("cashier") as api:
        def all_expired() -> bool:
            return all(_json(api.get(f"/v1/fx/quotes/{q}"))["expires_in_ms"] == 0
                       for q in quote_ids)

        wait_until(all_expired, within_s=EXPIRY_WAIT_S, poll_s=0.2,
                   what=f"quotes {quote_ids} to expire", detail=server.log_tail)


# --- in the browser ---------------------------------------------------------------------------


def to_treasury(page: Any, tab: str | None = None) -> None:
    """To the desk the way a person goes: the header's link, then the tab."""
    page.get_by_test_id("nav-treasury").click()
    page.wait_for_url("**/console/treasury")
    page.wait_for_function("() => window.did_handshake === true")
    if tab is not None:
        page.get_by_test_id(f"treasury-tab-{tab}").click()
        page.wait_for_url(f"**/console/treasury?tab={tab}")
        page.wait_for_function("() => window.did_handshake === true")


def get_quote(page: Any, amount: str) -> str:
    """Sell `amount` EUR for USD; the quote's id."""
    page.get_by_test_id("fx-amount").fill(amount)
    page.get_by_test_id("fx-get-quote").click()
    quote = page.get_by_test_id("fx-quote")
    expect(quote.get_by_test_id("fx-quote-amounts")).to_have_attribute(
        "data-sell-amount", amount)
    expect(quote).to_have_attribute("data-state", "open")
    quote_id = str(quote.get_attribute("data-quote-id"))
    expect(quote.get_by_test_id("fx-quote-id")).to_contain_text(quote_id)
    return quote_id


def frozen_clock(page: Any) -> None:
    """The browser's clock stands still (its timers run): a countdown never reaches 0."""
    page.clock.set_fixed_time(datetime.now(UTC))


def test_a_quote_is_accepted_and_one_accepted_too_late_is_refused(
        treasury_server: Server, new_page: Callable[[], Any]) -> None:
    server = treasury_server
    fund(server, "sepa", "EUR", "10000.00")

    page = new_page()
    sign_in(page, server, "cashier")
    to_treasury(page)
    expect(page.get_by_test_id("treasury-tab-exchange")).to_have_attribute(
        "aria-selected", "true")
    expect(page.get_by_test_id("fx-rate-EUR-USD")).to_have_attribute("data-mid", "1.0843")
    expect(page.get_by_test_id("fx-spread")).to_have_attribute("data-ttl", str(QUOTE_TTL_S))

    quote_id = get_quote(page, "100.00")
    quote = page.get_by_test_id("fx-quote")
    expect(quote.get_by_test_id("fx-quote-rate")).to_contain_text(
        "All-in rate 1 EUR = 1.08158925 USD · mid 1.0843 · spread 0.25 %")
    countdown = quote.get_by_test_id("fx-countdown")
    expect(countdown).to_contain_text(re.compile(r"^[1-8] s left to accept$"))
    seconds = int(str(countdown.get_attribute("data-seconds")))
    assert 0 < seconds <= QUOTE_TTL_S
    save_screenshot(page, "console-treasury-quote.png")
    quote.get_by_test_id("fx-accept").click()
    expect(quote).to_have_attribute("data-state", "executed")
    expect(quote.get_by_test_id("fx-quote-state")).to_have_text("executed")
    entry = quote.get_by_test_id("fx-entry")
    expect(entry).to_contain_text("Converted: ledger entry ")
    entry_id = str(entry.get_attribute("data-entry-id"))
    assert entry_id not in ("", "None")
    expect(countdown).to_have_text("")
    with server.api("cashier") as api:
        stored = _json(api.get(f"/v1/fx/quotes/{quote_id}"))
    assert (stored["state"], stored["entry_id"]) == ("executed", entry_id)
    expect(page.get_by_test_id(f"fx-quote-row-{quote_id}")).to_have_attribute(
        "data-state", "executed")
    with server.api("cashier") as api:
        [pair] = _json(api.get("/v1/fx/pnl"))["pairs"]
    pnl = page.get_by_test_id("fx-pnl-EUR-USD")
    expect(pnl).to_have_attribute("data-count", "1")
    expect(pnl).to_have_attribute("data-realised", pair["realised"])
    expect(pnl).to_contain_text(f"{pair['realised']} USD")

    # Two browsers whose clocks stand still each get a quote, one in English, one in 中文.
    late_en = new_page()
    sign_in(late_en, server, "cashier")
    to_treasury(late_en)
    frozen_clock(late_en)
    late_en_id = get_quote(late_en, "10.00")
    late_zh = new_page()
    sign_in(late_zh, server, "cashier")
    late_zh.get_by_test_id("language").click()
    expect(late_zh.get_by_test_id("language")).to_have_text("English")
    late_zh.wait_for_function("() => window.did_handshake === true")
    to_treasury(late_zh)
    expect(late_zh.get_by_test_id("page-title")).to_have_text("资金运营")
    frozen_clock(late_zh)
    late_zh_id = get_quote(late_zh, "20.00")
    expect(late_zh.get_by_test_id("fx-countdown")).to_contain_text("秒可接受")

    # Meanwhile a quote left alone runs out: the countdown reaches 0 and Accept is off.
    get_quote(page, "50.00")
    expect(quote).to_have_attribute("data-state", "expired", timeout=EXPIRY_WAIT_S * 1000)
    expect(countdown).to_have_attribute("data-seconds", "0")
    expect(countdown).to_have_text("Expired: get a new quote.")
    expect(quote.get_by_test_id("fx-accept")).to_be_disabled()
    said = quote.get_by_test_id("fx-error")
    expect(said).to_have_attribute("data-code", "fx_quote_expired")
    expect(said).to_have_text("The quote has expired: nothing was converted. Get a new quote. "
                              "(fx_quote_expired)")
    save_screenshot(page, "console-treasury-expired.png")

    # The frozen browsers still offer Accept; the API refuses, and each says so in its tongue.
    expired_at_the_server(server, late_en_id, late_zh_id)
    for late, text in ((late_en, "The quote has expired: nothing was converted. Get a new "
                                 "quote. (fx_quote_expired)"),
                       (late_zh, "报价已过期：未进行任何兑换。请重新获取报价。"
                                 "（fx_quote_expired）")):
        late_quote = late.get_by_test_id("fx-quote")
        expect(late_quote.get_by_test_id("fx-countdown")).not_to_have_attribute(
            "data-seconds", "0")
        late_quote.get_by_test_id("fx-accept").click()
        refused = late_quote.get_by_test_id("fx-error")
        expect(refused).to_have_attribute("data-code", "fx_quote_expired")
        expect(refused).to_have_attribute("data-source", "api")
        expect(refused).to_have_text(text)
        expect(late_quote).to_have_attribute("data-state", "expired")
        expect(late_quote.get_by_test_id("fx-accept")).to_be_disabled()
    save_screenshot(late_zh, "console-treasury-refused-zh.png")
    with server.api("cashier") as api:
        for late_id in (late_en_id, late_zh_id):
            assert _json(api.get(f"/v1/fx/quotes/{late_id}"))["state"] == "expired"
        assert _json(api.get("/v1/fx/pnl"))["pairs"][0]["count"] == 1  # nothing converted


def test_a_plan_is_approved_by_another_person_and_never_by_its_proposer(
        treasury_server: Server, new_page: Callable[[], Any]) -> None:
    server = treasury_server
    fund(server, "rtp", "USD", "3000.00")

    cashier = new_page()
    sign_in(cashier, server, "cashier")
    to_treasury(cashier, "liquidity")
    expect(cashier.get_by_test_id("position-rtp-USD")).to_have_attribute(
        "data-status", "above_max")
    expect(cashier.get_by_test_id("position-book-USD")).to_have_attribute(
        "data-status", "below_min")
    expect(cashier.get_by_test_id("liquidity-policy")).to_contain_text(
        "nothing (every plan waits for approval)")
    cashier.get_by_test_id("plan-propose").click()
    detail = cashier.get_by_test_id("plan-detail")
    expect(detail.get_by_test_id("plan-state")).to_have_attribute("data-state", "proposed")
    expect(detail.get_by_test_id("plan-state")).to_have_text("proposed")
    transfers = detail.get_by_test_id("plan-transfers")
    expect(transfers.locator('[data-source="rtp"]').first).to_be_visible()
    count = int(str(transfers.get_attribute("data-count")))
    assert count >= 1
    expect(detail.get_by_test_id("plan-auto")).to_have_count(0)
    expect(detail.get_by_test_id("plan-approve")).to_have_count(0)  # the cashier's: no
    plan_id = str(detail.get_attribute("data-plan-id"))
    expect(cashier.get_by_test_id(f"plan-row-{plan_id}")).to_have_attribute(
        "data-state", "proposed")
    save_screenshot(cashier, "console-treasury-plan.png")

    approver = new_page()
    sign_in(approver, server, "approver")
    to_treasury(approver, "liquidity")
    expect(approver.get_by_test_id("plan-propose")).to_have_count(0)
    approver.get_by_test_id(f"plan-open-{plan_id}").click()
    approver.wait_for_url(f"**/console/treasury?tab=liquidity&plan={plan_id}")
    approver.wait_for_function("() => window.did_handshake === true")
    opened = approver.get_by_test_id("plan-detail")
    expect(opened).to_have_attribute("data-plan-id", plan_id)
    expect(opened.get_by_test_id("plan-why-not")).to_have_count(0)
    opened.get_by_test_id("plan-approve").click()
    expect(opened.get_by_test_id("plan-state")).to_have_attribute(
        "data-state", re.compile(r"^(executing|executed)$"))
    expect(opened.get_by_test_id("plan-who")).to_contain_text(
        f"approved by {server.users['approver'][0]}")
    payments = opened.get_by_test_id("plan-payments")
    expect(payments).to_have_attribute("data-count", str(count))
    with server.api("approver") as api:
        stored = _json(api.get(f"/v1/liquidity/plans/{plan_id}"))
    assert stored["state"] in ("executing", "executed")
    assert len(stored["payments"]) == count
    for payment_id in stored["payments"]:
        expect(payments.get_by_test_id(f"plan-payment-{payment_id}")).to_contain_text(
            payment_id)
    expect(opened.get_by_test_id("plan-approve")).to_have_count(0)
    save_screenshot(approver, "console-treasury-approved.png")

    # The admin may approve plans, never their own (rtp out of its band again: a plan with
    # transfers, proposed).
    fund(server, "rtp", "USD", "3000.00")
    admin = new_page()
    sign_in(admin, server, "admin")
    to_treasury(admin, "liquidity")
    admin.get_by_test_id("plan-propose").click()
    own = admin.get_by_test_id("plan-detail")
    expect(own.get_by_test_id("plan-state")).to_have_attribute("data-state", "proposed")
    own_id = str(own.get_attribute("data-plan-id"))
    assert own_id != plan_id
    expect(own.get_by_test_id("plan-why-not")).to_have_text(
        "You proposed this plan: another person approves it.")
    own.get_by_test_id("plan-approve").click()
    refused = own.get_by_test_id("plan-error")
    expect(refused).to_have_attribute("data-code", "plan_self_approval")
    expect(refused).to_contain_text("You proposed this plan: another person must approve it.")
    expect(refused).to_contain_text("(plan_self_approval)")
    expect(own.get_by_test_id("plan-state")).to_have_attribute("data-state", "proposed")
    with server.api("admin") as api:
        assert _json(api.get(f"/v1/liquidity/plans/{own_id}"))["state"] == "proposed"
