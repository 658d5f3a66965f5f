"""How the dispatcher paces itself, and how much of a tick goes in one ledger transaction."""

from __future__ import annotations

from dataclasses import dataclass

# A tick's work per ledger transaction. An outcome costs at most three ledger commands (a
# failover's retry and approve; a reversal's entries), a submit one: 2,000 of each stays under
# the ledger's BATCH_COMMANDS_MAX (8,192) even when every summed entry falls back to singles.
OUTCOMES_PER_TRANSACTION = 2_000
SUBMITS_PER_TRANSACTION = 2_000


@dataclass(frozen=True, slots=True)
class DispatchPolicy:
    batch_age_us: int = 2_000_000  # a batch goes out when its oldest payment waited this long
    stuck_after_us: int = 3 * 86_400_000_000  # in transit longer is reported as stuck
    rescan_us: int = 5_000_000  # how often approved payments are looked for (human approvals)


DEFAULT_DISPATCH_POLICY = DispatchPolicy()
