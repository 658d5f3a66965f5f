"""The frame every console page shares: the header with navigation, language and user, the
risk alert bar, and `Page`, one visit's context (who, which language, the API client).

A page is a function of its `Page`, registered with the permission it needs and its title:

    @console_page("/stream", needs=P.PAYMENTS_READ, title="nav.stream")
    async def stream_page(page: Page) -> None:
        …                                # signed in, allowed, inside the frame

Its parts call the API with `await page.call(page.client.something(...))`, which turns the API's
refusals into a message on screen (and an expired session into the sign-in page).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import Request
from nicegui import app, ui

from fundpool.auth.roles import P
from fundpool.client import AsyncClient
from fundpool.client.errors import ApiError, PermissionDenied, Unauthorized, Unreachable
from fundpool.console.context import CONSOLE_PATH, Console, Signed, current
from fundpool.console.format import Locale, amount_display
from fundpool.console.i18n import t
from fundpool.console.texts import (
    PROBLEM_CODES,
    actor_text,
    alert_summary,
    parse_subject,
    problem_text,
    subject_target,
)

T = TypeVar("T")

ALERTS_REFRESH_S = 2.0
ALERTS_SHOWN_MAX = 6
SEVERITY_COLOURS = {"critical": "negative", "warning": "warning", "info": "info"}
NAVIGATION = (  # path, label key, permission needed to see it
    ("/", "nav.overview", P.POOL_READ),
    ("/stream", "nav.stream", P.PAYMENTS_READ),
    ("/operations", "nav.operations", P.PAYMENTS_READ),
    ("/approvals", "nav.approvals", P.PAYMENTS_READ),  # the approvals desk (pages/approvals.py)
    ("/risk", "nav.risk", P.RISK_READ),  # the review queue and the policies (pages/risk.py)
    ("/approval-rules", "nav.approval_rules", P.PAYMENTS_READ),  # pages/approval_rules.py
    ("/audit", "nav.audit", P.AUDIT_READ),  # the audit log browser (pages/audit.py)
    ("/recon", "nav.recon", P.RECON_READ),  # the reconciliation workbench (pages/recon.py)
    ("/treasury", "nav.treasury", P.TREASURY_READ),  # the treasury desk (pages/treasury/)
)

# A console address comes in two forms, and each place takes exactly one of them:
#   route("/stream")  -> "/stream"          for ui.link and ui.navigate.to: NiceGUI puts the
#                                           mount path in front itself (link.js, navigate);
#   href("/stream")   -> "/console/stream"  for a raw <a :href> in a table's slot, which the
#                                           browser follows as written.
# Giving ui.link the second form made every header link /console/console/… (a 404).


def href(path: str, query: dict[str, str] | None = None) -> str:
    """A console page's address for a raw `<a href>` (a table cell's slot): under the mount
    path. Never for `ui.link` or `ui.navigate.to` (use `route`)."""
    full = CONSOLE_PATH + path
    return f"{full}?{urlencode(query)}" if query else full


def route(path: str, query: dict[str, str] | None = None) -> str:
    """A console page's address for `ui.link` and `ui.navigate.to`, which add the mount path
    themselves."""
    return f"{path}?{urlencode(query)}" if query else path


def page_link(text: str, path: str, query: dict[str, str] | None = None) -> ui.link:
    """A link to a console page (the one way the console makes a `ui.link`)."""
    return ui.link(text, route(path, query))


def here(request: Request) -> str:
    """The page's own address for `ui.navigate.to` (NiceGUI strips the mount path from the
    scope's path)."""
    path = str(request.scope["path"])
    if path.startswith(CONSOLE_PATH + "/"):
        path = path[len(CONSOLE_PATH):]
    return path + (f"?{request.url.query}" if request.url.query else "")


def exact_tooltips(table: ui.table, *columns: str) -> None:
    """Cells of `columns` show their row's `<column>_exact` text as a tooltip (the amount
    with every decimal of its asset)."""
    for column in columns:
        table.add_slot(f"body-cell-{column}", f"""
            <q-td :props="props" :title="props.row.{column}_exact">{{{{ props.value }}}}</q-td>
        """)


def testid(element: T, name: str) -> T:
    """Mark an element for the browser tests (`data-testid`)."""
    element.props(f'data-testid="{name}"')  # type: ignore[attr-defined]
    return element


@dataclass
class Page:
    console: Console
    request: Request
    browser: str
    signed: Signed
    locale: Locale
    client: AsyncClient
    wall: bool = False
    leaving: bool = False  # on its way to the sign-in page: said once, whoever noticed first

    @classmethod
    async def open(cls, request: Request, *, needs: str | None = None) -> Page | None:
        """This visit's context, or None after sending the browser to sign in (no session,
        or one the API no longer accepts) or showing what permission is missing."""
        console = current()
        browser = str(app.storage.browser["id"])
        signed = console.signed(browser)
        if signed is None:
            ui.navigate.to(route("/login", {"next": here(request),
                                            "why": console.why_signed_out(browser)}))
            return None
        client = console.client(signed)
        ui.context.client.on_delete(client.aclose)
        page = cls(console, request, browser, signed, console.locale(browser), client,
                   wall=request.query_params.get("wall") == "1")
        me = await page.call(client.me())  # the session still holds, with today's roles
        if me is None:
            return None
        page.signed = signed = Signed(signed.token, signed.username, tuple(me.roles),
                                      frozenset(me.permissions))
        if needs is not None and not signed.may(needs):
            page.frame(None)
            testid(ui.label(page.t("error.forbidden", permission=needs)), "forbidden") \
                .classes("text-negative text-lg")
            return None
        return page

    def t(self, key: str, **values: object) -> str:
        return t(key, self.locale, **values)

    def amount(self, minor: int, asset: str, *, signed: bool = False) -> str:
        """An amount of `asset` as shown (at most six decimals, `≈` when rounded)."""
        return self.amounts(minor, asset, signed=signed)[0]

    def amounts(self, minor: int, asset: str, *, signed: bool = False) -> tuple[str, str]:
        """(shown, exact) text of an amount of `asset`: the exact one for a tooltip."""
        scale = self.console.scales().get(asset, 0)
        return amount_display(minor, scale, self.locale, signed=signed)

    def roles_text(self) -> str:
        return ", ".join(self.t(f"role.{r}") for r in self.signed.roles)

    async def call(self, awaitable: Awaitable[T], *, quiet: bool = False) -> T | None:
        """The API's answer, or None after saying on screen why there is none (`quiet`: a
        background refresh says nothing and tries again on its next tick; a session the API
        no longer accepts still ends, whoever notices it)."""
        try:
            return await awaitable
        except ApiError as error:
            if not quiet or isinstance(error, Unauthorized):
                self.report(error)
        return None

    def report(self, error: ApiError) -> None:
        """Say on screen why the API refused; an ended session sends the browser to sign in
        (and back here after)."""
        if isinstance(error, Unauthorized):
            # Every timer of the page meets the ended session; the first sends the browser
            # away, and a second navigation would abort the first one mid-flight.
            if self.leaving:
                return
            self.leaving = True
            self.console.end(self.browser, self.signed.token)
            ui.navigate.to(route("/login", {"next": here(self.request), "why": "expired"}))
        elif isinstance(error, PermissionDenied) and (
                error.code == "forbidden" or error.code not in PROBLEM_CODES):
            # A role without the route's permission; a 403 the console has words for (four
            # eyes, maker-checker: `self_approval`, `self_activation`) is said as itself.
            ui.notify(self.t("error.forbidden",
                             permission=error.facts.get("permission", "?")), type="negative")
        elif isinstance(error, Unreachable):
            ui.notify(self.t("error.unreachable"), type="warning")
        else:
            ui.notify(self.problem(error), type="negative", multi_line=True)

    def problem(self, error: ApiError) -> str:
        """The API's refusal in the user's language (its stable code beside it), its amounts
        (`requested_minor`, `available_minor`, …) shown as amounts of its asset."""
        facts = dict(error.facts or {})
        asset = facts.get("asset")
        if isinstance(asset, str):
            for name in ("requested", "available", "amount", "fee", "shortfall", "balance"):
                minor = facts.get(f"{name}_minor")
                if name not in facts and isinstance(minor, int | str) and \
                        str(minor).lstrip("-").isdigit():
                    facts[name] = self.amount(int(minor), asset)
        return self.t("error.generic", code=error.code,
                      title=problem_text(error.code, error.title, facts, self.locale))

    # --- the frame --------------------------------------------------------------------------

    def frame(self, title_key: str | None) -> None:
        """The header, navigation and alert bar; `title_key` names the page."""
        ui.page_title(f"{self.t(title_key) if title_key else ''} · {self.t('app.title')}")
        ui.add_head_html(STYLE)
        if self.wall:
            ui.query("body").classes("fp-wall")
        with ui.header().classes("items-center gap-4 px-4 py-2 bg-slate-900"):
            ui.label("fundpool").classes("text-lg font-bold tracking-wide")
            for path, key, permission in NAVIGATION:
                if self.signed.may(permission):
                    link = page_link(self.t(key), path).classes("text-white no-underline")
                    testid(link, f"nav-{key.split('.')[1]}")
            ui.space()
            pools = self.console.pool_ids
            ui.label(self.t("shell.pool", pool=", ".join(pools))).classes("opacity-80")
            wall = ui.button(self.t("shell.wall"), on_click=self._toggle_wall) \
                .props("flat dense no-caps color=white")
            testid(wall, "wall")
            language = ui.button(self.t("shell.language"), on_click=self._switch_language) \
                .props("flat dense no-caps color=white")
            testid(language, "language")
            who = ui.label(self.t("shell.signed_in_as", user=self.signed.username,
                                  roles=self.roles_text())).classes("opacity-80")
            testid(who, "who")
            # Every signed-in user's own signing keys and authenticator (pages/keys.py).
            testid(page_link(self.t("nav.keys"), "/keys").classes("text-white no-underline"),
                   "nav-keys")
            out = ui.button(self.t("shell.sign_out"), on_click=self._sign_out) \
                .props("flat dense no-caps color=white")
            testid(out, "sign-out")
        if self.signed.may(P.MONITORING_READ):
            AlertBar(self)

    def here(self, **changes: str | None) -> str:
        """This page's address for `ui.navigate.to`, with query parameters changed."""
        query = dict(self.request.query_params)
        for key, value in changes.items():
            query.pop(key, None)
            if value is not None:
                query[key] = value
        return route(here(self.request).split("?")[0], query or None)

    def _switch_language(self) -> None:
        self.console.set_locale(self.browser, "zh-CN" if self.locale == "en" else "en")
        ui.navigate.to(self.here())

    def _toggle_wall(self) -> None:
        ui.navigate.to(self.here(wall=None if self.wall else "1"))

    async def _sign_out(self) -> None:
        signed = self.console.sign_out(self.browser)
        if signed is not None:
            with contextlib.suppress(ApiError):  # gone already: signed out all the same
                await self.client.logout()
        ui.navigate.to(route("/login", {"why": "signed_out"}))

    def every(self, seconds: float, refresh: Callable[[], Awaitable[Any]]) -> ui.timer:
        """Call `refresh` now and every `seconds` while the page is open."""
        return ui.timer(seconds, refresh, immediate=True)


Build = Callable[["Page"], Awaitable[None]]


def console_page(path: str, *, needs: str | None, title: str
                 ) -> Callable[[Build], Build]:
    """Register `build` as the console page at `path` (under the mount path): it runs for a
    browser signed in with `needs` (None: any signed-in user), inside the shared frame titled
    `title` (an i18n key). A browser without a session is sent to sign in; one without the
    permission is told so."""
    def register(build: Build) -> Build:
        async def handler(request: Request) -> None:
            page = await Page.open(request, needs=needs)
            if page is not None:
                page.frame(title)
                await build(page)

        handler.__name__ = handler.__qualname__ = build.__name__
        ui.page(path)(handler)
        return build
    return register


class AlertBar:
    """The risk alert bar: active alerts, worst first, coloured by severity; acknowledge
    (with `alerts:acknowledge`) and a link to the channel, asset or payment concerned."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.shown: tuple[tuple[str, str], ...] | None = None
        self.bar = testid(ui.row().classes("w-full items-center gap-2 px-4 py-1 fp-alertbar"),
                          "alert-bar")
        page.every(ALERTS_REFRESH_S, self.refresh)

    async def refresh(self) -> None:
        found = await self.page.call(self.page.client.alerts(state="active", limit=50),
                                     quiet=True)
        if found is None:
            return  # the bar keeps what it showed
        order = {"critical": 0, "warning": 1, "info": 2}
        alerts = sorted(found.data, key=lambda a: (order.get(a.severity, 3), -a.fired_at_us))
        key = tuple((a.id, a.state) for a in alerts)
        if key == self.shown:
            return
        self.shown = key
        self.bar.clear()
        with self.bar:
            if not alerts:
                testid(ui.label(self.page.t("alerts.none")).classes("opacity-70"), "alerts-none")
                return
            ui.label(self.page.t("alerts.count", count=len(alerts))).classes("font-medium")
            for alert in alerts[:ALERTS_SHOWN_MAX]:
                self._chip(alert)

    def _chip(self, alert: Any) -> None:
        page = self.page
        colour = SEVERITY_COLOURS.get(alert.severity, "grey")
        card = testid(ui.card().classes(f"fp-alert fp-alert-{alert.severity} px-2 py-1"),
                      f"alert-{alert.id}").props(f'data-severity="{alert.severity}"')
        with card, ui.row().classes("items-center gap-2 no-wrap"):
            ui.badge(page.t(f"severity.{alert.severity}")
                     if alert.severity in SEVERITY_COLOURS else alert.severity,
                     color=colour)
            ui.label(alert_summary(alert.summary, page.locale)).classes("text-sm")
            subject = parse_subject(alert.subject, assets=page.console.scales(),
                                    channels=page.console.channel_ids)
            if subject is not None:
                path, query = subject_target(subject)
                testid(page_link(page.t("alerts.go"), path, query).classes("text-sm"),
                       "alert-go")
            if alert.state == "acknowledged":
                # The API names the acknowledger as an actor (an object); an older server
                # gave its name as text.
                acked = alert.acknowledged_by
                who = acked if isinstance(acked, str) else actor_text(acked, page.locale)
                testid(ui.label(page.t("alerts.acked", actor=who or "?"))
                       .classes("text-xs opacity-70"), "alert-acked")
            elif page.signed.may(P.ALERTS_ACKNOWLEDGE):
                testid(ui.button(page.t("alerts.ack"),
                                 on_click=lambda a=alert: self._acknowledge(a.id))
                       .props("dense flat no-caps size=sm"), "alert-ack")

    async def _acknowledge(self, alert_id: str) -> None:
        done = await self.page.call(self.page.client.acknowledge_alert(alert_id))
        if done is not None:
            self.shown = None
            await self.refresh()


STYLE = """
<style>
  .fp-card-value { font-variant-numeric: tabular-nums; }
  .fp-alertbar { background: #f8fafc; border-bottom: 1px solid #e2e8f0; min-height: 2.5rem; }
  .fp-alert-critical { border-left: 4px solid #dc2626; }
  .fp-alert-warning { border-left: 4px solid #d97706; }
  .fp-alert-info { border-left: 4px solid #2563eb; }
  .fp-tone-neutral { color: #475569; }
  .fp-tone-attention { color: #b45309; font-weight: 600; }
  .fp-tone-progress { color: #1d4ed8; }
  .fp-tone-done { color: #15803d; font-weight: 600; }
  .fp-tone-bad { color: #b91c1c; font-weight: 600; }
  .fp-tone-muted { color: #6b7280; }
  .fp-wrap { white-space: normal !important; overflow-wrap: anywhere; }
  .fp-nowrap { white-space: nowrap; }
  .fp-adjustment { background: #fef3c7 !important; font-weight: 600; }
  .fp-risk-block { background: #fee2e2 !important; }
  .fp-risk-hold { background: #ffedd5 !important; }
  .fp-risk-review { background: #fef9c3 !important; }
  .fp-breached { background: #fee2e2; }
  .fp-mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
  .fp-diff-add { background: #dcfce7; color: #166534; }
  .fp-diff-remove { background: #fee2e2; color: #991b1b; }
  .fp-diff-hunk { color: #1d4ed8; }
  .fp-diff-header { color: #6b7280; }
  .fp-line-error { background: #fecaca; font-weight: 600; }
  .fp-timeline .q-timeline__title { font-size: 1rem; line-height: 1.4rem; margin-bottom: 0; }
  .fp-timeline .q-timeline__subtitle { text-transform: none; letter-spacing: 0; }
  .fp-timeline .q-timeline__content { padding-bottom: 10px; }
  body.fp-wall { font-size: 1.25rem; }
  body.fp-wall .fp-card-value { font-size: 2.6rem; }
</style>
"""
