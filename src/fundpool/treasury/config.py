"""The treasury desk's file (`treasury = "treasury.toml"` in a pool's table): FX, netting
partners, liquidity bands, sweeps, credit lines and split rules. Amounts are decimal text in
their asset (`"250000.00"`), converted here to exact minor units; percents and rates are
decimal text too; a float anywhere is refused, and every refusal names the entry and field
(`invalid_treasury_config`). A pool without the file has none of these: the desk still
quotes and converts with the defaults, and previews work.

    [fx]
    spread = "0.25"          # percent taken on each side of the mid rate
    quote_ttl_s = 30

    [netting]
    partners = ["partner-pool-a", "agent-7"]   # besides the pool's merchants

    [liquidity]
    stale_after_s = 30       # balances older than this are never acted on
    sweep_every_s = 60       # how often the desk runs the sweep rules and credit lines
    auto_execute = { USD = "50000.00" }   # plans with every transfer at most this run at once

    [[bands]]
    channel = "bank-a"
    asset = "USD"
    min = "200000.00"
    target = "500000.00"
    max = "2000000.00"

    [[sweeps]]
    id = "usd-concentration"
    kind = "target_balance"  # zero_balancing | target_balance | threshold | collar
    asset = "USD"
    header = "bank-a"
    min_move = "1000.00"     # also: target, threshold, floor, cap (decimal text); two_way,
    participants = [{ channel = "rtp", priority = 1 }]   # to_target; a participant's keep

    [[credit_lines]]
    id = "rcf-usd"
    channel = "bank-a"
    asset = "USD"
    limit = "1000000.00"
    annual_rate = "0.065"

    [[splits]]
    id = "marketplace"
    asset = "USD"
    remainder = "merchant"   # the deposit's merchant
    parts = [{ party = "platform", role = "platform", percent = "2.9", fixed = "0.30" }]
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from fundpool.core.errors import FundpoolError
from fundpool.core.money import Asset
from fundpool.pool.config import FundpoolConfig, PoolConfig
from fundpool.treasury.split import (
    InvalidSplitRule,
    SplitExceedsWhole,
    SplitRule,
    rule_from_mapping,
)

TREASURY_FILE_BYTES_MAX = 1_000_000
SEGMENT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\Z")
PERCENT_PATTERN = re.compile(r"^[0-9]{1,3}(?:\.[0-9]{1,12})?\Z")
QUOTE_TTL_S_MAX = 3_600
DEFAULT_SPREAD_PERCENT = "0.25"
DEFAULT_QUOTE_TTL_S = 30
DEFAULT_STALE_AFTER_S = 30
DEFAULT_SWEEP_EVERY_S = 60
REMAINDER_MERCHANT = "merchant"  # a split's remainder party: the deposit's own merchant


class InvalidTreasuryConfig(FundpoolError):
    code = "invalid_treasury_config"
    title = "the treasury file is not valid"


@dataclass(frozen=True, slots=True)
class SplitConfig:
    rule: SplitRule
    asset: str


@dataclass(frozen=True, slots=True)
class TreasuryConfig:
    source: str = "defaults"
    spread: Fraction = Fraction(DEFAULT_SPREAD_PERCENT) / 100
    quote_ttl_s: int = DEFAULT_QUOTE_TTL_S
    partners: tuple[str, ...] = ()
    stale_after_s: int = DEFAULT_STALE_AFTER_S
    sweep_every_s: int = DEFAULT_SWEEP_EVERY_S
    auto_execute_minor: Mapping[str, int] = field(default_factory=dict)
    splits: Mapping[str, SplitConfig] = field(default_factory=dict)
    # The liquidity tables, in minor units, as treasury.bands / sweeps / credit parse them.
    bands: tuple[Mapping[str, Any], ...] = ()
    sweeps: tuple[Mapping[str, Any], ...] = ()
    credit_lines: tuple[Mapping[str, Any], ...] = ()


class _Reader:
    def __init__(self, source: str, assets: Mapping[str, Asset]) -> None:
        self.source = source
        self.assets = assets

    def fail(self, where: str, why: str, **facts: object) -> InvalidTreasuryConfig:
        return InvalidTreasuryConfig(why, source=self.source, field=where, **facts)

    def table(self, doc: Mapping[str, Any], name: str) -> Mapping[str, Any]:
        value = doc.get(name, {})
        if not isinstance(value, Mapping):
            raise self.fail(name, f"[{name}] is a table")
        return value

    def tables(self, doc: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
        value = doc.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise self.fail(name, f"[[{name}]] is a list of tables")
        return value

    def known(self, doc: Mapping[str, Any], where: str, fields: set[str]) -> None:
        unknown = sorted(set(doc) - fields)
        if unknown:
            raise self.fail(f"{where}.{unknown[0]}" if where else unknown[0],
                            "unknown field", known=sorted(fields))

    def asset(self, doc: Mapping[str, Any], where: str) -> Asset:
        code = doc.get("asset")
        if not isinstance(code, str) or code not in self.assets:
            raise self.fail(f"{where}.asset", "an asset the pool holds",
                            asset=repr(code), assets=sorted(self.assets))
        return self.assets[code]

    def amount(self, value: object, where: str, asset: Asset) -> int:
        if isinstance(value, bool) or not isinstance(value, str):
            raise self.fail(where, f"an amount is decimal text in {asset.code}, like "
                            "\"1000.00\" (never a number: a float is not exact)")
        try:
            minor = asset.parse(value)
        except FundpoolError as error:
            raise self.fail(where, str(error.detail)) from error
        if minor < 0:
            raise self.fail(where, "an amount is not negative")
        return minor

    def integer(self, doc: Mapping[str, Any], where: str, name: str, default: int,
                low: int, high: int) -> int:
        value = doc.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(f"{where}.{name}" if where else name,
                            f"a whole number from {low} to {high}")
        return value

    def percent(self, value: object, where: str) -> Fraction:
        if not isinstance(value, str) or not PERCENT_PATTERN.match(value):
            raise self.fail(where, "a percent is decimal text, like \"0.25\"")
        percent = Fraction(value)
        if percent > 100:
            raise self.fail(where, "a percent is at most 100")
        return percent

    def segment(self, value: object, where: str) -> str:
        if not isinstance(value, str) or not SEGMENT_PATTERN.match(value):
            raise self.fail(where, "an id of lower-case letters, digits, '-' and '_'")
        return value


def treasury_from_mapping(doc: Mapping[str, Any], assets: Mapping[str, Asset], *,
                          source: str = "treasury") -> TreasuryConfig:
    """The desk's configuration from a parsed document; `assets` are the pool's."""
    r = _Reader(source, assets)
    r.known(doc, "", {"fx", "netting", "liquidity", "bands", "sweeps", "credit_lines",
                      "splits"})
    fx = r.table(doc, "fx")
    r.known(fx, "fx", {"spread", "quote_ttl_s"})
    spread = r.percent(fx.get("spread", DEFAULT_SPREAD_PERCENT), "fx.spread") / 100
    if spread >= 1:
        raise r.fail("fx.spread", "a spread is below 100 %")
    ttl = r.integer(fx, "fx", "quote_ttl_s", DEFAULT_QUOTE_TTL_S, 1, QUOTE_TTL_S_MAX)
    net = r.table(doc, "netting")
    r.known(net, "netting", {"partners"})
    partners = net.get("partners", [])
    if not isinstance(partners, list):
        raise r.fail("netting.partners", "a list of ids")
    partner_ids = tuple(r.segment(p, f"netting.partners[{i}]") for i, p in enumerate(partners))
    if len(set(partner_ids)) != len(partner_ids):
        raise r.fail("netting.partners", "a partner is named once")
    liquidity = r.table(doc, "liquidity")
    r.known(liquidity, "liquidity", {"stale_after_s", "sweep_every_s", "auto_execute"})
    auto = liquidity.get("auto_execute", {})
    if not isinstance(auto, Mapping):
        raise r.fail("liquidity.auto_execute", "a table of asset = \"amount\"")
    auto_minor: dict[str, int] = {}
    for code, text in auto.items():
        where = f"liquidity.auto_execute.{code}"
        if code not in assets:
            raise r.fail(where, "an asset the pool holds")
        auto_minor[code] = r.amount(text, where, assets[code])
    splits: dict[str, SplitConfig] = {}
    for i, entry in enumerate(r.tables(doc, "splits")):
        where = f"splits[{i}]"
        split = _split(r, entry, where)
        if split.rule.id in splits:
            raise r.fail(f"{where}.id", "a split rule's id is used once", id=split.rule.id)
        splits[split.rule.id] = split
    return TreasuryConfig(
        source, spread, ttl, partner_ids,
        r.integer(liquidity, "liquidity", "stale_after_s", DEFAULT_STALE_AFTER_S, 1, 3_600),
        r.integer(liquidity, "liquidity", "sweep_every_s", DEFAULT_SWEEP_EVERY_S, 1, 86_400),
        auto_minor, splits,
        tuple(_amounts(r, e, f"bands[{i}]", ("min", "target", "max"))
              for i, e in enumerate(r.tables(doc, "bands"))),
        tuple(_sweep(r, e, f"sweeps[{i}]") for i, e in enumerate(r.tables(doc, "sweeps"))),
        tuple(_credit_line(r, e, f"credit_lines[{i}]")
              for i, e in enumerate(r.tables(doc, "credit_lines"))),
    )


def _amounts(r: _Reader, entry: Mapping[str, Any], where: str, names: Sequence[str]
             ) -> dict[str, Any]:
    """`entry` with the named amounts (those present) in minor units of its asset."""
    asset = r.asset(entry, where)
    out = dict(entry)
    for name in names:
        if name in entry:
            out[name] = r.amount(entry[name], f"{where}.{name}", asset)
    return out


# A sweep's amounts as the file writes them (decimal text), and as treasury/sweeps.py reads
# them (minor units).
SWEEP_AMOUNTS = {"target": "target_minor", "threshold": "threshold_minor",
                 "floor": "floor_minor", "cap": "cap_minor", "min_move": "min_move_minor",
                 "keep": "keep_minor"}


def _minor_keys(r: _Reader, entry: Mapping[str, Any], where: str, asset: Asset
                ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in entry.items():
        if key.endswith("_minor"):
            raise r.fail(f"{where}.{key}", "write the amount as decimal text under "
                         f"{key.removesuffix('_minor')!r}")
        if key in SWEEP_AMOUNTS:
            out[SWEEP_AMOUNTS[key]] = r.amount(value, f"{where}.{key}", asset)
        else:
            out[key] = value
    return out


def _sweep(r: _Reader, entry: Mapping[str, Any], where: str) -> dict[str, Any]:
    asset = r.asset(entry, where)
    out = _minor_keys(r, entry, where, asset)
    participants = entry.get("participants", [])
    if isinstance(participants, list):
        out["participants"] = [
            _minor_keys(r, p, f"{where}.participants[{j}]", asset)
            if isinstance(p, Mapping) else p for j, p in enumerate(participants)]
    return out


def _credit_line(r: _Reader, entry: Mapping[str, Any], where: str) -> dict[str, Any]:
    asset = r.asset(entry, where)
    out = {k: v for k, v in entry.items() if k != "limit"}
    if "limit_minor" in entry:
        raise r.fail(f"{where}.limit_minor", "write the limit as decimal text under 'limit'")
    if "limit" in entry:
        out["limit_minor"] = r.amount(entry["limit"], f"{where}.limit", asset)
    return out


def _split(r: _Reader, entry: Mapping[str, Any], where: str) -> SplitConfig:
    asset = r.asset(entry, where)
    doc: dict[str, Any] = {k: v for k, v in entry.items() if k != "asset"}
    parts = doc.get("parts")
    if isinstance(parts, list):
        converted = []
        for j, part in enumerate(parts):
            if not isinstance(part, Mapping):
                converted.append(part)
                continue
            at = f"{where}.parts[{j}]"
            p = dict(part)
            if "party" in p and p.get("role") in ("partner", "agent", "merchant"):
                r.segment(p["party"], f"{at}.party")
            for name in ("fixed", "cap", "floor"):
                if name in p:
                    p[name] = r.amount(p[name], f"{at}.{name}", asset)
            tiers = p.get("tiers")
            if isinstance(tiers, list):
                p["tiers"] = [
                    {**t, "up_to": r.amount(t["up_to"], f"{at}.tiers[{k}].up_to", asset)}
                    if isinstance(t, Mapping) and "up_to" in t else t
                    for k, t in enumerate(tiers)]
            converted.append(p)
        doc["parts"] = converted
    try:
        rule = rule_from_mapping(doc, source=f"{r.source} {where}")
    except (InvalidSplitRule, SplitExceedsWhole) as error:
        field_name = error.facts.get("field")
        raise InvalidTreasuryConfig(error.detail, source=r.source,
                                    field=f"{where}.{field_name}" if field_name else where,
                                    code_of_rule=error.code) from error
    return SplitConfig(rule, asset.code)


def pool_treasury(config: FundpoolConfig, pool: PoolConfig) -> TreasuryConfig:
    """The pool's treasury file (`treasury_path`), checked against the assets its channels
    carry."""
    return load_treasury(pool.treasury_path, config.assets_of(pool))


def load_treasury(path: Path | None, assets: Mapping[str, Asset]) -> TreasuryConfig:
    """The file at `path` (None: the defaults)."""
    if path is None:
        return TreasuryConfig()
    try:
        if path.stat().st_size > TREASURY_FILE_BYTES_MAX:
            raise InvalidTreasuryConfig("the treasury file is too large", source=str(path),
                                        bytes_max=TREASURY_FILE_BYTES_MAX)
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise InvalidTreasuryConfig(str(error), source=str(path)) from error
    return treasury_from_mapping(doc, assets, source=str(path))
