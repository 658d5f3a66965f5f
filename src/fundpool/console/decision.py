"""A payment's risk decision on screen: the outcome in its colour, the score and the policy
version, each group that fired with its conditions' inputs in words, the screening hits with
why they matched, and the payment's cases with a link to each.

Shown in the payment's detail (the stream, `?payment=…`) and on a case's page, from
`GET /v1/risk/decisions/{payment_id}` (`payments:read`: a cashier sees why a payout was
blocked) or the case's own answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nicegui import ui

from fundpool.auth.roles import P
from fundpool.console.format import time_text
from fundpool.console.risk import (
    CASE_STATE_TONES,
    OUTCOME_COLOURS,
    case_kind_text,
    case_state_text,
    condition_text,
    outcome_text,
)
from fundpool.console.shell import Page, page_link, testid
from fundpool.console.texts import actor_text

CASE_PATH = "/risk/cases/{case_id}"


def case_path(case_id: str) -> str:
    return CASE_PATH.format(case_id=case_id)


def show_decision(page: Page, decision: Any | None) -> None:
    """The decision (a `DecisionOut`), or a line saying the payment has none yet."""
    t = page.t
    if decision is None:
        testid(ui.label(t("riskview.none")).classes("opacity-70"), "risk-none")
        return
    outcome = str(decision.outcome)
    with ui.row().classes("items-center gap-3"):
        testid(ui.badge(outcome_text(outcome, page.locale),
                        color=OUTCOME_COLOURS.get(outcome, "grey"))
               .classes("text-sm"), "risk-outcome").props(f'data-outcome="{outcome}"')
        testid(ui.label(t("riskview.score", score=decision.score)), "risk-score")
        testid(ui.label(t("riskview.policy", version=decision.policy_version)
                        if decision.policy_version is not None else t("riskview.no_policy")),
               "risk-policy")
        ui.label(t("riskview.decided_at", at=time_text(decision.at_us, with_date=True))) \
            .classes("text-sm opacity-70")
    with testid(ui.column().classes("w-full gap-1"), "risk-fired"):
        if not decision.fired:
            ui.label(t("riskview.nothing_fired")).classes("text-sm opacity-70")
        for fired in decision.fired:
            _group(page, fired)
    if decision.hits:
        ui.label(t("riskview.hits")).classes("font-medium pt-1")
        with testid(ui.column().classes("w-full gap-1"), "risk-hits"):
            for hit in decision.hits:
                with testid(ui.column().classes("gap-0"), "risk-hit"):
                    ui.label(t("riskview.hit", name=hit.name, source=hit.source,
                               entry=hit.entry_id, score=hit.score)).classes("text-sm")
                    testid(ui.label(hit.explanation).classes("text-xs opacity-80 fp-wrap"),
                           "risk-hit-explanation")


def _group(page: Page, fired: Any) -> None:
    t = page.t
    scales = page.console.scales()
    with testid(ui.column().classes("w-full gap-0"), "risk-group") \
            .props(f'data-group="{fired.group}"'):
        effect = t("riskview.forces", outcome=outcome_text(fired.outcome, page.locale)) \
            if fired.outcome else t("riskview.adds", score=fired.score or 0)
        ui.label(f"{fired.group} · {effect}").classes("text-sm font-medium")
        for condition in fired.conditions:
            testid(ui.label("· " + condition_text(condition, page.locale, scales))
                   .classes("text-sm pl-3 fp-wrap"), "risk-condition") \
                .props(f'data-kind="{condition.get("kind", "")}"')


def show_cases(page: Page, cases: Sequence[Any]) -> None:
    """The payment's cases, each with its state and a link to its page (for those who may
    read the queue)."""
    t = page.t
    if not cases:
        return
    ui.label(t("riskview.cases")).classes("font-medium pt-1")
    linked = page.signed.may(P.RISK_READ)
    with testid(ui.column().classes("w-full gap-1"), "risk-cases"):
        for case in cases:
            with ui.row().classes("items-center gap-3 text-sm"):
                words = t("riskview.case", kind=case_kind_text(case.kind, page.locale),
                          id=case.id[-12:])
                if linked:
                    testid(page_link(words, case_path(case.id)), "risk-case-link")
                else:
                    ui.label(words)
                ui.label(case_state_text(case.state, page.locale)).classes(
                    f"fp-tone-{CASE_STATE_TONES.get(case.state, 'neutral')}")
                if case.claimed_by is not None:
                    ui.label(t("case.claimed_by", actor=actor_text(case.claimed_by,
                                                                    page.locale) or "?"))
                if case.breached:
                    ui.badge(t("case.breached"), color="negative")
