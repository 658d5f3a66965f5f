"""The treasury desk as the console shows it (fundpool.console.treasury): words for every
state and outcome the desk gives (in both languages), a quote's countdown, the forms' checks
and the bodies they send, a plan's summary, the stress chart's series (exact sums), and every
refusal of the desk's routes in the user's language."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from decimal import Decimal
from typing import Any, get_args

import pytest

import fundpool.desk
import fundpool.treasury
from fundpool.console.i18n import STRINGS, t
from fundpool.console.texts import PROBLEM_CODES, problem_text
from fundpool.console.treasury import (
    BAND_STATUS_COLOURS,
    BAND_STATUS_KEYS,
    OBLIGATION_STATE_KEYS,
    PLAN_STATE_COLOURS,
    PLAN_STATE_KEYS,
    QUOTE_STATE_COLOURS,
    QUOTE_STATE_KEYS,
    SWEEP_OUTCOME_KEYS,
    ObligationRow,
    ScenarioForm,
    StressSeries,
    TierRow,
    amount_ok,
    band_status_text,
    chart_asset,
    countdown_templates,
    countdown_text,
    expired,
    fees_text,
    is_proposer,
    latency_text,
    listed_state,
    nonzero,
    plan_summary,
    same_amount,
    scenario_body,
    seconds_left,
    share_text,
    state_text,
    stress_assets,
    stress_chart,
    stress_series,
    waterfall_rows,
)
from fundpool.core.errors import FundpoolError
from fundpool.desk import fx, liquidity, netting
from fundpool.server.problems import STATUS_BY_CODE
from fundpool.treasury.bands import BandStatus

# What `POST /v1/stress` answered (abridged): two hours, USD on two channels and EUR on one.
STRESS_REPORT: dict[str, Any] = {
    "scenario": "run", "hours_simulated": 2, "survival_horizon_h": 2,
    "first_dry": {"channel": "rtp", "asset": "USD", "hour": 2},
    "value_at_risk": {"asset": "USD", "total": "10.00"},
    "hours": [
        {"hour": 1, "balances": {"bank-a/USD": "0.10", "rtp/USD": "0.20", "sepa/EUR": "5.00"},
         "shortfall": {"EUR": "0.00", "USD": "0.00"}, "credit_drawn": {"USD": "1.00"}},
        {"hour": 2, "balances": {"bank-a/USD": "1000000000000.01", "rtp/USD": "0.00",
                                 "sepa/EUR": "4.00"},
         "shortfall": {"USD": "133333.33"}, "credit_drawn": {}},
    ]}


# --- words ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("keys", "states"), [
    (QUOTE_STATE_KEYS, (fx.OPEN, fx.ACCEPTED, fx.EXECUTED, fx.EXPIRED, fx.REFUSED)),
    (PLAN_STATE_KEYS, (liquidity.PROPOSED, liquidity.EXECUTING, liquidity.EXECUTED,
                       liquidity.REJECTED, liquidity.OUTDATED, liquidity.NOTHING_TO_MOVE)),
    (BAND_STATUS_KEYS, get_args(BandStatus)),
    (OBLIGATION_STATE_KEYS, (netting.QUEUED, netting.SETTLED)),
    (SWEEP_OUTCOME_KEYS, ("swept", "nothing_to_move", "sweep_pending", "stale_balances")),
])
def test_every_state_of_the_desk_has_words_in_both_languages(
        keys: dict[str, str], states: tuple[str, ...]) -> None:
    assert set(states) == set(keys)
    for state in states:
        english, chinese = STRINGS[keys[state]]
        assert english != chinese, state
        assert state_text(keys, state, "zh-CN") == chinese
    assert state_text(keys, "brand_new", "en") == "brand_new"  # as the API wrote it
    assert state_text(keys, None, "en") == "—"


def test_states_have_colours_and_a_position_without_a_band_says_so() -> None:
    assert set(QUOTE_STATE_COLOURS) == set(QUOTE_STATE_KEYS)
    assert set(PLAN_STATE_COLOURS) == set(PLAN_STATE_KEYS)
    assert set(BAND_STATUS_COLOURS) == set(BAND_STATUS_KEYS)
    assert band_status_text(None, "en") == "no band"
    assert band_status_text("below_min", "zh-CN") == "低于下限"


# --- the countdown --------------------------------------------------------------------------


@pytest.mark.parametrize(("expires_in_ms", "elapsed_ms", "left"), [
    (8_000, 0, 8), (7_999, 0, 8), (7_001, 0, 8), (7_000, 0, 7), (200, 0, 1), (1, 0, 1),
    (0, 0, 0), (8_000, 7_001, 1), (8_000, 7_999, 1), (8_000, 8_000, 0), (8_000, 9_500, 0)])
def test_a_quotes_seconds_left_are_rounded_up_and_never_below_zero(
        expires_in_ms: int, elapsed_ms: int, left: int) -> None:
    assert seconds_left(expires_in_ms, elapsed_ms) == left
    assert expired(expires_in_ms, elapsed_ms) is (left == 0)


def test_the_countdown_says_the_seconds_then_that_the_quote_expired() -> None:
    assert countdown_text(8, "en") == "8 s left to accept"
    assert countdown_text(1, "zh-CN") == "剩余 1 秒可接受"
    assert countdown_text(0, "en") == "Expired: get a new quote."
    assert countdown_text(-3, "zh-CN") == "已过期：请重新获取报价。"
    running, over = countdown_templates("en")
    assert running == "{s} s left to accept"  # the browser puts the seconds in the slot
    assert over == countdown_text(0, "en")


def test_an_open_quote_without_time_left_is_listed_as_expired() -> None:
    assert listed_state({"state": "open", "expires_in_ms": 0}) == "expired"
    assert listed_state({"state": "open", "expires_in_ms": 1}) == "open"
    assert listed_state({"state": "executed", "expires_in_ms": 0}) == "executed"


# --- forms ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "ok"), [
    ("1000.00", True), ("0.5", True), (" 12 ", True), ("1" * 40, True), ("", False),
    ("-5", False), ("1,000.00", False), ("1e3", False), ("12.", False), (".5", False),
    (None, False), ("1.0000000000000000001", False)])
def test_an_amount_is_digits_with_at_most_one_point(text: str | None, ok: bool) -> None:
    assert amount_ok(text) is ok


def test_amounts_are_compared_exactly() -> None:
    assert same_amount("1000.00", "1000")
    assert same_amount("0.30", "0.3")
    assert not same_amount("0.1", "0.10000000000000001")
    assert not same_amount("x", "x")
    assert not same_amount(None, "0")


@pytest.mark.parametrize(("percent", "share"), [
    ("30", "0.3"), ("-20", "-0.2"), ("100", "1"), ("0.5", "0.005"), ("12.5", "0.125"),
    ("0", "0"), (" 7 ", "0.07"), ("abc", None), ("NaN", None), ("Infinity", None)])
def test_a_percent_is_the_share_the_scenario_takes_exactly(percent: str,
                                                           share: str | None) -> None:
    assert share_text(percent) == share


def test_a_scenario_from_the_form() -> None:
    form = ScenarioForm(name=" bank run ", hours="24", withdrawal_percent="30",
                        withdrawal_hours="12")
    assert scenario_body(form) == ({
        "name": "bank run", "hours": 24, "withdrawal_share": "0.3", "withdrawal_hours": 12,
        "outages": [], "fx_shock": {}}, None)
    full = ScenarioForm(name="", hours="48", withdrawal_percent="12.5",
                        withdrawal_hours="24", outage_channel="rtp", outage_from="2",
                        outage_to="10", shock_asset="EUR", shock_percent="-20")
    body, fault = scenario_body(full)
    assert fault is None
    assert body == {"name": "console", "hours": 48, "withdrawal_share": "0.125",
                    "withdrawal_hours": 24,
                    "outages": [{"channel": "rtp", "from_hour": 2, "to_hour": 10}],
                    "fx_shock": {"EUR": "-0.2"}}


@pytest.mark.parametrize(("changes", "fault"), [
    ({"hours": ""}, "treasury.stress_fill"), ({"hours": "2.5"}, "treasury.stress_fill"),
    ({"withdrawal_percent": "lots"}, "treasury.stress_fill"),
    ({"withdrawal_hours": "-1"}, "treasury.stress_fill"),
    ({"outage_channel": "rtp", "outage_from": "x", "outage_to": "3"},
     "treasury.stress_outage_hours"),
    ({"shock_asset": "EUR", "shock_percent": ""}, "treasury.stress_shock_percent")])
def test_a_scenario_the_form_cannot_send_names_what_to_correct(changes: dict[str, str],
                                                               fault: str) -> None:
    values = {"name": "x", "hours": "24", "withdrawal_percent": "30",
              "withdrawal_hours": "12", **changes}
    assert scenario_body(ScenarioForm(**values)) == (None, fault)
    assert fault in STRINGS


def test_the_waterfalls_rows_leave_out_blank_ones_and_name_an_incomplete_one() -> None:
    tiers = [TierRow("senior"), TierRow(" junior ", "senior"), TierRow("", "")]
    obligations = [ObligationRow("a", "bank", "senior", "600.00"), ObligationRow(),
                   ObligationRow("b", "fund", "junior", "700")]
    assert waterfall_rows(tiers, obligations) == (
        [{"name": "senior"}, {"name": "junior", "after": "senior"}],
        [{"id": "a", "creditor": "bank", "tier": "senior", "amount": "600.00"},
         {"id": "b", "creditor": "fund", "tier": "junior", "amount": "700"}], [])
    _, _, faults = waterfall_rows([TierRow("", "senior")],
                                  [ObligationRow("a", "", "senior", "1"),
                                   ObligationRow("b", "x", "senior", "1,000")])
    assert faults == ["tier:1", "obligation:1", "obligation:2"]


# --- plans ----------------------------------------------------------------------------------


def test_the_proposer_is_the_user_who_made_the_plan() -> None:
    plan = {"proposed_by": {"kind": "user", "id": "u-1", "name": "alice"}}
    assert is_proposer(plan, "alice")
    assert not is_proposer(plan, "bob")
    assert not is_proposer({"proposed_by": {"kind": "key", "name": "alice"}}, "alice")
    assert not is_proposer({}, "alice")


def test_a_plans_summary_leaves_out_what_its_transfers_and_unresolved_say() -> None:
    plan = {"transfers": [{"why": "book USD is low; 10.00 from rtp"}],
            "unresolved": [{"why": "tron USDT stays low"}],
            "explanation": ["book USD is low; 10.00 from rtp", "tron USDT stays low",
                            "USD: 1 transfer moving 10.00, 0.45 in fees"]}
    assert plan_summary(plan) == ["USD: 1 transfer moving 10.00, 0.45 in fees"]
    assert plan_summary({}) == []
    assert fees_text({"USD": "0.45", "EUR": "1.00"}) == "1.00 EUR · 0.45 USD"
    assert fees_text({}) == "—"


def test_a_latency_and_the_nonzero_amounts() -> None:
    assert latency_text(15, "en") == "15.0 s"
    assert latency_text(21_600, "en") == "6 h 0 min"
    assert latency_text(21_600, "zh-CN") == "6 小时 0 分"
    assert nonzero({"USD": "0.00", "EUR": "12.50", "ETH": "0.000000000000000000"}) == {
        "EUR": "12.50"}
    assert nonzero(None) == {}


# --- the stress chart -----------------------------------------------------------------------


def test_the_stress_charts_series_sum_each_assets_channels_exactly() -> None:
    assert stress_assets(STRESS_REPORT) == ["USD", "EUR"]
    usd = stress_series(STRESS_REPORT, "USD")
    assert usd == StressSeries("USD", [1, 2], ["0.30", "1000000000000.01"],
                               ["0.00", "133333.33"], ["1.00", "0"])
    # 0.1 + 0.2 is 0.3 here: the sums are Decimal, never float.
    assert Decimal(usd.balance[0]) == Decimal("0.3")
    eur = stress_series(STRESS_REPORT, "EUR")
    assert (eur.balance, eur.shortfall) == (["5.00", "4.00"], ["0.00", "0"])
    assert stress_series({}, "USD") == StressSeries("USD", [], [], [], [])


def test_the_chart_opens_on_the_asset_that_ran_dry() -> None:
    assert chart_asset(STRESS_REPORT, "EUR") == "USD"
    assert chart_asset({**STRESS_REPORT, "first_dry": None}, "EUR") == "USD"  # the VaR's
    calm = {**STRESS_REPORT, "first_dry": None, "value_at_risk": None}
    assert chart_asset(calm, "EUR") == "EUR"
    assert chart_asset(calm, "GBP") == "USD"
    assert chart_asset({}, "USD") is None


def test_the_stress_charts_options_name_their_series_in_the_users_language() -> None:
    options = stress_chart(stress_series(STRESS_REPORT, "USD"), "zh-CN")
    assert options["xAxis"]["data"] == ["第1时", "第2时"]
    names = [s["name"] for s in options["series"]]
    assert names == ["USD 余额（全部通道）", "USD 未能支付", "USD 已提授信"]
    balance, shortfall, credit = (s["data"] for s in options["series"])
    assert balance == [0.3, 1000000000000.01]  # for drawing only
    assert shortfall == [0.0, 133333.33]
    assert credit == [1.0, 0.0]
    assert stress_chart(stress_series(STRESS_REPORT, "USD"), "en")["xAxis"]["data"] == [
        "h1", "h2"]


# --- refusals -------------------------------------------------------------------------------


def _desk_codes() -> set[str]:
    """The codes of the desk's errors the API answers with (server/problems.py)."""
    found = set()
    for package in (fundpool.treasury, fundpool.desk):
        for module_info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{module_info.name}")
            for value in vars(module).values():
                if inspect.isclass(value) and issubclass(value, FundpoolError) \
                        and value.__module__ == module.__name__ \
                        and value.code in STATUS_BY_CODE:
                    found.add(value.code)
    return found


def test_every_refusal_of_the_desk_is_said_in_both_languages() -> None:
    codes = _desk_codes()
    assert {"fx_quote_expired", "plan_self_approval", "cyclic_tiers"} <= codes
    for code in sorted(codes):
        assert code in PROBLEM_CODES, code
        english = problem_text(code, "api title", None, "en")
        chinese = problem_text(code, "api title", None, "zh-CN")
        assert english != chinese, code
        assert "api title" not in english.lower(), code


@pytest.mark.parametrize(("code", "facts", "english", "chinese"), [
    ("fx_quote_expired", {"quote_id": "q-1", "expires_at_us": 1, "now_us": 2},
     "The quote has expired: nothing was converted. Get a new quote.",
     "报价已过期：未进行任何兑换。请重新获取报价。"),
    ("plan_self_approval", {"plan": "p-1", "proposer": "user:u-1"},
     "You proposed this plan: another person must approve it. (plan p-1, proposed by "
     "user:u-1)", "该计划由您提出，须由他人批准。（计划 p-1，提出人 user:u-1）"),
    ("unknown_tier", {"field": "obligations[0].tier", "tier": "mezz"},
     "An obligation or a tier names a tier that is not listed. (field obligations[0].tier, "
     "tier mezz)", "某债务或层级引用了未列出的层级。（字段 obligations[0].tier，层级 mezz）"),
])
def test_a_refusal_says_its_facts(code: str, facts: dict[str, object], english: str,
                                  chinese: str) -> None:
    assert problem_text(code, "t", facts, "en") == english
    assert problem_text(code, "t", facts, "zh-CN") == chinese


@pytest.mark.parametrize("field", ["sell_amount", "buy_amount", "available", "amount"])
def test_an_amount_field_the_schema_refuses_is_said_as_an_amounts_shape(field: str) -> None:
    facts = {"errors": [{"loc": ["body", field], "type": "string_pattern_mismatch",
                         "msg": "String should match pattern '^[0-9]{1,40}'"}]}
    assert problem_text("invalid_request", "x", facts, "en") == t("problem.amount_format", "en")
