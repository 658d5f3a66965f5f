"""Risk control as its users work it: policies (draft, validate, diff, backtest, activate, roll
back), the review queue (claim, comment, release, reject, escalate), sanctions lists (load,
screen, clear a false positive) and the party registry (KYC/KYB state, country).

Every change is one ledger transaction with its actor, and bumps the revision the payment
engine reads before each decision (`risk.engine`), so it applies to the next payment decided
after it commits. A case's decision moves its payment through the payment service in the same
transaction (release: back to `screened`, and the engine routes it; reject: `rejected`), so a
held payment moves money only after a risk officer released it.

Separation of duties: nobody activates a policy version they wrote (maker-checker), and
nobody decides the case of a payment they initiated.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fundpool.core.actor import ENGINE, Actor
from fundpool.core.clock import Clock, IdSource
from fundpool.core.errors import FundpoolError
from fundpool.payments.model import Action, IllegalTransition, Payment, PaymentState, Step
from fundpool.payments.service import PaymentService
from fundpool.risk.engine import Learner, Loaded, RiskState, digest, past_subject
from fundpool.risk.policy import Outcome, parse_policy, policy_diff, summary
from fundpool.risk.ports import RiskStore, RiskWrites
from fundpool.risk.records import (
    CaseNote,
    CaseRecord,
    CaseState,
    Cleared,
    ListRecord,
    PartyRecord,
    PolicyState,
    PolicyVersion,
    ResponseRecord,
    RiskSignal,
)
from fundpool.risk.rings import RING_PAYEES_MIN, FraudRing, find_rings
from fundpool.risk.rules import hit_doc
from fundpool.risk.sanctions import load_content
from fundpool.risk.screening import Screener, normalised

NOTE_MAX = 2_000
RING_WINDOW_MIN = 30  # the payouts the ring search looks at, by default
RING_WINDOW_MAX_MIN = 24 * 60
RING_PAYOUTS_MAX = 100_000
RING_SIGNAL_EVERY_US = 60_000_000  # the alert bar's ring search runs once a minute
KYC_STATES = ("none", "pending", "rejected", "expired", "verified")
BACKTEST_DAYS_MAX = 90
DAY_US = 86_400_000_000


class UnknownPolicy(FundpoolError):
    code = "unknown_policy"
    title = "no such policy version"


class PolicyNotDraft(FundpoolError):
    code = "policy_not_draft"
    title = "only a draft is activated; an earlier version comes back by a rollback"


class SelfActivation(FundpoolError):
    code = "self_activation"
    title = "the author of a policy version may not activate it (maker-checker)"


class NothingToRollBack(FundpoolError):
    code = "nothing_to_roll_back"
    title = "there is no earlier active policy version to roll back to"


class UnknownCase(FundpoolError):
    code = "unknown_case"
    title = "no such case"


class CaseClosed(FundpoolError):
    code = "case_closed"
    title = "the case is already decided"


class CaseChanged(FundpoolError):
    code = "case_changed"
    title = "someone else changed the case at the same time; reload it and try again"


class SelfReview(FundpoolError):
    code = "self_review"
    title = "the initiator of a payment may not decide its risk case"


class InvalidRiskInput(FundpoolError):
    code = "invalid_risk_input"
    title = "the request is not valid"


class RiskCaseOpen(FundpoolError):
    code = "risk_case_open"
    title = "the payment waits for its risk case: a risk officer releases it from the case"


class UnknownLimit(FundpoolError):
    code = "unknown_limit"
    title = "no such lowered limit in force"


class ClaimedByOther(FundpoolError):
    code = "claimed_by_other"
    title = "another risk officer has claimed this case"


@dataclass(frozen=True, slots=True)
class ListLoad:
    """A list loaded, how many known counterparties were screened against it, and the hits
    its previous version did not give (each recorded, and alerted)."""

    record: ListRecord
    rescreened: int
    new_hits: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"list": self.record.to_dict(), "rescreened": self.rescreened,
                "new_hits": self.new_hits}


@dataclass(frozen=True, slots=True)
class Backtest:
    """A draft against the active policy over the same payments, replayed in order."""

    days: int
    payments: int
    active_version: int | None
    outcomes_active: Mapping[str, int]
    outcomes_draft: Mapping[str, int]
    changed: list[dict[str, Any]]
    confusion: Mapping[str, Mapping[str, int]]  # policy -> {tp, fp, fn, tn}
    labelled: int

    def to_dict(self) -> dict[str, Any]:
        return {"days": self.days, "payments": self.payments,
                "active_version": self.active_version,
                "outcomes": {"active": dict(self.outcomes_active),
                             "draft": dict(self.outcomes_draft)},
                "changed_count": len(self.changed), "changed": self.changed[:200],
                "confusion": {k: dict(v) for k, v in self.confusion.items()},
                "labelled": self.labelled}


def _note(text: str | None, *, required: bool) -> str | None:
    if text is None or not text.strip():
        if required:
            raise InvalidRiskInput("a note saying why is required", field="note")
        return None
    text = text.strip()
    if len(text) > NOTE_MAX:
        raise InvalidRiskInput(f"a note is at most {NOTE_MAX} characters", field="note")
    _plain(text, "note")
    return text


def _plain(text: str, field: str) -> None:
    """No NUL or other control character but newline and tab (PostgreSQL refuses NUL)."""
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in text):
        raise InvalidRiskInput("control characters are not allowed", field=field)


class RiskService:
    """Risk control for one database of pools. `payments(pool)` is that pool's payment
    service (a case's decision moves its payment)."""

    def __init__(self, store: RiskStore, payments: Callable[[str], PaymentService],
                 clock: Clock, scales: Mapping[str, int], *, default_pool: str,
                 ids: IdSource) -> None:
        self.store = store
        self._payments = payments
        self._clock = clock
        self._ids = ids
        self._state: RiskState | None = None  # the lists and parties, for `screen`
        self._scales = dict(scales)
        self._pool = default_pool

    @contextmanager
    def _writing(self, actor: Actor, pool: str | None = None
                 ) -> Iterator[tuple[RiskWrites, Any]]:
        self.store.ensure()
        with self._payments(pool or self._pool).session(actor) as session:
            yield self.store.writes(session.write_session), session

    # --- policies ---

    def validate(self, text: str) -> dict[str, Any]:
        """The checked policy's summary and its diff against the active one; raises
        `InvalidPolicy` with the line at fault."""
        policy = parse_policy(text, self._scales)
        active = self.store.active_policy()
        return {"valid": True, "summary": summary(policy),
                "diff": policy_diff(None if active is None else active.text, text),
                "active_version": None if active is None else active.version}

    def draft(self, text: str, actor: Actor, note: str | None = None) -> PolicyVersion:
        """Save a checked policy as the next version, a draft (nothing changes yet)."""
        parse_policy(text, self._scales)
        note = _note(note, required=False)
        with self._writing(actor) as (writes, session):
            version = PolicyVersion(writes.next_policy_version(), text, digest(text),
                                    PolicyState.DRAFT, session.at_us, actor, note)
            writes.add_policy(version)
        return version

    def activate(self, version: int, actor: Actor) -> PolicyVersion:
        """Make a draft the active policy; the one active before is retired."""
        with self._writing(actor) as (writes, session):
            found = writes.policy(version)
            if found is None:
                raise UnknownPolicy(version=version)
            if found.state is not PolicyState.DRAFT:
                raise PolicyNotDraft(version=version, state=found.state.value)
            if found.created_by.who == actor.who:  # maker-checker, for every role
                raise SelfActivation(version=version, author=found.created_by.name)
            parse_policy(found.text, self._scales)  # the pool's assets may have changed
            self._switch(writes, found, session.at_us, actor)
        return self._policy(version)

    def rollback(self, actor: Actor) -> PolicyVersion:
        """Activate again the version that was active before the current one."""
        with self._writing(actor) as (writes, session):
            active = writes.active_policy()
            earlier = [p for p in self.store.policies() if p.state is PolicyState.RETIRED
                       and (active is None or p.version != active.version)
                       and p.activated_at_us is not None]
            if active is not None:
                earlier = [p for p in earlier
                           if (p.activated_at_us or 0) <= (active.activated_at_us or 0)]
            if not earlier:
                raise NothingToRollBack()
            target = max(earlier, key=lambda p: (p.activated_at_us or 0, p.version))
            parse_policy(target.text, self._scales)
            if active is not None:
                # The rolled-back version goes back to draft: it may be fixed and activated.
                writes.set_policy_state(active.version, PolicyState.DRAFT.value, None, None)
            writes.set_policy_state(target.version, PolicyState.ACTIVE.value, session.at_us,
                                    actor)
            writes.bump("policy")
        return self._policy(target.version)

    def _switch(self, writes: RiskWrites, found: PolicyVersion, at_us: int,
                actor: Actor) -> None:
        active = writes.active_policy()
        if active is not None:
            writes.set_policy_state(active.version, PolicyState.RETIRED.value, None, None)
        writes.set_policy_state(found.version, PolicyState.ACTIVE.value, at_us, actor)
        writes.bump("policy")

    def _policy(self, version: int) -> PolicyVersion:
        found = self.store.policy(version)
        if found is None:
            raise UnknownPolicy(version=version)
        return found

    def policy(self, version: int) -> PolicyVersion:
        return self._policy(version)

    def policies(self) -> list[PolicyVersion]:
        return self.store.policies()

    def diff(self, version: int, against: int | None = None) -> list[str]:
        """`version` against `against` (default: the active one)."""
        new = self._policy(version)
        old = self.store.active_policy() if against is None else self._policy(against)
        return policy_diff(None if old is None else old.text, new.text)

    def backtest(self, text: str, days: int, pool: str | None = None) -> Backtest:
        """Replay the last `days` of the pool's payments through the active policy and
        through `text`, each with fresh features, in the order they were created; report
        which decisions would change and each policy's confusion matrix against the known
        outcomes: a payment is fraud when a risk officer rejected its case or it was
        returned, and good when it settled without either."""
        if not 1 <= days <= BACKTEST_DAYS_MAX:
            raise InvalidRiskInput(f"days is 1 to {BACKTEST_DAYS_MAX}", field="days")
        pool = pool or self._pool
        draft = parse_policy(text, self._scales)
        state = RiskState(self.store, self._scales)
        state.refresh(self.store.revisions(), self.store.active_policy)
        state.limits = []  # the live limits came from live decisions, not from this replay
        active = state.loaded
        draft_state = RiskState(self.store, self._scales)
        draft_state.screener, draft_state.parties = state.screener, state.parties
        draft_state.loaded = Loaded.of(0, draft)
        active_learner = Learner(None if active is None else active.policy, self._scales)
        draft_learner = Learner(draft, self._scales)
        rejected_cases = {c.payment_id for c in self.store.cases(
            pool=pool, states=[CaseState.REJECTED.value], limit=1_000)}
        since = self._clock.now_us() - days * DAY_US
        outcomes_active: Counter[str] = Counter()
        outcomes_draft: Counter[str] = Counter()
        confusion = {"active": Counter[str](), "draft": Counter[str]()}
        changed: list[dict[str, Any]] = []
        count = labelled = 0
        for past in self.store.past_payments(pool, since):
            subject = past_subject(past)
            a = state.verdict(subject, active_learner.features, active_learner.score(subject))
            d = draft_state.verdict(subject, draft_learner.features,
                                    draft_learner.score(subject))
            active_learner.observe(subject, learn=a.outcome is not Outcome.BLOCK
                                   and past.id not in rejected_cases)
            draft_learner.observe(subject, learn=d.outcome is not Outcome.BLOCK
                                  and past.id not in rejected_cases)
            count += 1
            outcomes_active[a.outcome.value] += 1
            outcomes_draft[d.outcome.value] += 1
            if a.outcome is not d.outcome:
                changed.append({"payment_id": past.id, "active": a.outcome.value,
                                "draft": d.outcome.value, "payee": past.payee,
                                "amount_minor": str(past.amount), "asset": past.asset,
                                "draft_groups": [f.group for f in d.fired]})
            fraud = past.id in rejected_cases or past.state == PaymentState.RETURNED.value
            good = not fraud and past.state == PaymentState.SETTLED.value
            if not (fraud or good):
                continue
            labelled += 1
            for name, verdict in (("active", a), ("draft", d)):
                flagged = verdict.outcome is not Outcome.ALLOW
                confusion[name][("tp" if fraud else "fp") if flagged else
                                ("fn" if fraud else "tn")] += 1
        return Backtest(days, count, None if active is None else active.version,
                        outcomes_active, outcomes_draft, changed,
                        {k: {m: v.get(m, 0) for m in ("tp", "fp", "fn", "tn")}
                         for k, v in confusion.items()}, labelled)

    # --- the review queue ---

    def cases(self, *, states: list[str] | None = None, pool: str | None = None,
              limit: int = 100) -> list[CaseRecord]:
        return self.store.cases(pool=pool, states=states or (), limit=limit)

    def case(self, case_id: str) -> CaseRecord:
        found = self.store.case(case_id)
        if found is None:
            raise UnknownCase(case_id=case_id)
        return found

    def claim(self, case_id: str, actor: Actor) -> CaseRecord:
        return self._change(case_id, actor, "claimed", None)

    def comment(self, case_id: str, actor: Actor, note: str | None) -> CaseRecord:
        return self._change(case_id, actor, "commented", _note(note, required=True))

    def escalate(self, case_id: str, actor: Actor, note: str | None) -> CaseRecord:
        return self._change(case_id, actor, "escalated", _note(note, required=True))

    def release(self, case_id: str, actor: Actor, note: str | None) -> CaseRecord:
        return self._change(case_id, actor, "released", _note(note, required=True))

    def reject(self, case_id: str, actor: Actor, note: str | None) -> CaseRecord:
        return self._change(case_id, actor, "rejected", _note(note, required=True))

    def _change(self, case_id: str, actor: Actor, action: str, note: str | None
                ) -> CaseRecord:
        found = self.case(case_id)
        with self._writing(actor, found.pool) as (writes, session):
            case = writes.case(case_id)
            if case is None:
                raise UnknownCase(case_id=case_id)
            if case.state.closed:
                raise CaseClosed(case_id=case_id, state=case.state.value)
            at_us = session.at_us
            # A claimed case is its claimer's to decide or escalate; an escalated one is
            # open to any risk officer (that is what escalating asks for).
            if case.state is CaseState.CLAIMED and case.claimed_by is not None \
                    and case.claimed_by.who != actor.who \
                    and action in ("claimed", "released", "rejected", "escalated"):
                raise ClaimedByOther(case_id=case_id, claimed_by=case.claimed_by.name)
            changed = case
            if action == "claimed":
                changed = _replace(case, state=CaseState.CLAIMED, claimed_by=actor,
                                   claimed_at_us=at_us)
            elif action == "escalated":
                changed = _replace(case, state=CaseState.ESCALATED)
            elif action in ("released", "rejected"):
                payment = session.payments([case.payment_id]).get(case.payment_id)
                initiator = None if payment is None else payment.initiated_by
                if initiator is not None and initiator.who == actor.who:
                    raise SelfReview(case_id=case_id, payment_id=case.payment_id)
                changed = self._decide(session, case, payment, action, actor, note, at_us)
            if changed is not case and not writes.update_case(changed, case.version):
                raise CaseChanged(case_id=case_id)
            writes.add_note(CaseNote(case_id, writes.next_note_seq(case_id), at_us, actor,
                                     action, note))
        return self.case(case_id)

    def _decide(self, session: Any, case: CaseRecord, payment: Any, action: str,
                actor: Actor, note: str | None, at_us: int) -> CaseRecord:
        step_action = None
        if payment is not None:
            if action == "released" and payment.state is PaymentState.HELD:
                step_action = Action.RELEASE
            elif action == "rejected" and not payment.state.terminal and \
                    payment.state is not PaymentState.SETTLED:
                step_action = Action.REJECT
        if step_action is not None:
            (done,) = session.act([Step(case.payment_id, step_action,
                                        reason=f"risk case: {note}"[:480], actor=actor)])
            if isinstance(done, FundpoolError):
                raise done
        elif action == "rejected" and payment is not None:
            raise IllegalTransition(
                f"the payment is {payment.state.value}: a rejection comes too late",
                state=payment.state.value, action="reject")
        return _replace(case, state=CaseState(action), decided_at_us=at_us,
                        decided_by=actor,
                        decision="release" if action == "released" else "reject")

    def step(self, payments: PaymentService, step: Step) -> Payment:
        """A person's plain step on a payment (the API's and the CLI's hold, release, reject,
        cancel, approve…), with risk control's part in the same transaction: a payment its
        risk case holds is released only from the case (`risk_case_open`, naming it; the
        case's decision has the note and the checks), and a payment the step cancels or
        rejects closes its open case, so the queue and its SLA alerts do not wait for it. A
        payment held by hand before the policy decided it is decided when the engine takes
        it up after its release (risk.engine: `undecided`)."""
        actor = step.actor
        with payments.session(actor) as session:
            writes = self.store.writes(session.write_session)
            case = writes.open_case_of(step.payment_id)
            if case is not None and step.action is Action.RELEASE:
                raise RiskCaseOpen(payment_id=step.payment_id, case_id=case.id)
            (done,) = session.act([step])
            if isinstance(done, FundpoolError):
                raise done
            if case is not None and done.state in (PaymentState.CANCELLED,
                                                   PaymentState.REJECTED):
                at_us = session.at_us
                writes.update_case(_replace(case, state=CaseState.REJECTED,
                                            decided_at_us=at_us, decided_by=actor,
                                            decision="closed"), case.version)
                why = f"the payment was {done.state.value}" + \
                    (f": {step.reason}" if step.reason else "")
                writes.add_note(CaseNote(case.id, writes.next_note_seq(case.id), at_us,
                                         actor or ENGINE, "closed", why[:NOTE_MAX]))
        return done

    def notes(self, case_id: str) -> list[CaseNote]:
        self.case(case_id)
        return self.store.notes(case_id)

    def cases_of(self, payment_id: str) -> list[CaseRecord]:
        """A payment's cases, the open one (at most one) last."""
        return self.store.cases_of(payment_id)

    # --- lists and screening ---

    def load_list(self, name: str, content: bytes, actor: Actor, fmt: str | None = None,
                  threshold: int = 85) -> ListLoad:
        """Load (or replace) a sanctions list; a malformed or truncated file is refused whole
        and the old list stays. Continuous screening: every known counterparty (every
        payment's, every registered party) is screened against the new list, and the hits
        the list's previous version did not give are recorded with it, in one transaction,
        each raising an alert (`risk.list_hits`)."""
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidRiskInput("a list's name is 1 to 100 characters", field="name")
        _plain(name, "name")
        loaded = load_content(name, content, fmt)
        cleared = {(c.query, c.entry_id) for c in self.store.cleared()}
        names = sorted(set(self.store.counterparties()) | {p.name for p in self.store.parties()})
        new_hits = self._hits(Screener(loaded.entries, allowed=cleared), names, threshold)
        previous = next((r for r in self.store.lists() if r.name == name), None)
        before = None if previous is None else self.store.list_content(name)
        if previous is not None and before is not None and new_hits:
            # A hit is new when its entry was not in the previous version with these names
            # (the previous version is not screened again: its entries say it).
            old = {e.id: e.names for e in load_content(name, before, previous.format).entries}
            names_now = {e.id: e.names for e in loaded.entries}
            new_hits = {n: [h for h in found
                            if old.get(h["entry_id"]) != names_now.get(h["entry_id"])]
                        for n, found in new_hits.items()}
            new_hits = {n: found for n, found in new_hits.items() if found}
        with self._writing(actor) as (writes, session):
            record = ListRecord(name, loaded.version, loaded.format, len(loaded.entries),
                                session.at_us, actor)
            writes.put_list(record, content)
            writes.bump("lists")
            writes.add_responses([
                ResponseRecord(self._ids.new_id(session.at_us), self._pool, "", counterparty,
                               "list_hit", session.at_us, severity="critical",
                               key=hit["entry_id"], asset=name)
                for counterparty, found in new_hits.items() for hit in found[:1]])
        return ListLoad(record, len(names), [{"name": n, "hits": found}
                                             for n, found in sorted(new_hits.items())])

    @staticmethod
    def _hits(screener: Screener, names: list[str], threshold: int
              ) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for name in names:
            found = screener.screen(name, threshold=threshold, limit=3)
            if found:
                out[name] = [hit_doc(h) for h in found]
        return out

    def screen(self, name: str, threshold: int = 85) -> list[dict[str, Any]]:
        """A name against the loaded lists, with each hit explained (the index is built
        again only when the lists or the cleared hits changed)."""
        if not 50 <= threshold <= 100:
            raise InvalidRiskInput("threshold is 50 to 100", field="threshold")
        state = self._state or RiskState(self.store, self._scales)
        state.refresh(self.store.revisions(), lambda: None)
        self._state = state
        assert state.screener is not None
        return [{**hit_doc(h), "query": h.query}
                for h in state.screener.screen(name, threshold=threshold, limit=10)]

    def clear_hit(self, name: str, entry_id: str, actor: Actor, note: str | None
                  ) -> Cleared:
        """Clear a false positive: `name` no longer hits `entry_id`."""
        text = _note(note, required=True)
        assert text is not None
        _plain(name, "name")
        _plain(entry_id, "entry_id")
        query = normalised(name)
        if not query or not entry_id.strip():
            raise InvalidRiskInput("a name and a list entry are required", field="name")
        with self._writing(actor) as (writes, session):
            cleared = Cleared(query, entry_id.strip(), session.at_us, actor, text)
            writes.add_cleared(cleared)
            writes.bump("cleared")
        return cleared

    # --- limits lowered by responses ---

    def limits(self) -> list[ResponseRecord]:
        """The limits automatic responses lowered, still in force."""
        return self.store.active_limits(self._clock.now_us())

    def end_limit(self, response_id: str, actor: Actor, note: str | None) -> None:
        """Lift a lowered limit before its time (a risk officer's call, with a note)."""
        text = _note(note, required=True)
        assert text is not None
        with self._writing(actor) as (writes, session):
            if not writes.end_limit(response_id, session.at_us, actor, text):
                raise UnknownLimit(limit_id=response_id)
            writes.bump("limits")

    # --- fraud rings ---

    def rings(self, minutes: int = RING_WINDOW_MIN, pool: str | None = None,
              min_payees: int = RING_PAYEES_MIN) -> list[FraudRing]:
        """The suspected rings among the pool's payouts of the last `minutes`."""
        if not 1 <= minutes <= RING_WINDOW_MAX_MIN:
            raise InvalidRiskInput(f"minutes is 1 to {RING_WINDOW_MAX_MIN}", field="minutes")
        if not 2 <= min_payees <= 1_000:
            raise InvalidRiskInput("min_payees is 2 to 1000", field="min_payees")
        return suspected_rings(self.store, pool or self._pool, self._clock.now_us(), minutes,
                               min_payees)

    # --- parties ---

    def set_party(self, name: str, kyc: str, country: str | None, actor: Actor
                  ) -> PartyRecord:
        name = " ".join(name.split())
        if not name or len(name) > 200:
            raise InvalidRiskInput("a party's name is 1 to 200 characters", field="name")
        _plain(name, "name")
        if kyc not in KYC_STATES:
            raise InvalidRiskInput(f"kyc is one of {', '.join(KYC_STATES)}", field="kyc")
        if country is not None and (len(country) != 2 or not country.isalpha()):
            raise InvalidRiskInput("country is an ISO 3166 alpha-2 code", field="country")
        with self._writing(actor) as (writes, session):
            party = PartyRecord(name, kyc, None if country is None else country.upper(),
                                session.at_us, actor)
            writes.put_party(party)
            writes.bump("parties")
        return party


def _replace(case: CaseRecord, **changes: Any) -> CaseRecord:
    return dataclasses.replace(case, version=case.version + 1, **changes)



SANCTIONS_ALERT_US = DAY_US  # a sanctions block stays in the alert bar for a day
RESPONSE_ALERT_US = 3_600_000_000  # a group's alert response stays an hour after it fired


def suspected_rings(store: RiskStore, pool: str, now_us: int,
                    minutes: int = RING_WINDOW_MIN, min_payees: int = RING_PAYEES_MIN
                    ) -> list[FraudRing]:
    """The rings among the pool's payouts of the last `minutes` (at most RING_PAYOUTS_MAX of
    them, the newest)."""
    since = now_us - minutes * 60_000_000
    return find_rings(store.recent_payouts(pool, since, RING_PAYOUTS_MAX), min_payees)


class RingWatch:
    """The ring search for the alert bar, run at most once a minute per pool (it reads the
    last half hour of payouts); between runs the last answer stands."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, int]] = {}  # pool -> (at, rings found)

    def rings(self, store: RiskStore, pool: str, now_us: int) -> int:
        last = self._last.get(pool)
        found = 0 if last is None else last[1]
        if last is None or not 0 <= now_us - last[0] < RING_SIGNAL_EVERY_US:
            found = len(suspected_rings(store, pool, now_us))
            self._last[pool] = (now_us, found)
        return found


def signals(store: RiskStore, now_us: int, pools: tuple[str, ...] = (),
            rings: RingWatch | None = None) -> list[RiskSignal]:
    """What risk control puts in the alert bar now: per pool, the payments waiting for review
    (info), those on hold (warning), the cases past their SLA (warning); and each payment a
    sanctions hit blocked in the last day (critical). A signal's summary carries no count
    (the alert keeps the summary it fired with); `count` is its value."""
    out: list[RiskSignal] = []
    breached: dict[str, int] = {}
    for pool, kind, count, late in store.open_case_counts(now_us):
        breached[pool] = breached.get(pool, 0) + late
        if kind == "hold":
            out.append(RiskSignal(pool, "risk.holds", "risk:hold", "warning", count,
                                  "payments on hold for a risk officer"))
        else:
            out.append(RiskSignal(pool, "risk.review_queue", "risk:review", "info", count,
                                  "payments wait for risk review"))
    for pool, late in breached.items():
        if late:
            out.append(RiskSignal(pool, "risk.sla_breach", "risk:breached", "warning", late,
                                  "risk cases are past their SLA"))
    for pool in pools if rings is not None else ():
        assert rings is not None
        found = rings.rings(store, pool, now_us)
        if found:
            out.append(RiskSignal(pool, "risk.fraud_rings", "risk:rings", "critical", found,
                                  "payees share accounts: suspected fraud rings"))
    for pool, counterparty, _, count in store.list_hits(now_us - SANCTIONS_ALERT_US):
        out.append(RiskSignal(pool, f"risk.list_hit:{counterparty}", "risk:screening",
                              "critical", count,
                              f"known counterparty {counterparty!r} hits an updated "
                              "sanctions list"))
    # One alert per group and pool, at the most severe its responses asked for.
    responses: dict[tuple[str, str], tuple[str, int]] = {}
    order = {"info": 0, "warning": 1, "critical": 2}
    for pool, group, severity, fired in store.response_alerts(now_us - RESPONSE_ALERT_US):
        worst, count = responses.get((pool, group), (severity, 0))
        if order.get(severity, 0) > order.get(worst, 0):
            worst = severity
        responses[(pool, group)] = (worst, count + fired)
    for (pool, group), (severity, fired) in sorted(responses.items()):
        out.append(RiskSignal(pool, f"risk.response:{group}", "risk:review", severity, fired,
                              f"risk group fired: {group}"))
    for decision in store.blocked_since(now_us - SANCTIONS_ALERT_US):
        hit = next((c for f in decision.detail.get("fired", ())
                    for c in f.get("conditions", ()) if c.get("kind") == "sanctions"), None)
        if hit is not None:
            out.append(RiskSignal(
                decision.pool, "risk.sanctions_block", f"payment:{decision.payment_id}",
                "critical", 1, f"payout to {hit.get('name')!r} blocked: sanctions hit on "
                               f"{hit.get('matched')!r} ({hit.get('score')})"))
    return out
