"""Risk control as the console says it, without a browser (fundpool.console.risk and the risk
parts of texts and feed): the alert bar's risk subjects as links into the review queue, risk
summaries and reasons in 简体中文, each condition kind's inputs in a sentence, the queue's
filter and order, the stream's risk grade, a diff's colours and a refused policy's line."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from fundpool.console.feed import row_of
from fundpool.console.i18n import t
from fundpool.console.risk import (
    OPEN_STATES,
    QueueFilter,
    condition_text,
    diff_kind,
    error_line,
    queue_order,
    queue_view,
    risk_grade,
    summary_text,
)
from fundpool.console.texts import (
    PROBLEM_CODES,
    Subject,
    alert_summary,
    parse_subject,
    problem_text,
    reason_text,
    subject_target,
    subject_text,
)
from fundpool.events.model import Event, PaymentTransitioned

SCALES = {"USD": 2, "ETH": 18}
RISK_CODES = ("invalid_policy", "unknown_policy", "policy_not_draft", "self_activation",
              "nothing_to_roll_back", "unknown_case", "case_closed", "case_changed",
              "claimed_by_other", "self_review", "invalid_risk_input",
              "invalid_sanctions_file", "risk_blocked", "unknown_limit")


# --- alert subjects and texts ---------------------------------------------------------------


@pytest.mark.parametrize(("subject", "target"), [
    ("risk:review", ("/risk", None)),
    ("risk:hold", ("/risk", {"kind": "hold"})),
    ("risk:breached", ("/risk", {"breached": "1"})),
    ("risk:rings", ("/risk", {"view": "rings"})),
    (" RISK:Hold ", ("/risk", {"kind": "hold"})),
    ("Risk:Rings", ("/risk", {"view": "rings"})),
])
def test_a_risk_subject_opens_the_review_queue_filtered_to_what_it_is_about(
        subject: str, target: tuple[str, dict[str, str] | None]) -> None:
    parsed = parse_subject(subject)
    assert parsed is not None
    assert parsed.risk is not None
    assert subject_target(parsed) == target


def test_a_blocked_payment_still_opens_the_payment_and_an_unknown_risk_subject_nothing() -> None:
    parsed = parse_subject("payment:01a2-x")
    assert parsed == Subject(payment="01a2-x")
    assert subject_target(parsed) == ("/stream", {"payment": "01a2-x"})
    assert parse_subject("risk:elsewhere") is None
    assert parse_subject("risk:") is None
    assert parse_subject("risk:review,asset:USD") is None


def test_the_queue_reads_what_the_alert_links_say() -> None:
    for subject in ("risk:review", "risk:hold", "risk:breached", "risk:rings"):
        parsed = parse_subject(subject)
        assert parsed is not None
        _, query = subject_target(parsed)
        shown = QueueFilter.from_query(query or {})
        assert shown.states == OPEN_STATES
        assert shown.kind == ("hold" if subject == "risk:hold" else None)
        assert shown.breached is (subject == "risk:breached")
        assert queue_view(query or {}) == ("rings" if subject == "risk:rings" else "cases")


def test_the_queue_page_opens_on_the_tab_its_url_names() -> None:
    assert queue_view({}) == "cases"
    assert queue_view({"view": "rings"}) == "rings"
    assert queue_view({"view": " Limits "}) == "limits"
    assert queue_view({"view": "elsewhere", "kind": "hold"}) == "cases"


def test_risk_subjects_and_summaries_in_both_languages() -> None:
    assert subject_text("risk:hold", "en") == "payments on hold"
    assert subject_text("risk:breached", "zh-CN") == "超过处理时限的案件"
    assert subject_text("risk:rings", "en") == "suspected fraud rings"
    assert subject_text("risk:rings", "zh-CN") == "疑似欺诈团伙"
    for summary, key in (("payments wait for risk review", "alert.risk_review"),
                         ("payments on hold for a risk officer", "alert.risk_hold"),
                         ("risk cases are past their SLA", "alert.risk_breached"),
                         ("payees share accounts: suspected fraud rings",
                          "alert.risk_rings")):
        assert alert_summary(summary, "en") == summary
        assert alert_summary(summary, "zh-CN") == t(key, "zh-CN")
    assert alert_summary("risk group fired: burst to one payee", "zh-CN") == \
        "风控规则组已触发：burst to one payee"
    assert alert_summary("risk group fired: burst to one payee", "en") == \
        "risk group fired: burst to one payee"
    blocked = ("payout to 'Viktor Sanctionov' blocked: sanctions hit on 'Viktor Sanctionov' "
               "(100)")
    assert alert_summary(blocked, "en") == blocked
    assert alert_summary(blocked, "zh-CN") == (
        "向 Viktor Sanctionov 的出金已拦截：命中制裁名单 Viktor Sanctionov（100）")
    quoted = "payout to \"O'Brien Ltd\" blocked: sanctions hit on 'OBRIEN LIMITED' (91)"
    assert "O'Brien Ltd" in alert_summary(quoted, "zh-CN")


@pytest.mark.parametrize("code", RISK_CODES)
def test_every_risk_refusal_has_its_own_words_in_both_languages(code: str) -> None:
    assert code in PROBLEM_CODES
    english = problem_text(code, "api title", None, "en")
    chinese = problem_text(code, "api title", None, "zh-CN")
    assert english != chinese
    assert "api title" not in english + chinese


def test_a_refused_policy_says_its_line() -> None:
    text = problem_text("invalid_policy", "t", {"line": 7, "field": "groups.1.when"}, "en")
    assert text == ("The risk policy is not valid; the active policy stays. "
                    "(line 7, field groups.1.when)")
    assert "行 7" in problem_text("invalid_policy", "t", {"line": 7}, "zh-CN")


def test_risk_reasons_on_a_timeline() -> None:
    assert reason_text("risk block: sanctioned payee", "en") == \
        "Risk control: block (sanctioned payee)"
    assert reason_text("risk review: burst to one payee", "zh-CN") == \
        "风控：人工审核（burst to one payee）"
    assert reason_text("risk case: checked with the payee", "en") == \
        "Risk case: checked with the payee"
    assert reason_text("risk_blocked", "zh-CN") == "已被风控拦截。"
    assert reason_text("customer asked", "zh-CN") == "customer asked"


# --- conditions in words --------------------------------------------------------------------


def test_a_velocity_burst_in_words() -> None:
    burst = {"kind": "velocity", "per": "payee", "key": "payee-burst-3", "window": "10m",
             "count": 5, "count_over": 3, "total": 60000, "amount_over": None, "asset": "USD"}
    assert condition_text(burst, "en", SCALES) == \
        "5 payments for payee payee-burst-3 within 10m, more than 3"
    assert condition_text(burst, "zh-CN", SCALES) == \
        "10m 内 收款方 payee-burst-3 共 5 笔，超过 3 笔"
    by_amount = {**burst, "count": 2, "amount_over": 50000}
    assert condition_text(by_amount, "en", SCALES) == \
        "600.00 USD for payee payee-burst-3 within 10m, more than 500.00 USD"


def test_a_sanctions_hit_in_words() -> None:
    hit = {"kind": "sanctions", "name": "Viktor Sanctionov", "threshold": 85,
           "entry_id": "synth-viktor-sanctionov", "source": "synthetic",
           "matched": "Viktor Sanctionov", "score": 100, "explanation": "…"}
    assert condition_text(hit, "en", SCALES) == ("Viktor Sanctionov matches Viktor Sanctionov "
                                                 "on the list synthetic: score 100 "
                                                 "(threshold 85)")


@pytest.mark.parametrize(("condition", "english"), [
    ({"kind": "payment", "payment_kind": "payout", "asset": "USD", "channel": None},
     "a payout in USD"),
    ({"kind": "payment", "payment_kind": "payout", "asset": "USD", "channel": "rtp"},
     "a payout in USD on rail rtp"),
    ({"kind": "amount", "amount": 990000, "asset": "USD", "over": 950000, "under": 1000000},
     "amount 9,900.00 USD: above 9,500.00 USD, below 10,000.00 USD"),
    ({"kind": "round_amount", "amount": 500000, "asset": "USD", "multiple": 100000},
     "amount 5,000.00 USD is a whole multiple of 1,000.00 USD"),
    ({"kind": "daily_total", "per": "initiator", "key": "user:7", "day_total": 2500000,
      "over": 2000000, "asset": "USD"},
     "today's total for initiator user:7: 25,000.00 USD, above 20,000.00 USD"),
    ({"kind": "duplicate", "payee": "acme", "amount": 1250, "asset": "USD", "reference": "r1",
      "seen_us_ago": 90_000_000, "window": "10m"},
     "the same payee (acme), amount (12.50 USD) and reference were seen 1 min 30 s ago, "
     "within 10m"),
    ({"kind": "new_payee", "payee": "acme"}, "first payout to acme"),
    ({"kind": "destination_changed", "payee": "acme", "destination": "B", "previous": "A"},
     "acme is paid to another destination: A → B"),
    ({"kind": "abnormal_amount", "payee": "acme", "amount": 500000, "mean": 2000,
      "history": 4, "times": 10, "asset": "USD"},
     "amount 5,000.00 USD is more than 10× acme's mean of 20.00 USD (4 payouts)"),
    ({"kind": "listed", "field": "payee", "value": "Blocked Trading LLC",
      "list": "blocked_payees", "on_list": True},
     "payee Blocked Trading LLC is on the list blocked_payees"),
    ({"kind": "kyc", "payee": "acme", "kyc": "pending"}, "KYC/KYB state of acme: pending"),
    ({"kind": "jurisdiction", "payee": "acme", "country": "KP"}, "country of acme: KP"),
    ({"kind": "lowered_limit", "per": "payee", "key": "acme", "amount": 12000, "over": 5000,
      "asset": "USD", "until_us": 1_700_000_000_000_000, "set_by_group": "large payout"},
     "120.00 USD for payee acme, above 50.00 USD: a limit the group large payout lowered "
     "until 2023-11-14 22:13:20.000 UTC"),
    ({"kind": "teleport", "distance": 3, "unit": None}, "teleport: distance=3"),
])
def test_each_condition_kind_in_words(condition: dict[str, object], english: str) -> None:
    assert condition_text(condition, "en", SCALES) == english
    assert condition_text(condition, "zh-CN", SCALES)  # said, in the other language too


def test_an_amount_of_an_asset_with_many_decimals_is_shown_as_the_console_shows_amounts() -> None:
    condition = {"kind": "amount", "amount": 1_500_000_000_000_000_000, "asset": "ETH",
                 "over": 10**18, "under": None}
    assert condition_text(condition, "en", SCALES) == "amount 1.500000 ETH: above 1.000000 ETH"


# --- the queue ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Case:
    id: str
    kind: str
    breached: bool
    due_at_us: int
    opened_at_us: int


def test_the_queue_lists_the_cases_past_their_sla_first_then_by_due_time() -> None:
    cases = [_Case("a", "review", False, 300, 1), _Case("b", "hold", True, 200, 2),
             _Case("c", "review", False, 100, 3), _Case("d", "review", True, 250, 0)]
    assert [c.id for c in queue_order(cases)] == ["b", "d", "c", "a"]
    assert [c.id for c in cases if QueueFilter(kind="hold").keeps(c)] == ["b"]
    assert [c.id for c in cases if QueueFilter(breached=True).keeps(c)] == ["b", "d"]


def test_the_queue_filter_reads_its_url_and_ignores_what_does_not_read() -> None:
    read = QueueFilter.from_query({"state": "released,nonsense,open", "kind": "hold",
                                   "breached": "1"})
    assert read == QueueFilter(("open", "released"), "hold", True)
    assert read.query() == {"state": "open,released", "kind": "hold", "breached": "1"}
    assert QueueFilter.from_query({"state": "nonsense", "kind": "x"}) == QueueFilter()
    assert QueueFilter().query() == {"state": None, "kind": None, "breached": None}


# --- the stream's grade ---------------------------------------------------------------------


@pytest.mark.parametrize(("state", "reason", "grade"), [
    ("held", "risk review: burst to one payee", "review"),
    ("held", "risk hold: structuring", "hold"),
    ("rejected", "risk block: sanctioned payee", "block"),
    ("held", None, "held"),
    ("held", "manual hold", "held"),
    ("rejected", "payee not on the vendor list", None),
    ("screened", "risk case: checked with the payee", None),
    ("settled", None, None),
])
def test_a_stream_rows_risk_grade_comes_from_its_step(state: str, reason: str | None,
                                                     grade: str | None) -> None:
    assert risk_grade(state, reason) == grade


def test_a_blocked_payments_event_makes_a_row_graded_block() -> None:
    data = PaymentTransitioned(
        payment_id="p1", kind="payout", asset="USD", amount_minor=12_000, fee_minor=0,
        channel=None, destination_channel=None, action="reject", from_state="initiated",
        to_state="rejected", payment_version=2, since_us=1, created_at_us=1,
        reason="risk block: sanctioned payee", counterparty="Viktor Sanctionov")
    row = row_of(Event("e1", PaymentTransitioned.TYPE, "main", 10, data, seq=7))
    assert row is not None
    assert row.risk == "block"


# --- the policy editor ----------------------------------------------------------------------


def test_a_diffs_lines_are_coloured_by_what_they_are() -> None:
    lines = ["--- active", "+++ draft", "@@ -1,2 +1,2 @@", "-thresholds: {review: 30}",
             "+thresholds: {review: 35}", " groups:"]
    assert [diff_kind(line) for line in lines] == ["header", "header", "hunk", "remove", "add",
                                                   "same"]


def test_a_refusals_line_is_marked_only_when_it_is_a_line_of_the_text() -> None:
    assert error_line({"line": 7}, 9) == 7
    assert error_line({"line": "3"}, 9) == 3
    assert error_line({"line": 12}, 9) is None
    assert error_line({"line": True}, 9) is None
    assert error_line({}, 9) is None


def test_a_checked_policys_summary() -> None:
    summary = {"groups": 2, "conditions": {"sanctions": 1, "velocity": 1}, "lists": {},
               "thresholds": {"review": 30, "hold": 60, "block": 90}}
    assert summary_text(summary, "en") == ("2 groups; conditions: sanctions × 1, velocity × 1; "
                                           "lists: —; thresholds: review 30, hold 60, block 90")
