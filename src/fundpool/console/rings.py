"""Suspected fraud rings as the review queue's rings tab shows them, without any UI.

`GET /v1/risk/rings` answers each ring's payees, what they share (an attribute of their
payouts: the destination account, the beneficiary's name as screening normalises it, the
device or the IP address a caller gave, and how many payees each one links), how many payouts
and how much per asset (minor units, as text). A ring of a mule network can hold hundreds of
payees: a row names the first `PAYEES_SHOWN_MAX` and counts the rest (`+N`); what they share
is bounded the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fundpool.console.format import Locale
from fundpool.console.i18n import t
from fundpool.console.risk import money_text
from fundpool.risk.rings import RING_PAYEES_MIN as RING_PAYEES_MIN
from fundpool.risk.service import RING_WINDOW_MIN

PAYEES_SHOWN_MAX = 8  # a ring's payees named in its row; the others counted
SHARED_SHOWN_MAX = 6  # what a ring's payees share, one line each; the others counted
RING_MINUTES = RING_WINDOW_MIN  # the payouts the search looks at (the alert's window too)
ATTRIBUTE_KEYS = {"destination": "ring_attr.destination", "name": "ring_attr.name",
                  "device": "ring_attr.device", "ip": "ring_attr.ip"}


@dataclass(frozen=True, slots=True)
class RingView:
    """One ring's row: each field as it is shown."""

    id: str
    payees: str
    payee_count: int
    shared: tuple[str, ...]
    payouts: int
    amounts: tuple[str, ...]


def attribute_text(attribute: str, locale: Locale) -> str:
    key = ATTRIBUTE_KEYS.get(attribute)
    return t(key, locale) if key else attribute


def listed_text(names: list[str], shown_max: int, locale: Locale) -> str:
    """The first `shown_max` names, then how many more (`a, b, c +5`)."""
    shown = ", ".join(names[:shown_max])
    rest = len(names) - shown_max
    return t("rings.more", locale, names=shown, count=rest) if rest > 0 else shown


def ring_view(ring: Any, locale: Locale, scales: Mapping[str, int]) -> RingView:
    """A ring (`RingOut`) as its row shows it, amounts at their assets' scales."""
    shared = [t("rings.shared", locale, attribute=attribute_text(s.attribute, locale),
                value=s.value, payees=s.payees) for s in ring.shared[:SHARED_SHOWN_MAX]]
    if len(ring.shared) > SHARED_SHOWN_MAX:
        shared.append(t("rings.shared_more", locale,
                        count=len(ring.shared) - SHARED_SHOWN_MAX))
    return RingView(
        id=ring.id,
        payees=listed_text(list(ring.payees), PAYEES_SHOWN_MAX, locale),
        payee_count=len(ring.payees),
        shared=tuple(shared),
        payouts=int(ring.payouts),
        amounts=tuple(money_text(minor, asset, scales, locale)
                      for asset, minor in sorted(ring.amounts.items())),
    )
