"""The treasury desk (资金运营, docs/treasury.md) at `/console/treasury`: one page, a tab for
each of the desk's parts, the tab in the address (`?tab=liquidity`) so that a bookmark or a
language switch opens it again.

- **Exchange** (exchange.py): mid rates, a quote with its countdown, Accept, the recent
  quotes, the P&L per pair.
- **Splits & waterfall** (previews.py): a split rule's shares of an amount; a waterfall's
  payments tier by tier.
- **Netting** (netting.py): participants, obligations queued, cycles run.
- **Liquidity** (liquidity.py): positions against their bands, rebalancing plans (propose,
  approve by another person, reject), sweeps and credit lines.
- **Stress test** (stress.py): a scenario on the live pool, its summary and chart.

Reading needs `treasury:read` (every role); each action is offered with the permission its
route declares (`x-permission`: `treasury:write`, `treasury:approve`), and the API checks it
again. Amounts are the API's exact decimal text everywhere but in the stress chart's drawing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nicegui import ui

from fundpool.auth.roles import P
from fundpool.console.pages.treasury.common import Desk
from fundpool.console.pages.treasury.exchange import Exchange
from fundpool.console.pages.treasury.liquidity import Liquidity
from fundpool.console.pages.treasury.netting import Netting
from fundpool.console.pages.treasury.previews import Previews
from fundpool.console.pages.treasury.stress import Stress
from fundpool.console.shell import Page, console_page, testid

TREASURY_PATH = "/treasury"
TABS: dict[str, tuple[str, Callable[[Desk], Callable[[], Awaitable[None]]]]] = {
    "exchange": ("treasury.tab_exchange", lambda desk: Exchange(desk).build),
    "previews": ("treasury.tab_previews", lambda desk: Previews(desk).build),
    "netting": ("treasury.tab_netting", lambda desk: Netting(desk).build),
    "liquidity": ("treasury.tab_liquidity", lambda desk: Liquidity(desk).build),
    "stress": ("treasury.tab_stress", lambda desk: Stress(desk).build),
}
FIRST_TAB = "exchange"


@console_page(TREASURY_PATH, needs=P.TREASURY_READ, title="nav.treasury")
async def treasury_page(page: Page) -> None:
    desk = Desk(page)
    t = page.t
    wanted = page.request.query_params.get("tab") or FIRST_TAB
    tab = wanted if wanted in TABS else FIRST_TAB
    with ui.row().classes("w-full items-center gap-3 px-4 pt-3"):
        testid(ui.label(t("treasury.title")).classes("text-2xl font-semibold"), "page-title")
    testid(ui.label(t("treasury.intro")).classes("px-4 text-sm opacity-80"), "treasury-intro")
    with ui.tabs().props("align=left no-caps dense").classes("px-4") as tabs:
        for name, (key, _) in TABS.items():
            testid(ui.tab(name, t(key)), f"treasury-tab-{name}")
    tabs.set_value(tab)
    tabs.on_value_change(lambda e: _open(page, str(e.value)))
    with testid(ui.column().classes("w-full gap-3 p-4"), f"treasury-{tab}"):
        await TABS[tab][1](desk)()


def _open(page: Page, tab: str) -> None:
    """A tab is an address of its own: the page opens again on it (without an open plan)."""
    if tab in TABS and tab != page.request.query_params.get("tab", FIRST_TAB):
        ui.navigate.to(page.here(tab=tab, plan=None))
