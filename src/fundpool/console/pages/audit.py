"""The audit log browser (审计日志): the log's status and verification, a search of its entries,
and each entry's inclusion proof, verified here (docs/audit.md).

- **Status** (`GET /v1/audit/status`): how many entries the log holds, its latest signed
  checkpoint (size, time, root), the entries not under a checkpoint yet, how far behind each
  source the collector is, and the last verification. "Verify now" (`POST /v1/audit/verify`)
  recomputes the log and shows the verdict, with every finding named (`entry_tampered`,
  `fork`, …) and what it concerns.
- **Search** (`GET /v1/audit/entries`): by actor (id, name or kind:id), object (kind and id),
  action and a time range, a page at a time as the API gives them ("More" reads the next).
  Each entry says who (name and the roles held), what (the action on its object), when, the
  request id of the call, and what it changed (before → after).
- **Proof** (`GET /v1/audit/entries/{seq}`): the entry with its inclusion proof against the
  latest checkpoint, shown as the leaf hash, the path and the root; the console checks it
  itself (`fundpool.audit.merkle.verify_inclusion`, and that the leaf is the hash of the
  record as shown), so what it says does not rest on the server's word.

Everything here needs `audit:read` (the auditor's and the admin's); Verify is offered with the
permission its route declares (`x-permission`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nicegui import ui

from fundpool.audit.merkle import ProofError, root_from_inclusion
from fundpool.audit.records import InvalidAuditRecord, canonical_json, leaf_of
from fundpool.auth.roles import P, Role
from fundpool.client.errors import ApiError
from fundpool.console.format import time_text
from fundpool.console.pages.approval_rules import declared_permission
from fundpool.console.shell import Page, console_page, testid

AUDIT_PATH = "/audit"
API_VERIFY = "/v1/audit/verify"
PAGE_SIZE = 50  # entries read a page at a time
SHOWN_MAX = 1_000  # entries kept on the page ("More" stops there: narrow the search)
CHANGE_CHARS_MAX = 160  # before → after shown in the row at most this long (all of it on hover)
ROLE_NAMES = frozenset(role.value for role in Role)
# Refusals of a proof for an entry no checkpoint covers yet: the next one will.
NOT_SIGNED_YET = ("audit_seq_out_of_range", "no_audit_checkpoint")
FINDING_KEYS = {  # the verifier's finding codes (audit/verify.py) in words
    "entry_tampered": "audit.finding_entry_tampered",
    "entry_missing": "audit.finding_entry_missing",
    "entries_reordered": "audit.finding_entries_reordered",
    "node_mismatch": "audit.finding_node_mismatch",
    "fork": "audit.finding_fork",
    "root_mismatch": "audit.finding_root_mismatch",
    "checkpoint_truncated": "audit.finding_checkpoint_truncated",
    "bad_checkpoint_signature": "audit.finding_bad_checkpoint_signature",
}


# --- the proof, checked here -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProofCheck:
    """An entry's inclusion proof as the console checked it."""

    seq: int
    tree_size: int
    leaf: str  # hex, as the API gave it
    path: tuple[str, ...]
    root: str  # the checkpoint's root (hex)
    computed: str | None  # the root the path leads to from the leaf, None if it leads nowhere
    leaf_matches: bool  # the leaf is the hash of the record as shown
    problem: str | None = None  # why the proof could not be followed

    @property
    def ok(self) -> bool:
        return self.leaf_matches and self.computed is not None and self.computed == self.root


def check_proof(doc: dict[str, Any]) -> ProofCheck:
    """`GET /v1/audit/entries/{seq}`'s answer checked: the record's canonical bytes hash to
    the leaf, and the path leads from the leaf to the checkpoint's root (RFC 9162)."""
    entry = doc.get("entry") or {}
    checkpoint = doc.get("checkpoint") or {}
    seq = int(entry.get("seq", -1))
    size = int(doc.get("tree_size") or checkpoint.get("size") or 0)
    leaf = str(entry.get("leaf_hash") or "")
    path = tuple(str(p) for p in doc.get("proof") or ())
    root = str(checkpoint.get("root") or doc.get("root") or "")
    try:
        record = entry.get("record")
        leaf_matches = isinstance(record, dict) and leaf_of(canonical_json(record)).hex() == leaf
    except InvalidAuditRecord:
        leaf_matches = False
    try:
        computed = root_from_inclusion(seq, size, bytes.fromhex(leaf),
                                       [bytes.fromhex(p) for p in path]).hex()
    except (ProofError, ValueError) as error:
        return ProofCheck(seq, size, leaf, path, root, None, leaf_matches, str(error))
    return ProofCheck(seq, size, leaf, path, root, computed, leaf_matches)


# --- what an entry shows ---------------------------------------------------------------------


def _json_text(value: object) -> str:
    return "—" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def change_text(record: dict[str, Any]) -> str:
    """What an entry changed, in one line: before → after (either may be absent)."""
    before, after = record.get("before"), record.get("after")
    if before is None and after is None:
        return _json_text(record.get("details") or None)
    return f"{_json_text(before)} → {_json_text(after)}"


def instant_us(text: str) -> int | None:
    """An ISO date or instant typed into the search (UTC when no offset is given), in µs; None
    for text that is not one."""
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000)


def iso(at_us: int) -> str:
    return datetime.fromtimestamp(at_us / 1_000_000, tz=UTC).isoformat().replace("+00:00", "Z")


class AuditBrowser:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.may_verify = page.signed.may(declared_permission(
            page.console.app, "POST", API_VERIFY, P.AUDIT_READ))
        self.cursor: str | None = None  # the next page of the search shown
        self.search: dict[str, str | None] = {}
        self.shown = 0
        self.busy = False

    # --- layout ------------------------------------------------------------------------------

    async def build(self) -> None:
        t = self.page.t
        with ui.row().classes("w-full items-center gap-3 px-4 pt-3"):
            testid(ui.label(t("audit.title")).classes("text-2xl font-semibold"), "page-title")
        testid(ui.label(t("audit.intro")).classes("px-4 text-sm opacity-80"), "audit-intro")
        with ui.element("div").classes("w-full grid gap-3 p-4 grid-cols-1"):
            with ui.card():
                with ui.row().classes("w-full items-center"):
                    ui.label(t("audit.status")).classes("font-medium")
                    ui.space()
                    if self.may_verify:
                        testid(ui.button(t("audit.verify"), on_click=self.verify)
                               .props("unelevated no-caps color=primary"), "audit-verify")
                self.status_box = testid(ui.column().classes("w-full gap-1 text-sm"),
                                         "audit-status")
                self.verdict_box = testid(ui.column().classes("w-full gap-1"),
                                          "audit-verdict-box")
            with ui.card():
                ui.label(t("audit.search")).classes("font-medium")
                with ui.row().classes("w-full items-end gap-2"):
                    self.fields = {
                        "actor": ui.input(t("audit.actor")).classes("w-48"),
                        "object_kind": ui.input(t("audit.object_kind")).classes("w-36"),
                        "object_id": ui.input(t("audit.object_id")).classes("w-56"),
                        "action": ui.input(t("audit.action")).classes("w-48"),
                        "from_": ui.input(t("audit.since"),
                                          placeholder="2026-01-01T00:00:00Z").classes("w-56"),
                        "to": ui.input(t("audit.until"),
                                          placeholder="2026-01-31T23:59:59Z").classes("w-56"),
                    }
                    for name, field in self.fields.items():
                        testid(field.props("dense outlined clearable"),
                               f"audit-{name.rstrip('_')}")
                        field.on("keydown.enter", self.run_search)
                    testid(ui.button(t("audit.search_go"), on_click=self.run_search)
                           .props("unelevated no-caps"), "audit-search")
                self.search_error = testid(ui.label("").classes("text-negative"),
                                           "audit-search-error")
                self.search_error.set_visibility(False)
                self.count = testid(ui.label("").classes("text-sm opacity-70"), "audit-count")
                self.entries_box = testid(ui.column().classes("w-full gap-0"), "audit-entries")
                self.more = testid(ui.button(t("audit.more"), on_click=self.next_page)
                                   .props("outline no-caps"), "audit-more")
                self.more.set_visibility(False)
        with ui.dialog() as self.proof_dialog, ui.card().classes("w-[980px] max-w-full"):
            self.proof_box = testid(ui.column().classes("w-full gap-1"), "audit-proof")
            testid(ui.button(t("audit.close"), on_click=self.proof_dialog.close)
                   .props("flat no-caps"), "audit-proof-close")
        await self.load_status()
        await self._search({})

    # --- status and verification -------------------------------------------------------------

    async def load_status(self) -> None:
        page, t = self.page, self.page.t
        found = await page.call(page.client.audit_status())
        self.status_box.clear()
        if found is None:
            return
        with self.status_box:
            testid(ui.label(t("audit.size", size=f"{int(found.get('size') or 0):,}")),
                   "audit-size").props(f'data-size="{found.get("size", "")}"')
            latest = found.get("latest_checkpoint")
            if latest:
                root = str(latest.get("root") or "")
                testid(ui.label(t("audit.checkpoint", size=f"{int(latest.get('size') or 0):,}",
                                  at=time_text(int(latest.get("at_us") or 0), with_date=True)))
                       , "audit-checkpoint").props(f'data-size="{latest.get("size", "")}"')
                testid(ui.label(t("audit.root", root=root)).classes("fp-mono fp-wrap"),
                       "audit-root")
            else:
                testid(ui.label(t("audit.no_checkpoint")).classes("opacity-70"),
                       "audit-checkpoint")
            unsigned = found.get("unsigned_entries")
            if unsigned is not None:
                testid(ui.label(t("audit.unsigned", count=f"{int(unsigned):,}")),
                       "audit-unsigned")
            behind = {source: int((lag or {}).get("behind") or 0)
                      for source, lag in (found.get("sources") or {}).items() if lag}
            lag = ", ".join(f"{source} {count:,}" for source, count in sorted(behind.items())
                            if count) or t("audit.lag_none")
            testid(ui.label(t("audit.lag", lag=lag)), "audit-lag")
            last = found.get("last_verify")
            if last:
                key = "audit.last_verify_ok" if last.get("ok") else "audit.last_verify_bad"
                testid(ui.label(t(key, at=time_text(int(last.get("at_us") or 0),
                                                    with_date=True),
                                  size=f"{int(last.get('size') or 0):,}")), "audit-last-verify")

    async def verify(self) -> None:
        page, t = self.page, self.page.t
        if self.busy:
            return
        self.busy = True
        self.verdict_box.clear()
        with self.verdict_box:
            testid(ui.label(t("audit.verifying")).classes("opacity-70"), "audit-verifying")
        try:
            report = await page.call(page.client.audit_verify())
        finally:
            self.busy = False
        self.verdict_box.clear()
        if report is None:
            return
        ok = bool(report.get("ok"))
        with self.verdict_box:
            said = t("audit.intact", size=f"{int(report.get('size') or 0):,}",
                     checkpoints=int(report.get("checkpoints") or 0)) if ok else \
                t("audit.broken", count=sum(int(v) for v in (report.get("counts") or {})
                                            .values()) or len(report.get("findings") or []))
            testid(ui.label(said).classes("font-medium " + ("text-positive" if ok
                                                             else "text-negative")),
                   "audit-verdict").props(f'data-ok="{str(ok).lower()}"')
            for finding in report.get("findings") or []:
                self._finding(finding)
        await self.load_status()

    def _finding(self, finding: dict[str, Any]) -> None:
        t = self.page.t
        code = str(finding.get("code") or "?")
        key = FINDING_KEYS.get(code)
        where = t("audit.at_seq", seq=finding["seq"]) if finding.get("seq") is not None else \
            t("audit.at_size", size=finding["size"]) if finding.get("size") is not None else ""
        text = t(key) if key else code
        testid(ui.label(f"{text} ({code}) {where}: {finding.get('detail') or ''}")
               .classes("text-negative text-sm fp-wrap"), "audit-finding") \
            .props(f'data-code="{code}"')

    # --- search ------------------------------------------------------------------------------

    async def run_search(self) -> None:
        t = self.page.t
        values = {name: (str(field.value or "").strip() or None)
                  for name, field in self.fields.items()}
        for name in ("from_", "to"):
            text = values[name]
            if text is not None:
                at_us = instant_us(text)
                if at_us is None:
                    self.search_error.set_text(t("audit.bad_instant", text=text))
                    self.search_error.set_visibility(True)
                    return
                values[name] = iso(at_us)
        self.search_error.set_visibility(False)
        await self._search(values)

    async def _search(self, values: dict[str, str | None]) -> None:
        self.search = values
        self.cursor = None
        self.shown = 0
        self.entries_box.clear()
        await self.next_page()

    async def next_page(self) -> None:
        page, t = self.page, self.page.t
        found = await page.call(page.client.audit_entries(
            **self.search, cursor=self.cursor, limit=PAGE_SIZE))
        if found is None:
            return
        entries = found.get("data", found.get("items", [])) or []
        with self.entries_box:
            if self.shown == 0:
                self._head()
            for entry in entries:
                self._entry(entry)
        self.shown += len(entries)
        self.cursor = found.get("next_cursor")
        self.count.set_text(t("audit.count", count=f"{self.shown:,}") if self.shown
                            else t("audit.none"))
        self.count.props(f'data-count="{self.shown}"')
        self.more.set_visibility(self.cursor is not None and self.shown < SHOWN_MAX)

    def _head(self) -> None:
        t = self.page.t
        with ui.row().classes("w-full gap-2 text-xs font-medium opacity-70 py-1 no-wrap"):
            for key, width in (("audit.col_seq", "w-14"), ("audit.col_when", "w-44"),
                               ("audit.col_who", "w-36"), ("audit.col_action", "w-56"),
                               ("audit.col_object", "w-56"), ("audit.col_request", "w-40"),
                               ("audit.col_change", "flex-1")):
                ui.label(t(key)).classes(width)

    def _who(self, actor: dict[str, Any] | None) -> tuple[str, str]:
        """(name, roles) of an entry's actor."""
        t = self.page.t
        if not actor:
            return t("audit.nobody"), ""
        name = str(actor.get("name") or actor.get("id") or "?")
        kind = str(actor.get("kind") or "")
        if kind and kind != "user":
            name = f"{name} ({kind})"
        roles = ", ".join(t(f"role.{r}") if r in ROLE_NAMES else str(r)
                          for r in actor.get("roles") or ())
        return name, roles

    def _entry(self, entry: dict[str, Any]) -> None:
        seq = int(entry.get("seq", -1))
        record = entry.get("record") or {}
        actor = record.get("actor")
        name, roles = self._who(actor)
        thing = record.get("object") or {}
        at_us = int(record.get("at_us") or entry.get("at_us") or 0)
        change = change_text(record)
        row = ui.row().classes("w-full gap-2 text-sm py-1 border-b items-start no-wrap")
        with testid(row, f"audit-entry-{seq}").props(
                f'data-seq="{seq}" data-action="{record.get("action", "")}"'):
            ui.label(str(seq)).classes("w-14 fp-mono")
            ui.label(time_text(at_us, with_date=True)).classes("w-44 fp-nowrap")
            with ui.column().classes("w-36 gap-0"):
                testid(ui.label(name).classes("fp-wrap"), "audit-who")
                testid(ui.label(roles).classes("text-xs opacity-70"), "audit-roles")
            testid(ui.label(str(record.get("action") or "")).classes("w-56 fp-wrap"),
                   "audit-action")
            testid(ui.label(f"{thing.get('kind', '')}:{thing.get('id', '')}")
                   .classes("w-56 fp-mono text-xs fp-wrap"), "audit-object")
            testid(ui.label(str((actor or {}).get("request_id") or "—"))
                   .classes("w-40 fp-mono text-xs fp-wrap"), "audit-request")
            shown = change if len(change) <= CHANGE_CHARS_MAX else \
                change[:CHANGE_CHARS_MAX - 1] + "…"
            label = testid(ui.label(shown).classes("flex-1 fp-mono text-xs fp-wrap"),
                           "audit-change")
            label.props["title"] = change  # all of it on hover (a dict entry: no quoting)
            testid(ui.button(self.page.t("audit.proof"),
                             on_click=lambda s=seq: self.open_proof(s))
                   .props("flat dense no-caps"), "audit-proof-open")

    # --- one entry and its proof -------------------------------------------------------------

    async def open_proof(self, seq: int) -> None:
        page, t = self.page, self.page.t
        try:
            found = await page.client.audit_entry(seq)
        except ApiError as error:
            if error.code in NOT_SIGNED_YET:  # the entry is newer than the latest checkpoint
                ui.notify(t("audit.not_signed_yet", seq=seq), type="info", multi_line=True)
                return
            page.report(error)
            return
        check = check_proof(found)
        entry = found.get("entry") or {}
        record = entry.get("record") or {}
        actor = record.get("actor")
        name, roles = self._who(actor)
        thing = record.get("object") or {}
        checkpoint = found.get("checkpoint") or {}
        self.proof_box.clear()
        with self.proof_box:
            ui.label(t("audit.proof_title", seq=seq)).classes("text-lg font-medium")
            with ui.grid(columns="max-content 1fr").classes("gap-x-4 gap-y-1 text-sm w-full"):
                for key, value, name_ in (
                        ("audit.col_who", f"{name}" + (f" ({roles})" if roles else ""), "who"),
                        ("audit.col_action", str(record.get("action") or ""), "action"),
                        ("audit.col_object", f"{thing.get('kind', '')}:{thing.get('id', '')}",
                         "object"),
                        ("audit.col_when", time_text(int(record.get("at_us") or 0),
                                                     with_date=True), "when"),
                        ("audit.col_request", str((actor or {}).get("request_id") or "—"),
                         "request"),
                        ("audit.before", _json_text(record.get("before")), "before"),
                        ("audit.after", _json_text(record.get("after")), "after")):
                    ui.label(t(key)).classes("opacity-70")
                    testid(ui.label(value).classes("fp-mono fp-wrap"), f"proof-{name_}")
            ui.separator()
            with ui.grid(columns="max-content 1fr").classes("gap-x-4 gap-y-1 text-sm w-full"):
                ui.label(t("audit.leaf")).classes("opacity-70")
                testid(ui.label(check.leaf).classes("fp-mono fp-wrap"), "proof-leaf")
                ui.label(t("audit.path", count=len(check.path))).classes("opacity-70")
                with testid(ui.column().classes("gap-0"), "proof-path"):
                    for index, node in enumerate(check.path):
                        ui.label(f"{index}  {node}").classes("fp-mono text-xs")
                    if not check.path:
                        ui.label(t("audit.path_empty")).classes("text-xs opacity-70")
                ui.label(t("audit.root_of", size=f"{check.tree_size:,}",
                           at=time_text(int(checkpoint.get("at_us") or 0), with_date=True))
                         ).classes("opacity-70")
                testid(ui.label(check.root).classes("fp-mono fp-wrap"), "proof-root")
            if check.ok:
                said, tone = t("audit.proof_ok", seq=seq, size=f"{check.tree_size:,}"), \
                    "text-positive"
            elif not check.leaf_matches:
                said, tone = t("audit.proof_leaf_bad"), "text-negative"
            elif check.computed is None:
                said, tone = t("audit.proof_malformed", reason=check.problem or "?"), \
                    "text-negative"
            else:
                said, tone = t("audit.proof_bad", computed=check.computed), "text-negative"
            testid(ui.label(said).classes(f"font-medium fp-wrap {tone}"), "proof-verdict") \
                .props(f'data-ok="{str(check.ok).lower()}"')
        self.proof_dialog.open()


@console_page(AUDIT_PATH, needs=P.AUDIT_READ, title="nav.audit")
async def audit_page(page: Page) -> None:
    await AuditBrowser(page).build()
