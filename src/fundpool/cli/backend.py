"""The port of the commands that act on a store of this machine or on a fundpool server.

`Backend` is what those commands need (`ledger transfer | pending | post | void | reverse |
balance | history | verify`, `pool view`, `payment create | show | list`): each operation
returns the document the command prints, the same on both, so the command renders it once.
Two implement it: `LocalBackend` (cli/local.py: the services the composition root builds on
the store) and `RemoteBackend` (cli/remote.py: the server's API through `fundpool.client`);
`open_backend` (cli/target.py) chooses one from the options.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from fundpool.ledger.verify import VerifyReport
    from fundpool.payments.model import PaymentKind, PaymentState

# A posting as typed: (source, destination, asset, amount), the amount decimal text.
PostingText = tuple[str, str, str, str]


class Backend(Protocol):
    # --- the ledger ----------------------------------------------------------------------------

    # A posting that touches an account of a pool or a merchant is an adjustment and needs a
    # `reason` (ledger/adjustments.py); with one, any posting is recorded as an adjustment.

    def transfer(self, postings: Sequence[PostingText], metadata: dict[str, str],
                 key: str | None, reason: str | None = None) -> dict[str, Any]:
        """The entry of a transfer of `postings`, all or none."""
        ...

    def pending(self, posting: PostingText, timeout_s: int, metadata: dict[str, str],
                key: str | None, reason: str | None = None) -> dict[str, Any]:
        """The entry reserving `posting` for `timeout_s`."""
        ...

    def post(self, pending_id: str, amount: str | None, metadata: dict[str, str],
             key: str | None, reason: str | None = None) -> dict[str, Any]:
        """The entry posting a reservation, in full or `amount` of it."""
        ...

    def void(self, pending_id: str, metadata: dict[str, str], key: str | None,
             reason: str | None = None) -> dict[str, Any]: ...

    def reverse(self, entry_id: str, metadata: dict[str, str], key: str | None,
                reason: str | None = None) -> dict[str, Any]: ...

    def balance(self, address: str, asset: str | None, at_us: int | None) -> dict[str, Any]:
        """Every asset the account holds (a single-asset account: its asset, zero when never
        posted), or `asset` only; now, or as of `at_us`."""
        ...

    def history(self, address: str, asset: str | None, limit: int, before: int | None
                ) -> dict[str, Any]:
        """The `limit` newest entries that changed the account (before seq `before`), one
        row per asset each changed, and where the next page starts."""
        ...

    def verify(self) -> VerifyReport: ...

    # --- the pool ------------------------------------------------------------------------------

    def pool_view(self, pool: str | None) -> dict[str, Any]:
        """The pool by state (`pool`, or the only one)."""
        ...

    def channel_names(self) -> Callable[[str], str]:
        """A channel's name by its id."""
        ...

    # --- payments ------------------------------------------------------------------------------

    def create_payment(self, *, kind: PaymentKind, asset: str, amount: str, pool: str | None,
                       channel: str | None, destination_channel: str | None,
                       counterparty: str | None, reference: str | None,
                       metadata: dict[str, str], key: str | None,
                       destination: str | None = None) -> dict[str, Any]: ...

    def payment(self, payment_id: str, pool: str | None) -> dict[str, Any]:
        """The payment and its events (`events`), oldest first."""
        ...

    def payments(self, *, pool: str | None, state: PaymentState | None,
                 kind: PaymentKind | None, asset: str | None, channel: str | None, limit: int,
                 after: str | None) -> list[dict[str, Any]]:
        """`limit` payments, newest first, after the payment `after`."""
        ...
