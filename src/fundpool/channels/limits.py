"""A rail's amount limits, and the one check of an amount against them.

**One source.** A channel's limits per asset are its configured ones (`pool.toml`'s `limits`,
read by `ChannelConfig.limits_for`: at least 1 minor unit and no maximum unless set). A rail
adapter declares the same numbers in its capabilities (`declared_limits` builds them;
`SimulatedRail` does so) and `Capabilities.limits_for` reads them back as a `Limits`. So the
payment service and the payout-file checker, which hold the configuration, and the router and
the dispatcher, which hold the rails, check the same numbers. An adapter for a rail whose own
limits are narrower than configured declares those (routing then honours what the rail will
take); it never widens them.

**One check.** Every place that asks whether an amount fits a rail asks `limit_breach`, and
reports its answer under the code it has always used:

- the payment service (`payments/rules.py`), for a channel named at creation or routed to:
  `amount_outside_limits`, with the limits as facts;
- the router (`routing/router.py`), for each candidate rail: `below_minimum`, `above_maximum`;
- the dispatcher (`payments/dispatch/routes.py`), for a rail a payment names, at intake:
  `below_minimum`, `above_maximum`, as the router would;
- the payout-file checker (`payments/csv_batch.py`), per row: `amount_outside_limits`;
- a simulated rail (`channels/simulated.py`), per instruction submitted:
  `amount_outside_limits`.
"""

from __future__ import annotations

from enum import StrEnum

from fundpool.pool.config import ChannelConfig, Limits

__all__ = ["LimitBreach", "Limits", "declared_limits", "limit_breach", "within_limits"]


class LimitBreach(StrEnum):
    """How an amount misses a rail's limits (the router's `Exclusion` codes of the same
    names are these)."""

    BELOW_MINIMUM = "below_minimum"
    ABOVE_MAXIMUM = "above_maximum"


def limit_breach(limits: Limits, amount_minor: int) -> LimitBreach | None:
    """Whether `amount_minor` fits `limits` (both bounds included): None when it does."""
    if amount_minor < limits.min_minor:
        return LimitBreach.BELOW_MINIMUM
    if limits.max_minor is not None and amount_minor > limits.max_minor:
        return LimitBreach.ABOVE_MAXIMUM
    return None


def within_limits(limits: Limits, amount_minor: int) -> bool:
    return limit_breach(limits, amount_minor) is None


def declared_limits(
    channel: ChannelConfig,
) -> tuple[dict[str, int], dict[str, int | None]]:
    """The minimum and maximum per asset that a rail adapter for `channel` declares in its
    capabilities (`Capabilities.min_minor`, `max_minor`): the configured limits."""
    limits = {code: channel.limits_for(code) for code in channel.assets}
    return ({code: bound.min_minor for code, bound in limits.items()},
            {code: bound.max_minor for code, bound in limits.items()})
