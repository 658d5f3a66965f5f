"""The rings tab's rows without a browser (fundpool.console.rings): a ring as the API answers
it, read by the client's model, said in both languages with its amounts at their assets'
scales and its payees bounded."""

from __future__ import annotations

from typing import Any

from fundpool.client.risk import RingsOut
from fundpool.console.rings import PAYEES_SHOWN_MAX, SHARED_SHOWN_MAX, listed_text, ring_view

SCALES = {"USD": 2, "ETH": 18}


def _ring(**changes: Any) -> Any:
    ring = {"id": "0123456789abcdef", "payees": ["ring-a", "ring-b", "ring-c"],
            "shared": [{"attribute": "destination", "value": "GB33BUKB20201555555555",
                        "payees": 3}],
            "payouts": 3, "amounts": {"USD": "6000"}, **changes}
    return RingsOut.model_validate({"data": [ring], "count": 1}).data[0]


def test_a_ring_says_its_payees_what_they_share_and_how_much() -> None:
    view = ring_view(_ring(), "en", SCALES)
    assert view.id == "0123456789abcdef"
    assert view.payees == "ring-a, ring-b, ring-c"
    assert view.payee_count == 3
    assert view.shared == ("destination GB33BUKB20201555555555 (3 payees)",)
    assert view.payouts == 3
    assert view.amounts == ("60.00 USD",)


def test_a_ring_in_chinese() -> None:
    view = ring_view(_ring(shared=[{"attribute": "ip", "value": "203.0.113.7", "payees": 2}]),
                     "zh-CN", SCALES)
    assert view.shared == ("IP 地址 203.0.113.7（2 个收款方）",)
    assert view.amounts == ("60.00 USD",)


def test_a_large_ring_names_its_first_payees_and_counts_the_rest() -> None:
    payees = [f"mule-out-{n}" for n in range(PAYEES_SHOWN_MAX + 5)]
    view = ring_view(_ring(payees=payees), "en", SCALES)
    assert view.payees == ", ".join(payees[:PAYEES_SHOWN_MAX]) + " +5"
    assert view.payee_count == PAYEES_SHOWN_MAX + 5
    assert listed_text(payees[:PAYEES_SHOWN_MAX], PAYEES_SHOWN_MAX, "en") == \
        ", ".join(payees[:PAYEES_SHOWN_MAX])
    assert listed_text(payees, PAYEES_SHOWN_MAX, "zh-CN").endswith("等，另 5 个")


def test_what_a_ring_shares_is_bounded_too() -> None:
    shared = [{"attribute": "device", "value": f"dev-{n}", "payees": 2}
              for n in range(SHARED_SHOWN_MAX + 2)]
    view = ring_view(_ring(shared=shared), "en", SCALES)
    assert len(view.shared) == SHARED_SHOWN_MAX + 1
    assert view.shared[0] == "device dev-0 (2 payees)"
    assert view.shared[-1] == "+2 more"


def test_amounts_of_several_assets_each_at_its_scale() -> None:
    view = ring_view(_ring(amounts={"USD": "123456", "ETH": "1500000000000000000",
                                    "XYZ": "7"}), "en", SCALES)
    assert view.amounts == ("1.500000 ETH", "1,234.56 USD", "7 XYZ")


def test_an_attribute_this_console_does_not_know_is_shown_as_named() -> None:
    view = ring_view(_ring(shared=[{"attribute": "phone", "value": "+44 20", "payees": 4}]),
                     "en", SCALES)
    assert view.shared == ("phone +44 20 (4 payees)",)
