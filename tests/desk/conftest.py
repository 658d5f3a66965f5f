"""A pool with a treasury file on either store, on a clock the test moves: the desk as the
composition root builds it, its ledger funded from the channels' outside worlds."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import fundpool.stores
from fundpool.core.actor import Actor
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.ledger.model import Posting
from fundpool.desk.service import Desk, build_desk
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.payments.service import PaymentService
from fundpool.pool.accounts import PoolState, pool_account, world_account
from fundpool.pool.config import FundpoolConfig, load_config
from fundpool.pool.rates import StaticRates
from fundpool.pool.setup import init_pool
from fundpool.stores.desk_sql import SqlDeskStore
from fundpool.treasury.config import load_treasury

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DAY = 1_796_601_600_000_000  # 2026-12-07T00:00:00Z
HOUR = 3_600_000_000
CASHIER = Actor("user", "u-cashier", "cashier", roles=("cashier",))
APPROVER = Actor("user", "u-approver", "approver", roles=("approver",))

TREASURY = """
[fx]
spread = "0.25"
quote_ttl_s = 30

[netting]
partners = ["partner-pool-a", "agent-7"]

[liquidity]
stale_after_s = 30
sweep_every_s = 10

[[splits]]
id = "marketplace"
asset = "USD"
remainder = "merchant"
parts = [
  { party = "platform", role = "platform", percent = "2.9", fixed = "0.30" },
  { party = "partner-pool-a", role = "partner", percent = "1" },
  { party = "agent-7", role = "agent", percent = "0.5" },
]
"""


class Pool:
    """The example pool with `treasury` as its treasury file."""

    def __init__(self, store: LedgerStore, directory: Path, treasury: str = TREASURY) -> None:
        for name in ("pool.toml", "rates.toml"):  # the pool names treasury.toml
            shutil.copy(EXAMPLES / name, directory / name)
        (directory / "treasury.toml").write_text(treasury)
        self.config: FundpoolConfig = load_config(directory / "pool.toml")
        self.pool = self.config.pool("main")
        self.store = store
        self.clock = ManualClock(DAY + 9 * HOUR)
        self.ids = Uuid7Ids.seeded(11)
        self.ledger = Ledger(store, self.clock, self.ids)
        init_pool(self.ledger, self.config)
        self.payments = PaymentService(self.ledger, fundpool.stores.payment_store(store),
                                       self.config, self.pool, self.ids)
        assets = {code: self.config.asset(code) for code in ("USD", "EUR", "USDT", "ETH",
                                                              "E-CNY")}
        self.treasury = load_treasury(self.pool.treasury_path, assets)
        static = self.config.rates_for(self.pool)
        self.rates: Callable[[], StaticRates] = lambda: static
        self.woken = 0
        self.desk: Desk = build_desk(self.ledger, SqlDeskStore(store), self.config, self.pool,
                                     self.treasury, self.payments, self.rates,
                                     clock=self.clock, ids=self.ids, wake=self._wake)

    def _wake(self) -> None:
        self.woken += 1

    def fund(self, channel: str, asset: str, amount_minor: int) -> None:
        self.ledger.transfer([Posting(world_account(channel),
                                      pool_account("main", asset, channel, PoolState.AVAILABLE),
                                      asset, amount_minor)])

    def available(self, channel: str, asset: str) -> int:
        return self.ledger.balance(pool_account("main", asset, channel, PoolState.AVAILABLE),
                                   asset).available

    def balance(self, address: str, asset: str) -> int:
        return self.ledger.balance(address, asset).available


@pytest.fixture
def pool_factory(store: LedgerStore, tmp_path: Path) -> Callable[..., Pool]:
    made: list[Pool] = []

    def make(treasury: str = TREASURY) -> Pool:
        directory = tmp_path / f"pool{len(made)}"
        directory.mkdir()
        made.append(Pool(store, directory, treasury))
        return made[-1]

    return make


@pytest.fixture
def pool(pool_factory: Callable[..., Pool]) -> Pool:
    return pool_factory()
