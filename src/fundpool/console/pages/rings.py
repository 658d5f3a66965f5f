"""The review queue's rings tab (疑似团伙): the suspected fraud rings among the last half hour
of payouts (`GET /v1/risk/rings`), largest first.

Each ring is a row: its payees (the first few named, the others counted), what they share
(the destination account, a name, a device, an IP address, and how many payees each links),
how many payouts and how much per asset. The queue's timer refreshes it, at most every
`RINGS_REFRESH_S` seconds: a search reads the pool's payouts of the whole window and builds
their graph, so it is not run on every tick of every open page (the alert bar's runs once a
minute). The alert bar's `risk:rings` alert opens this tab (`/risk?view=rings`).
"""

from __future__ import annotations

from typing import Any

from nicegui import ui

from fundpool.console.rings import RING_MINUTES, RING_PAYEES_MIN, RingView, ring_view
from fundpool.console.shell import Page, testid

RINGS_REFRESH_S = 10.0


class RingsTab:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.refreshes = 0

    def build(self, badge: ui.badge) -> None:
        """The tab's content; `badge` is the tab's own count."""
        t = self.page.t
        self.badge = badge
        testid(ui.label(t("rings.about", minutes=RING_MINUTES, min_payees=RING_PAYEES_MIN))
               .classes("opacity-70"), "rings-about")
        self.count = testid(ui.label("").classes("font-medium"), "rings-count")
        self.table = testid(ui.table(columns=self._columns(), rows=[], row_key="id",
                                     pagination=0)
                            .props("dense flat wrap-cells").classes("w-full"), "rings")
        self.table.add_slot("body", r"""
            <q-tr :props="props" :data-testid="'ring-' + props.row.id"
                  :data-payees="props.row.payee_count">
              <q-td v-for="col in props.cols" :key="col.name" :props="props"
                    :data-col="col.name" style="white-space: pre-line">{{ col.value }}</q-td>
            </q-tr>""")
        self.none = testid(ui.label(t("rings.none")).classes("opacity-70"), "rings-none")
        self.none.set_visibility(False)
        self.table.set_visibility(False)

    def _columns(self) -> list[dict[str, Any]]:
        t = self.page.t
        return [
            {"name": "payees", "label": t("rings.col_payees"), "field": "payees",
             "align": "left"},
            {"name": "shared", "label": t("rings.col_shared"), "field": "shared",
             "align": "left"},
            {"name": "payouts", "label": t("rings.col_payouts"), "field": "payouts",
             "align": "right"},
            {"name": "amounts", "label": t("rings.col_amounts"), "field": "amounts",
             "align": "right"},
        ]

    async def refresh(self) -> None:
        page, t = self.page, self.page.t
        found = await page.call(page.client.risk_rings(RING_MINUTES, RING_PAYEES_MIN),
                                quiet=True)
        if found is None:
            return  # the list keeps what it showed; the next tick tries again
        scales = page.console.scales()
        views = [ring_view(ring, page.locale, scales) for ring in found.data]
        self.table.rows = [self._row(v) for v in views]
        self.table.update()
        self.refreshes += 1
        said = t("rings.count", count=f"{found.count:,}")
        if found.count > len(views):
            said += " · " + t("rings.shown", shown=f"{len(views):,}")
        self.count.set_text(said)
        self.count.props(f'data-count="{found.count}" data-refreshes="{self.refreshes}"')
        self.badge.set_text(f"{found.count:,}")
        self.badge.set_visibility(found.count > 0)
        self.none.set_visibility(not views)
        self.table.set_visibility(bool(views))

    @staticmethod
    def _row(view: RingView) -> dict[str, Any]:
        return {"id": view.id, "payees": view.payees, "payee_count": view.payee_count,
                "shared": "\n".join(view.shared), "payouts": f"{view.payouts:,}",
                "amounts": "\n".join(view.amounts)}
