"""`fundpool pool init`: make the ledger hold what the configuration declares.

Defining an asset or opening an account that already exists as declared changes nothing, so
init can run again after the configuration grows: only what is new is added. A declaration that
contradicts the ledger (an asset with another scale) is rejected, and nothing of that batch is
applied. Accounts carry only structural metadata (pool, channel, state, owner id): names and
channel kinds live in the configuration, so renaming a merchant never clashes with its account.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from fundpool.core.errors import LinkedBatchFailed
from fundpool.core.ledger.model import (
    Account,
    DefineAsset,
    Linked,
    OpenAccount,
    SimpleCommand,
)
from fundpool.ledger.service import BATCH_COMMANDS_MAX, Ledger
from fundpool.pool.accounts import (
    PoolState,
    exposure_merchant,
    exposure_source,
    exposure_total,
    merchant_payable,
    pool_account,
    world_account,
)
from fundpool.pool.config import FundpoolConfig, OwnerKind


@dataclass(frozen=True, slots=True)
class InitReport:
    added: int
    unchanged: int


def setup_commands(config: FundpoolConfig) -> Iterator[DefineAsset | OpenAccount]:
    """Every asset and account the configuration implies, assets first."""
    for asset in config.assets:
        yield DefineAsset(asset)
    channels = {c.id: c for c in config.channels}
    opened: set[str] = set()
    for pool in config.pools:
        for channel_id in pool.channels:
            channel = channels[channel_id]
            world = world_account(channel.id)
            if world not in opened:
                opened.add(world)
                yield OpenAccount(Account(world, metadata={"channel": channel.id}))
            for code in channel.assets:
                for state in PoolState:
                    yield OpenAccount(
                        Account(
                            pool_account(pool.id, code, channel.id, state),
                            asset=code,
                            metadata={"pool": pool.id, "channel": channel.id,
                                      "state": state.value},
                        )
                    )
    pool_assets = sorted(
        {code for pool in config.pools for cid in pool.channels for code in channels[cid].assets}
    )
    merchants = [owner for owner in config.owners if owner.kind is OwnerKind.MERCHANT]
    # A merchant's payable may go as far below zero as the largest advance it can be given:
    # an advance taken back (the deposit behind it came back) must always be postable, even
    # when the merchant already used the money. Below zero, the merchant owes the pool.
    credit: dict[str, int] = {}
    for pool in config.pools:
        for code, caps in pool.instant_settlement.items():
            credit[code] = max(credit.get(code, 0), caps.merchant_cap_minor)
    for owner in merchants:
        for code in pool_assets:
            line = credit.get(code)
            yield OpenAccount(
                Account(
                    merchant_payable(owner.id, code),
                    asset=code,
                    min_balance_minor=None if line is None else -line,
                    metadata={"owner": owner.id},
                )
            )
    for pool in config.pools:
        for code, caps in pool.instant_settlement.items():
            if code not in pool_assets:
                continue
            meta = {"pool": pool.id}
            yield OpenAccount(
                Account(exposure_source(pool.id, code), asset=code, allow_negative=True,
                        metadata=meta)
            )
            yield OpenAccount(
                Account(exposure_total(pool.id, code), asset=code,
                        max_balance_minor=caps.pool_cap_minor, metadata=meta)
            )
            for owner in merchants:
                yield OpenAccount(
                    Account(exposure_merchant(pool.id, code, owner.id), asset=code,
                            max_balance_minor=caps.merchant_cap_minor,
                            metadata={"pool": pool.id, "owner": owner.id})
                )


def init_pool(ledger: Ledger, config: FundpoolConfig) -> InitReport:
    """Apply the configuration: each batch is one linked group, all of it or none."""
    added = unchanged = 0
    commands: list[SimpleCommand] = list(setup_commands(config))
    for start in range(0, len(commands), BATCH_COMMANDS_MAX):
        (result,) = ledger.submit([Linked(tuple(commands[start : start + BATCH_COMMANDS_MAX]))])
        if result.error is not None:
            cause = result.error.__cause__
            if isinstance(result.error, LinkedBatchFailed) and cause is not None:
                raise cause
            raise result.error
        for member in result.members:
            if member.status == "applied":
                added += 1
            else:
                unchanged += 1
    return InitReport(added, unchanged)
