"""Lowered limits as the review queue's limits tab shows them, without any UI.

A policy group may `respond` by lowering a limit for a while (docs/risk.md): payouts of one
payee, initiator or destination above an amount are held until the limit ends.
`GET /v1/risk/limits` lists those in force; a row says who or what is limited, above which
amount (at the asset's scale), which group set it and when, and until when.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fundpool.console.desk import age_text
from fundpool.console.format import Locale, time_text
from fundpool.console.i18n import t
from fundpool.console.risk import money_text, per_text


@dataclass(frozen=True, slots=True)
class LimitView:
    """One lowered limit's row: each field as it is shown."""

    id: str
    who: str
    amount: str
    group: str
    set_at: str
    until: str
    ends_in: str
    payment_id: str


def newest_first(limits: Iterable[Any]) -> list[Any]:
    """The limits set last first: what the engine has just done is what an officer looks
    for."""
    return sorted(limits, key=lambda limit: (-limit.at_us, limit.id))


def limit_view(limit: Any, locale: Locale, scales: Mapping[str, int], now_us: int
               ) -> LimitView:
    """A lowered limit (`LimitOut`) as its row shows it."""
    return LimitView(
        id=limit.id,
        who=t("limits.who", locale, per=per_text(limit.per, locale), key=limit.key),
        amount=money_text(limit.max_minor, limit.asset, scales, locale),
        group=limit.group,
        set_at=time_text(limit.at_us, with_date=True),
        until=time_text(limit.until_us, with_date=True),
        ends_in=t("limits.ends_in", locale, age=age_text(limit.until_us - now_us, locale)),
        payment_id=limit.payment_id,
    )
