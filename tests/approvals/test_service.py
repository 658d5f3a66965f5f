"""Signed approvals in the payment path, on a real store and the engine a server runs: rules
pick the stages; a payment that needs 2 of 3 is approved only by two signatures of two group
members and then settles; forged, duplicated, replayed, wrong-key and wrong-payment signatures
are refused and change nothing; the initiator never signs; a rejection ends the payment; a
delay window holds an approved payment and a named role cancels it; rules are activated by a
quorum of others with TOTP codes. On both stores."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fundpool import compose
from fundpool.approvals import signing, totp
from fundpool.approvals.model import (
    AlreadySigned,
    InvalidSignature,
    KeyAlreadyRegistered,
    NotCancellable,
    NotEligible,
    PaymentChanged,
    SelfActivation,
    SignatureMismatch,
    SignatureRequired,
    TotpReused,
    UnknownSigningKey,
)
from fundpool.approvals.rules import InvalidApprovalRules
from fundpool.approvals.service import ApprovalService
from fundpool.core.actor import Actor
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.ledger.model import Posting, Transfer
from fundpool.ledger.ports import LedgerStore
from fundpool.payments.engine import PaymentEngine
from fundpool.payments.model import (
    Action,
    PaymentKind,
    PaymentRequest,
    PaymentState,
    SelfApproval,
    Step,
)
from fundpool.pool.accounts import PoolState, pool_account, world_account
from fundpool.pool.config import load_config
from fundpool.pool.setup import init_pool

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"
S = PaymentState

RULES = """\
groups:
  leads: [lead-1, lead-2, lead-3]
governance: {quorum: 2, roles: [admin, approver]}
rules:
  - id: big
    name: Big payouts need two leads
    when:
      - kind: [payout]
        amount_at_least: {USD: 500000}
    require: {approvers: 2, group: leads}
  - id: huge
    name: Huge payouts wait ten minutes
    when:
      - amount_at_least: {USD: 5000000}
    require: {approvers: 1, roles: [approver]}
    delay_s: 600
    cancellable_by: [risk]
"""


class Person:
    def __init__(self, pool: Pool, username: str, roles: tuple[str, ...]) -> None:
        user = pool.auth.add_user(username, "a-long-password-1", roles, now_us=1)
        self.actor = Actor("user", user.id, username, roles)
        self.key = Ed25519PrivateKey.generate()
        self.pool = pool
        self.secret = ""
        self.key_id = ""

    def enrol(self) -> None:
        begun = self.pool.approvals.begin_totp(self.actor)
        self.secret = begun["secret"]
        public = base64.b64encode(signing.raw_public(self.key)).decode()
        self.key_id = self.pool.approvals.register_key(self.actor, public, "laptop",
                                                       self.code()).id

    def code(self) -> str:
        self.pool.clock.advance(seconds=30)  # a new TOTP step each time: codes are used once
        return totp.code_at(self.secret, self.pool.clock.now_us())

    def sign(self, pid: str, **changes: Any) -> Any:
        view = self.pool.approvals.view(pid, self.actor)
        args: dict[str, Any] = {"key_id": self.key_id,
                                "signature": signing.sign(self.key, view.digest),
                                "digest": view.digest.hex()}
        args.update(changes)
        return self.pool.approvals.sign(pid, self.actor, **args)


class Pool:
    def __init__(self, root: Path, store: LedgerStore) -> None:
        self.store = store
        self.config = load_config(EXAMPLE)
        self.pool = self.config.pool(None)
        self.clock = ManualClock()
        self.ids = Uuid7Ids.seeded(7)
        ledger = compose.ledger(store, self.clock, self.ids)
        init_pool(ledger, self.config)
        for rail in ("rtp", "bank-a"):  # two rails: a payment may be routed again
            (funded,) = ledger.submit([Transfer((Posting(
                world_account(rail), pool_account("main", "USD", rail, PoolState.AVAILABLE),
                "USD", 10_000_000_00),), {"purpose": "opening float"})])
            assert funded.error is None
        self.auth = compose.auth_store(store)
        self.payments = compose.payment_service(store, self.config, self.pool,
                                                clock=self.clock, ids=self.ids)
        self.approvals: ApprovalService = compose.approval_service(
            store, self.config, lambda _pool: self.payments, clock=self.clock)
        parts = compose.simulated_dispatching(
            compose.ledger(store, self.clock, self.ids), self.config, self.pool,
            clock=self.clock, ids=self.ids, seed=3, instance="approvals-test",
            policy=compose.engine_policy(), journal_dir=root / "rails",
            acknowledged_on_commit=True,
            approvals=compose.approval_gate(store, self.config, clock=self.clock))
        self.engine = PaymentEngine(self.pool.id, parts.dispatcher)
        self.cashier = Person(self, "cash", ("cashier", "approver"))
        self.leads = [Person(self, f"lead-{i}", ("approver",)) for i in (1, 2, 3)]
        self.admin = Person(self, "boss", ("admin",))
        self.risk = Person(self, "rita", ("risk",))
        self.author = Person(self, "writer", ("risk",))

    def activate(self, text: str) -> int:
        draft = self.approvals.draft(text, self.author.actor)
        for voter in (self.admin, self.leads[0]):
            if self.approvals.store.version(draft.version).state.value == "active":  # type: ignore[union-attr]
                break
            if not voter.secret:
                voter.enrol()
            self.approvals.vote(draft.version, voter.actor, voter.code())
        return draft.version

    def payout(self, amount: int, reference: str, channel: str | None = "rtp") -> str:
        self.clock.advance(seconds=1)
        return self.payments.create(PaymentRequest(
            PaymentKind.PAYOUT, "USD", amount, channel=channel, counterparty="Ada Lovelace",
            reference=reference, destination="GB33BUKB20201555555555"),
            idempotency_key=reference, actor=self.cashier.actor).id

    def passes(self, seconds: float, every_s: float = 0.5) -> None:
        for _ in range(round(seconds / every_s)):
            self.engine.run_once()
            self.clock.advance(seconds=every_s)

    def state(self, pid: str) -> S:
        return self.payments.states([pid])[pid]


@pytest.fixture
def pool(tmp_path: Path, store: LedgerStore) -> Pool:
    found = Pool(tmp_path, store)
    found.activate(RULES)
    for lead in found.leads:
        lead.enrol()
    return found


def test_two_of_three_signatures_approve_and_the_payment_settles(pool: Pool) -> None:
    small = pool.payout(25_00, "small")
    big = pool.payout(600_000, "big")
    pool.passes(1)
    assert pool.state(small) in (S.SUBMITTED, S.CLEARED, S.SETTLED)  # no rule: no approver
    assert pool.state(big) is S.PENDING_APPROVAL
    view = pool.approvals.view(big)
    assert [v.stage.rule_id for v in view.stages] == ["big"]
    assert (view.stages[0].stage.approvers, view.stages[0].eligible) == (2, 3)
    first = pool.leads[0].sign(big)
    assert first.state == "waiting"
    assert len(first.stages[0].signed) == 1
    assert pool.state(big) is S.PENDING_APPROVAL
    pool.leads[2].sign(big)
    assert pool.state(big) is S.APPROVED
    pool.passes(10)
    assert pool.state(big) is S.SETTLED
    events = pool.payments.events(big)
    approve = next(e for e in events if e.to_state is S.APPROVED)
    assert approve.actor is not None
    assert approve.actor.name == "lead-3"


def test_bad_signatures_are_refused_and_change_nothing(pool: Pool) -> None:
    big = pool.payout(600_000, "big")
    other = pool.payout(700_000, "other")
    pool.passes(1)
    lead, second = pool.leads[0], pool.leads[1]
    view = pool.approvals.view(big)
    other_view = pool.approvals.view(other)
    good = signing.sign(lead.key, view.digest)
    forged = signing.sign(Ed25519PrivateKey.generate(), view.digest)
    cases: list[tuple[dict[str, Any], type[Exception]]] = [
        ({"signature": forged}, SignatureMismatch),  # forged: another key's
        ({"signature": signing.sign(lead.key, other_view.digest)}, SignatureMismatch),
        ({"signature": signing.sign(lead.key, other_view.digest),
          "digest": other_view.digest.hex()}, PaymentChanged),  # another payment's digest
        ({"signature": "AAAA"}, InvalidSignature),  # wrong length
        ({"signature": "not base64!"}, InvalidSignature),
        ({"key_id": second.key_id, "signature": good}, UnknownSigningKey),  # another's key
        ({"key_id": "", "signature": good}, SignatureRequired),
    ]
    for changes, error in cases:
        with pytest.raises(error):
            lead.sign(big, **changes)
    assert pool.approvals.view(big).stages[0].signed == ()
    lead.sign(big, signature=good)
    with pytest.raises(AlreadySigned):  # the same signature again: a replay
        lead.sign(big, signature=good)
    pool.cashier.enrol()
    with pytest.raises(SelfApproval):
        pool.cashier.sign(big)
    outsider = Person(pool, "ann", ("approver",))
    outsider.enrol()
    with pytest.raises(NotEligible):
        outsider.sign(big)
    assert len(pool.approvals.view(big).stages[0].signed) == 1
    assert pool.state(big) is S.PENDING_APPROVAL


def test_a_rejection_ends_the_payment(pool: Pool) -> None:
    big = pool.payout(600_000, "big")
    pool.passes(1)
    pool.leads[0].sign(big)
    pool.approvals.reject(big, pool.leads[1].actor, "wrong payee")
    assert pool.state(big) is S.REJECTED
    with pytest.raises(Exception, match="not waiting"):
        pool.leads[2].sign(big)


def test_a_delay_window_holds_the_approval_and_a_named_role_cancels(pool: Pool) -> None:
    waits = pool.payout(6_000_000, "waits")
    cancelled = pool.payout(6_000_001, "cancelled")
    pool.passes(1)
    for pid in (waits, cancelled):
        view = pool.approvals.view(pid)
        assert [v.stage.rule_id for v in view.stages] == ["big", "huge"]
        pool.leads[0].sign(pid)
        pool.leads[1].sign(pid)
        done = pool.leads[2].sign(pid)
        assert done.state == "delayed"
    with pytest.raises(NotCancellable):
        pool.approvals.cancel(cancelled, pool.leads[0].actor, "no")
    pool.approvals.cancel(cancelled, pool.risk.actor, "suspicious")
    assert pool.state(cancelled) is S.CANCELLED
    pool.clock.advance(seconds=300)
    assert pool.approvals.tick() == 0
    assert pool.state(waits) is S.PENDING_APPROVAL
    pool.clock.advance(seconds=400)
    assert pool.approvals.tick() == 1
    assert pool.state(waits) is S.APPROVED


def test_rules_need_a_quorum_of_others_with_totp(pool: Pool) -> None:
    draft = pool.approvals.draft(RULES.replace("600", "900"), pool.author.actor)
    pool.author.enrol()
    code = pool.author.code()
    with pytest.raises(SelfActivation):
        pool.approvals.vote(draft.version, pool.author.actor, code)
    code = pool.admin.code()
    pool.approvals.vote(draft.version, pool.admin.actor, code)
    assert pool.approvals.store.version(draft.version).state.value == "draft"  # type: ignore[union-attr]
    with pytest.raises(TotpReused):
        pool.approvals.confirm_totp(pool.admin.actor, code, "test")
    pool.approvals.vote(draft.version, pool.leads[1].actor, pool.leads[1].code())
    assert pool.approvals.store.version(draft.version).state.value == "active"  # type: ignore[union-attr]


def test_keys_and_rules_refuse_bad_input(pool: Pool) -> None:
    lead = pool.leads[0]
    public = base64.b64encode(signing.raw_public(lead.key)).decode()
    with pytest.raises(KeyAlreadyRegistered):
        pool.approvals.register_key(lead.actor, public, "again", lead.code())
    with pytest.raises(InvalidApprovalRules):
        pool.approvals.draft(RULES.replace("approvers: 2", "approvers: 4"), pool.author.actor)


def test_a_changed_payment_needs_its_signatures_again(pool: Pool) -> None:
    """Routed again after its rail failed it, an approved payment waits in a new round: the
    earlier round's signatures do not count, and replaying one is refused."""
    big = pool.payout(600_000, "rerouted", channel=None)  # routing picks, and may pick again
    pool.passes(1)
    first_round = pool.approvals.view(big)
    old_signature = signing.sign(pool.leads[0].key, first_round.digest)
    pool.leads[0].sign(big, signature=old_signature)
    pool.leads[1].sign(big)
    assert pool.state(big) is S.APPROVED
    # The rail fails it before it is sent: back to screened, then routed and waiting again.
    pool.payments.act(Step(big, Action.RETRY, reason="rail down"))
    pool.passes(1)
    assert pool.state(big) is S.PENDING_APPROVAL, pool.payments.events(big)[-1]
    second_round = pool.approvals.view(big)
    assert second_round.round > first_round.round
    assert second_round.digest != first_round.digest
    assert second_round.stages[0].signed == ()
    with pytest.raises(SignatureMismatch):  # the first round's signature, replayed
        pool.approvals.sign(big, pool.leads[0].actor, key_id=pool.leads[0].key_id,
                            signature=old_signature, digest=second_round.digest.hex())
    with pytest.raises(PaymentChanged):  # signed as it was then
        pool.approvals.sign(big, pool.leads[0].actor, key_id=pool.leads[0].key_id,
                            signature=old_signature, digest=first_round.digest.hex())
    pool.leads[0].sign(big)
    pool.leads[2].sign(big)
    assert pool.state(big) is S.APPROVED
