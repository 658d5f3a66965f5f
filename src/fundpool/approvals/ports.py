"""What approvals ask of where they are kept (`stores/approvals_sql.py`) and of the rest of the
system (who the users are, what risk decided). Writes go on a payment session's transaction
(`writes(session)`), so an approval's record and the payment step it causes commit together."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fundpool.approvals.model import (
    ApprovalAction,
    Delay,
    DelayState,
    Plan,
    RulesState,
    RulesVersion,
    Signature,
    SigningKey,
    Vote,
)
from fundpool.ledger.ports import WriteSession


@dataclass(frozen=True, slots=True)
class TotpRecord:
    user_id: str
    secret: str | None  # the enrolled secret (None: not enrolled)
    pending_secret: str | None  # an enrolment begun, confirmed by the first good code
    confirmed_at_us: int | None
    last_step: int  # the last 30-second step whose code was used


@dataclass(frozen=True, slots=True)
class RiskFacts:
    grade: str  # the decision's outcome: allow | review | hold | block
    score: int
    policy_version: int | None


class ApprovalReads(Protocol):
    def key(self, key_id: str) -> SigningKey | None: ...

    def keys(self, user_id: str | None = None) -> list[SigningKey]: ...

    def totp(self, user_id: str) -> TotpRecord | None: ...

    def versions(self) -> list[RulesVersion]: ...

    def version(self, version: int) -> RulesVersion | None: ...

    def votes(self, version: int) -> list[Vote]: ...

    def plan(self, payment_id: str, round_: int) -> Plan | None: ...

    def signatures(self, payment_id: str, round_: int) -> list[Signature]: ...

    def delay(self, payment_id: str) -> Delay | None: ...

    def activations(self) -> list[tuple[int, int, int | None]]:
        """(version, activated_at_us, retired_at_us) of every version ever activated."""
        ...


class ApprovalWrites(ApprovalReads, Protocol):
    def add_key(self, key: SigningKey) -> None: ...

    def revoke_key(self, key_id: str, at_us: int) -> None: ...

    def set_totp(self, record: TotpRecord) -> None: ...

    def next_version(self) -> int: ...

    def add_version(self, version: RulesVersion) -> None: ...

    def set_version_state(self, version: int, state: RulesState, at_us: int) -> None: ...

    def add_vote(self, vote: Vote) -> None: ...

    def add_plan(self, plan: Plan) -> None:
        """Pin a plan (a second writer's plan for the same round is kept, not this one)."""
        ...

    def add_signature(self, signature: Signature) -> None: ...

    def set_delay(self, delay: Delay) -> None: ...

    def set_delay_state(self, payment_id: str, state: DelayState) -> None: ...

    def add_action(self, action: ApprovalAction) -> None: ...


class ApprovalStore(ApprovalReads, Protocol):
    def ensure(self) -> None: ...

    def writes(self, session: WriteSession) -> ApprovalWrites: ...

    def due(self, now_us: int, limit: int) -> list[Delay]:
        """Delay windows that have ended and still wait, oldest first."""
        ...


# What risk control decided of payments, by payment (the risk store's decisions): the
# composition root hands it over, so approvals read no table of risk's.
RiskDecisions = Callable[[Sequence[str]], Mapping[str, RiskFacts]]


class Directory(Protocol):
    """Who the users are: for a group's members and the number holding a role (N)."""

    def users(self) -> list[Any]: ...


def role_sizes(users: Iterable[Any]) -> Mapping[str, int]:
    sizes: dict[str, int] = {}
    for user in users:
        if getattr(user, "disabled", False):
            continue
        for role in user.roles:
            sizes[str(role)] = sizes.get(str(role), 0) + 1
    return sizes
