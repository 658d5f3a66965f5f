"""What the API says, as the console says it (fundpool.console.texts, preview, forms): refusals
in the user's language, the alert engine's fixed texts in 简体中文, alert subjects as links,
the CSV preview's cells, and a form's one Idempotency-Key per submission."""

from __future__ import annotations

import pytest

from fundpool.client.errors import Unreachable, error_from_problem
from fundpool.console.forms import Submission
from fundpool.console.i18n import t
from fundpool.console.preview import cells_by_line, shown_cell
from fundpool.console.texts import (
    PROBLEM_CODES,
    Subject,
    actor_text,
    alert_summary,
    parse_subject,
    problem_text,
    subject_target,
)

# What the API answered for `"amount": "-5"` (server/problems.py, on_invalid_request).
NEGATIVE_AMOUNT_FACTS = {"errors": [{
    "loc": ["body", "amount"], "type": "string_pattern_mismatch",
    "msg": "String should match pattern '^[0-9]{1,39}(\\.[0-9]{1,36})?$'"}]}
ASSETS = ("USD", "E-CNY", "ETH")
CHANNELS = ("bank-a", "rtp", "ecny-rail")


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_a_negative_amount_is_a_sentence_not_the_validators_pattern(locale: str) -> None:
    text = problem_text("invalid_request", "the request is not valid", NEGATIVE_AMOUNT_FACTS,
                        locale)  # type: ignore[arg-type]
    assert text == t("problem.amount_format", locale)  # type: ignore[arg-type]
    assert "pattern" not in text
    assert "[0-9]" not in text
    assert "12.50" in text


def test_every_listed_code_has_its_own_words_in_both_languages() -> None:
    for code in ("insufficient_funds", "self_approval", "illegal_transition",
                 "idempotency_conflict", "amount_outside_limits", "no_eligible_channel",
                 "unknown_payment", "destination_required", "invalid_destination",
                 "adjustment_reason_required", "invalid_amount"):
        assert code in PROBLEM_CODES
        english = problem_text(code, "api title", None, "en")
        chinese = problem_text(code, "api title", None, "zh-CN")
        assert english != chinese
        assert "api title" not in english
        assert "api title" not in chinese


def test_facts_follow_in_words_and_an_unknown_code_keeps_the_apis_title() -> None:
    facts = {"asset": "USD", "available": "10.00", "requested": "900000.00",
             "errors": [{"loc": ["x"]}], "account": "pool:main:usd:bank-a:available"}
    assert problem_text("insufficient_funds", "t", facts, "en") == (
        "Not enough funds: the pool cannot pay this amount. "
        "(asset USD, requested 900000.00, available 10.00)")
    assert problem_text("insufficient_funds", "t", facts, "zh-CN") == (
        "资金不足：资金池无法支付该金额。（币种 USD，申请 900000.00，可用 10.00）")
    assert problem_text("brand_new_code", "the rail is on fire", {}, "zh-CN") == \
        "The rail is on fire."


def test_the_client_error_carries_what_the_console_needs() -> None:
    """The console reads the code, the title and the facts of the client's error."""
    error = error_from_problem({"type": "/problems/invalid_request", "title": "the request "
                                "is not valid", "status": 422, "code": "invalid_request",
                                "facts": NEGATIVE_AMOUNT_FACTS})
    assert problem_text(error.code, error.title, error.facts, "en") == \
        t("problem.amount_format", "en")


def test_an_unknown_field_is_said_as_one_the_server_does_not_take() -> None:
    facts = {"errors": [{"loc": ["body", "destination"], "type": "extra_forbidden",
                         "msg": "Extra inputs are not permitted"}]}
    assert problem_text("invalid_request", "x", facts, "en") == \
        "Destination: this server does not accept this field yet."


@pytest.mark.parametrize(("subject", "parsed", "target"), [
    ("pool", Subject(), ("/", None)),
    ("asset:USD", Subject(asset="USD"), ("/drill", {"asset": "USD"})),
    ("asset:usd", Subject(asset="USD"), ("/drill", {"asset": "USD"})),
    ("asset:e-cny", Subject(asset="E-CNY"), ("/drill", {"asset": "E-CNY"})),
    ("channel:bank-a", Subject(channel="bank-a"), ("/drill", {"channel": "bank-a"})),
    ("asset:USD,channel:bank-a", Subject(asset="USD", channel="bank-a"),
     ("/drill", {"asset": "USD", "channel": "bank-a"})),
    ("payment:p-1", Subject(payment="p-1"), ("/stream", {"payment": "p-1"})),
])
def test_an_alert_subject_opens_the_page_of_what_it_names(
        subject: str, parsed: Subject, target: tuple[str, dict[str, str] | None]) -> None:
    found = parse_subject(subject, assets=ASSETS, channels=CHANNELS)
    assert found == parsed
    assert subject_target(found) == target


@pytest.mark.parametrize("subject", ["asset:XYZ", "channel:nowhere", "asset:USD,asset:ETH",
                                     "asset:", "colour:red", "asset:USD,payment:p",
                                     "USD,CHANNEL:BANK-A"])
def test_a_subject_naming_nothing_known_has_no_link(subject: str) -> None:
    assert parse_subject(subject, assets=ASSETS, channels=CHANNELS) is None


def test_the_engines_fixed_alert_texts_are_said_in_chinese() -> None:
    cases = {
        "depth (asset:USD,channel:bank-a) is 4990932.49, < 250000":
            "深度（可用）（币种 USD · 通道 bank-a）为 4990932.49，低于 250000",
        "Available ratio (asset:USD) is 0.08, not < 0.1":
            "可用余额占比（币种 USD）为 0.08，未低于 0.1",
        "Settlement latency p99 (channel:rtp) is 75.2 s, > 60":
            "结算时延 P99（通道 rtp）为 75.2 秒，高于 60",
        "pending_count (pool) is 90, > 20": "等待中的支付笔数（资金池）为 90，高于 20",
        "Failed payment rate (pool): no data (no payments)":
            "支付失败率（资金池）：暂无数据（no payments）",
    }
    for english, chinese in cases.items():
        assert alert_summary(english, "zh-CN") == chinese
        assert alert_summary(english, "en") == english
    # A rule's own summary is its author's text, shown as written in both languages.
    own = "90 payments are waiting in the pool (over 20)"
    assert alert_summary(own, "zh-CN") == own


def test_actors_in_words() -> None:
    class Actor:
        def __init__(self, kind: str, name: str) -> None:
            self.kind, self.name, self.id = kind, name, name

    assert actor_text(Actor("engine", "engine"), "en") == "engine"
    assert actor_text(Actor("engine", "engine"), "zh-CN") == "引擎"
    assert actor_text(Actor("user", "alice"), "zh-CN") == "alice"
    assert actor_text(Actor("key", "ci-bot"), "en") == "key ci-bot"
    assert actor_text(None, "en") == "unknown"  # a step kept before actors were
    assert actor_text(None, "en", recorded=False) is None  # an API without actors
    # The API's actor documents (the treasury desk's trail) read alike: the desk's own runs
    # are the engine's, in the reader's language.
    desk = {"kind": "engine", "id": "treasury-desk", "name": "treasury desk"}
    assert actor_text(desk, "zh-CN") == "引擎"
    assert actor_text({"kind": "user", "id": "7", "name": "dave"}, "en") == "dave"
    assert actor_text({"kind": "key", "id": "k1", "name": "ci-bot"}, "zh-CN") == "密钥 ci-bot"


def test_the_csv_preview_shows_each_rows_cells_by_its_line() -> None:
    data = ("\ufeffPayee,Address,amount,asset,reference\r\n"
            "Alice,US01,10.00,USD,r-1\r\n"
            "\r\n"
            '"Bob\nBuilder",US02,11.00,USD,r-2\r\n'
            "Carol,US03,12.345,USD,r-3\r\n").encode()
    rows = cells_by_line(data, 100)
    assert sorted(rows) == [2, 4, 6]  # physical lines; a quoted cell's row is its first line
    assert rows[2] == {"payee": "Alice", "account": "US01", "amount": "10.00",
                       "asset": "USD", "reference": "r-1"}
    assert rows[6]["amount"] == "12.345"
    assert shown_cell(rows[4]["payee"]) == "Bob\ufffdBuilder"
    assert shown_cell("\u202eevil") == "\ufffdevil"
    assert shown_cell("x" * 500).endswith("…")
    assert cells_by_line(b"payee\n\xff", 10) == {}


def test_a_form_sends_one_key_per_submission() -> None:
    form = Submission()
    first = form.key
    # A double click: the second click finds the first on its way, or answered with the
    # same values: either way the same key, so the API makes one payment.
    form.busy = True
    form.changed()  # a value typed while the request is on its way …
    assert form.key == first  # … does not change the request already sent
    form.busy = False
    form.answered(None)
    assert form.key != first  # … but the next click is a new submission
    second = form.key
    form.answered(None)
    assert form.key == second  # answered, unchanged: a click again is the same request
    form.changed()
    assert form.key != second
    third = form.key
    form.answered(Unreachable("connection refused"))
    assert form.key == third  # no answer: the retry must be the same request
    refused = error_from_problem({"code": "insufficient_funds", "title": "no"}, status=409)
    form.answered(refused)
    assert form.key != third  # refused: nothing was made, corrected values are new
