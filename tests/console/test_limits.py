"""The limits tab's rows without a browser (fundpool.console.limits): a lowered limit as the
API answers it, read by the client's model, said in both languages: who or what is limited,
the amount at its asset's scale, the group that set it and when, until when."""

from __future__ import annotations

from typing import Any

from fundpool.client.risk import LimitsOut
from fundpool.console.limits import limit_view, newest_first

SCALES = {"USD": 2, "USDT": 6}
AT_US = 1_700_000_000_000_000  # 2023-11-14 22:13:20 UTC
HOUR_US = 3_600_000_000


def _limit(**changes: Any) -> Any:
    limit = {"id": "lim-1", "pool": "main", "payment_id": "pay-0123456789abcdef",
             "group": "large payout", "kind": "limit", "at_us": AT_US, "per": "payee",
             "key": "ring-a", "asset": "USD", "max_minor": "5000", "until_us": AT_US + HOUR_US,
             "severity": None, **changes}
    return LimitsOut.model_validate({"data": [limit]}).data[0]


def test_a_lowered_limit_says_who_how_much_who_set_it_and_until_when() -> None:
    view = limit_view(_limit(), "en", SCALES, AT_US + 15 * 60_000_000)
    assert view.id == "lim-1"
    assert view.who == "payee ring-a"
    assert view.amount == "50.00 USD"
    assert view.group == "large payout"
    assert view.set_at == "2023-11-14 22:13:20.000"
    assert view.until == "2023-11-14 23:13:20.000"
    assert view.ends_in == "ends in 45 min"
    assert view.payment_id == "pay-0123456789abcdef"


def test_a_lowered_limit_in_chinese() -> None:
    view = limit_view(_limit(per="destination", key="GB33BUKB20201555555555", asset="USDT",
                             max_minor="100000000"), "zh-CN", SCALES, AT_US)
    assert view.who == "收款账户 GB33BUKB20201555555555"
    assert view.amount == "100.000000 USDT"
    assert view.ends_in.endswith("后结束")


def test_an_initiators_limit_and_a_limit_already_past_its_end() -> None:
    view = limit_view(_limit(per="initiator", key="user:7"), "en", SCALES,
                      AT_US + 2 * HOUR_US)
    assert view.who == "initiator user:7"
    assert view.ends_in == "ends in 0 s"


def test_the_limits_set_last_come_first() -> None:
    limits = [_limit(id="a", at_us=AT_US), _limit(id="b", at_us=AT_US + 5),
              _limit(id="c", at_us=AT_US)]
    assert [limit.id for limit in newest_first(limits)] == ["b", "a", "c"]
