"""What the treasury desk's tabs share: the pool and its assets, what the signed-in user may
do (the permission each route declares, `x-permission`), the way a refusal is said next to
the button that met it, and rows of cells."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence, Sized
from typing import Any, TypeVar

from nicegui import ui

from fundpool.auth.roles import P
from fundpool.client.errors import ApiError, Unauthorized
from fundpool.console.pages.approval_rules import declared_permission
from fundpool.console.shell import Page, testid

T = TypeVar("T")

# The routes whose declared permission decides what the page offers.
ACTIONS = {
    "quote": ("POST", "/v1/fx/quotes", P.TREASURY_WRITE),
    "obligations": ("POST", "/v1/netting/obligations", P.TREASURY_WRITE),
    "cycle": ("POST", "/v1/netting/cycles", P.TREASURY_WRITE),
    "propose": ("POST", "/v1/liquidity/plans", P.TREASURY_WRITE),
    "approve": ("POST", "/v1/liquidity/plans/{plan_id}/approve", P.TREASURY_APPROVE),
    "reject": ("POST", "/v1/liquidity/plans/{plan_id}/reject", P.TREASURY_APPROVE),
    "sweeps": ("POST", "/v1/liquidity/sweeps/run", P.TREASURY_WRITE),
    "credit": ("POST", "/v1/liquidity/credit/run", P.TREASURY_WRITE),
    "stress": ("POST", "/v1/stress", P.TREASURY_READ),
}


class Desk:
    """One visit of the treasury page: the pool, its assets and channels, what the user may
    do."""

    def __init__(self, page: Page) -> None:
        self.page = page
        api = page.console.api
        self.pool = api.pool(page.request.query_params.get("pool"))
        self.channels = list(self.pool.channels)
        held = {code for cid in self.channels for code in api.config.channel(cid).assets}
        self.assets = sorted(held)
        self.reporting = self.pool.reporting_currency
        # What an asset picker starts on: the pool's reporting currency where it holds it.
        self.default_asset = self.reporting if self.reporting in held or not held \
            else self.assets[0]
        self.may = {name: page.signed.may(declared_permission(page.console.app, method, path,
                                                               default))
                    for name, (method, path, default) in ACTIONS.items()}

    @property
    def t(self) -> Callable[..., str]:
        return self.page.t

    async def read(self, awaitable: Awaitable[T]) -> T | None:
        """A read of the API, None after saying why there is none."""
        return await self.page.call(awaitable)

    async def act(self, awaitable: Awaitable[T], error_label: ui.label) -> T | None:
        """An action's answer, or None after saying the API's refusal in `error_label` (in
        the user's language, with its code); an ended session goes to sign in."""
        try:
            done = await awaitable
        except ApiError as error:
            self.refused(error, error_label)
            return None
        error_label.set_visibility(False)
        return done

    def refused(self, error: ApiError, error_label: ui.label) -> None:
        if isinstance(error, Unauthorized):
            self.page.report(error)
            return
        error_label.set_text(self.page.problem(error))
        error_label.props(f'data-code="{error.code}"')
        error_label.set_visibility(True)

    def say(self, error_label: ui.label, key: str, **values: object) -> None:
        """A fault the page finds itself before calling the API (a missing field)."""
        error_label.set_text(self.t(key, **values))
        error_label.props('data-code=""')
        error_label.set_visibility(True)


def error_label(name: str) -> ui.label:
    """Where an action's refusal is said (hidden until there is one)."""
    label = testid(ui.label("").classes("text-negative fp-wrap"), name)
    label.set_visibility(False)
    return label


def header_row(t: Callable[..., str], columns: Sequence[tuple[str, str]]) -> None:
    """A table's header: (`treasury.*` key, width class) per column."""
    with ui.row().classes("w-full gap-2 text-xs font-medium opacity-70 py-1 no-wrap"):
        for key, width in columns:
            ui.label(t(key)).classes(width)


def listing(box: ui.element, t: Callable[..., str], items: Sized,
            columns: Sequence[tuple[str, str]], *, none: tuple[str, str],
            count: bool = True) -> bool:
    """`box` cleared for a list of `items`: how many in `data-count` (unless `count` is
    False), then the header `columns`, or the text `none` (its key, its test id) when there
    are none. Whether there are rows to write (in `box`)."""
    box.clear()
    if count:
        box.props(f'data-count="{len(items)}"')
    with box:
        if not items:
            empty(t(none[0]), none[1])
            return False
        header_row(t, columns)
    return True


def table_row(name: str, **data: Any) -> ui.row:
    """A row of a list, marked `name` with `data-*` attributes; its cells are added in it."""
    row = ui.row().classes("w-full gap-2 text-sm py-1 border-b items-center no-wrap")
    testid(row, name)
    for key, value in data.items():
        row.props(f'data-{key.replace("_", "-")}="{value}"')
    return row


def cells(values: Sequence[tuple[str, str]], *, name: str, **data: Any) -> ui.row:
    """A row of text cells (text, width class), marked `name` with `data-*` attributes."""
    row = table_row(name, **data)
    with row:
        for text, width in values:
            ui.label(text).classes(width)
    return row


def badge(text: str, colour: str, name: str, state: str) -> ui.badge:
    return testid(ui.badge(text, color=colour), name).props(f'data-state="{state}"')


def empty(text: str, name: str) -> None:
    testid(ui.label(text).classes("opacity-70 text-sm"), name)
