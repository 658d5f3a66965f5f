"""Replay: the ledger's state as a fold over its journal, entry by entry.

Balances, accounts and pending transfers are projections of the journal. Folding the canonical
bodies in seq order rebuilds them, which is how `verify` checks the stored legs and balances and
how any past instant is reconstructed. Each step re-checks the account bounds the engine
enforced, so a forged entry that overdraws an account is caught even with a recomputed chain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fundpool.core.errors import FundpoolError
from fundpool.core.ledger.engine import BalanceKey, check_bounds
from fundpool.core.ledger.model import (
    ZERO_BALANCE,
    Account,
    Balance,
    EntryKind,
    PendingState,
    PendingTransfer,
)
from fundpool.core.money import Asset, AssetKind


class ReplayError(ValueError):
    """An entry that cannot have been written by the engine."""


_FINISHED = {
    EntryKind.PENDING_POSTED.value: PendingState.POSTED,
    EntryKind.PENDING_VOIDED.value: PendingState.VOIDED,
    EntryKind.PENDING_EXPIRED.value: PendingState.EXPIRED,
}


@dataclass(slots=True)
class ReplayState:
    assets: dict[str, Asset] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    balances: dict[BalanceKey, Balance] = field(default_factory=dict)
    pendings: dict[str, PendingTransfer] = field(default_factory=dict)
    reversed_by: dict[str, str] = field(default_factory=dict)
    seq: int = 0
    at_us: int = 0

    def apply(self, body: Mapping[str, Any]) -> dict[BalanceKey, Balance]:
        """Fold one entry; return the balances it changed, as they stand after it."""
        try:
            return self._apply(body)
        except (KeyError, TypeError, ValueError, FundpoolError) as error:
            if isinstance(error, ReplayError):
                raise
            raise ReplayError(f"{type(error).__name__}: {error}") from error

    def _apply(self, body: Mapping[str, Any]) -> dict[BalanceKey, Balance]:
        kind = body["kind"]
        seq = body["seq"]
        if seq != self.seq + 1:
            raise ReplayError(f"entry seq {seq} follows {self.seq}")
        if body["at_us"] < self.at_us:
            raise ReplayError(f"entry time {body['at_us']} precedes {self.at_us}")
        self.seq, self.at_us = seq, body["at_us"]
        if kind == EntryKind.ASSET_DEFINED:
            spec = body["asset"]
            self.assets[spec["code"]] = Asset(spec["code"], spec["scale"], AssetKind(spec["kind"]))
            return {}
        if kind == EntryKind.ACCOUNT_OPENED:
            spec = body["account"]
            self.accounts[spec["address"]] = Account(**spec)
            return {}
        if kind == EntryKind.TRANSFER:
            deltas: dict[BalanceKey, int] = {}
            for posting in body["postings"]:
                amount = _amount(posting["amount_minor"])
                source = (posting["source"], posting["asset"])
                destination = (posting["destination"], posting["asset"])
                deltas[source] = deltas.get(source, 0) - amount
                deltas[destination] = deltas.get(destination, 0) + amount
            changed = {}
            for key, delta in deltas.items():
                old = self.balances.get(key, ZERO_BALANCE)
                changed[key] = self._set(key, old, old._replace(posted=old.posted + delta), delta)
            reverses = body.get("reverses")
            if reverses is not None:
                if reverses in self.reversed_by:
                    raise ReplayError(f"transaction {reverses} reversed twice")
                self.reversed_by[reverses] = body["id"]
            return changed
        if kind == EntryKind.PENDING_CREATED:
            posting = body["posting"]
            asset, amount = posting["asset"], _amount(posting["amount_minor"])
            source, destination = (posting["source"], asset), (posting["destination"], asset)
            source_old = self.balances.get(source, ZERO_BALANCE)
            destination_old = self.balances.get(destination, ZERO_BALANCE)
            changed = {
                source: self._set(
                    source,
                    source_old,
                    source_old._replace(pending_out=source_old.pending_out + amount),
                    -amount,
                ),
                destination: self._set(
                    destination,
                    destination_old,
                    destination_old._replace(pending_in=destination_old.pending_in + amount),
                    amount,
                ),
            }
            self.pendings[body["id"]] = PendingTransfer(
                id=body["id"],
                source=posting["source"],
                destination=posting["destination"],
                asset=asset,
                amount_minor=amount,
                expires_at_us=body["expires_at_us"],
                created_seq=seq,
            )
            return changed
        if kind in _FINISHED:
            pending = self.pendings.get(body["pending_id"])
            if pending is None or pending.state is not PendingState.PENDING:
                raise ReplayError(f"pending transfer {body['pending_id']} is not pending")
            posted = _amount(body["posted_minor"])
            if posted > pending.amount_minor or (kind != "pending_posted" and posted):
                raise ReplayError(f"pending transfer {pending.id} posts {posted}")
            if kind == "pending_expired" and pending.expires_at_us > body["at_us"]:
                raise ReplayError(f"pending transfer {pending.id} expired before its time")
            amount = pending.amount_minor
            source = (pending.source, pending.asset)
            destination = (pending.destination, pending.asset)
            source_old = self.balances.get(source, ZERO_BALANCE)
            destination_old = self.balances.get(destination, ZERO_BALANCE)
            changed = {
                source: self._set(
                    source,
                    source_old,
                    Balance(
                        source_old.posted - posted,
                        source_old.pending_out - amount,
                        source_old.pending_in,
                    ),
                    0,
                ),
                destination: self._set(
                    destination,
                    destination_old,
                    Balance(
                        destination_old.posted + posted,
                        destination_old.pending_out,
                        destination_old.pending_in - amount,
                    ),
                    0,
                ),
            }
            self.pendings[pending.id] = PendingTransfer(
                id=pending.id,
                source=pending.source,
                destination=pending.destination,
                asset=pending.asset,
                amount_minor=amount,
                expires_at_us=pending.expires_at_us,
                created_seq=pending.created_seq,
                state=_FINISHED[kind],
                posted_amount_minor=posted,
                finished_seq=seq,
            )
            return changed
        raise ReplayError(f"unknown entry kind {kind!r}")

    def _set(self, key: BalanceKey, old: Balance, new: Balance, delta: int) -> Balance:
        account = self.accounts.get(key[0])
        if account is None:
            raise ReplayError(f"account {key[0]} moves money before it is opened")
        if key[1] not in self.assets:
            raise ReplayError(f"asset {key[1]} is used before it is defined")
        if new.pending_out < 0 or new.pending_in < 0:
            raise ReplayError(f"account {key[0]} has a negative reservation")
        check_bounds(account, key[1], old, new, delta)
        self.balances[key] = new
        return new


def _amount(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ReplayError(f"amount {value!r} is not a non-negative integer")
    return value
