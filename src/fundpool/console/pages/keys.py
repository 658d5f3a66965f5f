"""My signing keys (我的签名密钥): where a signed-in user enrols an authenticator (TOTP) and makes,
registers, exports, imports and revokes the Ed25519 key they sign approvals with.

The key pair is made and kept in the browser (console/signing.py, static/signing.js: IndexedDB,
per username); the page sends only its public key, to `POST /v1/me/signing-keys` with a code
of the user's authenticator. The authenticator's enrolment is `POST /v1/me/totp`: its secret is
shown as text, grouped for typing, and as its otpauth link (no QR code: the console adds no
dependency for one); the first key registered with a code confirms it.

"Export my key" downloads the private key as a PKCS#8 PEM file, made in the browser (the file
`fundpool approve --key FILE` reads); "Import a key file" reads one in the browser. Neither
passes through the server. A revocation (`POST /v1/me/signing-keys/{id}/revoke`) needs a code.
Every refusal of the API is said in the user's language (`problem.<code>`).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import ui

from fundpool.client.approvals import SigningKeyOut, TotpOut
from fundpool.client.errors import ApiError, NotFound, Unauthorized, Unreachable
from fundpool.console import signing
from fundpool.console.desk import NOBODY
from fundpool.console.format import time_text
from fundpool.console.shell import Page, console_page, testid

KEYS_PATH = "/keys"
KEY_NAME_DEFAULT = "browser"
KEY_NAME_MAX = 64
TOTP_CODE = re.compile(r"^\d{6}$")
SECRET_GROUP = 4  # the secret shown in groups of four characters, for typing
# What the browser may answer, in words (`keys.<...>`); another code is said as itself.
BROWSER_FAILURES = {"not_pem": "keys.not_pem", "not_pkcs8": "keys.not_pem",
                    "no_file": "keys.not_pem", "not_ed25519": "keys.not_ed25519",
                    "unsupported": "keys.unsupported"}

# The browser's key against the registered ones: its words and tone.
BROWSER_KEY_STATES = {"registered": ("keys.browser_registered", "done"),
                      "unregistered": ("keys.browser_unregistered", "attention"),
                      "revoked": ("keys.browser_revoked", "bad")}


def grouped(secret: str) -> str:
    """`JBSWY3DPEHPK3PXP` as `JBSW Y3DP EHPK 3PXP`."""
    return " ".join(secret[i:i + SECRET_GROUP] for i in range(0, len(secret), SECRET_GROUP))


class KeysPage:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.username = page.signed.username
        self.keys: list[SigningKeyOut] = []
        self.here: signing.BrowserKey | None = None
        self.unsupported = False
        self.busy = False

    # --- layout -----------------------------------------------------------------------------

    def build(self) -> None:
        t = self.page.t
        signing.load()
        with ui.column().classes("w-full max-w-5xl gap-4 px-4 pt-3"):
            ui.label(t("keys.title")).classes("text-2xl font-semibold")
            ui.label(t("keys.intro")).classes("opacity-80")
            with testid(ui.card().classes("w-full"), "totp"):
                ui.label(t("keys.totp_title")).classes("text-lg font-medium")
                self.totp_box = ui.column().classes("w-full gap-2")
            with testid(ui.card().classes("w-full"), "browser-key"):
                ui.label(t("keys.browser_title")).classes("text-lg font-medium")
                self.browser_box = ui.column().classes("w-full gap-2")
                with ui.row().classes("w-full items-end gap-3"):
                    self.name = testid(ui.input(t("keys.name"), value=KEY_NAME_DEFAULT)
                                       .props(f"outlined dense maxlength={KEY_NAME_MAX}"),
                                       "key-name")
                    self.code = testid(ui.input(t("keys.totp_code"))
                                       .props('outlined dense maxlength=6 inputmode=numeric '
                                              'autocomplete=one-time-code'), "totp-code")
                self.actions = ui.row().classes("w-full items-center gap-2")
                self.error = testid(ui.label("").classes("text-negative"), "keys-error")
                # The file chooser of "Import a key file": read in the browser, never sent.
                self.file = testid(ui.element("input"), "key-import-file") \
                    .props('type=file accept=".pem,.key,.txt"').style("display: none")
                self.file.on("change", self._imported, js_handler=(
                    "(e) => { const file = e.target.files[0]; "
                    f"window.fundpoolSigning.importFile({json.dumps(self.username)}, file)"
                    ".then((answer) => { e.target.value = ''; emit(answer); }); }"))
            with testid(ui.card().classes("w-full"), "registered"):
                ui.label(t("keys.registered_title")).classes("text-lg font-medium")
                self.table_box = ui.column().classes("w-full")
        with ui.dialog() as self.confirm, ui.card():
            ui.label(t("keys.forgotten")).classes("max-w-md")
            with ui.row().classes("gap-2"):
                testid(ui.button(t("keys.forget"), on_click=self._forget)
                       .props("unelevated no-caps color=negative"), "key-forget-confirm")
                ui.button(t("detail.close"), on_click=self.confirm.close).props("flat no-caps")
        ui.timer(0, self.refresh, once=True)  # the browser's key is read once it is connected

    # --- reading ----------------------------------------------------------------------------

    async def refresh(self) -> None:
        page = self.page
        try:
            status = await page.client.totp_status()
        except NotFound:
            status = TotpOut(enrolled=False)  # a server without the route: offer to begin
        except ApiError as error:
            page.report(error)
            status = None
        if status is not None:
            self._show_totp(status)
        found = await page.call(page.client.my_signing_keys())
        if found is not None:
            self.keys = found
        here = await signing.browser_key(self.username)
        self.unsupported = isinstance(here, signing.Failure) and here.code == "unsupported"
        if isinstance(here, signing.Failure) and not self.unsupported:
            self._say_browser(here)
        self.here = here if isinstance(here, signing.BrowserKey) else None
        self._show_browser()
        self._show_table()

    def _registered(self, key_id: str) -> SigningKeyOut | None:
        return next((k for k in self.keys if k.id == key_id), None)

    # --- the authenticator ------------------------------------------------------------------

    def _show_totp(self, status: TotpOut) -> None:
        t = self.page.t
        self.totp_box.clear()
        with self.totp_box:
            if status.enrolled:
                testid(ui.label(t("keys.totp_enrolled")), "totp-enrolled")
                return
            if status.secret:
                ui.label(t("keys.totp_pending"))
                with ui.grid(columns="max-content 1fr").classes("gap-x-6 gap-y-1 items-baseline"):
                    ui.label(t("keys.totp_secret")).classes("opacity-70")
                    testid(ui.label(grouped(status.secret))
                           .classes("fp-mono text-lg tracking-wider select-all"), "totp-secret") \
                        .props(f'data-secret="{status.secret}"')
                    if status.uri:
                        ui.label(t("keys.totp_uri")).classes("opacity-70")
                        testid(ui.link(status.uri, status.uri).classes("fp-mono break-all"),
                               "totp-uri")
                return
            testid(ui.label(t("keys.totp_none")), "totp-none")
            testid(ui.button(t("keys.totp_begin"), on_click=self._begin_totp)
                   .props("unelevated no-caps color=primary"), "totp-begin")

    async def _begin_totp(self) -> None:
        page = self.page
        try:
            status = await page.client.begin_totp(idempotency_key=str(uuid.uuid4()))
        except ApiError as error:
            self._refused(error)
            if error.code == "totp_already_enrolled":
                self._show_totp(TotpOut(enrolled=True))
            return
        self.error.set_text("")
        self._show_totp(status)

    # --- the key in this browser ------------------------------------------------------------

    def _show_browser(self) -> None:
        t = self.page.t
        self.browser_box.clear()
        self.actions.clear()
        here = self.here
        registered = None if here is None else self._registered(here.key_id)
        with self.browser_box:
            if self.unsupported:
                testid(ui.label(t("keys.unsupported")).classes("text-warning"), "unsupported")
            elif here is None:
                testid(ui.label(t("keys.browser_none", user=self.username)), "browser-none")
            else:
                testid(ui.label(t("keys.browser_key", key_id=here.key_id, name=here.name or NOBODY,
                                  at=here.created_at[:19].replace("T", " ") or NOBODY)),
                       "browser-key-id").props(f'data-key-id="{here.key_id}"')
                state = ("revoked" if registered is not None and not registered.active
                         else "registered" if registered is not None else "unregistered")
                words, tone = BROWSER_KEY_STATES[state]
                testid(ui.label(t(words)).classes(f"fp-tone-{tone}"), "browser-key-state") \
                    .props(f'data-state="{state}"')
        with self.actions:
            if self.unsupported:
                return
            if here is None or (registered is not None and not registered.active):
                testid(ui.button(t("keys.create" if here is None else "keys.replace"),
                                 on_click=self._create)
                       .props("unelevated no-caps color=primary"), "key-create")
            elif registered is None:
                testid(ui.button(t("keys.register"), on_click=self._register_here)
                       .props("unelevated no-caps color=primary"), "key-register")
            if here is not None:
                testid(ui.button(t("keys.export"), on_click=self._export)
                       .props("outline no-caps"), "key-export")
            # The file chooser opens in the browser, on the click itself (a browser opens one
            # only on a person's gesture).
            testid(ui.button(t("keys.import")).props("outline no-caps"), "key-import").on(
                "click", js_handler="() => document.querySelector("
                "'[data-testid=\"key-import-file\"]').click()")
            if here is not None:
                testid(ui.button(t("keys.forget"), on_click=self.confirm.open)
                       .props("flat no-caps color=negative"), "key-forget")

    def _code(self) -> str | None:
        code = str(self.code.value or "").strip().replace(" ", "")
        if not TOTP_CODE.fullmatch(code):
            self.error.set_text(self.page.t("keys.totp_missing"))
            return None
        return code

    async def _with_code(self, act: Callable[[str], Awaitable[None]]) -> None:
        """`act` with the code typed, unless one is under way or the code is not one."""
        if self.busy:
            return
        code = self._code()
        if code is None:
            return
        self.busy = True
        try:
            await act(code)
        finally:
            self.busy = False

    async def _create(self) -> None:
        await self._with_code(self._create_with)

    async def _create_with(self, code: str) -> None:
        name = str(self.name.value or "").strip()[:KEY_NAME_MAX] or KEY_NAME_DEFAULT
        made = await signing.create_key(self.username, name)
        if isinstance(made, signing.Failure):
            self._say_browser(made)
            return
        self.here = made
        await self._register(made, code)

    async def _register_here(self) -> None:
        here = self.here
        if here is not None:
            await self._with_code(lambda code: self._register(here, code))

    async def _register(self, key: signing.BrowserKey, code: str) -> None:
        page = self.page
        try:
            await page.client.register_signing_key(key.public_key, key.name or KEY_NAME_DEFAULT,
                                                   code, idempotency_key=str(uuid.uuid4()))
        except ApiError as error:
            if error.code != "key_already_registered":  # an answer lost before: it is there
                self._refused(error)
                await self.refresh()
                return
        self.error.set_text("")
        self.code.set_value("")
        ui.notify(page.t("keys.registered", key_id=key.key_id), type="positive")
        await self.refresh()

    async def _export(self) -> None:
        exported = await signing.export_key(self.username)
        if isinstance(exported, signing.Failure):
            self._say_browser(exported)
            return
        ui.notify(self.page.t("keys.exported", file=exported), type="info", multi_line=True)

    async def _imported(self, event: Any) -> None:
        answer = event.args[0] if isinstance(event.args, list) and event.args else event.args
        if not isinstance(answer, dict):
            self._say_browser(signing.Failure("no_answer"))
            return
        if "error" in answer:
            self._say_browser(signing.Failure(str(answer["error"]),
                                              str(answer.get("detail") or "")))
            return
        key = answer.get("key") or {}
        self.error.set_text("")
        ui.notify(self.page.t("keys.imported", key_id=key.get("keyId", "?")), type="positive")
        await self.refresh()

    async def _forget(self) -> None:
        self.confirm.close()
        failed = await signing.forget_key(self.username)
        if failed is not None:
            self._say_browser(failed)
            return
        ui.notify(self.page.t("keys.forgotten"), type="info")
        await self.refresh()

    # --- the registered keys ----------------------------------------------------------------

    def _show_table(self) -> None:
        t = self.page.t
        self.table_box.clear()
        with self.table_box:
            if not self.keys:
                testid(ui.label(t("keys.none_registered")).classes("opacity-70"), "keys-none")
                return
            ordered = sorted(self.keys, key=lambda k: (not k.active, -k.created_at_us))
            with testid(ui.grid(columns="auto auto auto auto auto")
                        .classes("w-full gap-x-6 gap-y-2 items-center text-sm"), "my-keys"):
                for column in ("keys.col_key", "keys.col_name", "keys.col_created",
                               "keys.col_state"):
                    ui.label(t(column)).classes("opacity-70 font-medium")
                ui.label("")
                for key in ordered:
                    here = self.here is not None and self.here.key_id == key.id
                    ui.label(key.id + (f" · {t('keys.here')}" if here else "")) \
                        .classes("fp-mono")
                    ui.label(key.name)
                    ui.label(time_text(key.created_at_us, with_date=True))
                    state = t("keys.active") if key.active else t(
                        "keys.revoked_at", at=time_text(key.revoked_at_us or 0, with_date=True))
                    testid(ui.label(state).classes(
                        "fp-tone-done" if key.active else "fp-tone-muted"), f"key-{key.id}") \
                        .props(f'data-state="{"active" if key.active else "revoked"}"')
                    if key.active:
                        testid(ui.button(t("keys.revoke"),
                                         on_click=lambda k=key.id: self._revoke(k))
                               .props("flat dense no-caps color=negative"), f"revoke-{key.id}")
                    else:
                        ui.label("")

    async def _revoke(self, key_id: str) -> None:
        page = self.page
        code = self._code()
        if code is None:
            return
        try:
            await page.client.revoke_signing_key(key_id, code, idempotency_key=str(uuid.uuid4()))
        except ApiError as error:
            self._refused(error)
            return
        self.error.set_text("")
        self.code.set_value("")
        ui.notify(page.t("keys.revoked", key_id=key_id), type="positive")
        await self.refresh()

    # --- saying what went wrong -------------------------------------------------------------

    def _refused(self, error: ApiError) -> None:
        if isinstance(error, Unauthorized | Unreachable):
            self.page.report(error)
            return
        self.error.set_text(self.page.problem(error))

    def _say_browser(self, failure: signing.Failure) -> None:
        t = self.page.t
        key = BROWSER_FAILURES.get(failure.code)
        self.error.set_text(t(key) if key else t("keys.browser_failed", code=failure.code))


signing.serve()


@console_page(KEYS_PATH, needs=None, title="keys.title")
async def keys_page(page: Page) -> None:
    KeysPage(page).build()
