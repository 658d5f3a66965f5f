"""The approvals desk's rows and words, without any UI: what the approvals page makes of the
API's payments waiting for approval (`GET /v1/payments?state=pending_approval`).

A payment waits from the moment it reached `pending_approval`: its `updated_at`, since every
step changes it and no step is taken while it waits. The desk lists the oldest first (the
API lists newest first), each with how long it has waited in words a person reads at a glance
(`3 min`, `2 h 5 min`, `1 d 4 h`).

Who initiated a payment and who took each step (`initiated_by`, each event's `actor`) are read
by name when the API gives them; a payment or event from before actors were recorded has none,
and the desk shows `—`.

A refusal of the API that an approver meets at the desk (the initiator approving their own
payment, a payment no longer waiting, a role that may not) is said in the user's language;
`refusal_text` returns None for any other, which the page reports as every page does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fundpool.console.format import Locale
from fundpool.console.i18n import t
from fundpool.payments.model import PaymentState

NOBODY = "—"  # no actor recorded (a payment from before actors were kept)
WAITING_READ_MAX = 1_000  # waiting payments the desk reads per refresh (one API page)
WAITING_SHOWN_MAX = 200  # rows listed, the oldest first; the count covers all that were read
# The codes an approver meets at the desk, each with its words (a key of the i18n table).
REFUSALS: Mapping[str, str] = {
    "self_approval": "approvals.self_approval",
    "already_approved_by_you": "approvals.already_yours",
    "illegal_transition": "approvals.not_waiting",
    "forbidden": "approvals.forbidden",
    "unknown_payment": "approvals.unknown",
}
STATES = frozenset(state.value for state in PaymentState)
_MINUTE_S, _HOUR_S, _DAY_S = 60, 3_600, 86_400


@dataclass(frozen=True, slots=True)
class Waiting:
    """A payment waiting for approval, as the desk lists it."""

    payment_id: str
    kind: str
    asset: str
    amount_minor: int
    fee_minor: int
    channel: str | None
    counterparty: str | None
    destination: str | None
    reference: str | None
    initiated_by: str | None  # the initiator's name, None when not recorded
    waiting_since_us: int
    created_at_us: int
    version: int


def actor_name(actor: Any) -> str | None:
    """The name of an actor as the API gives it (a model or a mapping with `name`), or None."""
    if actor is None:
        return None
    name = actor.get("name") if isinstance(actor, Mapping) else getattr(actor, "name", None)
    return str(name) if name else None


def waiting_of(payment: Any, parse_instant: Any) -> Waiting:
    """The API's `PaymentOut` as a row; `parse_instant` reads its ISO instants (µs)."""
    return Waiting(
        payment_id=str(payment.id), kind=str(payment.kind), asset=str(payment.asset),
        amount_minor=int(payment.amount_minor), fee_minor=int(payment.fee_minor),
        channel=payment.channel, counterparty=payment.counterparty,
        # `destination` and `initiated_by` arrive with this API; a server without
        # them still lists its payments.
        destination=getattr(payment, "destination", None), reference=payment.reference,
        initiated_by=actor_name(getattr(payment, "initiated_by", None)),
        waiting_since_us=parse_instant(payment.updated_at),
        created_at_us=parse_instant(payment.created_at), version=int(payment.version))


def oldest_first(rows: Iterable[Waiting]) -> list[Waiting]:
    return sorted(rows, key=lambda w: (w.waiting_since_us, w.created_at_us, w.payment_id))


def age_text(age_us: int, locale: Locale = "en") -> str:
    """How long something has waited, to the unit a person cares about at that length: seconds
    under a minute, minutes under an hour, then hours and minutes, then days and hours. A
    negative age (clocks of two machines) is none."""
    seconds = max(age_us, 0) // 1_000_000
    if seconds < _MINUTE_S:
        return t("approvals.age_seconds", locale, s=seconds)
    if seconds < _HOUR_S:
        return t("approvals.age_minutes", locale, m=seconds // _MINUTE_S)
    if seconds < _DAY_S:
        return t("approvals.age_hours", locale, h=seconds // _HOUR_S,
                 m=seconds % _HOUR_S // _MINUTE_S)
    return t("approvals.age_days", locale, d=seconds // _DAY_S, h=seconds % _DAY_S // _HOUR_S)


def refusal_text(code: str, facts: Mapping[str, object], locale: Locale = "en") -> str | None:
    """A refusal met at the desk in the user's language; None for a code the desk does not
    expect (the page reports it as any page does)."""
    key = REFUSALS.get(code)
    if key is None:
        return None
    if code == "illegal_transition":
        state = str(facts.get("state") or "?")
        return t(key, locale, state=t(f"state.{state}", locale) if state in STATES else state)
    if code == "forbidden":
        return t(key, locale, permission=str(facts.get("permission") or "?"))
    return t(key, locale)
