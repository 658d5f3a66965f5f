"""A payment's two changes on the step path (`routed`, `moved`) are written field by field for
speed: each must keep every field it does not change, as `dataclasses.replace` would."""

from __future__ import annotations

from dataclasses import fields, replace

from fundpool.core.actor import ENGINE
from fundpool.payments.model import Payment, PaymentKind, PaymentState

# Every field, none at its default: a field added to Payment must be added here.
VALUES: dict[str, object] = {
    "id": "0190f0e1-0000-7000-8000-000000000001",
    "pool": "main",
    "kind": PaymentKind.PAYOUT,
    "asset": "USD",
    "amount_minor": 10_000,
    "fee_minor": 45,
    "channel": "rtp",
    "destination_channel": "bank-a",
    "counterparty": "payee",
    "reference": "r-1",
    "state": PaymentState.ROUTED,
    "approval_required": True,
    "created_at_us": 1,
    "updated_at_us": 2,
    "idempotency_key": "key-1",
    "request_hash": b"\x01",
    "metadata": {"note": "x"},
    "version": 3,
    "destination": "021000021-123",
    "initiated_by": ENGINE,
}


def test_the_test_sets_every_field() -> None:
    assert set(VALUES) == {f.name for f in fields(Payment)}


def test_routed_changes_the_rail_and_fee_only() -> None:
    payment = Payment(**VALUES)  # type: ignore[arg-type]
    assert payment.routed("bank-a", None, 25) == replace(
        payment, channel="bank-a", destination_channel=None, fee_minor=25)


def test_moved_changes_the_state_time_and_version_only() -> None:
    payment = Payment(**VALUES)  # type: ignore[arg-type]
    assert payment.moved(PaymentState.APPROVED, 9) == replace(
        payment, state=PaymentState.APPROVED, updated_at_us=9, version=4)
