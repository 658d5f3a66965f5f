"""The exchange tab: the pool's pairs at their mid rates; a quote for selling (or buying) an
amount, its all-in rate against the mid and the spread, and a countdown to its expiry; Accept
converts at the quote's rate (one ledger entry) and shows the entry; the recent quotes; the
P&L per pair in the reporting currency.

The countdown runs in the browser, from the `expires_in_ms` the API answered with: it counts
whole seconds, rounded up (console/treasury.py `seconds_left`), and at 0 tells the page,
which disables Accept and says the quote expired. The API decides all the same: an Accept
that reaches it after the expiry is refused (`fx_quote_expired`, said in the user's
language), and nothing is converted.
"""

from __future__ import annotations

import json
from typing import Any

from nicegui import events, ui

from fundpool.console.pages.treasury.common import (
    Desk,
    badge,
    cells,
    empty,
    error_label,
    header_row,
    listing,
    table_row,
)
from fundpool.console.recon import when_text
from fundpool.console.shell import testid
from fundpool.console.texts import problem_text
from fundpool.console.treasury import (
    QUOTE_STATE_COLOURS,
    QUOTE_STATE_KEYS,
    SECONDS_SLOT,
    actor_name,
    amount_ok,
    countdown_templates,
    listed_state,
    seconds_left,
    state_text,
)

QUOTES_SHOWN_MAX = 20
EXPIRED_EVENT = "fp_quote_expired"
EXPIRED_CODE = "fx_quote_expired"
TICK_MS = 250  # the countdown's text changes within a quarter second of each second
ELEMENT_TRIES_MAX = 200  # the countdown waits at most this many ticks of 20 ms for its label
SELL, BUY = "sell", "buy"

# The countdown in the browser: `deadline` from the browser's own clock, so that a slow
# answer or a busy server does not stretch it; at 0 it stops and tells the page.
COUNTDOWN_JS = """
(() => {
  let tries = 0;
  const start = () => {
    const el = getHtmlElement(%(element)s);
    if (!el) { if (tries++ < %(tries)d) setTimeout(start, 20); return; }
    if (window.fpQuoteTimer) clearInterval(window.fpQuoteTimer);
    const deadline = Date.now() + %(ms)d;
    const tick = () => {
      const left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      el.dataset.seconds = String(left);
      el.textContent = left > 0 ? %(running)s.replace(%(slot)s, String(left)) : %(over)s;
      if (left === 0) {
        clearInterval(window.fpQuoteTimer);
        window.fpQuoteTimer = null;
        emitEvent(%(event)s, %(quote)s);
      }
    };
    tick();
    window.fpQuoteTimer = setInterval(tick, %(tick)d);
  };
  start();
})();
"""
STOP_JS = "if (window.fpQuoteTimer) { clearInterval(window.fpQuoteTimer); " \
          "window.fpQuoteTimer = null; }"
# The countdown's text is the browser's alone (the server never sets it, so that Vue does not
# write over it): stopped, it is cleared the same way.
CLEAR_JS = "%(stop)s const el = getHtmlElement(%(element)s); if (el) { el.textContent = ''; }"


class Exchange:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.quote: dict[str, Any] | None = None
        self.expired_here = False  # the countdown reached 0 for the quote shown
        self.busy = False

    async def build(self) -> None:
        t = self.desk.t
        with ui.row().classes("w-full gap-3 items-stretch"):
            with testid(ui.card().classes("min-w-80"), "fx-rates-card"):
                ui.label(t("treasury.fx_rates")).classes("font-medium")
                self.rates_box = testid(ui.column().classes("w-full gap-0"), "fx-rates")
            with testid(ui.card().classes("flex-1 min-w-96"), "fx-quote-card"):
                ui.label(t("treasury.fx_quote_title")).classes("font-medium")
                if self.desk.may["quote"]:
                    self._form()
                else:
                    testid(ui.label(t("treasury.read_only", roles=self.desk.page.roles_text()))
                           .classes("text-sm text-warning"), "fx-read-only")
                self.form_error = error_label("fx-form-error")
                self.quote_box = testid(ui.column().classes("w-full gap-1"), "fx-quote")
        with testid(ui.card().classes("w-full"), "fx-quotes-card"):
            ui.label(t("treasury.fx_recent")).classes("font-medium")
            self.quotes_box = testid(ui.column().classes("w-full gap-0"), "fx-quotes")
        with testid(ui.card().classes("w-full"), "fx-pnl-card"):
            self.pnl_title = ui.label(t("treasury.fx_pnl", currency=self.desk.reporting)) \
                .classes("font-medium")
            self.pnl_box = testid(ui.column().classes("w-full gap-0"), "fx-pnl")
        ui.on(EXPIRED_EVENT, self._expired)
        await self._rates()
        await self.refresh()

    # --- rates ---------------------------------------------------------------------------

    async def _rates(self) -> None:
        t = self.desk.t
        doc = await self.desk.read(self.desk.page.client.fx_rates(pool=self.desk.pool.id))
        if doc is None:
            return
        self.rates_box.clear()
        with self.rates_box:
            testid(ui.label(t("treasury.fx_spread", spread=doc.get("spread_percent"),
                              ttl=doc.get("quote_ttl_s"))).classes("text-sm opacity-80"),
                   "fx-spread").props(f'data-spread="{doc.get("spread_percent")}" '
                                      f'data-ttl="{doc.get("quote_ttl_s")}"')
            header_row(t, (("treasury.col_pair", "w-32"), ("treasury.col_mid", "w-40")))
            rates = doc.get("rates") or []
            if not rates:
                empty(t("treasury.fx_no_rates"), "fx-rates-none")
            for rate in rates:
                pair = str(rate.get("pair"))
                cells(((pair, "w-32"), (str(rate.get("mid_rate")), "w-40 fp-card-value")),
                      name=f"fx-rate-{pair.replace('/', '-')}", mid=rate.get("mid_rate"))

    # --- the quote form ------------------------------------------------------------------

    def _form(self) -> None:
        t = self.desk.t
        assets = self.desk.assets
        sell = "EUR" if "EUR" in assets else assets[0]
        buy = self.desk.reporting if self.desk.reporting in assets and \
            self.desk.reporting != sell else next((a for a in assets if a != sell), sell)
        with ui.row().classes("w-full items-end gap-2"):
            self.sell = testid(ui.select(assets, value=sell, label=t("treasury.fx_sell"))
                               .props("dense outlined").classes("w-28"), "fx-sell")
            self.buy = testid(ui.select(assets, value=buy, label=t("treasury.fx_buy"))
                              .props("dense outlined").classes("w-28"), "fx-buy")
            self.side = testid(ui.toggle({SELL: t("treasury.fx_side_sell"),
                                          BUY: t("treasury.fx_side_buy")}, value=SELL)
                               .props("dense no-caps"), "fx-side")
            self.amount = testid(ui.input(t("treasury.amount"), placeholder="1000.00")
                                 .props("dense outlined").classes("w-40"), "fx-amount")
            testid(ui.button(t("treasury.fx_get_quote"), on_click=self.get_quote)
                   .props("unelevated no-caps color=primary"), "fx-get-quote")

    async def get_quote(self) -> None:
        desk = self.desk
        amount = str(self.amount.value or "").strip()
        if not amount_ok(amount):
            desk.say(self.form_error, "treasury.amount_invalid")
            return
        if self.busy:
            return
        self.busy = True
        try:
            side = {"sell_amount": amount} if self.side.value == SELL else {"buy_amount": amount}
            doc = await desk.act(desk.page.client.create_fx_quote(
                str(self.sell.value), str(self.buy.value), pool=desk.pool.id, **side),
                self.form_error)
        finally:
            self.busy = False
        if doc is not None:
            self.show(doc)
            await self.refresh(pnl=False)  # a quote changes the list, not the P&L

    # --- the quote -----------------------------------------------------------------------

    def show(self, doc: dict[str, Any]) -> None:
        """Draw the quote `doc` and start its countdown (when it is open)."""
        t = self.desk.t
        self.quote = doc
        self.expired_here = False
        state = str(doc.get("state"))
        quote_id = str(doc.get("id"))
        ui.run_javascript(STOP_JS)
        self.quote_box.clear()
        self.quote_box.props(f'data-quote-id="{quote_id}"')
        with self.quote_box:
            with ui.row().classes("items-center gap-2"):
                self.state_box = ui.row().classes("items-center")
                testid(ui.label(t("treasury.quote_id", id=quote_id)).classes(
                    "text-xs opacity-60 fp-mono"), "fx-quote-id")
            testid(ui.label(t("treasury.quote_amounts", sell_amount=doc.get("sell_amount"),
                              sell=doc.get("sell"), sell_channel=doc.get("sell_channel"),
                              buy_amount=doc.get("buy_amount"), buy=doc.get("buy"),
                              buy_channel=doc.get("buy_channel")))
                   .classes("text-lg fp-card-value"), "fx-quote-amounts").props(
                f'data-sell-amount="{doc.get("sell_amount")}" '
                f'data-buy-amount="{doc.get("buy_amount")}"')
            testid(ui.label(t("treasury.quote_rate", sell=doc.get("sell"), buy=doc.get("buy"),
                              rate=doc.get("rate"), mid=doc.get("mid_rate"),
                              spread=doc.get("spread_percent"))).classes("text-sm"),
                   "fx-quote-rate").props(f'data-rate="{doc.get("rate")}"')
            left = seconds_left(int(doc.get("expires_in_ms") or 0))
            self.countdown = testid(ui.element("div").classes(
                "text-sm font-medium fp-card-value"), "fx-countdown").props(
                f'data-seconds="{left}"')
            with ui.row().classes("items-center gap-2"):
                self.accept_button = testid(ui.button(t("treasury.fx_accept"),
                                                      on_click=self.accept)
                                            .props("unelevated no-caps color=positive"),
                                            "fx-accept")
                self.accept_button.set_visibility(self.desk.may["quote"])
            self.result = testid(ui.column().classes("gap-0"), "fx-result")
            self.quote_error = error_label("fx-error")
        self._state(state)
        if state == "open" and left > 0:
            running, over = countdown_templates(self.desk.page.locale)
            ui.run_javascript(COUNTDOWN_JS % {
                "element": self.countdown.id, "tries": ELEMENT_TRIES_MAX,
                "ms": int(doc.get("expires_in_ms") or 0), "running": json.dumps(running),
                "slot": json.dumps(SECONDS_SLOT), "over": json.dumps(over),
                "event": json.dumps(EXPIRED_EVENT), "quote": json.dumps(quote_id),
                "tick": TICK_MS})
        self._outcome(doc)

    def _stop_countdown(self) -> None:
        ui.run_javascript(CLEAR_JS % {"stop": STOP_JS, "element": self.countdown.id})

    def _state(self, state: str) -> None:
        """The quote's state badge, and Accept offered only while it is open."""
        locale = self.desk.page.locale
        shown = "expired" if self.expired_here and state == "open" else state
        self.state_box.clear()
        with self.state_box:
            badge(state_text(QUOTE_STATE_KEYS, shown, locale),
                  QUOTE_STATE_COLOURS.get(shown, "grey"), "fx-quote-state", shown)
        self.quote_box.props(f'data-state="{shown}"')
        self.accept_button.set_enabled(shown == "open")

    def _outcome(self, doc: dict[str, Any]) -> None:
        t = self.desk.t
        self.result.clear()
        with self.result:
            if doc.get("state") == "executed":
                testid(ui.label(t("treasury.quote_done", entry=doc.get("entry_id")))
                       .classes("text-positive"), "fx-entry").props(
                    f'data-entry-id="{doc.get("entry_id")}"')
            elif doc.get("state") == "refused" and doc.get("error"):
                error = doc["error"]
                testid(ui.label(t("treasury.quote_refused_because", reason=problem_text(
                    str(error.get("code")), str(error.get("title") or ""),
                    error.get("facts"), self.desk.page.locale)))
                       .classes("text-negative fp-wrap"), "fx-refused-why")

    def _expired(self, event: events.GenericEventArguments) -> None:
        """The countdown reached 0 in the browser: the quote may no longer be accepted."""
        args = event.args
        quote_id = args[0] if isinstance(args, list) and args else args
        if self.quote is None or quote_id != self.quote.get("id") or \
                self.quote.get("state") != "open":
            return
        self.expired_here = True
        self._state("open")
        locale = self.desk.page.locale
        said = problem_text(EXPIRED_CODE, "", None, locale)
        self.quote_error.set_text(self.desk.t("error.generic", code=EXPIRED_CODE, title=said))
        self.quote_error.props(f'data-code="{EXPIRED_CODE}" data-source="countdown"')
        self.quote_error.set_visibility(True)

    async def accept(self) -> None:
        desk = self.desk
        quote = self.quote
        if quote is None or self.busy:
            return
        self.busy = True
        self.accept_button.set_enabled(False)
        try:
            done = await desk.act(desk.page.client.accept_fx_quote(
                str(quote["id"]), pool=desk.pool.id), self.quote_error)
        finally:
            self.busy = False
        if done is None:
            self.quote_error.props('data-source="api"')
            # The quote as it now stands (expired, refused, accepted by someone else).
            fresh = await desk.page.call(desk.page.client.fx_quote(
                str(quote["id"]), pool=desk.pool.id), quiet=True)
            if fresh is not None and self.quote is quote:
                self.quote = fresh
                self._state(str(fresh.get("state")))
                self._outcome(fresh)
                if fresh.get("state") != "open":
                    self._stop_countdown()
            await self.refresh()
            return
        self._stop_countdown()
        self.quote = done
        self._state(str(done.get("state")))
        self._outcome(done)
        await self.refresh()

    # --- recent quotes and P&L -----------------------------------------------------------

    async def refresh(self, *, pnl: bool = True) -> None:
        """The recent quotes and (unless `pnl` is False) the P&L, read again."""
        desk = self.desk
        quotes = await desk.read(desk.page.client.fx_quotes(pool=desk.pool.id,
                                                           limit=QUOTES_SHOWN_MAX))
        figures = await desk.read(desk.page.client.fx_pnl(pool=desk.pool.id)) if pnl else None
        if quotes is not None:
            self._quotes(quotes)
        if figures is not None:
            self._pnl(figures)

    def _quotes(self, quotes: list[dict[str, Any]]) -> None:
        t, locale = self.desk.t, self.desk.page.locale
        columns = (("treasury.col_state", "w-24"), ("treasury.col_created", "w-44"),
                   ("treasury.col_sell", "w-44"), ("treasury.col_buy", "w-44"),
                   ("treasury.col_rate", "w-32"), ("treasury.col_by", "w-28"),
                   ("treasury.col_entry", "flex-1"))
        if not listing(self.quotes_box, t, quotes, columns,
                       none=("treasury.fx_no_quotes", "fx-quotes-none")):
            return
        with self.quotes_box:
            for quote in quotes:
                state = listed_state(quote)
                with table_row(f"fx-quote-row-{quote.get('id')}", state=state):
                    with ui.row().classes("w-24"):
                        ui.badge(state_text(QUOTE_STATE_KEYS, state, locale),
                                 color=QUOTE_STATE_COLOURS.get(state, "grey"))
                    ui.label(when_text(quote.get("created_at"))) \
                        .classes("w-44")
                    ui.label(f"{quote.get('sell_amount')} {quote.get('sell')}") \
                        .classes("w-44 fp-card-value")
                    ui.label(f"{quote.get('buy_amount')} {quote.get('buy')}") \
                        .classes("w-44 fp-card-value")
                    ui.label(str(quote.get("rate"))).classes("w-32 fp-card-value")
                    ui.label(actor_name(quote.get("created_by"), locale)).classes("w-28")
                    ui.label(str(quote.get("entry_id") or "—")).classes(
                        "flex-1 text-xs fp-mono fp-wrap")

    def _pnl(self, doc: dict[str, Any]) -> None:
        t = self.desk.t
        currency = str(doc.get("reporting_currency") or self.desk.reporting)
        self.pnl_title.set_text(t("treasury.fx_pnl", currency=currency))
        pairs = doc.get("pairs") or []
        columns = (("treasury.col_pair", "w-32"), ("treasury.col_realised", "w-44"),
                   ("treasury.col_unrealised", "w-44"),
                   ("treasury.col_conversions", "w-32"))
        if not listing(self.pnl_box, t, pairs, columns,
                       none=("treasury.fx_no_pnl", "fx-pnl-none"), count=False):
            return
        with self.pnl_box:
            for pair in pairs:
                name = str(pair.get("pair"))
                cells(((name, "w-32"), (f"{pair.get('realised')} {currency}",
                                        "w-44 fp-card-value"),
                       (f"{pair.get('unrealised')} {currency}", "w-44 fp-card-value"),
                       (str(pair.get("count")), "w-32")),
                      name=f"fx-pnl-{name.replace('/', '-')}", realised=pair.get("realised"),
                      unrealised=pair.get("unrealised"), count=pair.get("count"))
