"""The approval rules editor (审批规则): the versions, the active rules, a new version written,
checked and saved as a draft, and the activation votes (docs/approvals.md).

The versions are `GET /v1/approval-rules`: each one's state, author, note, and for a draft the
votes it has against the quorum the active rules' governance asks for (one admin before any
version is active). The active text is shown as it is, and the editor starts from it.
Validate (`POST …/validate`) shows the diff against the active rules, coloured line by line;
rules the checks refuse (`invalid_approval_rules`) show the line and the field at fault, the
line marked in a numbered listing of the text. Save as draft is `POST /v1/approval-rules`.
Opening a version puts its text in the editor and shows its diff (`GET …/{v}/diff`).

"Vote to activate" asks for the voter's authenticator code and sends `POST …/{v}/approve`;
the quorum's last vote activates the draft. The service decides who may vote: never the
author (`self_activation`), once each (`already_voted`), only a role the governance names
(`not_a_voter`), with a current code (`totp_*`); each refusal is said in the user's language.

What a user is offered follows the API's own routes: the permission each route declares
(`x-permission`) is read from the app, so Validate, Save and Vote are offered exactly to those
the API would let through (`approvals:rules`); anyone with `payments:read` sees the versions.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from nicegui import ui

from fundpool.auth.roles import P, Role
from fundpool.client.approvals import RulesVersionOut
from fundpool.client.errors import ApiError, Unauthorized, Unreachable
from fundpool.console.format import time_text
from fundpool.console.risk import diff_kind, error_line
from fundpool.console.shell import Page, console_page, testid
from fundpool.server.v1.security import PERMISSION_KEY

RULES_PATH = "/approval-rules"
VERSIONS_SHOWN_MAX = 50  # the newest versions listed
NOTE_MAX = 500  # as the API takes it (server/v1/approvals.py RulesIn)
TOTP_DIGITS = 6
LISTING_AROUND = 3  # lines shown either side of the line at fault
API_RULES = "/v1/approval-rules"
API_VALIDATE = "/v1/approval-rules/validate"
API_VOTE = "/v1/approval-rules/{version}/approve"
STATE_KEYS = {"draft": "rules.state_draft", "active": "rules.state_active",
              "retired": "rules.state_retired", "superseded": "rules.state_superseded"}
STATE_COLOURS = {"draft": "info", "active": "positive", "retired": "grey",
                 "superseded": "grey"}
# Refusals this page says in words of its own (the generic texts speak of risk policies).
REFUSALS = {"self_activation": "rules.refused_self_activation",
            "not_a_voter": "rules.refused_not_a_voter"}
ROLE_NAMES = frozenset(role.value for role in Role)  # `role.<name>` in the string table
# A first version's starting point when none is active: the default governance, no rules of
# its own (the pool's approval thresholds stay the floor).
TEMPLATE = """groups:
  treasury-leads: [approver]
governance:
  quorum: 1
  roles: [admin]
rules:
  - id: large-payouts
    name: Large payouts need an approver
    when:
      - kind: [payout]
        amount_at_least: {USD: "10000.00"}
    require:
      approvers: 1
      group: treasury-leads
"""


def declared_permission(app: FastAPI, method: str, path: str, default: str) -> str:
    """The permission the API's `method` route at `path` declares (`x-permission`), or
    `default` when no such route is found."""
    for found in app.routes:
        if isinstance(found, APIRoute) and found.path == path and method in (found.methods
                                                                             or ()):
            return str((found.openapi_extra or {}).get(PERMISSION_KEY, default))
    return default


def author_name(author: dict[str, Any] | None) -> str:
    if not author:
        return "?"
    return str(author.get("name") or author.get("id") or "?")


def _split(diff: object) -> list[str]:
    """A diff as the API gives it (text, or lines) as lines."""
    if isinstance(diff, list):
        return [str(line) for line in diff]
    return str(diff or "").splitlines()


class RulesEditor:
    def __init__(self, page: Page) -> None:
        self.page = page
        app, may = page.console.app, page.signed.may
        self.may_validate = may(declared_permission(app, "POST", API_VALIDATE,
                                                    P.APPROVALS_RULES))
        self.may_save = may(declared_permission(app, "POST", API_RULES, P.APPROVALS_RULES))
        self.may_vote = may(declared_permission(app, "POST", API_VOTE, P.APPROVALS_RULES))
        self.busy = False
        self.voting: int | None = None  # the version the vote dialog is for

    async def build(self) -> None:
        page, t = self.page, self.page.t
        with ui.row().classes("w-full items-center gap-3 px-4 pt-3"):
            testid(ui.label(t("rules.title")).classes("text-2xl font-semibold"), "page-title")
        testid(ui.label(t("rules.intro")).classes("px-4 text-sm opacity-80"), "rules-intro")
        if not (self.may_validate or self.may_save or self.may_vote):
            testid(ui.label(t("rules.read_only", roles=page.roles_text()))
                   .classes("px-4 text-warning"), "read-only")
        with ui.element("div").classes("w-full grid gap-3 p-4 grid-cols-1 xl:grid-cols-2"):
            with ui.card().classes("xl:col-span-2"):
                ui.label(t("rules.versions")).classes("font-medium")
                self.versions_box = testid(ui.column().classes("w-full gap-0"),
                                           "rules-versions")
            with ui.card():
                self.active_title = testid(ui.label("").classes("font-medium"),
                                           "rules-active-title")
                self.active_text = testid(ui.element("pre").classes(
                    "w-full fp-mono text-sm whitespace-pre-wrap m-0"), "rules-active")
            with ui.card():
                ui.label(t("rules.new_version")).classes("font-medium")
                self.editor = testid(ui.textarea(t("rules.text"))
                                     .props("outlined autogrow spellcheck=false")
                                     .classes("w-full fp-mono"), "rules-text")
                if self.may_validate:
                    testid(ui.button(t("rules.validate"), on_click=self.validate)
                           .props("unelevated no-caps"), "rules-validate")
                if self.may_save:
                    with ui.row().classes("w-full items-end gap-2"):
                        self.note = testid(ui.input(t("rules.note"))
                                           .props(f"dense outlined maxlength={NOTE_MAX}")
                                           .classes("flex-1"), "rules-note")
                        testid(ui.button(t("rules.save"), on_click=self.save)
                               .props("unelevated no-caps color=primary"), "rules-save")
            with ui.card().classes("xl:col-span-2"):
                self.result = testid(ui.column().classes("w-full gap-1"), "rules-result")
                with self.result:
                    ui.label(t("rules.result_hint")).classes("text-sm opacity-70")
        with ui.dialog() as self.vote_dialog, ui.card().classes("w-[480px] max-w-full"):
            self.vote_title = testid(ui.label("").classes("font-medium"), "vote-title")
            ui.label(t("rules.vote_explain")).classes("text-sm opacity-80")
            self.totp = testid(ui.input(t("rules.totp"))
                               .props("dense outlined maxlength=8 inputmode=numeric "
                                      "autocomplete=one-time-code")
                               .classes("w-48 fp-mono"), "vote-totp")
            self.vote_error = testid(ui.label("").classes("text-negative fp-wrap"),
                                     "vote-error")
            self.vote_error.set_visibility(False)
            with ui.row().classes("gap-2"):
                testid(ui.button(t("rules.vote_send"), on_click=self.vote)
                       .props("unelevated no-caps color=positive"), "vote-submit")
                testid(ui.button(t("rules.cancel"), on_click=self.vote_dialog.close)
                       .props("flat no-caps"), "vote-cancel")
        active = await self._load()
        self.editor.set_value(active if active is not None else TEMPLATE)

    # --- the versions and the active rules ---------------------------------------------------

    async def _load(self) -> str | None:
        """The versions as the API has them, and the active one shown; its text."""
        page, t = self.page, self.page.t
        found = await page.call(page.client.approval_rules())
        versions = [] if found is None else found[:VERSIONS_SHOWN_MAX]
        self.versions_box.clear()
        with self.versions_box:
            if not versions:
                testid(ui.label(t("rules.no_versions")).classes("opacity-70"),
                       "rules-no-versions")
            for version in versions:
                self._version_row(version)
        active = next((v for v in (found or []) if v.state == "active"), None)
        self.active_title.set_text(t("rules.active", version=active.version)
                                   if active is not None else t("rules.none_active"))
        self.active_title.props(f'data-version="{"" if active is None else active.version}"')
        self.active_text.clear()
        with self.active_text:
            ui.label(active.text or "" if active is not None else "").classes("fp-mono")
        return None if active is None else active.text

    def _version_row(self, version: RulesVersionOut) -> None:
        t = self.page.t
        state = str(version.state)
        row = ui.row().classes("w-full items-center gap-3 text-sm py-1 border-b")
        with testid(row, f"rules-version-{version.version}").props(
                f'data-state="{state}" data-votes="{len(version.votes)}" '
                f'data-quorum="{version.quorum or ""}"'):
            ui.label(f"v{version.version}").classes("w-10 font-medium")
            key = STATE_KEYS.get(state)
            testid(ui.badge(t(key) if key else state, color=STATE_COLOURS.get(state, "grey")),
                   "rules-state")
            testid(ui.label(t("rules.by", actor=author_name(version.author),
                              at=time_text(version.created_at_us, with_date=True)))
                   .classes("w-72"), "rules-author")
            if state == "draft":
                votes = t("rules.votes", votes=len(version.votes), quorum=version.quorum or "?",
                          roles=", ".join(version.quorum_roles) or "—")
                if version.votes:
                    votes += " · " + ", ".join(v.name for v in version.votes)
            elif version.activated_at_us is not None:
                votes = t("rules.activated_at",
                          at=time_text(version.activated_at_us, with_date=True))
            else:
                votes = ""
            testid(ui.label(votes).classes("w-72"), "rules-votes")
            ui.label(version.note or "").classes("flex-1 fp-wrap")
            testid(ui.button(t("rules.open"), on_click=lambda v=version.version: self.open(v))
                   .props("flat dense no-caps"), "rules-open")
            if self.may_vote and state == "draft":
                testid(ui.button(t("rules.vote"),
                                 on_click=lambda v=version.version: self.ask_vote(v))
                       .props("unelevated dense no-caps color=positive"), "rules-vote")

    async def open(self, version: int) -> None:
        """A version's text into the editor, and its diff against the active rules."""
        page, t = self.page, self.page.t
        found = await page.call(page.client.approval_rules_version(version))
        if found is None:
            return
        diff = await page.call(page.client.approval_rules_diff(version))
        self.editor.set_value(found.text or "")
        self.result.clear()
        with self.result:
            testid(ui.label(t("rules.opened", version=version)).classes("font-medium"),
                   "rules-opened")
            if diff is not None:
                self._diff(_split(diff.get("diff")))

    # --- checking and saving -----------------------------------------------------------------

    def _text(self) -> str:
        return str(self.editor.value or "")

    async def validate(self) -> None:
        page, t = self.page, self.page.t
        text = self._text()
        if not text.strip():
            self._say(t("rules.empty"), "negative")
            return
        try:
            checked = await page.client.validate_approval_rules(text)
        except ApiError as error:
            self._refused(error, text)
            return
        self.result.clear()
        with self.result:
            testid(ui.label(t("rules.valid", rules=checked.get("rules", "?")))
                   .classes("text-positive font-medium"), "rules-valid")
            self._diff(_split(checked.get("diff")))

    async def save(self) -> None:
        page, t = self.page, self.page.t
        text = self._text()
        if not text.strip():
            self._say(t("rules.empty"), "negative")
            return
        if self.busy:
            return
        self.busy = True
        try:
            saved = await page.client.draft_approval_rules(
                text, (self.note.value or "").strip() or None,
                idempotency_key=str(uuid.uuid4()))
        except ApiError as error:
            self._refused(error, text)
            return
        finally:
            self.busy = False
        said = t("rules.saved", version=saved.version)
        ui.notify(said, type="positive")
        self._say(said, "positive")
        self.note.set_value("")
        await self._load()

    def _diff(self, lines: list[str]) -> None:
        t = self.page.t
        if len(lines) <= 2:  # nothing, or the two headers only: the same text
            testid(ui.label(t("rules.no_diff")).classes("text-sm opacity-70"), "rules-diff")
            return
        ui.label(t("rules.diff")).classes("font-medium")
        with testid(ui.element("pre").classes("w-full fp-mono text-sm m-0"), "rules-diff"):
            for line in lines:
                ui.label(line or " ").classes(f"fp-mono fp-diff-{diff_kind(line)} "
                                              "whitespace-pre-wrap")

    def _refused(self, error: ApiError, text: str) -> None:
        """A refusal: invalid rules with their line marked in the text's listing and the
        field named; any other as every page says it."""
        page, t = self.page, self.page.t
        self.result.clear()
        if error.code != "invalid_approval_rules":
            page.report(error)
            with self.result:
                testid(ui.label(page.problem(error)).classes("text-negative"), "rules-error")
            return
        facts = error.facts or {}
        lines = text.splitlines()
        line = error_line(facts, len(lines))
        field = facts.get("field")
        reason = str(facts.get("reason") or error.detail or error.title)
        if line is not None and field:
            said = t("rules.invalid_line_field", line=line, field=field, reason=reason)
        elif line is not None:
            said = t("rules.invalid_line", line=line, reason=reason)
        elif field:
            said = t("rules.invalid_field", field=field, reason=reason)
        else:
            said = t("rules.invalid", reason=reason)
        with self.result:
            testid(ui.label(said).classes("text-negative font-medium fp-wrap"), "rules-error") \
                .props(f'data-line="{line or ""}" data-field="{field or ""}"')
            if line is None:
                return
            with testid(ui.element("pre").classes("w-full fp-mono text-sm m-0"),
                        "rules-listing"):
                for number in range(max(1, line - LISTING_AROUND),
                                    min(len(lines), line + LISTING_AROUND) + 1):
                    mark = "fp-line-error" if number == line else ""
                    testid(ui.label(f"{number:>4}  {lines[number - 1]}")
                           .classes(f"fp-mono whitespace-pre-wrap {mark}"),
                           "rules-error-line" if number == line else "rules-line")

    def _say(self, text: str, tone: str) -> None:
        self.result.clear()
        with self.result:
            testid(ui.label(text).classes(f"text-{tone} font-medium"), "rules-message")

    # --- votes -------------------------------------------------------------------------------

    def ask_vote(self, version: int) -> None:
        self.voting = version
        self.vote_title.set_text(self.page.t("rules.vote_title", version=version))
        self.totp.set_value("")
        self.vote_error.set_visibility(False)
        self.vote_dialog.open()

    def _vote_refused(self, text: str) -> None:
        self.vote_error.set_text(text)
        self.vote_error.set_visibility(True)

    def refusal(self, error: ApiError) -> str:
        """A vote's refusal in the user's language, its code beside it."""
        page = self.page
        key = REFUSALS.get(error.code)
        if key is None:
            return page.problem(error)
        roles = error.facts.get("roles") if error.facts else None
        shown = ", ".join(page.t(f"role.{r}") if r in ROLE_NAMES else str(r)
                          for r in roles) if isinstance(roles, list) else "?"
        return page.t("error.generic", code=error.code,
                      title=page.t(key, roles=shown or "?"))

    async def vote(self) -> None:
        page, t = self.page, self.page.t
        version = self.voting
        if version is None or self.busy:
            return
        code = "".join(str(self.totp.value or "").split())
        if not (code.isdigit() and len(code) == TOTP_DIGITS):
            self._vote_refused(t("rules.totp_missing"))
            return
        self.busy = True
        try:
            done = await page.client.approve_approval_rules(
                version, code, idempotency_key=str(uuid.uuid4()))
        except ApiError as error:
            if isinstance(error, Unauthorized | Unreachable):
                page.report(error)
                return
            self._vote_refused(self.refusal(error))
            return
        finally:
            self.busy = False
        self.vote_dialog.close()
        said = t("rules.now_active", version=version) if done.state == "active" else \
            t("rules.voted", version=version, votes=len(done.votes), quorum=done.quorum or "?")
        ui.notify(said, type="positive")
        self._say(said, "positive")
        await self._load()


@console_page(RULES_PATH, needs=P.PAYMENTS_READ, title="nav.approval_rules")
async def approval_rules_page(page: Page) -> None:
    await RulesEditor(page).build()
