"""The treasury desk of one pool: FX (fx.py), netting (netting.py), liquidity (liquidity.py:
bands, sweeps, rebalancing plans, credit lines), stress tests (stress.py), and the previews of
splits and waterfalls. Built by the composition root (`compose.desk`), which hands it the
ledger, the payment service, its store and the pool's rate source.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fundpool.core.clock import Clock, IdSource
from fundpool.core.ledger.model import Account
from fundpool.core.money import Asset
from fundpool.desk.fx import FxDesk, FxSettings, available_reader
from fundpool.desk.liquidity import LiquidityDesk
from fundpool.desk.netting import NettingDesk, partner_opening
from fundpool.desk.ports import DeskAction, DeskStore
from fundpool.desk.stress import StressDesk
from fundpool.ledger.service import Ledger
from fundpool.payments.service import PaymentService
from fundpool.pool.accounts import commission_account, merchant_payable
from fundpool.pool.config import FundpoolConfig, PoolConfig
from fundpool.pool.rates import RateSource
from fundpool.treasury import split as splits
from fundpool.treasury import waterfall
from fundpool.treasury.config import REMAINDER_MERCHANT, TreasuryConfig


class UnknownSplitRule(splits.InvalidSplitRule):
    code = "split_rule_unknown"
    title = "no such split rule in this pool"


@dataclass
class Desk:
    pool: PoolConfig
    config: FundpoolConfig
    treasury: TreasuryConfig
    store: DeskStore
    ledger: Ledger
    payments: PaymentService
    clock: Clock
    fx: FxDesk
    netting: NettingDesk
    liquidity: LiquidityDesk
    stress: StressDesk

    @property
    def assets(self) -> dict[str, Asset]:
        channels = {c.id: c for c in self.config.channels}
        return {code: self.config.asset(code) for cid in self.pool.channels
                for code in channels[cid].assets}

    def prepare(self) -> int:
        """Open the accounts the split rules credit (partners' and agents' commissions, a
        named merchant's payable) and the netting partners' accounts: a deposit's settlement
        must find them. Opening an account that exists as declared changes nothing; how many
        were opened."""
        opened = 0
        for config in self.treasury.splits.values():
            for part in config.rule.parts:
                if part.role in ("partner", "agent"):
                    address = commission_account(self.pool.id, config.asset, part.role,
                                                 part.party)
                elif part.role == "merchant" and part.party != REMAINDER_MERCHANT:
                    address = merchant_payable(part.party, config.asset)
                else:
                    continue
                if self.ledger.open_account(Account(address, asset=config.asset, metadata={
                        "pool": self.pool.id, "split": config.rule.id})) is not None:
                    opened += 1
        for partner in self.treasury.partners:
            for code in self.netting.assets:
                if self.ledger.open_account(partner_opening(self.pool.id, partner,
                                                            code)) is not None:
                    opened += 1
        return opened

    # --- previews (nothing is written but the trail of who looked) --------------------------

    def split_rules(self) -> list[tuple[str, splits.SplitRule]]:
        return [(c.asset, c.rule) for c in self.treasury.splits.values()]

    def split_preview(self, amount_minor: int, *, rule_id: str | None = None,
                      rule: Mapping[str, Any] | None = None) -> tuple[splits.SplitRule,
                                                                      tuple[splits.Share, ...]]:
        """The shares of `amount_minor` by a configured rule (`rule_id`) or by a rule given
        whole (`rule`, to try one before it is configured)."""
        if rule is not None:
            found = splits.rule_from_mapping(rule, source="request")
        else:
            config = self.treasury.splits.get(rule_id or "")
            if config is None:
                raise UnknownSplitRule(split=rule_id, rules=sorted(self.treasury.splits))
            found = config.rule
        return found, splits.split(found, amount_minor)

    def waterfall_preview(self, doc: Mapping[str, Any]) -> waterfall.WaterfallReport:
        return waterfall.waterfall_from_mapping(doc).run()

    def actions(self, limit: int = 100) -> list[tuple[int, DeskAction]]:
        return self.store.actions(limit)


def build_desk(ledger: Ledger, store: DeskStore, config: FundpoolConfig, pool: PoolConfig,
               treasury: TreasuryConfig, payments: PaymentService,
               rates: Callable[[], RateSource], *, clock: Clock, ids: IdSource,
               wake: Callable[[], None] | None = None) -> Desk:
    fx = FxDesk(ledger, store, config, pool, rates,
                FxSettings(treasury.spread, treasury.quote_ttl_s), clock=clock, ids=ids,
                available=available_reader(ledger, pool.id))
    netting = NettingDesk(ledger, store, config, pool, treasury.partners, clock=clock,
                          ids=ids)
    liquidity = LiquidityDesk(ledger, store, config, pool, treasury, payments, clock=clock,
                              ids=ids, wake=wake)
    stress = StressDesk(ledger, store, config, pool, treasury, liquidity, rates, clock=clock,
                        ids=ids)
    desk = Desk(pool, config, treasury, store, ledger, payments, clock, fx, netting,
                liquidity, stress)
    return desk
