"""The approvals desk without a browser (fundpool.console.desk): rows from the API's payments,
oldest first, ages in words, who initiated, and refusals in the user's language."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from fundpool.console.desk import (
    REFUSALS,
    actor_name,
    age_text,
    oldest_first,
    refusal_text,
    waiting_of,
)
from fundpool.console.i18n import STRINGS
from fundpool.monitoring.replay import parse_instant

SECOND_US = 1_000_000


def payment(payment_id: str, updated_at: str, created_at: str = "2026-01-05T09:00:00Z",
            **more: Any) -> SimpleNamespace:
    fields: dict[str, Any] = {
        "id": payment_id, "kind": "payout", "asset": "USD", "amount_minor": "2500000",
        "fee_minor": "45", "channel": "rtp", "counterparty": "acme", "reference": "r-1",
        "updated_at": updated_at, "created_at": created_at, "version": 4}
    return SimpleNamespace(**{**fields, **more})


@pytest.mark.parametrize(("age_s", "en", "zh"), [
    (0, "0 s", "0 秒"),
    (59, "59 s", "59 秒"),
    (60, "1 min", "1 分钟"),
    (3_599, "59 min", "59 分钟"),
    (3_600, "1 h 0 min", "1 小时 0 分钟"),
    (2 * 3_600 + 5 * 60 + 59, "2 h 5 min", "2 小时 5 分钟"),
    (86_400 + 4 * 3_600 + 59 * 60, "1 d 4 h", "1 天 4 小时"),
])
def test_age_in_the_unit_a_person_reads(age_s: int, en: str, zh: str) -> None:
    assert age_text(age_s * SECOND_US) == en
    assert age_text(age_s * SECOND_US + SECOND_US - 1, "zh-CN") == zh  # never rounded up


def test_a_negative_age_is_none() -> None:
    assert age_text(-5 * SECOND_US) == "0 s"


def test_rows_are_listed_the_longest_waiting_first() -> None:
    # The API lists newest first; equal waits fall back to creation, then id.
    api_order = [payment("c", "2026-01-05T10:00:02Z"),
                 payment("b", "2026-01-05T10:00:01Z", created_at="2026-01-05T09:30:00Z"),
                 payment("a", "2026-01-05T10:00:01Z", created_at="2026-01-05T09:00:00Z"),
                 payment("z", "2026-01-05T09:59:59.999999Z")]
    rows = oldest_first(waiting_of(p, parse_instant) for p in api_order)
    assert [w.payment_id for w in rows] == ["z", "a", "b", "c"]
    assert rows[0].waiting_since_us == parse_instant("2026-01-05T09:59:59.999999Z")


def test_a_row_carries_the_payee_route_and_initiator_when_the_api_gives_them() -> None:
    old = waiting_of(payment("p1", "2026-01-05T10:00:00Z"), parse_instant)
    assert (old.amount_minor, old.fee_minor, old.channel) == (2_500_000, 45, "rtp")
    assert (old.destination, old.initiated_by) == (None, None)  # an API without them
    new = waiting_of(payment("p2", "2026-01-05T10:00:00Z", destination="US12 3456",
                             initiated_by={"kind": "user", "id": "7", "name": "carol"}),
                     parse_instant)
    assert (new.destination, new.initiated_by) == ("US12 3456", "carol")


def test_an_actor_is_read_by_name_from_a_model_or_a_mapping() -> None:
    assert actor_name(SimpleNamespace(kind="user", id="7", name="dave")) == "dave"
    assert actor_name({"kind": "engine", "id": "engine", "name": "engine"}) == "engine"
    assert actor_name(None) is None
    assert actor_name({"kind": "user", "id": "7", "name": ""}) is None


def test_refusals_met_at_the_desk_are_said_in_both_languages() -> None:
    assert set(REFUSALS.values()) <= set(STRINGS)
    assert refusal_text("self_approval", {}) == STRINGS["approvals.self_approval"][0]
    assert refusal_text("self_approval", {}, "zh-CN") == STRINGS["approvals.self_approval"][1]
    assert refusal_text("illegal_transition", {"state": "approved", "action": "approve"}) \
        == "This payment is no longer waiting for approval: it is approved now."
    assert refusal_text("illegal_transition", {"state": "settled"}, "zh-CN") \
        == "该支付已不在待审批状态：当前为已结算。"
    assert refusal_text("illegal_transition", {"state": "mystery"}).endswith(
        "it is mystery now.")  # a state the console does not know is shown as it came
    assert refusal_text("forbidden", {"permission": "payments:approve"}, "zh-CN") \
        == "您的角色无权执行此操作（payments:approve）。"


def test_other_refusals_are_left_to_the_page() -> None:
    assert refusal_text("insufficient_funds", {"asset": "USD"}) is None
