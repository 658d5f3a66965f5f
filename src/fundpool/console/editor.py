"""The editor of a versioned text: what the risk policy editor (pages/policies.py) and the
approval rules editor (pages/approval_rules.py) share.

Both list the text's versions (each one's state, author and note, Open, and an action of the
page's own on a draft), show the active version's text, and start the editor from it (from the
page's template when none is active). Validate, Save and Open say their outcome in the result
card: a check's summary and the diff against the active text, coloured line by line; a refusal,
the text's own (`invalid_code`) with the line at fault marked in a numbered listing of the
draft, any other as every page says it; a message. Nothing is sent while the draft is empty,
nor a second change while one is under way (`busy`).

A page says what differs: its API calls (`_fetch`, `_fetch_version`, `_check`,
`_save_draft`), its heading, its checks' controls and dialogs, what a version's row says of its
author and activation, the action a draft offers, and how an invalid text's error reads. It
names itself (`name`: its test ids are `name-…`) and its texts' keys (`keys`).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from nicegui import ui

from fundpool.client.errors import ApiError
from fundpool.console.risk import diff_kind, error_line
from fundpool.console.shell import Page, testid

VERSIONS_SHOWN_MAX = 50  # the newest versions listed
LISTING_AROUND = 3  # lines shown either side of the line at fault
# The texts every editor says, each a key of the page's own (`keys`).
TEXTS = ("read_only", "versions", "no_versions", "active", "none_active", "open", "opened",
         "draft", "text", "validate", "note", "save", "saved", "result_hint", "empty", "diff",
         "no_diff")


class VersionedTextEditor:
    """A page's editor; a page's subclass fills in the class attributes and the hooks."""

    name: ClassVar[str]  # its test ids: `{name}-text`, `{name}-result`, …
    keys: ClassVar[dict[str, str]]  # each of TEXTS: its key in the string table
    template: ClassVar[str]  # the editor's text when no version is active
    invalid_code: ClassVar[str]  # the API's refusal of an invalid text
    note_max: ClassVar[int]
    state_keys: ClassVar[dict[str, str]]
    state_colours: ClassVar[dict[str, str]]
    active_classes: ClassVar[str]  # the active text's <pre>
    message_classes: ClassVar[str] = ""  # a message's, besides its tone

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        missing = set(TEXTS) - set(cls.keys)
        if missing:
            raise TypeError(f"{cls.__name__}.keys lacks {sorted(missing)}")

    def __init__(self, page: Page, *, may_save: bool) -> None:
        self.page = page
        self.may_save = may_save
        self.busy = False

    def words(self, text: str, **facts: Any) -> str:
        """One of TEXTS in the user's language."""
        return self.page.t(self.keys[text], **facts)

    def tid(self, suffix: str) -> str:
        return f"{self.name}-{suffix}"

    # --- the page ----------------------------------------------------------------------------

    async def build(self) -> None:
        page = self.page
        self._heading()
        if self._read_only():
            testid(ui.label(self.words("read_only", roles=page.roles_text()))
                   .classes("px-4 text-warning"), "read-only")
        with ui.element("div").classes("w-full grid gap-3 p-4 grid-cols-1 xl:grid-cols-2"):
            with ui.card().classes("xl:col-span-2"):
                self._versions_heading()
                self.versions_box = testid(ui.column().classes("w-full gap-0"),
                                           self.tid("versions"))
            with ui.card():
                self.active_title = testid(ui.label("").classes("font-medium"),
                                           self.tid("active-title"))
                self.active_text = testid(ui.element("pre").classes(self.active_classes),
                                          self.tid("active"))
            with ui.card():
                ui.label(self.words("draft")).classes("font-medium")
                self.editor = testid(ui.textarea(self.words("text"))
                                     .props("outlined autogrow spellcheck=false")
                                     .classes("w-full fp-mono"), self.tid("text"))
                self._checks()
                if self.may_save:
                    with ui.row().classes("w-full items-end gap-2"):
                        self.note = testid(ui.input(self.words("note"))
                                           .props(f"dense outlined maxlength={self.note_max}")
                                           .classes("flex-1"), self.tid("note"))
                        testid(ui.button(self.words("save"), on_click=self.save)
                               .props("unelevated no-caps color=primary"), self.tid("save"))
            with ui.card().classes("xl:col-span-2"):
                self.result = testid(ui.column().classes("w-full gap-1"), self.tid("result"))
                with self.result:
                    ui.label(self.words("result_hint")).classes("text-sm opacity-70")
        self._dialogs()
        active = await self._load()
        self.editor.set_value(active if active is not None else self.template)

    def _heading(self) -> None:
        """What stands above the cards."""

    def _read_only(self) -> bool:
        """Whether the user may change nothing here (and is told so)."""
        return not self.may_save

    def _versions_heading(self) -> None:
        ui.label(self.words("versions")).classes("font-medium")

    def _validate_button(self) -> None:
        testid(ui.button(self.words("validate"), on_click=self.validate)
               .props("unelevated no-caps"), self.tid("validate"))

    def _checks(self) -> None:
        """The controls under the editor, before the note and Save."""
        self._validate_button()

    def _dialogs(self) -> None:
        """The page's dialogs."""

    # --- the versions and the active text ----------------------------------------------------

    async def _fetch(self) -> tuple[list[Any], Any]:
        """The versions as the API has them, newest first, and the active one (or None)."""
        raise NotImplementedError

    async def _load(self) -> str | None:
        """The versions and the active text as the API has them; the active text."""
        versions, active = await self._fetch()
        self.versions_box.clear()
        with self.versions_box:
            if not versions:
                testid(ui.label(self.words("no_versions")).classes("opacity-70"),
                       self.tid("no-versions"))
            for version in versions[:VERSIONS_SHOWN_MAX]:
                self._version_row(version)
        self.active_title.set_text(self.words("active", version=active.version)
                                   if active is not None else self.words("none_active"))
        self.active_title.props(f'data-version="{"" if active is None else active.version}"')
        self.active_text.clear()
        with self.active_text:
            ui.label(active.text or "" if active is not None else "").classes("fp-mono")
        return None if active is None else active.text

    def _version_row(self, version: Any) -> None:
        t = self.page.t
        state = str(version.state)
        row = ui.row().classes("w-full items-center gap-3 text-sm py-1 border-b")
        with testid(row, self.tid(f"version-{version.version}")).props(
                self._row_facts(version, state)):
            ui.label(f"v{version.version}").classes("w-10 font-medium")
            key = self.state_keys.get(state)
            testid(ui.badge(t(key) if key else state,
                            color=self.state_colours.get(state, "grey")), self.tid("state"))
            self._row_who(version, state)
            ui.label(version.note or "").classes("flex-1 fp-wrap")
            testid(ui.button(self.words("open"), on_click=lambda v=version.version: self.open(v))
                   .props("flat dense no-caps"), self.tid("open"))
            if state == "draft":
                self._draft_action(version.version)

    def _row_facts(self, version: Any, state: str) -> str:
        """A version row's data attributes."""
        return f'data-state="{state}"'

    def _row_who(self, version: Any, state: str) -> None:
        """A version row's columns between its state and its note."""

    def _draft_action(self, version: int) -> None:
        """A draft's action, after Open."""

    async def _fetch_version(self, version: int) -> tuple[str, list[str] | None] | None:
        """A version's text and its diff against the active one (None: not shown)."""
        raise NotImplementedError

    async def open(self, version: int) -> None:
        """A version's text into the editor, and its diff against the active one."""
        found = await self._fetch_version(version)
        if found is None:
            return
        text, diff = found
        self.editor.set_value(text)
        self.result.clear()
        with self.result:
            self._opened(version)
            if diff is not None:
                self._diff(diff)

    def _opened(self, version: int) -> ui.label:
        return ui.label(self.words("opened", version=version)).classes("font-medium")

    # --- checks ------------------------------------------------------------------------------

    def _text(self) -> str | None:
        """The draft, or None (and the user told so) when it is empty."""
        text = str(self.editor.value or "")
        if not text.strip():
            self._say(self.words("empty"), "negative")
            return None
        return text

    async def _check(self, text: str) -> Any:
        """The API's check of `text` (raising its refusal)."""
        raise NotImplementedError

    def _checked(self, checked: Any) -> None:
        """A check's outcome, in the result card."""
        raise NotImplementedError

    async def validate(self) -> None:
        text = self._text()
        if text is not None:
            await self._answer(text, self._check(text), self._checked)

    async def _answer(self, text: str, asked: Awaitable[Any],
                      show: Callable[[Any], None]) -> None:
        """The API's answer about the draft `text`, drawn by `show` in the result card, or
        its refusal."""
        try:
            answer = await asked
        except ApiError as error:
            self._refused(error, text)
            return
        self.result.clear()
        with self.result:
            show(answer)

    def _diff(self, lines: list[str]) -> None:
        if len(lines) <= 2:  # nothing, or the two headers only: the same text
            testid(ui.label(self.words("no_diff")).classes("text-sm opacity-70"), self.tid("diff"))
            return
        ui.label(self.words("diff")).classes("font-medium")
        with testid(ui.element("pre").classes("w-full fp-mono text-sm m-0"), self.tid("diff")):
            for line in lines:
                ui.label(line or " ").classes(f"fp-mono fp-diff-{diff_kind(line)} "
                                              "whitespace-pre-wrap")

    def _refused(self, error: ApiError, text: str) -> None:
        """A refusal: an invalid text with its line marked in the draft's listing, any other
        as every page says it."""
        page = self.page
        self.result.clear()
        if error.code != self.invalid_code:
            page.report(error)
            with self.result:
                testid(ui.label(page.problem(error)).classes("text-negative"), self.tid("error"))
            return
        lines = text.splitlines()
        line = error_line(error.facts or {}, len(lines))
        with self.result:
            self._invalid(error, line)
            if line is None:
                return
            with testid(ui.element("pre").classes("w-full fp-mono text-sm m-0"),
                        self.tid("listing")):
                for number in range(max(1, line - LISTING_AROUND),
                                    min(len(lines), line + LISTING_AROUND) + 1):
                    mark = "fp-line-error" if number == line else ""
                    testid(ui.label(f"{number:>4}  {lines[number - 1]}")
                           .classes(f"fp-mono whitespace-pre-wrap {mark}"),
                           self.tid("error-line" if number == line else "line"))

    def _invalid(self, error: ApiError, line: int | None) -> None:
        """An invalid text's error (`{name}-error`), above its listing."""
        raise NotImplementedError

    def _say(self, text: str, tone: str) -> None:
        self.result.clear()
        with self.result:
            testid(ui.label(text).classes(f"text-{tone} {self.message_classes}"),
                   self.tid("message"))

    # --- changes -----------------------------------------------------------------------------

    async def _save_draft(self, text: str, note: str | None, idempotency_key: str) -> Any:
        """The draft saved as a new version (raising the API's refusal); the version."""
        raise NotImplementedError

    async def save(self) -> None:
        text = self._text()
        if text is None or self.busy:
            return
        self.busy = True
        try:
            saved = await self._save_draft(text, (self.note.value or "").strip() or None,
                                           str(uuid.uuid4()))
        except ApiError as error:
            self._refused(error, text)
            return
        finally:
            self.busy = False
        self.note.set_value("")
        await self._done(self.words("saved", version=saved.version))

    async def _done(self, said: str) -> str | None:
        """A change made: said, and the versions shown anew; the active text."""
        ui.notify(said, type="positive")
        self._say(said, "positive")
        return await self._load()
