"""The FX desk on both stores: a quote, its countdown and lock, the conversion as one ledger
entry through the FX position accounts, the P&L, a payout converted on the way, and every
refusal leaving the ledger as it was. Figures worked by hand (docs/treasury.md): EUR/USD mid
1.0843, spread 0.25 %: 1,000.00 EUR buys 1,081.58 USD (1,081.58925 rounded down), and the
pool earns 1,084.30 - 1,081.58 = 2.72 USD."""

from __future__ import annotations

import pytest

from fundpool.core.errors import FundpoolError
from fundpool.desk.fx import QuoteNotOpen, UnknownQuote
from fundpool.payments.model import PaymentKind, PaymentRequest, PaymentState
from fundpool.treasury.fx import QuoteExpired, UnknownRate, fx_position
from tests.desk.conftest import APPROVER, CASHIER, Pool


def test_a_quote_accepted_converts_once_at_its_rate(pool: Pool) -> None:
    pool.fund("sepa", "EUR", 10_000_00)
    pool.fund("rtp", "USD", 100_000_00)
    quote = pool.desk.fx.quote("EUR", "USD", sell_minor=1_000_00, actor=CASHIER)
    assert quote.state == "open"
    assert quote.body["buy_minor"] == "108158"
    assert (quote.body["sell_channel"], quote.body["buy_channel"]) == ("sepa", "rtp")
    assert quote.body["expires_at_us"] == quote.created_at_us + 30_000_000
    head = pool.ledger.head().seq

    done = pool.desk.fx.accept(quote.id, actor=CASHIER)

    assert done.state == "executed"
    assert pool.ledger.head().seq == head + 3  # two position accounts opened, one entry
    assert pool.available("sepa", "EUR") == 9_000_00
    assert pool.available("rtp", "USD") == 101_081_58
    # Each asset still sums to zero: the position accounts carry the other side.
    assert pool.balance(fx_position("main", "EUR"), "EUR") == 1_000_00
    assert pool.balance(fx_position("main", "USD"), "USD") == -1_081_58
    entry = pool.ledger.entry(done.body["entry_id"])
    assert entry is not None
    metadata = entry.body["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["quote"] == quote.id
    assert '"u-cashier"' in metadata["actor"]
    (pnl,) = pool.desk.fx.pnl()
    assert (pnl.pair, pnl.realised_minor, pnl.unrealised_minor, pnl.count) == (
        "EUR/USD", 272, 0, 1)

    with pytest.raises(QuoteNotOpen):
        pool.desk.fx.accept(quote.id, actor=APPROVER)
    assert pool.available("rtp", "USD") == 101_081_58
    actions = [a.action for _, a in pool.desk.actions()]
    assert actions[:3] == ["fx.execute", "fx.accept", "fx.quote"]


def test_an_expired_quote_converts_nothing(pool: Pool) -> None:
    pool.fund("sepa", "EUR", 10_000_00)
    pool.fund("rtp", "USD", 100_000_00)
    quote = pool.desk.fx.quote("EUR", "USD", buy_minor=500_00, actor=CASHIER)
    pool.clock.advance(seconds=30)
    head = pool.ledger.head().seq
    with pytest.raises(QuoteExpired):
        pool.desk.fx.accept(quote.id, actor=CASHIER)
    assert pool.ledger.head().seq == head
    assert pool.desk.fx.get(quote.id).state == "expired"
    with pytest.raises(QuoteNotOpen):
        pool.desk.fx.accept(quote.id, actor=CASHIER)


def test_a_conversion_the_ledger_refuses_is_refused_whole(pool: Pool) -> None:
    pool.fund("sepa", "EUR", 100_00)  # less than the quote sells
    pool.fund("rtp", "USD", 100_000_00)
    quote = pool.desk.fx.quote("EUR", "USD", sell_minor=1_000_00, actor=CASHIER)
    with pytest.raises(FundpoolError) as refused:
        pool.desk.fx.accept(quote.id, actor=CASHIER)
    assert refused.value.code == "insufficient_funds"
    assert pool.desk.fx.get(quote.id).state == "refused"
    assert pool.available("sepa", "EUR") == 100_00
    assert pool.available("rtp", "USD") == 100_000_00


def test_bad_quotes_are_refused_and_nothing_is_kept(pool: Pool) -> None:
    with pytest.raises(UnknownRate):
        pool.desk.fx.quote("EUR", "ETH", sell_minor=100_00, actor=CASHIER)  # never chained
    with pytest.raises(FundpoolError) as same:
        pool.desk.fx.quote("EUR", "EUR", sell_minor=100_00, actor=CASHIER)
    assert same.value.code == "invalid_fx_quote"
    with pytest.raises(FundpoolError) as unknown_asset:
        pool.desk.fx.quote("GBP", "USD", sell_minor=100_00, actor=CASHIER)
    assert unknown_asset.value.code == "fx_no_channel_for_asset"
    with pytest.raises(FundpoolError) as wrong_channel:
        pool.desk.fx.quote("EUR", "USD", sell_minor=100_00, sell_channel="rtp", actor=CASHIER)
    assert wrong_channel.value.code == "fx_no_channel_for_asset"
    with pytest.raises(UnknownQuote):
        pool.desk.fx.accept("no-such-quote", actor=CASHIER)
    assert pool.desk.fx.quotes() == []


def test_a_payout_in_another_asset_is_converted_on_the_way(pool: Pool) -> None:
    pool.fund("sepa", "EUR", 10_000_00)
    pool.fund("rtp", "USD", 1_000_00)
    quote, payment = pool.desk.fx.convert_and_pay(
        pool.payments, funding_asset="EUR", actor=CASHIER,
        request=PaymentRequest(PaymentKind.PAYOUT, "USD", 2_500_00, None,
                               counterparty="Jane Roe", reference="invoice 7",
                               destination="021000021-123456789"))
    assert quote.state == "executed"
    assert quote.body["buy_minor"] == "250000"
    # 2,500.00 USD costs 2,500.00 / (1.0843 x 0.9975) = 2,311.4135... EUR, rounded up.
    assert quote.body["sell_minor"] == "231142"
    assert payment.state is PaymentState.INITIATED
    assert payment.metadata["fx_quote"] == quote.id
    assert payment.channel == "rtp"
    assert pool.available("rtp", "USD") == 3_500_00
    assert pool.available("sepa", "EUR") == 10_000_00 - 2_311_42


def test_a_converted_payout_goes_on_a_payout_rail_and_a_refused_one_converts_nothing(
        pool: Pool) -> None:
    pool.fund("sepa", "EUR", 10_000_00)
    pool.fund("book", "USD", 9_000_000_00)  # holds the most USD, but carries no payout
    pool.fund("rtp", "USD", 1_000_00)
    _, payment = pool.desk.fx.convert_and_pay(
        pool.payments, funding_asset="EUR", actor=CASHIER,
        request=PaymentRequest(PaymentKind.PAYOUT, "USD", 100_00, None,
                               destination="021000021-123456789"))
    assert payment.channel != "book"
    head = pool.ledger.head().seq
    with pytest.raises(FundpoolError) as refused:
        pool.desk.fx.convert_and_pay(
            pool.payments, funding_asset="EUR", actor=CASHIER,
            request=PaymentRequest(PaymentKind.PAYOUT, "USD", 100_00, "book",
                                   destination="021000021-123456789"))
    assert refused.value.code == "invalid_payment"
    assert pool.ledger.head().seq == head  # nothing converted
    assert len(pool.desk.fx.quotes()) == 1
