"""What the API says, in the console user's language: refusals (problem documents), alert
texts from the engine's fixed templates, and alert subjects as links. No UI here: the shell
and the pages call these, and the unit tests read them directly.

- A refusal is shown by its stable `code`: `problem.<code>` in the string table when the
  console knows the code, else the API's own title. A request the API's schema refused
  (`invalid_request`) is said field by field (`The amount must be …`), never as the
  validator's raw message (a regular expression is not an explanation). The scalar facts the
  API gives (asset, amounts, limits) follow in words.
- An alert's summary comes from the rule's own `summary:` (shown as its author wrote it) or
  from one of the alert engine's fixed templates (monitoring/alerting/engine.py): those are
  recognised and said again in 简体中文 on the Chinese console.
- An alert's subject (`pool`, `asset:USD`, `channel:bank-a`, `asset:USD,channel:bank-a`,
  `payment:…`, and risk control's `risk:review`, `risk:hold`, `risk:breached`, `risk:rings`)
  is parsed into the page that shows it: a risk subject opens the review queue, filtered to
  what it is about, or on its rings tab (`?view=rings`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fundpool.console.format import Locale
from fundpool.console.i18n import STRINGS, t
from fundpool.console.risk import outcome_text, reason_parts
from fundpool.monitoring.kpis import KPIS
from fundpool.payments.model import Action
from fundpool.routing.decision import Exclusion

# The refusals the console says in its own words (`problem.<code>` in i18n.py). Any other
# code is shown with the API's title.
PROBLEM_CODES: tuple[str, ...] = (
    "invalid_request", "invalid_amount", "negative_amount", "too_many_decimals",
    "amount_overflow", "unknown_asset", "unknown_channel", "unknown_pool",
    "insufficient_funds", "self_approval", "already_approved_by_you", "approval_required",
    "illegal_transition", "idempotency_conflict", "idempotency_in_progress",
    "amount_outside_limits", "no_eligible_channel", "unknown_payment",
    "destination_required", "invalid_destination", "adjustment_reason_required",
    "fee_exceeds_amount", "channel_refused", "invalid_instant", "invalid_period",
    "export_too_large", "too_many_requests", "malformed_json", "alert_not_firing",
    "unknown_alert", "forbidden",
    # risk control (docs/risk.md)
    "invalid_policy", "unknown_policy", "policy_not_draft", "self_activation",
    "nothing_to_roll_back", "unknown_case", "case_closed", "case_changed", "claimed_by_other",
    "self_review", "invalid_risk_input", "invalid_sanctions_file", "risk_blocked",
    "unknown_limit",
    # signed approvals (docs/approvals.md)
    "signature_required", "invalid_signature", "signature_mismatch", "payment_changed",
    "unknown_signing_key", "already_signed", "not_eligible", "not_waiting", "totp_required",
    "totp_invalid", "totp_expired", "totp_reused", "totp_not_enrolled", "totp_already_enrolled",
    "invalid_public_key", "key_already_registered", "invalid_approval_rules",
    "invalid_approval_input", "unknown_rules_version", "not_a_voter", "already_voted",
    "not_cancellable", "self_grant",
    # reconciliation (docs/reconciliation.md)
    "file_refused", "unknown_message", "balances_do_not_add_up", "duplicate_statement",
    "recon_not_open", "recon_note_required", "recon_nothing_to_book", "recon_not_found",
    "invalid_expected_payment", "adjustment_permission_required",
    # the treasury desk (docs/treasury.md)
    "fx_quote_unknown", "fx_quote_expired", "fx_quote_not_open", "fx_rate_unknown",
    "invalid_fx_quote", "fx_no_channel_for_asset", "rates_unavailable", "invalid_rates",
    "invalid_split_rule", "split_percentages_exceed_whole", "split_rule_unknown",
    "cyclic_tiers", "empty_tier", "unknown_tier", "tiers_not_ordered", "invalid_waterfall",
    "invalid_obligation", "unknown_participant", "invalid_netting", "desk_conflict",
    "invalid_band", "invalid_sweep_rule", "sweep_pending", "stale_balances",
    "sweep_would_breach_minimum", "invalid_route", "invalid_credit_facility",
    "credit_limit_exceeded", "invalid_scenario", "plan_unknown", "plan_not_open",
    "plan_self_approval", "plan_outdated", "invalid_treasury_config",
)
# Fields of a request body the console's forms send, as a person calls them
# (`field.<name>`); another field is named as the API names it.
FIELDS: tuple[str, ...] = (
    "amount", "asset", "channel", "destination_channel", "destination", "counterparty",
    "reference", "kind", "pool", "note", "reason", "from", "to",
    "sell", "buy", "sell_amount", "buy_amount", "available", "payer", "payee",
)
# Fields that are amounts: one the schema refuses is said as an amount's shape (`12.50`).
AMOUNT_FIELDS: tuple[str, ...] = ("amount", "sell_amount", "buy_amount", "available")
# The facts a problem carries that are worth a person's reading (`fact.<name>`), in the
# order they are shown; other facts are left out (the code and the API's log have them).
FACTS: tuple[str, ...] = (
    "asset", "amount", "requested", "available", "balance", "shortfall", "fee", "minimum",
    "maximum", "limit", "scale", "channel", "payment", "state", "action", "line", "field",
    "version", "author", "claimed_by", "file", "place", "imported_as", "statement_id",
    "quote", "plan", "proposer", "tier", "participant", "split",
)
RISK_CASE_REASON = "risk case:"  # a case's decision on the payment's step (risk/service.py)
FACT_CHARS_MAX = 80  # one fact's value shown at most this long
FACTS_SHOWN_MAX = 6


def problem_text(code: str, title: str, facts: Mapping[str, object] | None,
                 locale: Locale) -> str:
    """A refusal as a person reads it, in `locale`: the code's message (or, for a code the
    console does not know, the API's own `title`) and the facts worth reading."""
    facts = facts or {}
    if code == "invalid_request":
        fields = _invalid_fields(facts.get("errors"), locale)
        if fields:
            return " ".join(fields)
    key = f"problem.{code}"
    message = t(key, locale) if code in PROBLEM_CODES else _sentence(title)
    shown = _facts_text(facts, locale)
    return t("problem.with_facts", locale, message=message, facts=shown) if shown else message


def reason_text(reason: str, locale: Locale) -> str:
    """A payment event's reason: a known code in words, risk control's (`risk block: the
    groups that fired`, `risk case: the officer's note`) with its outcome in words, any other
    text as written."""
    if reason in PROBLEM_CODES:
        return t(f"problem.{reason}", locale)
    parts = reason_parts(reason)
    if parts is not None:
        return t("reason.risk", locale, outcome=outcome_text(parts[0], locale),
                 groups=parts[1] or "—")
    if reason.startswith(RISK_CASE_REASON):
        return t("reason.risk_case", locale,
                 note=reason[len(RISK_CASE_REASON):].strip() or "—")
    return reason


def _sentence(title: str) -> str:
    title = title.strip() or "the API refused the request"
    return title[0].upper() + title[1:] + ("" if title.endswith(".") else ".")


def _invalid_fields(errors: object, locale: Locale) -> list[str]:
    """What the API's request validation found, one sentence per field, without the
    validator's own words (they quote regular expressions)."""
    if not isinstance(errors, list):
        return []
    said: list[str] = []
    for error in errors:
        if not isinstance(error, Mapping):
            continue
        location = error.get("loc")
        parts = [str(p) for p in location] if isinstance(location, list) else []
        name = parts[-1] if parts and parts[0] == "body" and len(parts) > 1 else None
        kind = str(error.get("type", ""))
        if name in AMOUNT_FIELDS:
            sentence = t("problem.amount_format", locale)
        elif name is None:
            sentence = t("problem.body_invalid", locale)
        else:
            field = t(f"field.{name}", locale) if name in FIELDS else name
            sentence = t("problem.field_missing" if kind == "missing" else
                         "problem.field_too_long" if kind == "string_too_long" else
                         "problem.field_unknown" if kind == "extra_forbidden" else
                         "problem.field_invalid", locale, field=field)
        if sentence not in said:
            said.append(sentence)
    return said


def _facts_text(facts: Mapping[str, object], locale: Locale) -> str:
    shown = []
    for name in FACTS:
        value = facts.get(name)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            continue
        text = str(value)
        if len(text) > FACT_CHARS_MAX:
            text = text[:FACT_CHARS_MAX] + "…"
        shown.append(t("problem.fact", locale, name=t(f"fact.{name}", locale), value=text))
        if len(shown) == FACTS_SHOWN_MAX:
            break
    return t("problem.facts_separator", locale).join(shown)


# --- payments: steps, who took them, why a rail could not ------------------------------------

ACTIONS: tuple[str, ...] = tuple(action.value for action in Action)  # `action.<name>`
EXCLUSIONS: tuple[str, ...] = tuple(e.value for e in Exclusion)  # `exclusion.<code>`
# Principals named by their kind alone (`actor.<kind>`): the engine is "engine" whatever its id.
SYSTEM_ACTORS: tuple[str, ...] = ("engine", "simulator", "system")
ACTOR_KINDS: tuple[str, ...] = (*SYSTEM_ACTORS, "user", "key", "cli", "unknown")


def _actor_field(actor: object, field: str, default: object) -> object:
    if isinstance(actor, Mapping):
        return actor.get(field, default)
    return getattr(actor, field, default)


def actor_text(actor: object, locale: Locale, *, recorded: bool = True) -> str | None:
    """Who took a step, for a person: a user's name, `key ci-bot`, `engine`. `actor` is the
    API's actor as a model or as a document (a mapping). An actor the record lacks says
    "unknown" (kept before actors were); None when the API does not give actors at all
    (`recorded` False: nothing to say)."""
    if actor is None:
        return t("actor.unknown", locale) if recorded else None
    kind = str(_actor_field(actor, "kind", "unknown"))
    name = str(_actor_field(actor, "name", "") or _actor_field(actor, "id", "") or "?")
    if kind in SYSTEM_ACTORS:
        return t(f"actor.{kind}", locale)
    if kind == "key":
        return t("actor.key", locale, name=name)
    if kind == "cli":
        return t("actor.cli", locale, name=name)
    if kind == "unknown":
        return name if name != "?" else t("actor.unknown", locale)
    return name


def exclusion_text(reason: str | None, locale: Locale) -> str:
    """Why a rail could not carry a payment, in words."""
    if reason is None:
        return "?"
    return t(f"exclusion.{reason}", locale) if reason in EXCLUSIONS else reason


# --- alert subjects ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subject:
    """What an alert is about. Everything None: the pool as a whole. `risk`: a part of the
    review queue (`review`: cases waiting, `hold`: payments on hold, `breached`: cases past
    their SLA, `rings`: the suspected fraud rings)."""

    asset: str | None = None
    channel: str | None = None
    payment: str | None = None
    risk: str | None = None


SUBJECT_KEYS = ("asset", "channel", "payment")
# Risk control's subjects (`risk:review` …, risk/service.py `signals`): each one's words, and
# the review queue's query that shows it (a filter of the cases, or the rings tab). A group's
# alert response (`risk.response:<group>`) has the subject `risk:review`: the queue.
RISK_SUBJECTS: dict[str, tuple[str, dict[str, str] | None]] = {
    "review": ("subject.risk_review", None),
    "hold": ("subject.risk_hold", {"kind": "hold"}),
    "breached": ("subject.risk_breached", {"breached": "1"}),
    "rings": ("subject.risk_rings", {"view": "rings"}),
}
RISK_QUEUE_PATH = "/risk"


def parse_subject(subject: str, *, assets: Iterable[str] = (),
                  channels: Iterable[str] = ()) -> Subject | None:
    """`asset:USD,channel:bank-a` as a `Subject` whose asset and channel are the
    configuration's own spelling; None for what names no known asset, channel or payment
    (a link to a page of nothing helps nobody)."""
    text = subject.strip()
    if text in ("pool", "*"):
        return Subject()
    key, colon, value = text.partition(":")
    if colon and key.strip().lower() == "risk":
        queue = value.strip().lower()
        return Subject(risk=queue) if queue in RISK_SUBJECTS else None
    known_assets = {a.casefold(): a for a in assets}
    known_channels = {c.casefold(): c for c in channels}
    found: dict[str, str] = {}
    for part in text.split(","):
        key, colon, value = part.partition(":")
        key, value = key.strip().lower(), value.strip()
        if not colon or not value or key not in SUBJECT_KEYS or key in found:
            return None
        if key == "asset":
            value = known_assets.get(value.casefold(), "")
        elif key == "channel":
            value = known_channels.get(value.casefold(), "")
        if not value:
            return None
        found[key] = value
    if "payment" in found and len(found) > 1:
        return None
    return Subject(found.get("asset"), found.get("channel"), found.get("payment"))


def subject_target(subject: Subject) -> tuple[str, dict[str, str] | None]:
    """The console page (path, query) that shows `subject`."""
    if subject.risk is not None:
        return RISK_QUEUE_PATH, RISK_SUBJECTS[subject.risk][1]
    if subject.payment is not None:
        return "/stream", {"payment": subject.payment}
    query = {k: v for k, v in (("asset", subject.asset), ("channel", subject.channel)) if v}
    return ("/drill", query) if query else ("/", None)


def subject_text(subject: str, locale: Locale) -> str:
    """`asset:USD,channel:bank-a` in words: `asset USD · channel bank-a` (币种 USD · 通道 …)."""
    text = subject.strip()
    if text in ("pool", "*"):
        return t("subject.pool", locale)
    key, _, value = text.partition(":")
    if key.strip().lower() == "risk" and value.strip().lower() in RISK_SUBJECTS:
        return t(RISK_SUBJECTS[value.strip().lower()][0], locale)
    words = []
    for part in text.split(","):
        key, colon, value = part.partition(":")
        key = key.strip().lower()
        if not colon or key not in SUBJECT_KEYS:
            return subject
        words.append(t(f"subject.{key}", locale, name=value.strip()))
    return " · ".join(words)


# --- alert summaries -------------------------------------------------------------------------

# The alert engine's fixed summaries (monitoring/alerting/engine.py, `_threshold`, `_apply`,
# `_burn_observations`). A rule's own `summary:` matches none of them and is shown as written.
_SUBJECT = r"(?P<subject>pool|\*|(?:asset|channel):[^,()\s]+(?:,channel:[^,()\s]+)?)"
_THRESHOLD = re.compile(
    rf"(?P<title>.+?) \({_SUBJECT}\) is (?P<value>\S+?)(?P<unit> days| s| bp)?, "
    r"(?P<negated>not )?(?P<op><=|>=|==|!=|<|>) (?P<threshold>\S+)")
_NO_DATA = re.compile(rf"(?P<title>.+?) \({_SUBJECT}\): no data \((?P<note>.*)\)")
_GONE = re.compile(rf"(?P<rule>.+?) \({_SUBJECT}\): no longer evaluated "
                   r"\(rule removed or subject gone\)")
_BURN = re.compile(
    r"SLO (?P<title>.+) \((?P<objective>\S+) over (?P<window>\S+)\): error budget burning "
    r"(?P<long>\S+)× over (?P<long_window>\S+) and (?P<short>\S+)× over (?P<short_window>\S+) "
    r"\((?P<side>at or above|below) (?P<factor>\S+)×\)")
# (operator, negated) -> how the comparison is said
COMPARISONS = {
    ("<", False): "alert.lt", ("<=", False): "alert.le", (">", False): "alert.gt",
    (">=", False): "alert.ge", ("==", False): "alert.eq", ("!=", False): "alert.ne",
    ("<", True): "alert.not_lt", ("<=", True): "alert.not_le", (">", True): "alert.not_gt",
    (">=", True): "alert.not_ge", ("==", True): "alert.not_eq", ("!=", True): "alert.not_ne",
}
UNITS = {" days": "alert.unit_days", " s": "alert.unit_seconds", " bp": "alert.unit_bps"}
# Risk control's fixed summaries (risk/service.py `signals`).
RISK_SUMMARIES = {
    "payments wait for risk review": "alert.risk_review",
    "payments on hold for a risk officer": "alert.risk_hold",
    "risk cases are past their SLA": "alert.risk_breached",
    "payees share accounts: suspected fraud rings": "alert.risk_rings",
}
_GROUP_FIRED = re.compile(r"risk group fired: (?P<group>.+)")
_QUOTED = r"(?:'[^']*'|\"[^\"]*\")"
_SANCTIONS_BLOCK = re.compile(
    rf"payout to (?P<name>{_QUOTED}) blocked: sanctions hit on (?P<matched>{_QUOTED}) "
    r"\((?P<score>\d+)\)")


def alert_summary(summary: str, locale: Locale) -> str:
    """An alert's summary in `locale`: the engine's fixed templates are said again in the
    console's words; a rule's own summary is its author's text, shown as written."""
    if locale == "en":
        return summary
    if summary in RISK_SUMMARIES:
        return t(RISK_SUMMARIES[summary], locale)
    if (found := _GROUP_FIRED.fullmatch(summary)) is not None:
        return t("alert.risk_group_fired", locale, group=found["group"])
    if (found := _SANCTIONS_BLOCK.fullmatch(summary)) is not None:
        return t("alert.sanctions_block", locale, name=found["name"][1:-1],
                 matched=found["matched"][1:-1], score=found["score"])
    if (found := _THRESHOLD.fullmatch(summary)) is not None:
        unit = UNITS.get(found["unit"] or "")
        value = found["value"] + (t(unit, locale) if unit else "")
        comparison = COMPARISONS[(found["op"], bool(found["negated"]))]
        return t("alert.threshold", locale, title=_metric_title(found["title"], locale),
                 subject=subject_text(found["subject"], locale), value=value,
                 comparison=t(comparison, locale, threshold=found["threshold"]))
    if (found := _NO_DATA.fullmatch(summary)) is not None:
        return t("alert.no_data", locale, title=_metric_title(found["title"], locale),
                 subject=subject_text(found["subject"], locale), note=found["note"])
    if (found := _GONE.fullmatch(summary)) is not None:
        return t("alert.gone", locale, rule=found["rule"],
                 subject=subject_text(found["subject"], locale))
    if (found := _BURN.fullmatch(summary)) is not None:
        return t("alert.burn_above" if found["side"] == "at or above" else "alert.burn_below",
                 locale, **{k: found[k] for k in ("title", "objective", "window", "long",
                                                  "long_window", "short", "short_window",
                                                  "factor")})
    return summary


def _metric_title(title: str, locale: Locale) -> str:
    """A KPI's English title or a figure's name, in `locale`."""
    for template in KPIS.values():
        if template.title_en == title:
            return template.title_zh if locale == "zh-CN" else template.title_en
    key = f"metric.{title}"
    return t(key, locale) if key in STRINGS else title
