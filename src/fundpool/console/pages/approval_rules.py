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
from fundpool.console.editor import VersionedTextEditor
from fundpool.console.format import time_text
from fundpool.console.shell import Page, console_page, testid
from fundpool.server.v1.security import PERMISSION_KEY

RULES_PATH = "/approval-rules"
NOTE_MAX = 500  # as the API takes it (server/v1/approvals.py RulesIn)
TOTP_DIGITS = 6
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
# The editor's texts (console/editor.py TEXTS): their keys in the string table.
EDITOR_KEYS = {"read_only": "rules.read_only", "versions": "rules.versions",
               "no_versions": "rules.no_versions", "active": "rules.active",
               "none_active": "rules.none_active", "open": "rules.open", "opened": "rules.opened",
               "draft": "rules.new_version", "text": "rules.text", "validate": "rules.validate",
               "note": "rules.note", "save": "rules.save", "saved": "rules.saved",
               "result_hint": "rules.result_hint", "empty": "rules.empty", "diff": "rules.diff",
               "no_diff": "rules.no_diff"}
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


class RulesEditor(VersionedTextEditor):
    name = "rules"
    keys = EDITOR_KEYS
    template = TEMPLATE
    invalid_code = "invalid_approval_rules"
    note_max = NOTE_MAX
    state_keys = STATE_KEYS
    state_colours = STATE_COLOURS
    active_classes = "w-full fp-mono text-sm whitespace-pre-wrap m-0"
    message_classes = "font-medium"

    def __init__(self, page: Page) -> None:
        app, may = page.console.app, page.signed.may
        super().__init__(page, may_save=may(declared_permission(app, "POST", API_RULES,
                                                                P.APPROVALS_RULES)))
        self.may_validate = may(declared_permission(app, "POST", API_VALIDATE,
                                                    P.APPROVALS_RULES))
        self.may_vote = may(declared_permission(app, "POST", API_VOTE, P.APPROVALS_RULES))
        self.voting: int | None = None  # the version the vote dialog is for

    # --- the page ----------------------------------------------------------------------------

    def _heading(self) -> None:
        t = self.page.t
        with ui.row().classes("w-full items-center gap-3 px-4 pt-3"):
            testid(ui.label(t("rules.title")).classes("text-2xl font-semibold"), "page-title")
        testid(ui.label(t("rules.intro")).classes("px-4 text-sm opacity-80"), "rules-intro")

    def _read_only(self) -> bool:
        return not (self.may_validate or self.may_save or self.may_vote)

    def _checks(self) -> None:
        if self.may_validate:
            self._validate_button()

    def _dialogs(self) -> None:
        t = self.page.t
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

    # --- the versions and the active rules ---------------------------------------------------

    async def _fetch(self) -> tuple[list[Any], Any]:
        page = self.page
        found = await page.call(page.client.approval_rules())
        versions = found or []
        return versions, next((v for v in versions if v.state == "active"), None)

    def _row_facts(self, version: RulesVersionOut, state: str) -> str:
        return (f'data-state="{state}" data-votes="{len(version.votes)}" '
                f'data-quorum="{version.quorum or ""}"')

    def _row_who(self, version: RulesVersionOut, state: str) -> None:
        t = self.page.t
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

    def _draft_action(self, version: int) -> None:
        if self.may_vote:
            testid(ui.button(self.page.t("rules.vote"), on_click=lambda: self.ask_vote(version))
                   .props("unelevated dense no-caps color=positive"), "rules-vote")

    async def _fetch_version(self, version: int) -> tuple[str, list[str] | None] | None:
        page = self.page
        found = await page.call(page.client.approval_rules_version(version))
        if found is None:
            return None
        diff = await page.call(page.client.approval_rules_diff(version))
        return found.text or "", None if diff is None else _split(diff.get("diff"))

    def _opened(self, version: int) -> ui.label:
        return testid(super()._opened(version), "rules-opened")

    # --- checking and saving -----------------------------------------------------------------

    async def _check(self, text: str) -> Any:
        return await self.page.client.validate_approval_rules(text)

    def _checked(self, checked: Any) -> None:
        testid(ui.label(self.page.t("rules.valid", rules=checked.get("rules", "?")))
               .classes("text-positive font-medium"), "rules-valid")
        self._diff(_split(checked.get("diff")))

    def _invalid(self, error: ApiError, line: int | None) -> None:
        """Invalid rules' error: the line and the field at fault, and why."""
        t = self.page.t
        facts = error.facts or {}
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
        testid(ui.label(said).classes("text-negative font-medium fp-wrap"), "rules-error") \
            .props(f'data-line="{line or ""}" data-field="{field or ""}"')

    async def _save_draft(self, text: str, note: str | None, idempotency_key: str) -> Any:
        return await self.page.client.draft_approval_rules(text, note,
                                                           idempotency_key=idempotency_key)

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
        await self._done(t("rules.now_active", version=version) if done.state == "active" else
                         t("rules.voted", version=version, votes=len(done.votes),
                           quorum=done.quorum or "?"))


@console_page(RULES_PATH, needs=P.PAYMENTS_READ, title="nav.approval_rules")
async def approval_rules_page(page: Page) -> None:
    await RulesEditor(page).build()
