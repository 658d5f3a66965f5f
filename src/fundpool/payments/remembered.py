"""Payments as this process last saw them committed, taken again instead of read again.

Every change to a payment is a new version: the store's one UPDATE sets the next version and
refuses to go back (stores/payments_sql.py), so a payment whose stored version is the one
remembered is, field for field, the payment remembered. A session (session.py) asks the store
for the versions of the payments it needs (one column each, under the writer's lock) and
reads in full only those it does not remember or that changed since: the dispatcher takes up
at every tick the payments it queued or sent at the one before, and building each again from
its twenty columns is most of what reading them costs.

Bounded: the least recently kept are forgotten first. Shared by the threads of a service,
so kept under a lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

from fundpool.payments.model import Payment

PAYMENTS_REMEMBERED_MAX = 16_384  # a few MB: the dispatcher's queues and what it has in flight


class RememberedPayments:
    def __init__(self, size_max: int = PAYMENTS_REMEMBERED_MAX) -> None:
        self._payments: OrderedDict[str, Payment] = OrderedDict()
        self._size_max = size_max
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._payments)

    def get(self, ids: Iterable[str]) -> dict[str, Payment]:
        """The payments remembered among `ids` (to be checked against stored versions)."""
        with self._lock:
            payments = self._payments
            return {pid: payment for pid in ids if (payment := payments.get(pid)) is not None}

    def keep(self, payments: Iterable[Payment]) -> None:
        """These payments were committed as they are."""
        with self._lock:
            kept = self._payments
            for payment in payments:
                kept[payment.id] = payment
                kept.move_to_end(payment.id)
            while len(kept) > self._size_max:
                kept.popitem(last=False)
