"""A policy applied to one payment: each condition with the inputs it read, each group that
fired, the score and the outcome.

`decide` is a pure function of the policy, the payment (`Subject`), what the features held
before it, its party's record and its screening hits: the same inputs give the same decision,
which is what makes a backtest mean something and a rollback restore the old decisions.
Every condition that held is kept with the figures it compared, so a decision says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from fundpool.risk.features import Features
from fundpool.risk.policy import (
    AbnormalAmount,
    AmountRule,
    Anomaly,
    Condition,
    DailyTotal,
    DestinationChanged,
    Duplicate,
    Jurisdiction,
    Kyc,
    Listed,
    NewPayee,
    Outcome,
    PaymentMatch,
    Policy,
    Ring,
    RoundAmount,
    Sanctions,
    Velocity,
    duration_us,
    list_key,
)


@dataclass(frozen=True, slots=True)
class Subject:
    """The payment as the rules see it."""

    payment_id: str
    kind: str
    asset: str
    amount: int
    at_us: int
    channel: str | None = None  # the rail the caller named, if any
    payee: str | None = None  # the counterparty
    destination: str | None = None
    reference: str | None = None
    initiator: str | None = None  # the creator's `who`
    country: str | None = None  # the payment's `country` metadata


@dataclass(frozen=True, slots=True)
class Party:
    """What the registry knows of a counterparty."""

    kyc: str = "none"
    country: str | None = None


class Hit(Protocol):
    """A screening hit (fundpool.risk.screening.Hit)."""

    @property
    def entry_id(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def matched_name(self) -> str: ...
    @property
    def score(self) -> int: ...
    @property
    def explanation(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Fired:
    """A group whose conditions all held, with what each read."""

    group: str
    score: int | None
    outcome: str | None
    conditions: tuple[Mapping[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "score": self.score, "outcome": self.outcome,
                "conditions": [dict(c) for c in self.conditions]}


@dataclass(frozen=True, slots=True)
class Verdict:
    """A policy's answer for one payment."""

    outcome: Outcome
    score: int
    fired: tuple[Fired, ...] = ()
    hits: tuple[Mapping[str, Any], ...] = field(default=())
    anomaly: float | None = None  # the model's score, when the policy uses it

    @property
    def reason(self) -> str:
        """One line for the payment's timeline: the outcome and the groups that fired."""
        names = ", ".join(f.group for f in self.fired)
        return f"risk {self.outcome.value}" + (f": {names}" if names else "")[:480]


def decide(policy: Policy, subject: Subject, features: Features, party: Party,
           hits: Sequence[Hit], anomaly: float | None = None) -> Verdict:
    """Apply `policy` to `subject`; `anomaly` is the model's score of it (None: no score)."""
    fired: list[Fired] = []
    for g, group in enumerate(policy.document.groups):
        inputs: list[Mapping[str, Any]] = []
        for c, condition in enumerate(group.when):
            found = _holds(policy, g, c, condition, subject, features, party, hits, anomaly)
            if found is None:
                break
            inputs.append({"kind": condition.kind, **found})
        else:
            fired.append(Fired(group.name, group.score,
                               None if group.outcome is None else group.outcome.value,
                               tuple(inputs)))
    score = sum(f.score or 0 for f in fired)
    thresholds = policy.document.thresholds
    by_score = (Outcome.BLOCK if score >= thresholds.block else
                Outcome.HOLD if score >= thresholds.hold else
                Outcome.REVIEW if score >= thresholds.review else Outcome.ALLOW)
    forced = {Outcome(f.outcome) for f in fired if f.outcome is not None}
    if Outcome.BLOCK in forced:
        outcome = Outcome.BLOCK
    elif Outcome.ALLOW in forced:
        outcome = Outcome.ALLOW
    else:
        outcome = max((by_score, *forced), key=lambda o: o.severity)
    return Verdict(outcome, score, tuple(fired), tuple(hit_doc(h) for h in hits), anomaly)


def hit_doc(hit: Hit) -> dict[str, Any]:
    """A screening hit as a decision keeps it and the API shows it."""
    return {"entry_id": hit.entry_id, "source": hit.source, "name": hit.matched_name,
            "score": hit.score, "explanation": hit.explanation}


def _holds(policy: Policy, g: int, c: int, condition: Condition, s: Subject,
           features: Features, party: Party, hits: Sequence[Hit], anomaly: float | None
           ) -> dict[str, Any] | None:
    """The inputs of a condition that holds for `s`, or None when it does not."""
    spec = condition.spec
    amounts = policy.amounts
    if isinstance(spec, PaymentMatch):
        if (spec.kinds and s.kind not in spec.kinds) or \
                (spec.assets and s.asset not in spec.assets) or \
                (spec.channels and s.channel not in spec.channels):
            return None
        return {"payment_kind": s.kind, "asset": s.asset, "channel": s.channel}
    if isinstance(spec, AmountRule):
        over = amounts.get((g, c, "over"), {}).get(s.asset)
        under = amounts.get((g, c, "under"), {}).get(s.asset)
        if over is None and under is None:
            return None
        if (over is not None and s.amount <= over) or (under is not None and s.amount >= under):
            return None
        return {"amount": s.amount, "asset": s.asset, "over": over, "under": under}
    if isinstance(spec, RoundAmount):
        multiple = amounts[(g, c, "multiple")].get(s.asset)
        if multiple is None or s.amount % multiple:
            return None
        return {"amount": s.amount, "asset": s.asset, "multiple": multiple}
    if isinstance(spec, DailyTotal):
        limit = amounts[(g, c, "over")].get(s.asset)
        key = key_of(spec.per, s)
        if limit is None or key is None:
            return None
        total = features.day_total(spec.per, key, s.asset, s.at_us) + s.amount
        if total <= limit:
            return None
        return {"per": spec.per, "key": key, "day_total": total, "over": limit,
                "asset": s.asset}
    if isinstance(spec, Velocity):
        key = key_of(spec.per, s)
        if key is None:
            return None
        span = duration_us(spec.window)
        count, sums = features.window(spec.per, key, span, s.at_us)
        count += 1
        total = sums.get(s.asset, 0) + s.amount
        limit = amounts.get((g, c, "amount_over"), {}).get(s.asset)
        by_count = spec.count_over is not None and count > spec.count_over
        by_amount = limit is not None and total > limit
        if not (by_count or by_amount):
            return None
        return {"per": spec.per, "key": key, "window": spec.window, "count": count,
                "count_over": spec.count_over, "total": total, "amount_over": limit,
                "asset": s.asset}
    if isinstance(spec, Duplicate):
        last = features.last_duplicate(s.payee, s.asset, s.amount, s.reference)
        span = duration_us(spec.window)
        if last is None or s.at_us - last >= span:
            return None
        return {"payee": s.payee, "amount": s.amount, "asset": s.asset,
                "reference": s.reference, "seen_us_ago": s.at_us - last,
                "window": spec.window}
    if isinstance(spec, NewPayee):
        if s.payee is None or features.known_payee(s.payee):
            return None
        return {"payee": s.payee}
    if isinstance(spec, DestinationChanged):
        profile = features.profile(s.payee, s.asset)
        if profile is None or s.destination is None:
            return None
        if s.destination != profile.destination:
            return {"payee": s.payee, "destination": s.destination,
                    "previous": profile.destination}
        if profile.changed_at_us is not None and \
                s.at_us - profile.changed_at_us < duration_us(spec.within):
            return {"payee": s.payee, "destination": s.destination,
                    "changed_us_ago": s.at_us - profile.changed_at_us, "within": spec.within}
        return None
    if isinstance(spec, AbnormalAmount):
        profile = features.profile(s.payee, s.asset)
        if profile is None or profile.count < spec.min_history:
            return None
        mean = profile.mean
        if s.amount <= mean * spec.times:
            return None
        return {"payee": s.payee, "amount": s.amount, "mean": mean, "history": profile.count,
                "times": spec.times, "asset": s.asset}
    if isinstance(spec, Listed):
        value = {"payee": s.payee, "destination": s.destination,
                 "country": party.country or s.country, "initiator": s.initiator}[spec.field]
        listed = value is not None and list_key(value) in policy.lists[spec.list]
        if listed == spec.absent:
            return None
        return {"field": spec.field, "value": value, "list": spec.list,
                "on_list": listed}
    if isinstance(spec, Kyc):
        if party.kyc not in spec.states:
            return None
        return {"payee": s.payee, "kyc": party.kyc}
    if isinstance(spec, Jurisdiction):
        country = (party.country or s.country or "").upper() or None
        if country is None or country not in {x.upper() for x in spec.countries}:
            return None
        return {"payee": s.payee, "country": country}
    if isinstance(spec, Sanctions):
        above = [h for h in hits if h.score >= spec.threshold]
        if not above:
            return None
        best = above[0]
        return {"name": s.payee, "threshold": spec.threshold, "entry_id": best.entry_id,
                "source": best.source, "matched": best.matched_name, "score": best.score,
                "explanation": best.explanation}
    if isinstance(spec, Ring):
        size = features.ring_size(s.payee, s.destination)
        if size < spec.min_payees:
            return None
        return {"payee": s.payee, "destination": s.destination, "payees_linked": size,
                "min_payees": spec.min_payees}
    if isinstance(spec, Anomaly):
        if anomaly is None or anomaly <= spec.score_over:
            return None
        return {"score": anomaly, "score_over": spec.score_over}
    raise AssertionError(f"unhandled condition kind {condition.kind}")  # pragma: no cover


def key_of(per: str, s: Subject) -> str | None:
    """The payment's payee, initiator, destination or channel (the rail its caller named):
    what a per-something rule, response or limit counts by."""
    return {"payee": s.payee, "initiator": s.initiator, "destination": s.destination,
            "channel": s.channel}[per]
