"""Text every store can keep: NUL characters and unpaired surrogates are refused up front, as
domain errors, on both stores, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from fundpool.core.clock import Uuid7Ids
from fundpool.core.errors import FundpoolError
from fundpool.core.ledger.model import Posting, Transfer
from fundpool.ledger.service import Ledger
from fundpool.payments.model import PaymentKind, PaymentRequest
from fundpool.payments.service import PaymentService
from fundpool.pool.config import load_config
from fundpool.pool.setup import init_pool
from fundpool.stores import payment_store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"
HOSTILE = ["a\x00b", "\ud800", "x\udfffy"]


@pytest.mark.parametrize("text", HOSTILE)
def test_ledger_metadata_refuses_it(text: str) -> None:
    with pytest.raises(FundpoolError) as caught:
        Transfer((Posting("world:a", "user:b", "USD", 1),), {"note": text})
    assert caught.value.code == "invalid_metadata"


@pytest.mark.parametrize("text", HOSTILE)
def test_payments_refuse_it_and_write_nothing(ledger: Ledger, text: str) -> None:
    config = load_config(EXAMPLE)
    pool = config.pool("main")
    init_pool(ledger, config)
    service = PaymentService(
        ledger, payment_store(ledger.store), config, pool, Uuid7Ids.seeded(9)
    )
    head = ledger.head()
    requests = [
        (PaymentRequest(PaymentKind.PAYOUT, "USD", 100, counterparty=text), None),
        (PaymentRequest(PaymentKind.PAYOUT, "USD", 100, reference=text), None),
        (PaymentRequest(PaymentKind.PAYOUT, "USD", 100, metadata={"k": text}), None),
        (PaymentRequest(PaymentKind.PAYOUT, "USD", 100), 1),  # a key that is not text
    ]
    outcomes = service.create_many(requests)  # type: ignore[arg-type]
    codes = [o.code if isinstance(o, FundpoolError) else "created" for o in outcomes]
    assert codes == [
        "invalid_payment", "invalid_payment", "invalid_metadata", "invalid_idempotency_key"
    ]
    assert service.list() == []
    assert ledger.head() == head
