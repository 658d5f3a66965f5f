"""Risk control's words and orders, without any UI: what the review queue, the policy editor,
a payment's risk section and the stream's risk grade make of `/v1/risk`'s answers.

- An outcome (allow, review, hold, block) and a case's state each have a key of the string
  table and a colour; the pages look them up here, never spell them.
- A fired condition keeps the figures the rules compared (risk/rules.py: counts, sums in minor
  units, windows, the list, the screening hit): `condition_text` says them in a sentence of
  the user's language, each amount at its asset's scale.
- The queue lists the cases past their SLA first, then by due time (the API's order), and
  filters by state, kind and breach as the URL says (`?state=open,claimed&kind=hold&breached=1`);
  its page opens on the tab the URL names (`?view=rings`, `?view=limits`; console/rings.py and
  console/limits.py say those tabs' rows).
- The stream's risk grade comes from what a `payment.transitioned` event already carries (its
  step, status and reason: `risk review: …`, `risk hold: …`, `risk block: …`), so no row costs
  a call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from fundpool.console.format import Locale, amount_display, duration_text, time_text
from fundpool.console.i18n import t

OUTCOMES = ("allow", "review", "hold", "block")
OUTCOME_KEYS = {"allow": "outcome.allow", "review": "outcome.review", "hold": "outcome.hold",
                "block": "outcome.block"}
# Quasar colours of a badge: the further from allow, the hotter.
OUTCOME_COLOURS = {"allow": "positive", "review": "warning", "hold": "deep-orange",
                   "block": "negative"}
CASE_STATES = ("open", "claimed", "escalated", "released", "rejected")
OPEN_STATES = ("open", "claimed", "escalated")  # the API's default: cases still to decide
CASE_STATE_KEYS = {"open": "case_state.open", "claimed": "case_state.claimed",
                   "escalated": "case_state.escalated", "released": "case_state.released",
                   "rejected": "case_state.rejected"}
CASE_STATE_COLOURS = {"open": "warning", "claimed": "primary", "escalated": "negative",
                      "released": "positive", "rejected": "grey-7"}
CASE_STATE_TONES = {"open": "attention", "claimed": "progress", "escalated": "bad",
                    "released": "done", "rejected": "muted"}
CASE_KIND_KEYS = {"review": "case_kind.review", "hold": "case_kind.hold"}
NOTE_ACTION_KEYS = {"opened": "case_note.opened", "claimed": "case_note.claimed",
                    "commented": "case_note.commented", "escalated": "case_note.escalated",
                    "released": "case_note.released", "rejected": "case_note.rejected"}
# Each action on a case: its button's words and colour, whether it needs a note, and what is
# said once it is taken (the API refuses a missing note too: the page says so first).
CaseAction = Literal["claim", "comment", "escalate", "release", "reject"]
CASE_ACTIONS: dict[CaseAction, tuple[str, str, bool, str]] = {
    "claim": ("case.claim", "primary", False, "case.claimed"),
    "comment": ("case.comment", "grey-8", True, "case.commented"),
    "escalate": ("case.escalate", "warning", True, "case.escalated"),
    "release": ("case.release", "positive", True, "case.released"),
    "reject": ("case.reject", "negative", True, "case.rejected"),
}
PER_KEYS = {"payee": "per.payee", "initiator": "per.initiator",
            "destination": "per.destination", "country": "per.country"}
INPUT_CHARS_MAX = 120  # one input of an unknown condition kind, shown at most this long


def outcome_text(outcome: str, locale: Locale) -> str:
    key = OUTCOME_KEYS.get(outcome)
    return t(key, locale) if key else outcome


def case_state_text(state: str, locale: Locale) -> str:
    key = CASE_STATE_KEYS.get(state)
    return t(key, locale) if key else state


def case_kind_text(kind: str, locale: Locale) -> str:
    key = CASE_KIND_KEYS.get(kind)
    return t(key, locale) if key else kind


def note_action_text(action: str, locale: Locale) -> str:
    key = NOTE_ACTION_KEYS.get(action)
    return t(key, locale) if key else action


# --- a fired condition in words --------------------------------------------------------------


def money_text(minor: object, asset: object, scales: Mapping[str, int], locale: Locale) -> str:
    """Minor units (an integer, or its text as the API gives it) at the asset's scale, with
    the asset's code: `1,234.50 USD`; `?` for what is not a whole number."""
    if not isinstance(minor, int | str) or not str(minor).lstrip("-").isdigit():
        return "?"
    code = str(asset or "")
    shown, _ = amount_display(int(minor), scales.get(code, 0), locale)
    return f"{shown} {code}".strip()


def _ago(us: object, locale: Locale) -> str:
    return duration_text(float(us), locale) if isinstance(us, int | float) else "?"


def per_text(per: object, locale: Locale) -> str:
    """Who a count or limit is kept per: payee, initiator, destination (in words)."""
    key = PER_KEYS.get(str(per))
    return t(key, locale) if key else str(per)


def _text(value: object) -> str:
    return "—" if value is None or value == "" else str(value)


def condition_text(condition: Mapping[str, Any], locale: Locale,
                   scales: Mapping[str, int]) -> str:
    """One condition that held, with the figures it compared, as a sentence: "5 payments to
    payee payee-burst-3 within 10m, more than 3". A kind this console does not know is shown
    as its inputs (`kind: name=value, …`)."""
    c = condition
    kind = str(c.get("kind", "?"))
    asset = c.get("asset")

    def money(name: str) -> str:
        return money_text(c.get(name), asset, scales, locale)

    if kind == "payment":
        kind_key = {"deposit": "kind.deposit", "payout": "kind.payout",
                    "internal": "kind.internal", "bridge": "kind.bridge"}.get(
            str(c.get("payment_kind")))
        text = t("cond.payment", locale,
                 kind=t(kind_key, locale) if kind_key else _text(c.get("payment_kind")),
                 asset=_text(asset))
        if c.get("channel"):
            text += t("cond.on_channel", locale, channel=c["channel"])
        return text
    if kind == "amount":
        bounds = [t("cond.over", locale, amount=money("over")) if c.get("over") is not None
                  else "",
                  t("cond.under", locale, amount=money("under")) if c.get("under") is not None
                  else ""]
        return t("cond.amount", locale, amount=money("amount"),
                 bounds=t("problem.facts_separator", locale).join(b for b in bounds if b))
    if kind == "round_amount":
        return t("cond.round_amount", locale, amount=money("amount"),
                 multiple=money("multiple"))
    if kind == "daily_total":
        return t("cond.daily_total", locale, per=per_text(c.get("per"), locale),
                 key=_text(c.get("key")), total=money("day_total"), over=money("over"))
    if kind == "velocity":
        said = []
        count, count_over = c.get("count"), c.get("count_over")
        if isinstance(count, int) and isinstance(count_over, int) and count > count_over:
            said.append(t("cond.velocity_count", locale, count=count, count_over=count_over,
                          per=per_text(c.get("per"), locale), key=_text(c.get("key")),
                          window=_text(c.get("window"))))
        if c.get("amount_over") is not None:
            said.append(t("cond.velocity_amount", locale, total=money("total"),
                          amount_over=money("amount_over"), per=per_text(c.get("per"), locale),
                          key=_text(c.get("key")), window=_text(c.get("window"))))
        return t("problem.facts_separator", locale).join(said) or kind
    if kind == "duplicate":
        return t("cond.duplicate", locale, ago=_ago(c.get("seen_us_ago"), locale),
                 window=_text(c.get("window")), amount=money("amount"),
                 payee=_text(c.get("payee")))
    if kind == "new_payee":
        return t("cond.new_payee", locale, payee=_text(c.get("payee")))
    if kind == "destination_changed":
        if "previous" in c:
            return t("cond.destination_changed", locale, payee=_text(c.get("payee")),
                     previous=_text(c.get("previous")), destination=_text(c.get("destination")))
        return t("cond.destination_recent", locale, payee=_text(c.get("payee")),
                 ago=_ago(c.get("changed_us_ago"), locale), within=_text(c.get("within")))
    if kind == "abnormal_amount":
        return t("cond.abnormal_amount", locale, amount=money("amount"), mean=money("mean"),
                 times=_text(c.get("times")), payee=_text(c.get("payee")),
                 history=_text(c.get("history")))
    if kind == "listed":
        return t("cond.listed" if c.get("on_list") else "cond.not_listed", locale,
                 field=per_text(c.get("field"), locale), value=_text(c.get("value")),
                 list=_text(c.get("list")))
    if kind == "kyc":
        return t("cond.kyc", locale, payee=_text(c.get("payee")), kyc=_text(c.get("kyc")))
    if kind == "jurisdiction":
        return t("cond.jurisdiction", locale, payee=_text(c.get("payee")),
                 country=_text(c.get("country")))
    if kind == "lowered_limit":
        until = c.get("until_us")
        return t("cond.lowered_limit", locale, amount=money("amount"), over=money("over"),
                 per=per_text(c.get("per"), locale), key=_text(c.get("key")),
                 group=_text(c.get("set_by_group")),
                 until=time_text(until, with_date=True) if isinstance(until, int) else "?")
    if kind == "sanctions":
        return t("cond.sanctions", locale, name=_text(c.get("name")),
                 matched=_text(c.get("matched")), source=_text(c.get("source")),
                 score=_text(c.get("score")), threshold=_text(c.get("threshold")))
    inputs = ", ".join(f"{name}={str(value)[:INPUT_CHARS_MAX]}" for name, value in c.items()
                       if name != "kind" and value is not None)
    return t("cond.other", locale, kind=kind, inputs=inputs or "—")


# --- the review queue ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """What the review queue shows: cases in `states` (the API filters), of `kind` and, with
    `breached`, only those past their SLA (filtered here)."""

    states: tuple[str, ...] = OPEN_STATES
    kind: str | None = None
    breached: bool = False

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> QueueFilter:
        """From the page's URL; what does not read is ignored (the default queue)."""
        wanted = [s.strip() for s in (query.get("state") or "").split(",")]
        states = tuple(s for s in CASE_STATES if s in wanted) or OPEN_STATES
        kind = query.get("kind") if query.get("kind") in CASE_KIND_KEYS else None
        return cls(states, kind, query.get("breached") in ("1", "true"))

    def query(self) -> dict[str, str | None]:
        """The filter as the page's query parameters (None: not set)."""
        return {"state": None if self.states == OPEN_STATES else ",".join(self.states),
                "kind": self.kind, "breached": "1" if self.breached else None}

    def keeps(self, case: Any) -> bool:
        if self.kind is not None and case.kind != self.kind:
            return False
        return not self.breached or bool(case.breached)


QueueView = Literal["cases", "rings", "limits"]
QUEUE_VIEWS: tuple[QueueView, ...] = ("cases", "rings", "limits")  # the queue page's tabs


def queue_view(query: Mapping[str, str]) -> QueueView:
    """The tab the queue page opens on (`?view=rings`: the alert bar's rings alert); the
    cases for anything else."""
    wanted = (query.get("view") or "").strip().lower()
    return next((v for v in QUEUE_VIEWS if v == wanted), "cases")


def queue_order(cases: Iterable[Any]) -> list[Any]:
    """The cases past their SLA first, then the most urgent (due soonest), then the oldest."""
    return sorted(cases, key=lambda c: (not c.breached, c.due_at_us, c.opened_at_us, c.id))


# --- the stream's risk grade -----------------------------------------------------------------

Grade = Literal["review", "hold", "block", "held"]
GRADE_KEYS: dict[str, str] = {"review": "grade.review", "hold": "grade.hold",
                              "block": "grade.block", "held": "grade.held"}
# The engine's reasons (risk/rules.py `Verdict.reason`): "risk <outcome>: <groups>".
_REASON_GRADES: tuple[tuple[str, Grade], ...] = (
    ("risk block", "block"), ("risk hold", "hold"), ("risk review", "review"))


def risk_grade(state: str, reason: str | None) -> Grade | None:
    """A stream row's risk grade from its latest step: the risk outcome its reason names, or
    `held` for a payment on hold whose reason is not known (a row read from the payments
    list); None for a payment risk control let through, or one it released."""
    if reason:
        for prefix, grade in _REASON_GRADES:
            if reason.startswith(prefix):
                return grade
    return "held" if state == "held" else None


def reason_parts(reason: str) -> tuple[str, str] | None:
    """(outcome, groups) of an engine's risk reason (`risk block: sanctioned payee`), else
    None."""
    for prefix, grade in _REASON_GRADES:
        if reason.startswith(prefix):
            return grade, reason[len(prefix):].lstrip(": ").strip()
    return None


# --- the policy editor -----------------------------------------------------------------------

DiffKind = Literal["header", "hunk", "add", "remove", "same"]


def diff_kind(line: str) -> DiffKind:
    """How a unified diff's line is coloured."""
    if line.startswith(("+++", "---")):
        return "header"
    if line.startswith("@@"):
        return "hunk"
    if line.startswith("+"):
        return "add"
    if line.startswith("-"):
        return "remove"
    return "same"


def error_line(facts: Mapping[str, object], lines: int) -> int | None:
    """The line an `invalid_policy` refusal names, when it is a line of the text (1-based)."""
    line = facts.get("line")
    if isinstance(line, bool) or not isinstance(line, int | str):
        return None
    try:
        number = int(line)
    except ValueError:
        return None
    return number if 1 <= number <= max(lines, 1) else None


def summary_text(summary: Mapping[str, Any], locale: Locale) -> str:
    """A checked policy's summary: groups, conditions by kind, lists, thresholds."""
    kinds = summary.get("conditions") or {}
    thresholds = summary.get("thresholds") or {}
    lists = summary.get("lists") or {}
    separator = t("problem.facts_separator", locale)
    return t("policy.summary", locale, groups=summary.get("groups", 0),
             conditions=separator.join(f"{k} × {v}" for k, v in kinds.items()) or "—",
             lists=separator.join(f"{k} ({v})" for k, v in lists.items()) or "—",
             review=thresholds.get("review", "?"), hold=thresholds.get("hold", "?"),
             block=thresholds.get("block", "?"))


def outcome_counts(outcomes: Mapping[str, int]) -> list[tuple[str, int]]:
    """A backtest's outcomes in the order of severity, every outcome present."""
    return [(o, int(outcomes.get(o, 0))) for o in OUTCOMES]
