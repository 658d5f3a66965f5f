"""The risk decision in the payment path, on a real store and the engine a server runs: a
sanctioned payee is blocked with the reasons; a velocity burst is held for review with a case;
a released case's payment is routed and settles; a rejected one is rejected; a held payment
moves no money by any route; a rollback restores the old decisions; the author of a policy
never activates it and the initiator of a payment never decides its case. On both stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from fundpool import compose
from fundpool.core.actor import Actor
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.errors import FundpoolError
from fundpool.core.ledger.model import Posting, Transfer
from fundpool.ledger.ports import LedgerStore
from fundpool.payments.engine import PaymentEngine
from fundpool.payments.model import Action, PaymentKind, PaymentRequest, PaymentState, Step
from fundpool.pool.accounts import PoolState, pool_account, world_account
from fundpool.pool.config import load_config
from fundpool.pool.setup import init_pool
from fundpool.risk.sanctions import shipped_list
from fundpool.risk.service import RiskService, SelfActivation, SelfReview

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"
CASHIER = Actor("user", "u-cashier", "carol", ("cashier",))
RISK = Actor("user", "u-risk", "rita", ("risk",))
RISK_2 = Actor("user", "u-risk-2", "ravi", ("risk",))
S = PaymentState

POLICY = """\
thresholds: {review: 30, hold: 60, block: 90}
groups:
  - name: sanctioned payee
    when:
      - sanctions: {threshold: 85}
    outcome: block
  - name: burst to one payee
    when:
      - payment: {kinds: [payout]}
      - velocity: {per: payee, window: 10m, count_over: 3}
    score: 40
"""
LENIENT = """\
thresholds: {review: 30, hold: 60, block: 90}
groups:
  - name: sanctioned payee
    when:
      - sanctions: {threshold: 85}
    outcome: block
"""


class Pool:
    def __init__(self, root: Path, store: LedgerStore) -> None:
        self.root = root
        self.store = store
        self.config = load_config(EXAMPLE)
        self.pool = self.config.pool(None)
        self.clock = ManualClock()
        self.ids = Uuid7Ids.seeded(5)
        ledger = compose.ledger(self.store, self.clock, self.ids)
        init_pool(ledger, self.config)
        (funded,) = ledger.submit([Transfer((Posting(
            world_account("rtp"), pool_account("main", "USD", "rtp", PoolState.AVAILABLE),
            "USD", 1_000_000_00),), {"purpose": "opening float"})])
        assert funded.error is None
        self.payments = compose.payment_service(self.store, self.config, self.pool,
                                                clock=self.clock, ids=self.ids)
        self.risk: RiskService = compose.risk_service(
            self.store, self.config, lambda _pool: self.payments, clock=self.clock)
        parts = compose.simulated_dispatching(
            compose.ledger(self.store, self.clock, self.ids), self.config, self.pool,
            clock=self.clock, ids=self.ids, seed=3, instance="risk-test",
            policy=compose.engine_policy(), journal_dir=root / "rails",
            acknowledged_on_commit=True,
            screening=compose.risk_engine(self.store, self.config, self.pool,
                                          clock=self.clock, ids=self.ids))
        self.engine = PaymentEngine(self.pool.id, parts.dispatcher)
        self.risk.load_list("synthetic", shipped_list("synthetic.ftm.json"), RISK)

    def activate(self, text: str) -> int:
        draft = self.risk.draft(text, RISK)
        return self.risk.activate(draft.version, RISK_2).version

    def payout(self, payee: str, reference: str, amount: int = 25_00) -> str:
        self.clock.advance(seconds=1)  # one a second: created (and taken up) in this order
        return self.payments.create(PaymentRequest(
            PaymentKind.PAYOUT, "USD", amount, channel="rtp", counterparty=payee,
            reference=reference, destination="GB33BUKB20201555555555"),
            idempotency_key=reference, actor=CASHIER).id

    def passes(self, seconds: float, every_s: float = 0.5) -> None:
        for _ in range(round(seconds / every_s)):
            self.engine.run_once()
            self.clock.advance(seconds=every_s)

    def state(self, pid: str) -> S:
        return self.payments.states([pid])[pid]


@pytest.fixture
def pool(tmp_path: Path, store: LedgerStore) -> Pool:
    """The example pool on each store (tests/conftest.py `store`: SQLite and PostgreSQL)."""
    return Pool(tmp_path, store)


def test_a_sanctioned_payee_is_blocked_with_the_reasons(pool: Pool) -> None:
    version = pool.activate(POLICY)
    blocked = pool.payout("Viktor Sanctionov", "p-1")
    cleared = pool.payout("Ada Lovelace", "p-2")
    pool.passes(1)
    assert pool.state(blocked) is S.REJECTED
    assert pool.state(cleared) in (S.SUBMITTED, S.SETTLED, S.APPROVED, S.CLEARED)
    decision = pool.risk.store.decision(blocked)
    assert decision is not None
    assert decision.outcome == "block"
    assert decision.policy_version == version
    (fired,) = decision.detail["fired"]
    assert fired["group"] == "sanctioned payee"
    assert fired["conditions"][0]["score"] >= 85
    assert fired["conditions"][0]["explanation"]
    events = pool.payments.events(blocked)
    assert events[-1].reason is not None
    assert "sanctioned payee" in events[-1].reason
    assert pool.risk.store.decision(cleared).outcome == "allow"  # type: ignore[union-attr]


def test_a_velocity_burst_is_held_released_and_settles(pool: Pool) -> None:
    pool.activate(POLICY)
    ids = [pool.payout("payee-burst-7", f"b-{i}") for i in range(5)]
    pool.passes(1)
    states = [pool.state(pid) for pid in ids]
    assert states[3:] == [S.HELD, S.HELD]  # the 4th and 5th in ten minutes
    assert S.HELD not in states[:3]
    cases = pool.risk.cases()
    assert sorted(c.payment_id for c in cases) == sorted(ids[3:])
    case = next(c for c in cases if c.payment_id == ids[3])
    assert case.kind == "review"
    assert "burst to one payee" in case.summary

    # Held: nothing moves it but a risk officer (approval, routing, submission are refused).
    for action in (Action.APPROVE, Action.ROUTE, Action.SUBMIT, Action.SETTLE):
        with pytest.raises(FundpoolError):
            pool.payments.act(Step(ids[3], action, channel="rtp"), actor=CASHIER)
    pool.passes(2)
    assert pool.state(ids[3]) is S.HELD

    with pytest.raises(SelfReview):  # the initiator never decides its case
        pool.risk.release(case.id, CASHIER, "mine")
    pool.risk.claim(case.id, RISK)
    released = pool.risk.release(case.id, RISK, "known payee, payroll run")
    assert released.state.value == "released"
    assert released.decided_by == RISK
    other = next(c for c in cases if c.payment_id == ids[4])
    pool.risk.reject(other.id, RISK, "confirmed mule")
    pool.passes(8)
    assert pool.state(ids[3]) is S.SETTLED
    assert pool.state(ids[4]) is S.REJECTED
    notes = [n.action for n in pool.risk.notes(case.id)]
    assert notes == ["opened", "claimed", "released"]


def test_a_rollback_restores_the_old_decisions(pool: Pool) -> None:
    first = pool.activate(LENIENT)
    pool.activate(POLICY)
    burst = [pool.payout("payee-burst-1", f"r-{i}") for i in range(4)]
    pool.passes(1)
    assert pool.state(burst[3]) is S.HELD
    back = pool.risk.rollback(RISK_2)
    assert back.version == first
    again = [pool.payout("payee-burst-1", f"s-{i}") for i in range(4)]
    pool.passes(1)
    assert S.HELD not in [pool.state(pid) for pid in again]
    decision = pool.risk.store.decision(again[3])
    assert decision is not None
    assert decision.policy_version == first


def test_the_author_of_a_policy_never_activates_it(pool: Pool) -> None:
    draft = pool.risk.draft(POLICY, RISK)
    with pytest.raises(SelfActivation):
        pool.risk.activate(draft.version, RISK)
    assert pool.risk.store.active_policy() is None


def test_no_policy_allows_and_records_it(pool: Pool) -> None:
    pid = pool.payout("Viktor Sanctionov", "n-1")
    pool.passes(1)
    assert pool.state(pid) is not S.REJECTED
    decision = pool.risk.store.decision(pid)
    assert decision is not None
    assert decision.outcome == "allow"
    assert decision.policy_version is None


def test_the_alert_bar_signals_follow_the_queue(pool: Pool) -> None:
    from fundpool.risk.service import signals

    pool.activate(POLICY)
    burst = [pool.payout("payee-burst-2", f"q-{i}") for i in range(5)]
    blocked = pool.payout("Viktor Sanctionov", "q-s")
    pool.passes(1)
    now = pool.clock.now_us()
    found = {(s.rule, s.subject): s for s in signals(pool.risk.store, now)}
    assert found[("risk.review_queue", "risk:review")].count == 2
    assert ("risk.sla_breach", "risk:breached") not in found
    sanctions = found[("risk.sanctions_block", f"payment:{blocked}")]
    assert sanctions.severity == "critical"
    assert "Viktor Sanctionov" in sanctions.summary

    later = now + 5 * 3_600_000_000  # past the 4 h review SLA
    late = {(s.rule, s.subject): s for s in signals(pool.risk.store, later)}
    assert late[("risk.sla_breach", "risk:breached")].count == 2

    cases = pool.risk.cases()
    assert {c.payment_id for c in cases} == set(burst[3:])
    for case in cases:
        pool.risk.reject(case.id, RISK, "mule")
    done = {(s.rule, s.subject) for s in signals(pool.risk.store, later)}
    assert ("risk.review_queue", "risk:review") not in done
    assert ("risk.sla_breach", "risk:breached") not in done


def test_a_wei_amount_is_kept_exactly_in_the_decision(pool: Pool) -> None:
    from fundpool.risk.engine import decision_detail
    from fundpool.risk.features import Features
    from fundpool.risk.policy import parse_policy
    from fundpool.risk.rules import Party, Subject, decide

    policy = parse_policy("""\
thresholds: {review: 30, hold: 60, block: 90}
groups:
  - name: large
    when: [{amount: {over: {ETH: "1.5"}}}]
    score: 40
""", {"ETH": 18})
    wei = 20 * 10**18 + 1  # beyond 64 bits
    subject = Subject("p", "payout", "ETH", wei, 0, payee="Ada")
    detail = decision_detail(subject, decide(policy, subject, Features(), Party(), ()))
    condition = detail["fired"][0]["conditions"][0]
    assert condition["amount"] == str(wei)
    assert condition["over"] == str(15 * 10**17)
    assert detail["subject"]["amount_minor"] == str(wei)


def test_payees_sharing_accounts_are_found_as_a_ring() -> None:
    from fundpool.risk.rings import Payout, find_rings

    payouts = [
        Payout("mule-out-1", "USD", 900_00, "ACCT-COLLECT-1"),
        Payout("mule-out-2", "USD", 950_00, "ACCT-COLLECT-1"),
        Payout("mule-out-3", "USD", 400_00, "ACCT-OTHER", device="dev-7"),
        Payout("mule-out-4", "USD", 100_00, "ACCT-COLLECT-1", device="dev-7"),
        Payout("Ada", "USD", 50_00, "ACCT-ADA"),
        Payout("ada", "USD", 60_00, "ACCT-ADA-2"),  # the same name: one person, two ids
        Payout("Bob", "USD", 70_00, "ACCT-BOB"),
    ]
    (ring,) = find_rings(payouts)
    assert ring.payees == ("mule-out-1", "mule-out-2", "mule-out-3", "mule-out-4")
    assert ("destination", "ACCT-COLLECT-1", 3) in ring.shared
    assert ("device", "dev-7", 2) in ring.shared
    assert dict(ring.amounts) == {"USD": 2_350_00}
    assert find_rings(payouts, min_payees=2)[-1].payees == ("Ada", "ada")


RESPONDING = """\
thresholds: {review: 30, hold: 60, block: 90}
groups:
  - name: burst to one payee
    when:
      - payment: {kinds: [payout]}
      - velocity: {per: payee, window: 10m, count_over: 2}
    score: 40
    respond:
      alert: critical
      lower_limit: {per: payee, amount: {USD: "10.00"}, for: 1h}
"""


def test_a_groups_responses_raise_an_alert_and_lower_a_limit(pool: Pool) -> None:
    from fundpool.risk.service import signals

    pool.activate(RESPONDING)
    first = [pool.payout("payee-r", f"l-{i}") for i in range(3)]  # the third fires it
    pool.passes(1)
    assert [pool.state(p) is S.HELD for p in first] == [False, False, True]
    (limit,) = pool.risk.limits()
    assert (limit.per, limit.key, limit.asset, limit.max_minor) == ("payee", "payee-r", "USD",
                                                                     10_00)
    found = {(s.rule, s.severity) for s in signals(pool.risk.store, pool.clock.now_us())}
    assert ("risk.response:burst to one payee", "critical") in found

    # Eleven minutes on, the burst is out of its window, but the lowered limit holds a
    # payout to that payee above 10.00 for the hour, and says why; one under it goes.
    pool.clock.advance(seconds=660)
    above, under = pool.payout("payee-r", "l-above", 25_00), pool.payout("payee-r", "l-ok", 5_00)
    other = pool.payout("payee-other", "l-other", 25_00)
    pool.passes(1)
    assert pool.state(above) is S.HELD
    assert pool.state(under) is not S.HELD
    assert pool.state(other) is not S.HELD
    decision = pool.risk.store.decision(above)
    assert decision is not None
    assert decision.detail["fired"][-1]["group"] == "temporary limit"

    pool.risk.end_limit(limit.id, RISK, "payee verified by phone")
    assert pool.risk.limits() == []
    pool.clock.advance(seconds=660)  # out of the burst's window again
    again = pool.payout("payee-r", "l-again", 25_00)
    pool.passes(1)
    assert pool.state(again) is not S.HELD


def test_the_clis_screen_step_is_the_risk_decision(pool: Pool) -> None:
    from fundpool.risk.engine import screen_now

    pool.activate(POLICY)
    engine = compose.risk_engine(pool.store, pool.config, pool.pool, clock=pool.clock,
                                 ids=pool.ids)
    blocked = pool.payout("Viktor Sanctionov", "cli-1")
    done = screen_now(engine, pool.payments, blocked, CASHIER)
    assert done.state is S.REJECTED
    events = pool.payments.events(blocked)
    assert events[-1].actor is not None
    assert events[-1].actor.kind == "engine"
    assert pool.risk.store.decision(blocked).outcome == "block"  # type: ignore[union-attr]
    with pytest.raises(FundpoolError):  # screened once only
        screen_now(engine, pool.payments, blocked, CASHIER)


def test_an_updated_list_screens_known_counterparties_again_and_alerts_new_hits(
        pool: Pool) -> None:
    from fundpool.risk.screening import InvalidSanctionsFile
    from fundpool.risk.service import signals

    pool.activate(LENIENT)
    known = pool.payout("Ivana Listedova", "k-1")  # paid before anyone listed her
    pool.passes(1)
    assert pool.state(known) is not S.REJECTED
    entity = ('{"id": "new-1", "schema": "Person", "properties": '
              '{"name": ["Ivana Listedova"], "topics": ["sanction"]}}\n')
    before = pool.risk.store.lists()
    with pytest.raises(InvalidSanctionsFile):  # cut short: refused whole, the old list stays
        pool.risk.load_list("synthetic", entity.encode()[:-20], RISK)
    assert pool.risk.store.lists() == before
    assert pool.risk.screen("Viktor Sanctionov")  # still screened against the old list

    done = pool.risk.load_list("update", entity.encode(), RISK)
    assert done.rescreened >= 1
    assert [h["name"] for h in done.new_hits] == ["Ivana Listedova"]
    alerts = {s.rule: s for s in signals(pool.risk.store, pool.clock.now_us())}
    assert alerts["risk.list_hit:Ivana Listedova"].severity == "critical"
    again = pool.risk.load_list("update", entity.encode(), RISK)  # the same list: nothing new
    assert again.new_hits == []
    later = pool.payout("Ivana Listedova", "k-2")
    pool.passes(1)
    assert pool.state(later) is S.REJECTED  # and from now on she is blocked


def test_no_plain_step_gets_a_payment_past_the_risk_decision(pool: Pool) -> None:
    """A payment held by hand before the engine screened it is decided when released; one a
    risk case holds is released only from its case; a cancelled one closes its case."""
    from fundpool.risk.service import RiskCaseOpen

    pool.activate(POLICY)
    sneaky = pool.payout("Viktor Sanctionov", "s-1")
    pool.risk.step(pool.payments, Step(sneaky, Action.HOLD, reason="looking", actor=RISK))
    # No case holds it: a plain release is fine.
    pool.risk.step(pool.payments, Step(sneaky, Action.RELEASE, reason="fine", actor=RISK))
    pool.passes(1)
    assert pool.state(sneaky) is S.REJECTED  # decided on its way out all the same
    assert pool.risk.store.decision(sneaky).outcome == "block"  # type: ignore[union-attr]

    burst = [pool.payout("payee-burst-9", f"s-b{i}") for i in range(5)]
    pool.passes(1)
    held = burst[3]
    assert pool.state(held) is S.HELD
    with pytest.raises(RiskCaseOpen):
        pool.risk.step(pool.payments, Step(held, Action.RELEASE, reason="mine", actor=RISK))
    assert pool.state(held) is S.HELD
    pool.risk.step(pool.payments,
                   Step(burst[4], Action.CANCEL, reason="withdrawn", actor=CASHIER))
    (closed,) = pool.risk.cases_of(burst[4])
    assert closed.state.closed
    assert closed.decision == "closed"
    assert pool.risk.notes(closed.id)[-1].note == "the payment was cancelled: withdrawn"


NEW_PAYEES = """\
thresholds: {review: 30, hold: 60, block: 90}
groups:
  - name: first payout
    when: [{payment: {kinds: [payout]}}, {new_payee: {}}]
    score: 40
"""


def test_a_payout_rejected_as_fraud_teaches_nothing(pool: Pool) -> None:
    """Held first payouts teach the payee's profile (a released one is a known payee next
    time); one a risk officer rejects is taken back: the payee is new again."""
    pool.activate(NEW_PAYEES)
    fraud, honest = pool.payout("Mallory", "f-1"), pool.payout("Ada", "f-2")
    pool.passes(1)
    assert [pool.state(fraud), pool.state(honest)] == [S.HELD, S.HELD]
    (fraud_case,) = pool.risk.cases_of(fraud)
    (honest_case,) = pool.risk.cases_of(honest)
    pool.risk.reject(fraud_case.id, RISK, "confirmed fraud")
    pool.risk.release(honest_case.id, RISK, "known supplier")
    again, next_one = pool.payout("Mallory", "f-3"), pool.payout("Ada", "f-4")
    pool.passes(1)
    assert pool.state(again) is S.HELD  # Mallory is new again
    assert pool.state(next_one) is not S.HELD  # Ada is known


def test_a_list_with_a_byte_order_mark_is_read_as_what_it_is() -> None:
    from fundpool.risk.sanctions import load_content

    ftm = shipped_list("synthetic.ftm.json")
    assert load_content("bom", b"\xef\xbb\xbf" + ftm).format == "ftm"
    assert load_content("bom", b"\xef\xbb\xbf" + ftm).entries == load_content("bom", ftm).entries


def test_clearing_a_false_positive_shares_the_index(pool: Pool) -> None:
    """Clearing a hit changes the allow-list the engine screens with, not its index."""
    pool.activate(POLICY)
    pool.payout("Ada Lovelace", "c-0")
    pool.passes(1)  # the engine has built its index
    engine = pool.engine.dispatcher._screening  # type: ignore[attr-defined]
    before = engine.state.screener
    hits = {h["entry_id"] for h in pool.risk.screen("Viktor Sanctionov")}
    assert hits
    for entry_id in hits:
        pool.risk.clear_hit("Viktor Sanctionov", entry_id, RISK, "another Viktor")
    cleared = pool.payout("Viktor Sanctionov", "c-1")
    pool.passes(1)
    after = engine.state.screener
    assert after is not before
    assert after._postings is before._postings  # the same index, another allow-list
    assert pool.state(cleared) is not S.REJECTED
    decision = pool.risk.store.decision(cleared)
    assert decision is not None
    assert decision.outcome == "allow"
    assert not {h["entry_id"] for h in decision.detail["hits"]} & hits
