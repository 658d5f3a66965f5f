"""The live simulator's approvers: people of their own, with their own keys.

Each simulated approver holds an Ed25519 key it made itself and a TOTP secret it enrolled
itself, registers its public key like any approver (with a TOTP code), and approves by signing
the payment's digest through the approvals service, which checks it as any other signature. So
the simulator's payouts go through the approval rules, separation of duties and the audit log
like everyone's. A simulated approver signs only where it is eligible: a stage that names a
group of people (the demo's treasury leads) or asks for a TOTP code waits for a person.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fundpool.approvals import signing, totp
from fundpool.approvals.model import SigningKey
from fundpool.approvals.service import ApprovalService
from fundpool.core.actor import Actor
from fundpool.core.errors import FundpoolError

SIMULATED_APPROVERS = (
    Actor("simulator", "simulated-approver", "simulated approver", ("approver",)),
    Actor("simulator", "simulated-approver-2", "simulated approver 2", ("approver",)),
)


@dataclass
class SimulatedApprover:
    actor: Actor
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    key_id: str | None = None


class SimulatedApprovers:
    def __init__(self, approvals: ApprovalService,
                 actors: Sequence[Actor] = SIMULATED_APPROVERS) -> None:
        self._approvals = approvals
        self._people = [SimulatedApprover(actor) for actor in actors]

    def _enrol(self, person: SimulatedApprover) -> str:
        """Register this run's key (a fresh one each start: the private key lives only in
        this process); enrol TOTP first if this approver never did."""
        state = self._approvals.totp_state(person.actor)
        secret = self._approvals.begin_totp(person.actor)["secret"] if not state["enrolled"] \
            else self._secret(person)
        code = totp.code_at(secret, self._approvals.now_us())
        public = base64.b64encode(signing.raw_public(person.key)).decode("ascii")
        found: SigningKey = self._approvals.register_key(person.actor, public, "simulator",
                                                         code)
        person.key_id = found.id
        return found.id

    def _secret(self, person: SimulatedApprover) -> str:
        # Enrolled by an earlier run of the simulator: its secret is where that run left it
        # (the store), as a person's is in their authenticator.
        record = self._approvals.store.totp(person.actor.who)
        assert record is not None
        assert record.secret is not None
        return record.secret

    def approve(self, payment_ids: Sequence[str]) -> list[str]:
        """Sign what each simulated approver may sign; the payments whose approval is now
        complete (approved, or in their delay window)."""
        for person in self._people:
            if person.key_id is None:
                self._enrol(person)
        done: list[str] = []
        for pid in payment_ids:
            try:
                view = self._approvals.view(pid)
                for person in self._people:
                    if view.state != "waiting" or (view.plan and view.plan.totp_required):
                        break
                    if view.refusal(person.actor) is not None:
                        continue  # not eligible for this stage (or signed it already)
                    view = self._approvals.sign(
                        pid, person.actor, key_id=person.key_id,
                        signature=signing.sign(person.key, view.digest),
                        digest=view.digest.hex())
            except FundpoolError:
                continue  # it moved on meanwhile (cancelled, rejected): nothing to do
            if view.state in ("approved", "delayed"):
                done.append(pid)
        return done
