"""Approvals as a service: the one way a payment waiting for approval is approved.

- **Plans.** A payment that waits (`pending_approval`) is held to the approval rules that were
  active when it was created, evaluated on the payment as routed and on what risk control
  decided of it. The matching rules are its stages, in order, each needing M of N approvers. The
  plan is pinned (`approval_plans`) the first time it is read; it is a pure function of the
  payment, the rule version and the risk decision, so the engine's gate (gate.py) and the plan
  agree.
- **Signatures.** An approval is an Ed25519 signature, by a key the approver registered, over
  the digest of the payment in its round (signing.py). The service checks, in the transaction
  that records it: the payment still waits and is what was signed, the approver is not its
  initiator, has not signed this round, is among the current stage's approvers, the key is
  theirs and active, the signature verifies, and a TOTP code when the amount needs one.
- **The last signature** of the last stage approves the payment in the same transaction, or,
  when a stage asks for a delay, starts the delay window; `tick` approves the payments whose
  window has ended. A rejection by any eligible approver rejects the payment.
- **Rules** are drafted, and activated by a quorum of voters (never the author) holding a role
  the active rules' governance names, each with a TOTP code.
- **Keys and TOTP.** A key is registered with a TOTP code; the first code confirms the
  enrolment too. `confirm_totp` serves the other sensitive actions (policy activation, role
  changes).

Every action is recorded with its actor in `approval_actions`, which the audit log reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from fundpool.approvals import signing, totp
from fundpool.approvals.model import (
    NOTE_MAX,
    AlreadySigned,
    AlreadyVoted,
    ApprovalAction,
    Decision,
    Delay,
    DelayState,
    InvalidApprovalInput,
    KeyAlreadyRegistered,
    NotAVoter,
    NotCancellable,
    NotEligible,
    NotWaiting,
    PaymentChanged,
    Plan,
    RulesState,
    RulesVersion,
    SelfActivation,
    Signature,
    SignatureRequired,
    SigningKey,
    TotpAlreadyEnrolled,
    TotpNotEnrolled,
    UnknownRulesVersion,
    UnknownSigningKey,
    Vote,
)
from fundpool.approvals.ports import (
    ApprovalReads,
    ApprovalStore,
    ApprovalWrites,
    Directory,
    RiskDecisions,
    RiskFacts,
    TotpRecord,
    role_sizes,
)
from fundpool.approvals.rules import (
    DEFAULT_GOVERNANCE,
    Facts,
    Governance,
    RuleSet,
    Stage,
    check_quorums,
    diff_rules,
    legacy_stage,
    parse_rules,
)
from fundpool.core.actor import Actor
from fundpool.core.clock import Clock
from fundpool.core.errors import FundpoolError, InvariantViolation
from fundpool.payments.model import (
    Action,
    Payment,
    PaymentState,
    SelfApproval,
    Step,
    UnknownPayment,
)
from fundpool.payments.service import PaymentService
from fundpool.payments.session import PaymentSession

DUE_PER_TICK = 200  # delay windows ended, approved per `tick`
RULES_TEXT_MAX = 256 * 1024


@dataclass(frozen=True, slots=True)
class Reporting:
    """The pool's reporting currency, its rates and the assets' scales: a payment's amount in
    the reporting currency, for rules that name one (None when no rate is known)."""

    currency: str
    rates: Callable[[str, str], Fraction | None]
    scales: Mapping[str, int]

    def amount(self, asset: str, amount_minor: int) -> int | None:
        rate = self.rates(asset, self.currency)
        if rate is None or asset not in self.scales or self.currency not in self.scales:
            return None
        shift = Fraction(10) ** (self.scales[self.currency] - self.scales[asset])
        return int(amount_minor * rate * shift)  # toward zero: a rule's bound is never rounded up


@dataclass(frozen=True, slots=True)
class StageView:
    index: int
    stage: Stage
    eligible: int  # N
    signed: tuple[Signature, ...]
    done: bool


@dataclass(frozen=True, slots=True)
class ApprovalView:
    """A payment's approval as the inbox, the API and the CLI show it."""

    payment: Payment
    round: int
    plan: Plan | None  # None: the payment does not wait (and never waited in this round)
    document: Mapping[str, Any]
    digest: bytes
    state: str  # waiting | delayed | approved | rejected | cancelled | not_waiting | ended
    stage: int | None
    stages: tuple[StageView, ...]
    rejections: tuple[Signature, ...]
    delay: Delay | None

    def refusal(self, actor: Actor) -> FundpoolError | None:
        """Why `actor` may not sign or reject it now (None: they may), as the error the
        service raises: the one place these duties are checked."""
        pid = self.payment.id
        if self.state != "waiting" or self.stage is None:
            return NotWaiting(payment_id=pid, state=self.payment.state.value,
                              approval=self.state)
        if _is_initiator(self.payment, actor):
            return SelfApproval(payment_id=pid, who=actor.who)
        every = [s for v in self.stages for s in v.signed] + list(self.rejections)
        if any(s.approver.who == actor.who for s in every):
            return AlreadySigned(payment_id=pid)
        stage = self.stages[self.stage].stage
        if not eligible(stage, actor):
            return NotEligible(payment_id=pid, stage=stage.name, roles=list(stage.roles),
                               group=stage.group)
        return None

    def you(self, actor: Actor, keys: Sequence[SigningKey]) -> dict[str, Any]:
        """What `actor` may do with it, and why not."""
        mine = [k.id for k in keys if k.active]
        refused = self.refusal(actor)
        why = refused.code if refused is not None else None if mine else "no_signing_key"
        return {"may_sign": why is None, "why_not": why, "keys": mine}


def eligible(stage: Stage, actor: Actor) -> bool:
    if stage.group is not None:
        return (actor.kind == "user" and actor.name in stage.members) or \
            actor.who in stage.members
    return bool(set(stage.roles) & set(actor.roles))


def _is_initiator(payment: Payment, actor: Actor) -> bool:
    return payment.initiated_by is not None and payment.initiated_by.who == actor.who


def _note(text: str | None, name: str = "note") -> str | None:
    if text is None:
        return None
    text = text.strip()
    if len(text) > NOTE_MAX or "\x00" in text:
        raise InvalidApprovalInput(f"{name} is at most {NOTE_MAX} characters", field=name)
    return text or None


class ApprovalService:
    def __init__(self, store: ApprovalStore, payments: Callable[[str], PaymentService],
                 directory: Directory, clock: Clock, *, pools: Sequence[str],
                 scales: Mapping[str, int],
                 reporting: Callable[[str], Reporting | None] | None = None,
                 risk: RiskDecisions | None = None,
                 wake: Callable[[str], None] | None = None) -> None:
        self.store = store
        self._payments = payments
        self._directory = directory
        self._clock = clock
        self._pools = tuple(pools)
        self._pool = self._pools[0]
        self._scales = dict(scales)
        self._reporting = reporting
        self.risk: RiskDecisions = risk or (lambda _ids: {})  # what risk control decided
        self.wake = wake
        self._parsed: dict[int, RuleSet] = {}

    def now_us(self) -> int:
        return self._clock.now_us()

    # --- rules -------------------------------------------------------------------------------

    def rules(self, version: int) -> RuleSet:
        found = self._parsed.get(version)
        if found is None:
            record = self.store.version(version)
            if record is None:
                raise UnknownRulesVersion(version=version)
            found = self._parsed[version] = parse_rules(record.text, scales=self._scales)
        return found

    def version_at(self, at_us: int, activations: Sequence[tuple[int, int, int | None]] | None
                   = None) -> int:
        """The rules version that was active at `at_us` (0: none)."""
        found = 0
        for version, activated, retired in activations or self.store.activations():
            if activated <= at_us and (retired is None or retired > at_us):
                found = version
        return found

    def active(self) -> RulesVersion | None:
        return next((v for v in self.store.versions() if v.state is RulesState.ACTIVE), None)

    def governance(self) -> Governance:
        active = self.active()
        return DEFAULT_GOVERNANCE if active is None else self.rules(active.version).governance

    def validate(self, text: str) -> dict[str, Any]:
        checked = self._check_text(text)
        active = self.active()
        return {"valid": True, "rules": len(checked.rules),
                "diff": diff_rules("" if active is None else active.text, text,
                                   "active" if active else "none", "draft")}

    def _check_text(self, text: str) -> RuleSet:
        if not isinstance(text, str) or len(text) > RULES_TEXT_MAX:
            raise InvalidApprovalInput(f"the rules are text of at most {RULES_TEXT_MAX} "
                                       "characters", field="text")
        checked = parse_rules(text, scales=self._scales)
        check_quorums(checked, role_sizes(self._directory.users()))
        return checked

    def draft(self, text: str, actor: Actor, note: str | None = None) -> RulesVersion:
        self._check_text(text)
        note = _note(note)
        with self._writing(actor) as (writes, session):
            version = RulesVersion(writes.next_version(), text,
                                   hashlib.sha256(text.encode()).hexdigest(), note,
                                   RulesState.DRAFT, session.at_us, actor)
            writes.add_version(version)
            writes.add_action(ApprovalAction(session.at_us, "rules.drafted", "approval_rules",
                                             str(version.version), actor,
                                             {"digest": version.digest, "note": note}))
        return version

    def vote(self, version: int, actor: Actor, code: str | None, *, confirm: bool = False
             ) -> RulesVersion:
        """A vote to activate `version`; the quorum's last vote activates it (the version
        active before is retired). The author never votes; a voter holds a role the active
        rules' governance names, and confirms with a TOTP code."""
        governance = self.governance()
        with self._writing(actor) as (writes, session):
            found = writes.version(version)
            if found is None:
                raise UnknownRulesVersion(version=version)
            if found.state is not RulesState.DRAFT:
                raise InvalidApprovalInput("only a draft is voted for", version=version,
                                           state=found.state.value)
            if found.author.who == actor.who:
                raise SelfActivation(version=version, author=found.author.name)
            if not set(governance.roles) & set(actor.roles):
                raise NotAVoter(roles=list(governance.roles))
            votes = writes.votes(version)
            if any(v.voter.who == actor.who for v in votes):
                raise AlreadyVoted(version=version)
            # `confirm`: the code may confirm an enrolment begun (a first vote, the demo's).
            self._use_totp(writes, actor, code, session.at_us, confirm=confirm)
            writes.add_vote(Vote(version, actor, session.at_us))
            writes.add_action(ApprovalAction(session.at_us, "rules.voted", "approval_rules",
                                             str(version), actor,
                                             {"votes": len(votes) + 1,
                                              "quorum": governance.quorum}))
            if len(votes) + 1 >= governance.quorum:
                check_quorums(parse_rules(found.text, scales=self._scales),
                              role_sizes(self._directory.users()))
                active = next((v for v in writes.versions()
                               if v.state is RulesState.ACTIVE), None)
                if active is not None:
                    writes.set_version_state(active.version, RulesState.RETIRED, session.at_us)
                writes.set_version_state(version, RulesState.ACTIVE, session.at_us)
                writes.add_action(ApprovalAction(
                    session.at_us, "rules.activated", "approval_rules", str(version), actor,
                    {"before": None if active is None else active.version, "after": version,
                     "voters": [v.voter.name for v in votes] + [actor.name]}))
        result = self.store.version(version)
        assert result is not None
        return result

    def diff(self, version: int, against: int | None) -> str:
        found = self.store.version(version)
        if found is None:
            raise UnknownRulesVersion(version=version)
        if against is None:
            active = self.active()
            old, name = ("", "none") if active is None else (active.text, f"v{active.version}")
        else:
            other = self.store.version(against)
            if other is None:
                raise UnknownRulesVersion(version=against)
            old, name = other.text, f"v{against}"
        return diff_rules(old, found.text, name, f"v{version}")

    # --- TOTP and keys -------------------------------------------------------------------------

    def totp_state(self, actor: Actor) -> dict[str, Any]:
        record = self.store.totp(actor.who)
        return {"enrolled": record is not None and record.secret is not None,
                "pending": record is not None and record.pending_secret is not None}

    def begin_totp(self, actor: Actor) -> dict[str, Any]:
        """Begin enrolment: a new secret, confirmed by the first good code (with a key's
        registration). Refused once enrolled."""
        with self._writing(actor) as (writes, session):
            record = writes.totp(actor.who)
            if record is not None and record.secret is not None:
                raise TotpAlreadyEnrolled()
            secret = totp.new_secret()
            writes.set_totp(TotpRecord(actor.who, None, secret, None,
                                       0 if record is None else record.last_step))
            writes.add_action(ApprovalAction(session.at_us, "totp.enrolment_begun", "user",
                                             actor.who, actor, {}))
        return {"secret": secret, "uri": totp.uri(secret, actor.name), "enrolled": False}

    def confirm_totp(self, actor: Actor, code: str | None, what: str) -> None:
        """A sensitive action's TOTP check, in its own transaction (the code is used)."""
        with self._writing(actor) as (writes, session):
            self._use_totp(writes, actor, code, session.at_us)
            writes.add_action(ApprovalAction(session.at_us, "totp.confirmed", "user",
                                             actor.who, actor, {"for": what}))

    def _use_totp(self, writes: ApprovalWrites, actor: Actor, code: str | None, at_us: int,
                  *, confirm: bool = False) -> None:
        record = writes.totp(actor.who)
        if record is None or (record.secret is None
                              and (not confirm or record.pending_secret is None)):
            raise TotpNotEnrolled()
        secret = record.secret or record.pending_secret
        assert secret is not None
        step = totp.check(secret, code, at_us, record.last_step)
        if record.secret is None:
            writes.set_totp(TotpRecord(actor.who, secret, None, at_us, step))
            writes.add_action(ApprovalAction(at_us, "totp.enrolled", "user", actor.who, actor,
                                             {}))
        else:
            writes.set_totp(replace(record, last_step=step))

    def register_key(self, actor: Actor, public_key: str, name: str, code: str | None
                     ) -> SigningKey:
        raw = signing.parse_public_key(public_key)
        name = (name or "").strip() or "key"
        if len(name) > 64 or not name.isprintable():
            raise InvalidApprovalInput("a key's name is 1 to 64 printable characters",
                                       field="name")
        with self._writing(actor) as (writes, session):
            key_id = signing.key_id_of(raw)
            if writes.key(key_id) is not None:
                raise KeyAlreadyRegistered(key_id=key_id)
            if sum(1 for k in writes.keys(actor.who) if k.active) >= 10:
                raise InvalidApprovalInput("at most 10 active keys: revoke one first")
            self._use_totp(writes, actor, code, session.at_us, confirm=True)
            key = SigningKey(key_id, actor.who, actor.name, name, raw, session.at_us)
            writes.add_key(key)
            writes.add_action(ApprovalAction(session.at_us, "key.registered", "signing_key",
                                             key_id, actor, {"name": name,
                                                             "public_key": raw.hex()}))
        return key

    def revoke_key(self, actor: Actor, key_id: str, code: str | None) -> SigningKey:
        with self._writing(actor) as (writes, session):
            key = writes.key(key_id)
            if key is None or key.user_id != actor.who:
                raise UnknownSigningKey(key_id=key_id)
            self._use_totp(writes, actor, code, session.at_us)
            writes.revoke_key(key_id, session.at_us)
            writes.add_action(ApprovalAction(session.at_us, "key.revoked", "signing_key",
                                             key_id, actor, {}))
        found = self.store.key(key_id)
        assert found is not None
        return found

    def signing_keys(self, actor: Actor | None = None) -> list[SigningKey]:
        return self.store.keys(None if actor is None else actor.who)

    # --- plans and views ---------------------------------------------------------------------

    def facts(self, payment: Payment, risk: RiskFacts | None) -> Facts:
        initiator: frozenset[str] = frozenset()
        if payment.initiated_by is not None:
            who = payment.initiated_by
            initiator = frozenset({who.name, who.id, who.who})
        reporting = None if self._reporting is None else self._reporting(payment.pool)
        return Facts(
            kind=payment.kind.value, asset=payment.asset, amount_minor=payment.amount_minor,
            reporting_amount_minor=None if reporting is None
            else reporting.amount(payment.asset, payment.amount_minor),
            channel=payment.channel, counterparty=payment.counterparty, initiator=initiator,
            risk_grade=None if risk is None else risk.grade,
            risk_score=None if risk is None else risk.score,
            metadata=dict(payment.metadata))

    def stages_for(self, payment: Payment, risk: RiskFacts | None, version: int
                   ) -> tuple[Stage, ...]:
        """The stages `payment` needs under rules `version` (0: none active): the matching
        rules, or the pool's threshold as one stage when none matched and it is over it."""
        stages: tuple[Stage, ...] = ()
        if version:
            stages = self.rules(version).stages_for(self.facts(payment, risk))
        if not stages and payment.approval_required:
            stages = (legacy_stage(),)
        return stages

    def _plan(self, writes: ApprovalReads, payment: Payment, at_us: int) -> Plan:
        round_ = payment.version
        found = writes.plan(payment.id, round_)
        if found is not None:
            return found
        if not hasattr(writes, "add_plan"):  # pinned only in a transaction
            raise InvariantViolation("a waiting payment's plan is read before it is pinned")
        version = self.version_at(payment.created_at_us)
        risk = self.risk([payment.id]).get(payment.id)
        stages = self.stages_for(payment, risk, version) or (legacy_stage(),)
        needs_totp = bool(version) and self.rules(version).totp_needed(payment.asset,
                                                                       payment.amount_minor)
        plan = Plan(payment.id, round_, version, tuple(s.to_doc() for s in stages),
                    None if risk is None else {"grade": risk.grade, "score": risk.score,
                                               "policy_version": risk.policy_version},
                    needs_totp, at_us)
        writes.add_plan(plan)
        return writes.plan(payment.id, round_) or plan

    def view(self, payment_id: str, actor: Actor | None = None) -> ApprovalView:
        """A payment's approval. Read without a transaction once its plan is pinned (or when
        it does not wait); the first read of a waiting payment's round pins the plan."""
        payment = self._payment(payment_id)
        users = self._users()
        if payment.state is not PaymentState.PENDING_APPROVAL or \
                self.store.plan(payment.id, payment.version) is not None:
            return self._view(self.store, payment, self._clock.now_us(), users)
        with self._writing(actor, payment.pool) as (writes, session):
            return self._view(writes, self._current(session, payment_id), session.at_us,
                              users)

    def _users(self) -> list[Any]:
        return [u for u in self._directory.users() if not getattr(u, "disabled", False)]

    def _view(self, writes: ApprovalReads, payment: Payment, at_us: int,
              users: Sequence[Any] | None = None) -> ApprovalView:
        waiting = payment.state is PaymentState.PENDING_APPROVAL
        round_ = payment.version
        plan = self._plan(writes, payment, at_us) if waiting else self._last_plan(writes,
                                                                                  payment)
        if plan is not None:
            round_ = plan.round
        doc = self._document(payment, plan, round_)
        digest = signing.digest_of(doc)
        signatures = writes.signatures(payment.id, round_) if plan is not None else []
        stages: list[StageView] = []
        users = self._users() if users is None else users
        current: int | None = None
        for index, stage_doc in enumerate(plan.stages if plan else ()):
            stage = Stage.from_doc(stage_doc)
            signed = tuple(s for s in signatures if s.stage == index
                           and s.decision is Decision.APPROVE and s.digest == digest)
            done = len(signed) >= stage.approvers
            if not done and current is None:
                current = index
            # N: the group's members, or the people holding one of the roles (once each)
            count = len(stage.members) if stage.group is not None else \
                sum(1 for u in users if set(map(str, u.roles)) & set(stage.roles))
            stages.append(StageView(index, stage, count, signed, done))
        rejections = tuple(s for s in signatures if s.decision is Decision.REJECT)
        delay = writes.delay(payment.id)
        if delay is not None and delay.round != round_:
            delay = None
        state = _state_of(payment, current, delay, rejections)
        return ApprovalView(payment, round_, plan, doc, digest, state,
                            current if state == "waiting" else None, tuple(stages),
                            rejections, delay)

    def _last_plan(self, writes: ApprovalReads, payment: Payment) -> Plan | None:
        # A payment that no longer waits: the plan of the round it last waited in, if any
        # (its approval event's round is the version before it, at most a few back).
        for round_ in range(payment.version, max(0, payment.version - 8), -1):
            found = writes.plan(payment.id, round_)
            if found is not None:
                return found
        return None

    def _document(self, payment: Payment, plan: Plan | None, round_: int,
                  decision: Decision = Decision.APPROVE) -> dict[str, Any]:
        risk_version = None if plan is None or plan.risk is None else \
            plan.risk.get("policy_version")
        return signing.document(payment, round_, 0 if plan is None else plan.rules_version,
                                risk_version, decision)

    def inbox(self, pool: str | None = None, limit: int = 200) -> list[ApprovalView]:
        """Payments waiting for approval (oldest first), with their plans."""
        service = self._payments(pool or self._pool)
        waiting = service.list(state=PaymentState.PENDING_APPROVAL, limit=limit)
        if not waiting:
            return []
        users = self._users()
        unpinned = [p for p in waiting if self.store.plan(p.id, p.version) is None]
        if unpinned:  # pinned once, in one transaction; read without one from then on
            with self._writing(None, pool) as (writes, session):
                for payment in unpinned:
                    self._plan(writes, payment, session.at_us)
        now_us = self._clock.now_us()
        return [self._view(self.store, p, now_us, users) for p in waiting]

    # --- decisions ---------------------------------------------------------------------------

    def sign(self, payment_id: str, actor: Actor, *, key_id: str | None,
             signature: str | None, digest: str | None, code: str | None = None,
             note: str | None = None) -> ApprovalView:
        """An approver's signature (see the module's docstring for every check)."""
        if not key_id or not signature or not digest:
            raise SignatureRequired(payment_id=payment_id)
        raw = signing.parse_signature(signature)
        sent = _digest_bytes(digest)
        note = _note(note)
        payment = self._payment(payment_id)
        users = self._users()
        with self._writing(actor, payment.pool) as (writes, session):
            payment = self._current(session, payment_id)
            view = self._view(writes, payment, session.at_us, users)
            self._check_signer(view, actor)
            if sent != view.digest:
                raise PaymentChanged(payment_id=payment_id, expected=view.digest.hex())
            key = writes.key(key_id)
            if key is None or key.user_id != actor.who or not key.active:
                raise UnknownSigningKey(key_id=key_id)
            signing.verify(key.public_key, raw, view.digest)
            assert view.plan is not None
            assert view.stage is not None
            if view.plan.totp_required:
                self._use_totp(writes, actor, code, session.at_us)
            at_us = session.at_us
            writes.add_signature(Signature(payment_id, view.round, view.stage,
                                           Decision.APPROVE, actor, key_id, raw, view.digest,
                                           note, at_us))
            writes.add_action(ApprovalAction(at_us, "approval.signed", "payment", payment_id,
                                             actor, {"round": view.round, "stage": view.stage,
                                                     "key_id": key_id,
                                                     "digest": view.digest.hex(),
                                                     "signature": raw.hex(), "note": note}))
            after = self._view(writes, payment, at_us, users)
            if after.state == "approved" and after.payment.state is PaymentState.PENDING_APPROVAL:
                self._complete(writes, session, after, actor, note)
            result = self._view(writes, self._current(session, payment_id), at_us, users)
        if self.wake is not None and result.payment.state is PaymentState.APPROVED:
            self.wake(result.payment.pool)
        return result

    def _check_signer(self, view: ApprovalView, actor: Actor) -> None:
        refused = view.refusal(actor)
        if refused is not None:
            raise refused

    def _complete(self, writes: ApprovalWrites, session: PaymentSession, view: ApprovalView,
                  actor: Actor, note: str | None = None) -> None:
        """Every stage has its approvers: approve now, or begin the delay window."""
        stages = [v.stage for v in view.stages]
        delay_s = max((s.delay_s for s in stages), default=0)
        at_us = session.at_us
        if delay_s > 0:
            cancellable = tuple(sorted({r for s in stages for r in s.cancellable_by}))
            writes.set_delay(Delay(view.payment.id, view.payment.pool, view.round,
                                   at_us + delay_s * 1_000_000, DelayState.WAITING,
                                   cancellable))
            writes.add_action(ApprovalAction(at_us, "approval.delayed", "payment",
                                             view.payment.id, actor,
                                             {"release_at_us": at_us + delay_s * 1_000_000,
                                              "cancellable_by": list(cancellable)}))
            return
        self._approve(session, view.payment.id, actor, note)

    def _approve(self, session: PaymentSession, payment_id: str, actor: Actor,
                 note: str | None = None) -> Payment:
        (done,) = session.act([Step(payment_id, Action.APPROVE, reason=note, actor=actor)])
        if isinstance(done, FundpoolError):
            raise done
        return done

    def reject(self, payment_id: str, actor: Actor, reason: str | None, *,
               key_id: str | None = None, signature: str | None = None) -> ApprovalView:
        """An eligible approver's no: the payment is rejected. A signature, when given, is
        checked over the rejection's own digest."""
        reason = _note(reason, "reason")
        if not reason:
            raise InvalidApprovalInput("say why the payment is rejected", field="reason")
        payment = self._payment(payment_id)
        with self._writing(actor, payment.pool) as (writes, session):
            payment = self._current(session, payment_id)
            view = self._view(writes, payment, session.at_us)
            self._check_signer(view, actor)
            doc = self._document(payment, view.plan, view.round, Decision.REJECT)
            digest = signing.digest_of(doc)
            raw: bytes | None = None
            if signature:
                raw = signing.parse_signature(signature)
                key = None if key_id is None else writes.key(key_id)
                if key is None or key.user_id != actor.who or not key.active:
                    raise UnknownSigningKey(key_id=key_id)
                signing.verify(key.public_key, raw, digest)
            assert view.stage is not None
            at_us = session.at_us
            writes.add_signature(Signature(payment_id, view.round, view.stage, Decision.REJECT,
                                           actor, key_id if raw else None, raw, digest,
                                           reason, at_us))
            writes.add_action(ApprovalAction(at_us, "approval.rejected", "payment", payment_id,
                                             actor, {"round": view.round, "reason": reason,
                                                     "signed": raw is not None}))
            (done,) = session.act([Step(payment_id, Action.REJECT, reason=reason, actor=actor)])
            if isinstance(done, FundpoolError):
                raise done
            return self._view(writes, done, at_us)

    def cancel(self, payment_id: str, actor: Actor, reason: str | None) -> ApprovalView:
        """Cancel an approved payment in its delay window: a role the rule names."""
        reason = _note(reason, "reason")
        payment = self._payment(payment_id)
        with self._writing(actor, payment.pool) as (writes, session):
            payment = self._current(session, payment_id)
            delay = writes.delay(payment_id)
            if payment.state is not PaymentState.PENDING_APPROVAL or delay is None or \
                    delay.state is not DelayState.WAITING or delay.round != payment.version:
                raise NotWaiting("this payment is not in a delay window",
                                 payment_id=payment_id, state=payment.state.value)
            if not set(delay.cancellable_by) & set(actor.roles):
                raise NotCancellable(payment_id=payment_id, roles=list(delay.cancellable_by))
            writes.set_delay_state(payment_id, DelayState.CANCELLED)
            writes.add_action(ApprovalAction(session.at_us, "approval.cancelled", "payment",
                                             payment_id, actor, {"reason": reason}))
            (done,) = session.act([Step(payment_id, Action.CANCEL, reason=reason or
                                        "cancelled in the approval's delay window",
                                        actor=actor)])
            if isinstance(done, FundpoolError):
                raise done
            return self._view(writes, done, session.at_us)

    def tick(self, pool: str | None = None) -> int:
        """Approve the payments whose delay window has ended; how many were."""
        count = 0
        for delay in self.store.due(self._clock.now_us(), DUE_PER_TICK):
            if pool is not None and delay.pool != pool:
                continue
            with self._writing(None, delay.pool) as (writes, session):
                current = writes.delay(delay.payment_id)
                if current is None or current.state is not DelayState.WAITING:
                    continue
                payment = self._current(session, delay.payment_id)
                if payment.state is not PaymentState.PENDING_APPROVAL or \
                        payment.version != delay.round:
                    writes.set_delay_state(delay.payment_id, DelayState.CANCELLED)
                    continue
                signed = [s for s in writes.signatures(delay.payment_id, delay.round)
                          if s.decision is Decision.APPROVE]
                last = max(signed, key=lambda s: s.at_us).approver
                writes.set_delay_state(delay.payment_id, DelayState.RELEASED)
                writes.add_action(ApprovalAction(session.at_us, "approval.released", "payment",
                                                 delay.payment_id, None,
                                                 {"release_at_us": delay.release_at_us}))
                self._approve(session, delay.payment_id, last)
                count += 1
            if self.wake is not None:
                self.wake(delay.pool)
        return count

    # --- inside ------------------------------------------------------------------------------

    def _payment(self, payment_id: str) -> Payment:
        for pool in self._pools:
            try:
                return self._payments(pool).get(payment_id)
            except UnknownPayment:
                continue
        raise UnknownPayment(payment_id=payment_id)

    def _current(self, session: PaymentSession, payment_id: str) -> Payment:
        found = session.payments([payment_id]).get(payment_id)
        if found is None:
            raise NotWaiting(payment_id=payment_id)
        return found

    @contextmanager
    def _writing(self, actor: Actor | None, pool: str | None = None
                 ) -> Iterator[tuple[ApprovalWrites, PaymentSession]]:
        self.store.ensure()
        with self._payments(pool or self._pool).session(actor) as session:
            yield self.store.writes(session.write_session), session


def _state_of(payment: Payment, current: int | None, delay: Delay | None,
              rejections: Sequence[Signature]) -> str:
    state = payment.state
    if state is PaymentState.PENDING_APPROVAL:
        if delay is not None and delay.state is DelayState.WAITING:
            return "delayed"
        return "waiting" if current is not None else "approved"
    if rejections or state is PaymentState.REJECTED:
        return "rejected"
    if state is PaymentState.CANCELLED:
        return "cancelled"
    if state in (PaymentState.APPROVED, PaymentState.SUBMITTED, PaymentState.CLEARED,
                 PaymentState.SETTLED):
        return "approved"
    if state in (PaymentState.INITIATED, PaymentState.SCREENED, PaymentState.HELD,
                 PaymentState.ROUTED):
        return "not_waiting"  # not (yet) waiting for approvers
    return "ended"


def _digest_bytes(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raise InvalidApprovalInput("digest is 64 hex digits", field="digest") from None
    if len(raw) != 32:
        raise InvalidApprovalInput("digest is 64 hex digits", field="digest", length=len(raw))
    return raw
