"""The risk decision in the payment path: the engine's screening step.

`RiskEngine` implements the payment engine's `Screening` port. In the transaction that takes a
new payment in, before any funds are locked, it applies the active policy to the payment and
turns the outcome into the payment's step:

- allow: `screen` (it goes on to routing);
- review: `hold`, and a case in the review queue (SLA: the policy's `review` time);
- hold: `hold`, and an urgent case (SLA: the policy's `hold` time);
- block: `reject`, with the groups that fired as the reason.

A deposit is money already on its way: review and hold on a deposit open a case and let it go
on; block rejects it before its rail is told to expect it (docs/risk.md).

The decision, the case and the step commit together (`record` in the same transaction), or are
dropped (`discard`). The engine keeps what the rules read in memory (`features.Features`) and
rebuilds it from the store's payments of the look-back at start, after a discarded
transaction, and when a new policy asks for other windows. The policy, the sanctions lists,
the cleared false positives and the party registry are reloaded when their revision in the
store moves, read in the deciding transaction: an activation or rollback applies to the next
payment decided after it commits, in every process.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fundpool.core.actor import ENGINE, Actor
from fundpool.core.clock import Clock, IdSource
from fundpool.core.errors import FundpoolError
from fundpool.ledger.ports import WriteSession
from fundpool.payments.model import (
    Action,
    IllegalTransition,
    Payment,
    PaymentState,
    Step,
    UnknownPayment,
)
from fundpool.payments.service import PaymentService
from fundpool.risk.anomaly import WINDOW_US, AnomalyModel, anomaly_features, import_model
from fundpool.risk.features import Features, Seen
from fundpool.risk.policy import (
    Outcome,
    Policy,
    Response,
    duration_us,
    list_key,
    parse_policy,
)
from fundpool.risk.ports import RiskStore, RiskWrites
from fundpool.risk.records import (
    CaseNote,
    CaseRecord,
    CaseState,
    DecisionRecord,
    PastPayment,
    ResponseRecord,
)
from fundpool.risk.rules import Fired, Hit, Party, Subject, Verdict, decide, key_of
from fundpool.risk.sanctions import load_content
from fundpool.risk.screening import Screener

LOOKBACK_US = 30 * 86_400_000_000  # the payments the features are rebuilt from
REBUILD_EVERY_US = 6 * 3_600_000_000  # and rebuilt from them this often, to forget
SLA_US = {"review": 4 * 3_600_000_000, "hold": 3_600_000_000}
SCREEN_LIMIT = 5  # hits kept per name
CATCH_UP_PAGE = 2_000


@dataclass(frozen=True, slots=True)
class Loaded:
    """A policy as the engine holds it, with what each decision would otherwise derive from
    it again: the threshold names are screened at (None: no sanctions rule), the groups that
    respond, by name, and the SLA of each kind of case."""

    version: int
    policy: Policy
    screen_threshold: int | None
    responding: Mapping[str, tuple[int, Response]]
    sla_us: Mapping[str, int]

    @classmethod
    def of(cls, version: int, policy: Policy) -> Loaded:
        groups = policy.document.groups
        thresholds = [c.sanctions.threshold for g in groups for c in g.when
                      if c.sanctions is not None]
        return cls(version, policy, min(thresholds) if thresholds else None,
                   {g.name: (i, g.respond) for i, g in enumerate(groups)
                    if g.respond is not None},
                   {**SLA_US, **{k: duration_us(v) for k, v in policy.document.sla.items()}})


def subject_of(payment: Payment) -> Subject:
    """The payment as the rules see it, at its creation time (not the decision's): a
    backtest replays payments by when they were created, and sees the windows as the engine
    did."""
    initiator = payment.initiated_by
    return Subject(payment.id, payment.kind.value, payment.asset, payment.amount_minor,
                   payment.created_at_us,
                   payment.channel, payment.counterparty, payment.destination,
                   payment.reference, None if initiator is None else initiator.who,
                   (payment.metadata.get("country") or None))


def seen_of(subject: Subject) -> Seen:
    return Seen(subject.at_us, subject.kind, subject.asset, subject.amount, subject.payee,
                subject.initiator, subject.destination, subject.reference, subject.channel)


class RiskState:
    """Policy, lists, cleared hits and parties, as loaded from the store at their revisions:
    what `decide` needs besides the features. Shared by the engine and the backtest."""

    def __init__(self, store: RiskStore, scales: Mapping[str, int]) -> None:
        self.store = store
        self.scales = dict(scales)
        self.loaded: Loaded | None = None
        self.screener: Screener | None = None
        self.cleared: set[tuple[str, str]] = set()
        self.parties: dict[str, Party] = {}
        self.limits: list[ResponseRecord] = []  # limits lowered by responses, while they last
        self.revisions: dict[str, int] = {}

    def refresh(self, revisions: Mapping[str, int], active: Callable[[], Any],
                now_us: int = 0) -> bool:
        """Reload what moved (limits: those in force at `now_us`); True when the policy
        changed."""
        changed = False
        if revisions.get("policy") != self.revisions.get("policy"):
            stored = active()
            self.loaded = None if stored is None else \
                Loaded.of(stored.version, parse_policy(stored.text, self.scales))
            changed = True
        if revisions.get("lists") != self.revisions.get("lists") or self.screener is None:
            self.cleared = {(c.query, c.entry_id) for c in self.store.cleared()}
            self.screener = self.build_screener()
        elif revisions.get("cleared") != self.revisions.get("cleared"):
            # A cleared false positive changes the allow-list, not the index.
            self.cleared = {(c.query, c.entry_id) for c in self.store.cleared()}
            self.screener = self.screener.with_allowed(self.cleared)
        if revisions.get("parties") != self.revisions.get("parties"):
            self.parties = {list_key(p.name): Party(p.kyc, p.country)
                            for p in self.store.parties()}
        if revisions.get("limits") != self.revisions.get("limits"):
            self.limits = self.store.active_limits(now_us)
        self.revisions = dict(revisions)
        return changed

    def build_screener(self) -> Screener:
        entries = []
        for record in self.store.lists():
            content = self.store.list_content(record.name)
            if content is not None:
                entries += list(load_content(record.name, content, record.format).entries)
        return Screener(entries, allowed=self.cleared)

    def hits(self, loaded: Loaded, name: str | None) -> Sequence[Hit]:
        threshold = loaded.screen_threshold
        if not name or self.screener is None or threshold is None:
            return ()
        hits: Sequence[Hit] = self.screener.screen(name, threshold=threshold,
                                                   limit=SCREEN_LIMIT)
        return hits

    def party(self, name: str | None) -> Party:
        return self.parties.get(list_key(name), Party()) if name else Party()

    def verdict(self, subject: Subject, features: Features, anomaly: float | None = None
                ) -> Verdict:
        """The active policy's verdict (allow, when none is active); `anomaly` is the
        model's score of the payment, when the policy uses it. A limit lowered by a response
        and still in force holds a payout above it."""
        loaded = self.loaded
        if loaded is None:
            return Verdict(Outcome.ALLOW, 0)
        verdict = decide(loaded.policy, subject, features, self.party(subject.payee),
                         self.hits(loaded, subject.payee), anomaly)
        return self._limited(subject, verdict) if self.limits else verdict

    def _limited(self, subject: Subject, verdict: Verdict) -> Verdict:
        for limit in self.limits:
            if limit.until_us is None or subject.at_us >= limit.until_us or \
                    limit.asset != subject.asset or limit.max_minor is None or \
                    subject.kind != "payout" or limit.per is None or \
                    key_of(limit.per, subject) != limit.key or \
                    subject.amount <= limit.max_minor:
                continue
            fired = Fired("temporary limit", None, Outcome.HOLD.value, ({
                "kind": "lowered_limit", "per": limit.per, "key": limit.key,
                "amount": subject.amount, "over": limit.max_minor, "asset": limit.asset,
                "until_us": limit.until_us, "set_by_group": limit.group},))
            outcome = verdict.outcome if verdict.outcome.severity >= Outcome.HOLD.severity \
                else Outcome.HOLD
            return Verdict(outcome, verdict.score, (*verdict.fired, fired), verdict.hits,
                           verdict.anomaly)
        return verdict


class Learner:
    """The features and, when the policy scores anomalies, the model, advanced together one
    decided payment at a time: what the engine, its rebuild and a backtest replay."""

    def __init__(self, policy: Policy | None, scales: Mapping[str, int]) -> None:
        uses_model = policy is not None and policy.scores_anomaly
        spans = frozenset() if policy is None else policy.windows
        self.features = Features(spans | {WINDOW_US} if uses_model else spans)
        self.model = AnomalyModel() if uses_model else None
        self._scales = scales
        self._pending: dict[str, float] | None = None

    def score(self, subject: Subject) -> float | None:
        """The model's score of `subject`, as the features stand before it: payouts only
        (the model's features are a payee's)."""
        if self.model is None or subject.kind != "payout":
            return None
        self._pending = anomaly_features(subject, self.features, self._scales)
        return self.model.score(self._pending)

    def observe(self, subject: Subject, *, learn: bool) -> None:
        """Count `subject` (scored just before, or not) and, a payout, learn from it."""
        if self.model is not None and subject.kind == "payout":
            x = self._pending or anomaly_features(subject, self.features, self._scales)
            self.model.learn(x)
        self._pending = None
        self.features.observe(seen_of(subject), learn=learn)


def past_subject(past: PastPayment) -> Subject:
    return Subject(past.id, past.kind, past.asset, past.amount, past.at_us, past.channel,
                   past.payee, past.destination, past.reference, past.initiator, past.country)


def _exact(value: Any) -> Any:
    """JSON-safe figures: an integer beyond 2**53 (an amount in wei) as decimal text, which
    a JavaScript client reads exactly and every JSON encoder writes."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else str(value)
    if isinstance(value, dict):
        return {k: _exact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_exact(v) for v in value]
    return value


def decision_detail(subject: Subject, verdict: Verdict) -> dict[str, Any]:
    """What a decision keeps beside its outcome: each group that fired with its conditions'
    inputs, the screening hits, the anomaly score, the payment as the rules saw it."""
    fired = [f.to_dict() for f in verdict.fired]
    return {"fired": _exact(fired) if fired else fired, "hits": list(verdict.hits),
            "anomaly": verdict.anomaly,
            "subject": {"kind": subject.kind, "asset": subject.asset,
                        "amount_minor": str(subject.amount), "payee": subject.payee,
                        "destination": subject.destination, "initiator": subject.initiator,
                        "reference": subject.reference, "channel": subject.channel,
                        "country": subject.country}}


@dataclass(slots=True)
class Pending:
    """A transaction's decisions, the cases and notes they open and the responses they
    set, written together by `record`."""

    decisions: list[DecisionRecord] = field(default_factory=list)
    cases: list[CaseRecord] = field(default_factory=list)
    notes: list[CaseNote] = field(default_factory=list)
    responses: list[ResponseRecord] = field(default_factory=list)


class RiskEngine:
    """The screening step of one pool's payment engine (payments.ports.Screening).

    The features replay decisions, in decision order: the engine's own as it makes them, and
    those other processes made (a payout file taken in by another worker), read back from the
    store in `prepare`, under the writer's lock, after the last one it has seen. A payment is
    decided once (when it leaves `initiated`), so each is counted once."""

    def __init__(self, pool: str, store: RiskStore, clock: Clock, ids: IdSource, *,
                 scales: Mapping[str, int], lookback_us: int = LOOKBACK_US) -> None:
        self.pool = pool
        self._store = store
        self._clock = clock
        self._ids = ids
        self._lookback_us = lookback_us
        self.state = RiskState(store, scales)
        self.learner = Learner(None, scales)
        self._stale = True
        self._rebuilt_at_us = 0
        self._cursor: tuple[int, str] = (0, "")  # the last decision the features hold
        self._rejected_cursor: tuple[int, str] = (0, "")  # the last rejected case unlearnt
        self._local: set[str] = set()  # decided here, committed, not yet passed by the cursor
        # What the current transaction decided, per thread: one engine may serve payout files
        # taken in on several request threads, whose transactions the writer's lock
        # serialises (features are only touched inside them).
        self._pending = threading.local()

    @property
    def _now(self) -> Pending:
        """What the current transaction of this thread decided so far."""
        pending: Pending | None = getattr(self._pending, "now", None)
        if pending is None:
            pending = self._pending.now = Pending()
        return pending

    def _clear(self) -> None:
        self._pending.now = Pending()

    def warm(self) -> None:
        """When the active policy scores anomalies, import the model's library (river, some
        1.7 s) on a thread now, not in the first deciding transaction, which holds the
        writer's lock."""
        active = self._store.active_policy()
        try:
            uses_model = active is not None and \
                parse_policy(active.text, self.state.scales).scores_anomaly
        except FundpoolError:
            return  # the first decision says what is wrong with it
        if uses_model:
            threading.Thread(target=import_model, name="risk-model-import",
                             daemon=True).start()

    # --- the port ---

    def prepare(self, session: WriteSession) -> None:
        writes = self._store.writes(session)
        now = self._clock.now_us()
        if self.state.refresh(writes.revisions(), writes.active_policy, now):
            self._stale = True  # other windows, or a model, or none: replayed afresh
        if now - self._rebuilt_at_us >= REBUILD_EVERY_US:
            # What fell out of the look-back is forgotten (payees, means, account links):
            # a decision depends on the look-back, not on how long the process has run.
            self._stale = True
        if self._stale:
            self.rebuild()
        self._catch_up(writes)
        self._unlearn_rejected(writes)

    def screen(self, payment: Payment, at_us: int) -> tuple[Action, str | None]:
        subject = subject_of(payment)
        learner = self.learner
        verdict = self.state.verdict(subject, learner.features, learner.score(subject))
        learner.observe(subject, learn=verdict.outcome is not Outcome.BLOCK)
        loaded = self.state.loaded
        self._now.decisions.append(DecisionRecord(
            payment.id, self.pool, None if loaded is None else loaded.version,
            verdict.outcome.value, verdict.score, decision_detail(subject, verdict), at_us,
            subject.channel))
        self._respond(payment, subject, verdict, at_us)
        outcome = verdict.outcome
        if outcome in (Outcome.REVIEW, Outcome.HOLD):
            self._open_case(payment, outcome, verdict, at_us)
        if outcome is Outcome.BLOCK:
            return Action.REJECT, verdict.reason
        if outcome is Outcome.ALLOW or payment.kind.inbound:
            return Action.SCREEN, None if outcome is Outcome.ALLOW else verdict.reason
        return Action.HOLD, verdict.reason

    def record(self, session: WriteSession) -> None:
        now = self._now
        if not now.decisions:
            return
        writes = self._store.writes(session)
        writes.add_decisions(now.decisions)
        if now.cases:
            writes.add_cases(now.cases, now.notes)
        if now.responses:
            writes.add_responses(now.responses)
            limits = [r for r in now.responses if r.kind == "limit"]
            if limits:
                writes.bump("limits")
                # In force for this engine once they are written; the revision it moved is
                # read in the next transaction (and by the other processes).
                self.state.limits.extend(limits)
        self._local.update(d.payment_id for d in now.decisions)
        self._clear()

    def decided(self, payment_id: str) -> tuple[str, int, int | None] | None:
        # The approval gate asks for the few payments it routes right after screening: the
        # last decisions of this transaction are searched from the end.
        for decision in reversed(self._now.decisions):
            if decision.payment_id == payment_id:
                return decision.outcome, decision.score, decision.policy_version
        return None

    def undecided(self, session: WriteSession, payment_ids: Sequence[str]) -> set[str]:
        return set(payment_ids) - self._store.writes(session).decided(payment_ids)

    def discard(self) -> None:
        self._clear()
        self._stale = True  # it observed payments that did not commit

    # --- the rest ---

    def _respond(self, payment: Payment, subject: Subject, verdict: Verdict,
                 at_us: int) -> None:
        """The fired groups' automatic responses: graded alerts, limits lowered a while."""
        loaded = self.state.loaded
        if loaded is None or not loaded.responding:
            return
        for fired in verdict.fired:
            index, respond = loaded.responding.get(fired.group, (-1, None))
            if respond is None:
                continue
            if respond.alert is not None:
                self._now.responses.append(ResponseRecord(
                    self._ids.new_id(at_us), self.pool, payment.id, fired.group, "alert",
                    at_us, severity=respond.alert))
            limit = respond.lower_limit
            key = None if limit is None else key_of(limit.per, subject)
            if limit is not None and key is not None:
                until = at_us + duration_us(limit.for_)
                for asset, max_minor in loaded.policy.amounts[(index, -1, "lower_limit")].items():
                    if any(r.group == fired.group and r.per == limit.per and r.key == key
                           and r.asset == asset and (r.until_us or 0) > at_us
                           for r in (*self.state.limits, *self._now.responses)):
                        continue  # one limit per group, subject and asset while it lasts
                    self._now.responses.append(ResponseRecord(
                        self._ids.new_id(at_us), self.pool, payment.id, fired.group, "limit",
                        at_us, per=limit.per, key=key, asset=asset, max_minor=max_minor,
                        until_us=until))

    def _open_case(self, payment: Payment, outcome: Outcome, verdict: Verdict,
                   at_us: int) -> None:
        loaded = self.state.loaded
        sla = (SLA_US if loaded is None else loaded.sla_us)[outcome.value]
        case = CaseRecord(self._ids.new_id(at_us), self.pool, payment.id, outcome.value,
                          CaseState.OPEN, verdict.reason, at_us, at_us + sla)
        self._now.cases.append(case)
        self._now.notes.append(CaseNote(case.id, 1, at_us, ENGINE, "opened", verdict.reason))

    @property
    def features(self) -> Features:
        return self.learner.features

    def _observe(self, learner: Learner, past: PastPayment) -> None:
        # Not a blocked payout, nor one a risk officer rejected (fraud does not teach).
        learner.observe(past_subject(past), learn=past.outcome != Outcome.BLOCK.value
                        and past.state != PaymentState.REJECTED.value)
        self._cursor = max(self._cursor, (past.decided_at_us, past.id))

    def _catch_up(self, writes: RiskWrites) -> None:
        """What other processes decided since the last decision seen (ours are skipped)."""
        while True:
            page = writes.decided_after(self.pool, self._cursor, CATCH_UP_PAGE)
            for past in page:
                if past.id in self._local:
                    self._local.discard(past.id)
                    self._cursor = max(self._cursor, (past.decided_at_us, past.id))
                    continue
                self._observe(self.learner, past)
            if len(page) < CATCH_UP_PAGE:
                return

    def _unlearn_rejected(self, writes: RiskWrites) -> None:
        """Payouts a risk officer rejected since the last look: their payees' profiles take
        them back (confirmed fraud teaches nothing; a rebuild leaves them out anyway)."""
        while True:
            page = writes.rejected_after(self.pool, self._rejected_cursor, CATCH_UP_PAGE)
            for at_us, case_id, payee, asset, amount in page:
                self.learner.features.unlearn(payee, asset, amount)
                self._rejected_cursor = (at_us, case_id)
            if len(page) < CATCH_UP_PAGE:
                return

    def rebuild(self) -> None:
        """The features (and the model) from the store's decisions of the look-back."""
        loaded = self.state.loaded
        learner = Learner(None if loaded is None else loaded.policy, self.state.scales)
        self._cursor = (0, "")
        now = self._clock.now_us()
        self._rebuilt_at_us = now
        # The rebuild leaves out what was rejected until now; later rejections are unlearnt.
        self._rejected_cursor = (now, "\uffff")
        # At least the look-back, and as far as the policy's longest window reaches.
        lookback = max(self._lookback_us, 0 if loaded is None else
                       loaded.policy.longest_window_us)
        self._local.clear()
        for past in self._store.decided_since(self.pool, now - lookback):
            self._observe(learner, past)
        self.learner = learner
        self._stale = False


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def screen_now(engine: RiskEngine, payments: PaymentService, payment_id: str,
               actor: Actor | None) -> Payment:
    """Screen one `initiated` payment at once, as the engine would (the CLI's `payment act
    <id> screen` on a local store): the risk decision, its step in the engine's name, the
    decision and its case, in one transaction. `actor` asked for it."""
    with payments.session(actor) as session:
        try:
            engine.prepare(session.write_session)
            current = session.payments([payment_id]).get(payment_id)
            if current is None:
                raise UnknownPayment(payment_id=payment_id)
            if current.state is not PaymentState.INITIATED:
                raise IllegalTransition(
                    f"only an initiated payment is screened; this one is "
                    f"{current.state.value}", state=current.state.value, action="screen")
            action, reason = engine.screen(current, session.at_us)
            (done,) = session.act([Step(payment_id, action, reason=reason, actor=ENGINE)])
            if isinstance(done, FundpoolError):
                raise done
            engine.record(session.write_session)
        except BaseException:
            engine.discard()
            raise
    return done
