"""Drill-down (下钻): from a figure of the overview to the accounts and payments behind it.

`?state=locked` (a card), `?channel=bank-a` (a channel), `?asset=USD` (an asset). The
accounts are the pool's state accounts that add up to the figure, with their balances from
the same pool view; the payments are those whose state holds money in that figure (locked:
approved payouts; in transit: submitted; pending settlement: cleared deposits), newest first,
each linking to its timeline in the stream.
"""

from __future__ import annotations

from typing import Any

from nicegui import ui

from fundpool.auth.roles import P
from fundpool.console.feed import STATE_TONES
from fundpool.console.shell import Page, console_page, href, page_link, testid
from fundpool.pool.accounts import PoolState, pool_account

FIGURE_STATES = {  # a card -> the pool account states that make it up
    "total": ("available", "locked", "in_transit", "pending_settlement"),
    "available": ("available",), "locked": ("locked",), "in_transit": ("in_transit",),
    "pending_settlement": ("pending_settlement",), "fees": ("fees",),
}
PAYMENT_STATES = {  # a card -> the payment state whose money it holds
    "locked": "approved", "in_transit": "submitted", "pending_settlement": "cleared",
    "fees": "settled",
}
PAYMENTS_SHOWN = 100


async def drill(page: Page) -> None:
    t = page.t
    query = page.request.query_params
    pool = page.console.api.pool(query.get("pool"))
    figure = query.get("state") if query.get("state") in FIGURE_STATES else None
    channel = query.get("channel") if query.get("channel") in pool.channels else None
    # An asset of the configuration, spelt as it is (an alert's subject may say `usd`).
    assets = {code.casefold(): code for code in page.console.scales()}
    asset = assets.get((query.get("asset") or "").casefold())
    states = FIGURE_STATES[figure or "total"]
    if channel is not None:
        title = t("drill.title_channel", channel=channel) if asset is None else \
            t("drill.title_channel_asset", channel=channel, asset=asset)
    else:
        title = t("drill.title_state", figure=t(f"figure.{figure or 'total'}")
                  + (f" · {asset}" if asset else ""))
    with ui.row().classes("w-full items-center px-4 pt-3"):
        testid(ui.label(title).classes("text-2xl font-semibold"), "drill-title")
        ui.space()
        page_link(t("drill.back"), "/")
    view = await page.call(page.client.pool_view(pool.id))
    accounts: list[dict[str, Any]] = []
    if view is not None:
        for shown in view.assets:
            code = shown["asset"]
            if asset is not None and code != asset:
                continue
            for chan, figures in shown["channels"].items():
                if channel is not None and chan != channel:
                    continue
                for state in states:
                    minor = int(figures[f"{state}_minor"])
                    if minor == 0:
                        continue
                    accounts.append({
                        "account": pool_account(pool.id, code, chan, PoolState(state)),
                        "asset": code, "state": t(f"figure.{state}"),
                        "balance": page.amount(minor, code)})
    with ui.element("div").classes("w-full grid gap-3 p-4 grid-cols-1 xl:grid-cols-2"):
        with ui.card():
            ui.label(t("drill.accounts")).classes("font-medium")
            testid(ui.table(columns=[
                {"name": "account", "label": t("drill.account"), "field": "account",
                 "align": "left"},
                {"name": "asset", "label": t("col.asset"), "field": "asset", "align": "left"},
                {"name": "state", "label": t("col.state"), "field": "state", "align": "left"},
                {"name": "balance", "label": t("drill.balance"), "field": "balance",
                 "align": "right"},
            ], rows=accounts, row_key="account").props("dense flat").classes("w-full"),
                "drill-accounts")
        with ui.card():
            ui.label(t("drill.payments")).classes("font-medium")
            await _payments(page, pool.id, figure, channel, asset)


async def _payments(page: Page, pool: str, figure: str | None, channel: str | None,
                    asset: str | None) -> None:
    t = page.t
    state = PAYMENT_STATES.get(figure or "")
    found = await page.call(page.client.payments(pool, state=state, channel=channel,
                                                 asset=asset, limit=PAYMENTS_SHOWN))
    rows = [] if found is None else [{
        "id": p.id, "link": href("/stream", {"payment": p.id}), "short": p.id[-12:],
        "kind": t(f"kind.{p.kind}"), "amount": f"{p.amount} {p.asset}",
        "channel": p.channel or "", "state": t(f"state.{p.state}"),
        "tone": STATE_TONES.get(str(p.state), "neutral"), "at": p.updated_at[:19],
    } for p in found.data]
    table = testid(ui.table(columns=[
        {"name": "short", "label": t("col.payment"), "field": "short", "align": "left"},
        {"name": "kind", "label": t("col.kind"), "field": "kind", "align": "left"},
        {"name": "amount", "label": t("col.amount"), "field": "amount", "align": "right"},
        {"name": "channel", "label": t("col.channel"), "field": "channel", "align": "left"},
        {"name": "state", "label": t("col.state"), "field": "state", "align": "left"},
        {"name": "at", "label": t("col.time"), "field": "at", "align": "left"},
    ], rows=rows, row_key="id").props("dense flat").classes("w-full"), "drill-payments")
    table.add_slot("body-cell-short", """
        <q-td :props="props"><a :href="props.row.link">{{ props.value }}</a></q-td>""")
    table.add_slot("body-cell-state", """
        <q-td :props="props" :class="'fp-tone-' + props.row.tone">{{ props.value }}</q-td>""")


@console_page("/drill", needs=P.POOL_READ, title="nav.drill")
async def drill_page(page: Page) -> None:
    await drill(page)
