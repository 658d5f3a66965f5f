"""The engine's question after routing: does this payment wait for approvers?

`RulesGate` implements `payments.ports.ApprovalGate`. It answers as the approvals service's
plan will (service.py `stages_for`): the rules version that was active when the payment was
created, evaluated on the payment as routed and on what risk control decided of it; the
pool's `approval_thresholds` always apply too. `prepare` reads, in the routing transaction,
which versions were active when (a small table) and the risk decisions of payments screened
in an earlier transaction (released from a hold); a payment screened in this transaction
brings its decision with it.
"""

from __future__ import annotations

from collections.abc import Sequence

from fundpool.approvals.ports import RiskFacts
from fundpool.approvals.service import ApprovalService
from fundpool.ledger.ports import WriteSession
from fundpool.payments.model import Payment, PaymentState


class RulesGate:
    def __init__(self, service: ApprovalService) -> None:
        service.store.ensure()  # before the engine's first (write) transaction reads them
        self._service = service
        self._activations: list[tuple[int, int, int | None]] = []
        self._risk: dict[str, RiskFacts] = {}

    def prepare(self, session: WriteSession, payments: Sequence[Payment]) -> None:
        # In the routing transaction: an activation committed before it is seen.
        self._activations = self._service.store.writes(session).activations()
        released = [p.id for p in payments if p.state is not PaymentState.INITIATED]
        self._risk = dict(self._service.risk(released)) \
            if self._activations and released else {}

    def needs_approval(self, payment: Payment, risk: tuple[str, int, int | None] | None
                       ) -> bool:
        if payment.approval_required:
            return True
        if not self._activations:
            return False
        version = self._service.version_at(payment.created_at_us, self._activations)
        if not version:
            return False
        facts = RiskFacts(*risk) if risk is not None else self._risk.get(payment.id)
        return bool(self._service.stages_for(payment, facts, version))
