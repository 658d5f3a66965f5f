"""The treasury desk of one pool: FX (fx.py), netting (netting.py), liquidity (liquidity.py:
bands, sweeps, rebalancing plans, credit lines), stress tests (stress.py), and the previews of
splits and waterfalls. Built by the composition root (`compose.desk`), which hands it the
ledger, the payment service, its store and the pool's rate source.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fundpool.core.clock import Clock, IdSource
from fundpool.core.ledger.model import Account
from fundpool.desk.fx import FxDesk, FxSettings, available_reader
from fundpool.desk.liquidity import LiquidityDesk
from fundpool.desk.netting import NettingDesk, partner_opening
from fundpool.desk.ports import DeskAction, DeskStore
from fundpool.desk.stress import StressDesk
from fundpool.ledger.service import Ledger
from fundpool.payments.service import PaymentService
from fundpool.pool.accounts import commission_account
from fundpool.pool.config import FundpoolConfig, PoolConfig
from fundpool.pool.rates import RateSource
from fundpool.treasury import split as splits
from fundpool.treasury import waterfall
from fundpool.treasury.config import TreasuryConfig


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


def desk_accounts(pool: str, treasury: TreasuryConfig, assets: Sequence[str]) -> list[Account]:
    """The accounts the desk credits that no pool setup opens: partners' and agents'
    commissions from split deposits (a deposit's settlement must find them), and the netting
    partners' accounts in each of the pool's assets. A split part naming a merchant credits its
    payable, which `fundpool pool init` opens with the pool's merchants."""
    found = [Account(commission_account(pool, c.asset, part.role, part.party), asset=c.asset,
                     metadata={"pool": pool, "split": c.rule.id})
             for c in treasury.splits.values() for part in c.rule.parts
             if part.role in ("partner", "agent")]
    found += [partner_opening(pool, partner, code) for partner in treasury.partners
              for code in assets]
    return found


def open_desk_accounts(ledger: Ledger, pool: str, treasury: TreasuryConfig,
                       assets: Sequence[str]) -> int:
    """Open `desk_accounts` (one that exists as declared changes nothing); how many were new."""
    return sum(1 for account in desk_accounts(pool, treasury, assets)
               if ledger.open_account(account) is not None)


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
