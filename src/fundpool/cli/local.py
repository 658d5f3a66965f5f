"""The commands' `Backend` on a store of this machine: the services the composition root builds
on it, and the documents the commands print (ledger/docs.py, pool/docs.py, payments/docs.py).

Amounts come in as decimal text and are read at the asset's scale as the store defines it; the
pool and payment operations read the pool configuration (`--config`) when they first need it,
and load the pool's and the payments' modules then: a ledger command starts without them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fundpool import compose
from fundpool.cli.actor import local_actor
from fundpool.cli.backend import PostingText
from fundpool.cli.session import Session, session
from fundpool.core.errors import AssetMismatch, UnknownPending
from fundpool.core.ledger.model import (
    CreatePending,
    Posting,
    PostPending,
    Reverse,
    Transfer,
    VoidPending,
)
from fundpool.ledger.adjustments import Adjustable, checked, touched
from fundpool.ledger.docs import amount_fields, balance_fields, entry_doc, iso
from fundpool.ledger.service import Recorded, find_account
from fundpool.pool.ownership import owned_by_service

if TYPE_CHECKING:
    from fundpool.ledger.verify import VerifyReport
    from fundpool.payments.model import Payment, PaymentKind, PaymentState
    from fundpool.payments.service import PaymentService
    from fundpool.pool.config import FundpoolConfig


@dataclass(slots=True)
class LocalBackend:
    session: Session
    config_option: Path | None = None
    _config: FundpoolConfig | None = None

    def config(self) -> FundpoolConfig:
        if self._config is None:
            from fundpool.cli.pool_options import config_path
            from fundpool.pool.config import load_config

            self._config = load_config(config_path(self.config_option))
        return self._config

    # --- the ledger ----------------------------------------------------------------------------

    def _posting(self, text: PostingText) -> Posting:
        source, destination, asset_code, amount = text
        asset = self.session.asset(asset_code.strip())
        return Posting(source.strip(), destination.strip(), asset.code, asset.parse(amount))

    def _entry(self, recorded: Recorded) -> dict[str, Any]:
        return entry_doc(recorded, self.session.assets())

    def _execute(self, command: Adjustable, reason: str | None) -> dict[str, Any]:
        """Write a raw posting. The operator on the machine may adjust the accounts of pools
        and merchants, but only with a reason, recorded with them as its actor (the
        operating-system user)."""
        ledger = self.session.ledger()
        recorded = ledger.execute(checked(command, touched(command, ledger),
                                          owned=owned_by_service, may_adjust=True,
                                          reason=reason, actor=local_actor()))
        assert recorded is not None  # a money command always records an entry
        return self._entry(recorded)

    def transfer(self, postings: Sequence[PostingText], metadata: dict[str, str],
                 key: str | None, reason: str | None = None) -> dict[str, Any]:
        read = tuple(self._posting(text) for text in postings)
        return self._execute(Transfer(read, metadata, key), reason)

    def pending(self, posting: PostingText, timeout_s: int, metadata: dict[str, str],
                key: str | None, reason: str | None = None) -> dict[str, Any]:
        reserved = self._posting(posting)
        return self._execute(CreatePending(reserved, timeout_s, metadata, key), reason)

    def post(self, pending_id: str, amount: str | None, metadata: dict[str, str],
             key: str | None, reason: str | None = None) -> dict[str, Any]:
        ledger = self.session.ledger()
        reservation = ledger.pending(pending_id)
        if reservation is None:
            raise UnknownPending(pending_id=pending_id)
        amount_minor = None if amount is None else self.session.asset(reservation.asset
                                                                      ).parse(amount)
        return self._execute(PostPending(pending_id, amount_minor, metadata, key), reason)

    def void(self, pending_id: str, metadata: dict[str, str], key: str | None,
             reason: str | None = None) -> dict[str, Any]:
        return self._execute(VoidPending(pending_id, metadata, key), reason)

    def reverse(self, entry_id: str, metadata: dict[str, str], key: str | None,
                reason: str | None = None) -> dict[str, Any]:
        return self._execute(Reverse(entry_id, metadata, key), reason)

    def balance(self, address: str, asset: str | None, at_us: int | None) -> dict[str, Any]:
        s = self.session
        ledger = s.ledger()
        account = find_account(s.store, address)
        if asset is not None:
            held = s.asset(asset)
            if account.asset is not None and account.asset != held.code:
                raise AssetMismatch(
                    address=address, account_asset=account.asset, asset=held.code
                )
            codes = [held.code]
        elif account.asset is not None:
            codes = [account.asset]
        else:
            codes = sorted(code for addr, code in s.store.balances(address) if addr == address)
        as_of_seq = ledger.head().seq if at_us is None else ledger.seq_at(at_us)
        rows = []
        for code in codes:
            amounts = s.store.balance_at(address, code, as_of_seq)
            rows.append({"asset": code, **balance_fields(amounts, s.assets().get(code))})
        return {
            "address": address,
            "at": None if at_us is None else iso(at_us),
            "as_of_seq": as_of_seq,
            "balances": rows,
        }

    def history(self, address: str, asset: str | None, limit: int, before: int | None
                ) -> dict[str, Any]:
        s = self.session
        find_account(s.store, address)
        rows = s.ledger().history(address, asset=asset, limit=limit, before_seq=before)
        assets = s.assets()
        docs: list[dict[str, object]] = []
        for code, row in rows:
            held = assets.get(code)
            docs.append(
                {
                    "seq": row.seq,
                    "entry_id": row.entry_id,
                    "kind": row.kind.value,
                    "at": iso(row.at_us),
                    "asset": code,
                    **amount_fields("posted_change", row.posted_change_minor, held),
                    **amount_fields("pending_out_change", row.pending_out_change_minor, held),
                    **amount_fields("pending_in_change", row.pending_in_change_minor, held),
                    **balance_fields(row.balance, held),
                }
            )
        return {
            "address": address,
            "rows": docs,
            "next_before": rows[-1][1].seq if len(rows) == limit else None,
        }

    def verify(self) -> VerifyReport:
        from fundpool.ledger.verify import verify

        return verify(self.session.store)

    # --- the pool ------------------------------------------------------------------------------

    def pool_view(self, pool: str | None) -> dict[str, Any]:
        from fundpool.pool.docs import view_doc
        from fundpool.pool.view import pool_view

        declared = self.config()
        chosen = declared.pool(pool)
        return view_doc(pool_view(self.session.store, declared, chosen,
                                  declared.rates_for(chosen)))

    def channel_names(self) -> Callable[[str], str]:
        declared = self.config()
        return lambda channel: declared.channel(channel).name

    # --- payments ------------------------------------------------------------------------------

    def payment_service(self, pool: str | None) -> PaymentService:
        declared = self.config()
        return compose.payment_service(self.session.store, declared, declared.pool(pool))

    def payment_doc(self, payment: Payment) -> dict[str, Any]:
        from fundpool.payments import docs as payment_docs

        return payment_docs.payment_doc(payment, self.session.assets().get(payment.asset))

    def create_payment(self, *, kind: PaymentKind, asset: str, amount: str, pool: str | None,
                       channel: str | None, destination_channel: str | None,
                       counterparty: str | None, reference: str | None,
                       metadata: dict[str, str], key: str | None,
                       destination: str | None = None) -> dict[str, Any]:
        from fundpool.payments.model import PaymentRequest

        payments = self.payment_service(pool)
        request = PaymentRequest(
            kind=kind,
            asset=asset,
            amount_minor=self.session.asset(asset).parse(amount),
            channel=channel,
            destination_channel=destination_channel,
            counterparty=counterparty,
            reference=reference,
            metadata=metadata,
            destination=destination,
        )
        return self.payment_doc(payments.create(request, idempotency_key=key,
                                                actor=local_actor()))

    def payment(self, payment_id: str, pool: str | None) -> dict[str, Any]:
        from fundpool.payments import docs as payment_docs
        from fundpool.payments.shares import event_shares

        payments = self.payment_service(pool)
        payment = payments.get(payment_id)
        events = payments.events(payment_id)
        ledger = self.session.ledger()
        bodies = {}
        for entry_id in {e for event in events for e in event.entry_ids}:
            recorded = ledger.entry(entry_id)
            if recorded is not None:
                bodies[entry_id] = recorded.body
        asset = self.session.assets().get(payment.asset)
        shares = event_shares(payment, events, bodies)
        docs = [payment_docs.event_doc(event, mine, asset)
                for event, mine in zip(events, shares, strict=True)]
        return {**self.payment_doc(payment), "events": docs}

    def payments(self, *, pool: str | None, state: PaymentState | None,
                 kind: PaymentKind | None, asset: str | None, channel: str | None, limit: int,
                 after: str | None) -> list[dict[str, Any]]:
        found = self.payment_service(pool).list(
            state=state, kind=kind, asset=asset, channel=channel, limit=limit, after_id=after
        )
        return [self.payment_doc(p) for p in found]


@contextmanager
def open_local(data_dir: Path | None, db_url: str | None, as_json: bool, *,
               config: Path | None = None) -> Iterator[LocalBackend]:
    """The store for one command (cli/session.py: errors exit with 2), as a backend."""
    with session(data_dir, db_url, as_json) as s:
        yield LocalBackend(s, config)
