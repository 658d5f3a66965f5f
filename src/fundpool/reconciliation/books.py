"""`LedgerBooks`: the `Books` port on the ledger service. An adjustment is booked as the
API's raw postings are (ledger/adjustments.py: kind, reason and actor in the entry's
metadata, inside the hash chain); a channel's total at an instant is the posted balance of its
four state accounts after the last entry made at or before it (pool/view.py: TOTAL)."""

from __future__ import annotations

from fundpool.core.actor import Actor
from fundpool.core.errors import invariant
from fundpool.core.ledger.model import Posting, Transfer
from fundpool.ledger.adjustments import checked
from fundpool.ledger.service import Ledger
from fundpool.pool.accounts import TOTAL_STATES, pool_account


class LedgerBooks:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def book(self, *, source: str, destination: str, asset: str, amount_minor: int,
             reason: str, actor: Actor, idempotency_key: str) -> str:
        command = Transfer((Posting(source, destination, asset, amount_minor),), {},
                           idempotency_key)
        adjusted = checked(command, (source, destination), owned=lambda _address: True,
                           may_adjust=True, reason=reason, actor=actor)
        recorded = self.ledger.execute(adjusted)
        invariant(recorded is not None, "an adjustment always records an entry")
        assert recorded is not None
        return recorded.id

    def channel_total(self, pool: str, channel: str, asset: str, at_us: int) -> int:
        seq = self.ledger.seq_at(at_us)
        if seq == 0:
            return 0
        store = self.ledger.store
        return sum(store.balance_at(pool_account(pool, asset, channel, state), asset, seq).posted
                   for state in TOTAL_STATES)
