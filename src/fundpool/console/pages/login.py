"""Sign-in with the API's console users (`fundpool users add …`): `POST /v1/sessions`."""

from __future__ import annotations

from fastapi import Request
from nicegui import app, ui

from fundpool.client.errors import ApiError
from fundpool.console.context import Signed, current
from fundpool.console.i18n import t
from fundpool.console.shell import STYLE, here, testid

NOTICES = {"expired": "login.expired", "signed_out": "login.signed_out",
           "required": "login.required"}


def _safe_next(target: str | None) -> str:
    """Only a page of the console itself: never an open redirect."""
    if target and target.startswith("/") and not target.startswith("/login") \
            and "//" not in target and "\\" not in target and ":" not in target.split("?")[0]:
        return target
    return "/"


@ui.page("/login")
async def login_page(request: Request) -> None:
    console = current()
    browser = str(app.storage.browser["id"])
    locale = console.locale(browser)

    def tr(key: str) -> str:
        return t(key, locale)

    ui.page_title(tr("login.title"))
    ui.add_head_html(STYLE)
    target = _safe_next(request.query_params.get("next"))
    notice = NOTICES.get(request.query_params.get("why", ""))

    async def submit() -> None:
        message.set_text("")
        if not username.value or not password.value:
            message.set_text(tr("login.failed"))
            return
        async with console.client(None) as client:
            try:
                session = await client.login(username.value.strip(), password.value)
            except ApiError as error:
                message.set_text(tr("login.disabled") if error.code == "user_disabled"
                                 else tr("login.failed"))
                password.set_value("")
                return
        console.sign_in(browser, Signed(session.token, session.username, tuple(session.roles),
                                        frozenset(session.permissions)))
        ui.navigate.to(target)

    def switch() -> None:
        console.set_locale(browser, "zh-CN" if locale == "en" else "en")
        ui.navigate.to(here(request))

    with ui.column().classes("absolute-center items-stretch gap-3 w-80"):
        with ui.row().classes("items-center justify-between"):
            ui.label(tr("login.title")).classes("text-xl font-semibold")
            testid(ui.button(tr("shell.language"), on_click=switch).props("flat dense no-caps"),
                   "language")
        if notice:
            testid(ui.label(tr(notice)).classes("text-warning"), "login-notice")
        username = testid(ui.input(tr("login.username")).props("autofocus outlined dense"),
                          "username")
        password = testid(ui.input(tr("login.password"), password=True)
                          .props("outlined dense"), "password")
        password.on("keydown.enter", submit)
        testid(ui.button(tr("login.submit"), on_click=submit).props("unelevated"), "submit")
        message = testid(ui.label("").classes("text-negative"), "login-error")
