"""`fundpool fx | split | net | liquidity | stress`: the treasury desk on a local store
(docs/treasury.md). Every command takes `--json`.

    fundpool fx rates
    fundpool fx quote --sell EUR --buy USD --sell-amount 1000.00 [--accept]
    fundpool fx accept <quote id>
    fundpool fx quotes
    fundpool fx pnl
    fundpool split rules
    fundpool split preview --asset USD --amount 100.00 --rule marketplace
    fundpool split waterfall waterfall.json        # {asset, available, tiers, obligations}
    fundpool net participants
    fundpool net add --payer m42 --payee m77 --asset USD --amount 120.00
    fundpool net cycle --asset USD
    fundpool net cycles
    fundpool liquidity status
    fundpool liquidity plan                         # propose a rebalancing plan
    fundpool liquidity plans
    fundpool liquidity approve <plan id>            # by another person than its proposer
    fundpool liquidity reject <plan id> --note "..."
    fundpool liquidity sweep                        # run the sweep rules now
    fundpool liquidity credit                       # draw, repay, accrue now
    fundpool stress run --withdraw 30 --hours 24 [--outage rtp:2-10] [--shock EUR=-20]

Exit code 2 with the error's code on a refusal; nothing is changed by a refused command.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from fundpool import compose
from fundpool.cli.actor import local_actor
from fundpool.cli.options import DataDirOption, DbUrlOption, JsonOption
from fundpool.cli.output import log_to_stderr
from fundpool.cli.pool_options import ConfigOption, PoolOption, config_path
from fundpool.cli.session import Session, session
from fundpool.pool.config import load_config

if TYPE_CHECKING:
    from fundpool.desk.service import Desk

fx_app = typer.Typer(name="fx", no_args_is_help=True,
                     help="Currency exchange: rates, quotes, conversions, P&L.")
split_app = typer.Typer(name="split", no_args_is_help=True,
                        help="Splits and commissions, and waterfall previews.")
net_app = typer.Typer(name="net", no_args_is_help=True,
                      help="Continuous net settlement: obligations and cycles.")
liquidity_app = typer.Typer(name="liquidity", no_args_is_help=True,
                            help="Bands, rebalancing plans, sweeps and credit lines.")
stress_app = typer.Typer(name="stress", no_args_is_help=True,
                         help="Liquidity-run stress tests on the live pool.")

AssetOption = Annotated[str, typer.Option("--asset", help="The asset code, like USD.")]


@fx_app.callback()
def fx_main() -> None:
    """Currency exchange: rates, quotes, conversions, P&L."""
    log_to_stderr()


@split_app.callback()
def split_main() -> None:
    """Splits and commissions, and waterfall previews."""
    log_to_stderr()


@net_app.callback()
def net_main() -> None:
    """Continuous net settlement: obligations and cycles."""
    log_to_stderr()


@liquidity_app.callback()
def liquidity_main() -> None:
    """Bands, rebalancing plans, sweeps and credit lines."""
    log_to_stderr()


@stress_app.callback()
def stress_main() -> None:
    """Liquidity-run stress tests on the live pool."""
    log_to_stderr()


@contextmanager
def _desk(config: Path | None, pool: str | None, data_dir: Path | None, db_url: str | None,
          as_json: bool) -> Iterator[tuple[Session, Desk]]:
    with session(data_dir, db_url, as_json) as s:
        declared = load_config(config_path(config))
        yield s, compose.desk(s.store, declared, declared.pool(pool))


def _table(columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(*columns)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    return table


# --- fx ----------------------------------------------------------------------------------


@fx_app.command("rates")
def fx_rates(config: ConfigOption = None, pool: PoolOption = None,
             data_dir: DataDirOption = None, db_url: DbUrlOption = None,
             as_json: JsonOption = False) -> None:
    """The pool's currency pairs at their mid rates, and the desk's spread."""
    from fundpool.desk.docs import rate_text

    with _desk(config, pool, data_dir, db_url, as_json) as (s, desk):
        rates = [{"pair": r["pair"], "mid_rate": rate_text(r["rate"])}
                 for r in desk.fx.mid_rates()]
        doc = {"spread_percent": rate_text(desk.fx.settings.spread * 100),
               "quote_ttl_s": desk.fx.settings.ttl_s, "rates": rates}
        s.emit(doc, _table(["pair", "mid rate"], [[r["pair"], r["mid_rate"]] for r in rates]))


def _quote_line(doc: dict[str, Any]) -> str:
    return (f"{doc['id']} {doc['state']}: sell {doc['sell_amount']} {doc['sell']} "
            f"for {doc['buy_amount']} {doc['buy']} at {doc['rate']} "
            f"(mid {doc['mid_rate']}, spread {doc['spread_percent']} %), "
            f"expires {doc['expires_at']}"
            + (f", entry {doc['entry_id']}" if doc.get("entry_id") else ""))


@fx_app.command("quote")
def fx_quote(sell: Annotated[str, typer.Option("--sell")],
             buy: Annotated[str, typer.Option("--buy")],
             sell_amount: Annotated[str | None, typer.Option("--sell-amount")] = None,
             buy_amount: Annotated[str | None, typer.Option("--buy-amount")] = None,
             accept: Annotated[bool, typer.Option(
                 "--accept", help="Accept it at once (convert).")] = False,
             config: ConfigOption = None, pool: PoolOption = None,
             data_dir: DataDirOption = None, db_url: DbUrlOption = None,
             as_json: JsonOption = False) -> None:
    """A quote (give exactly one of --sell-amount and --buy-amount)."""
    from fundpool.desk.docs import quote_doc
    from fundpool.treasury.fx import InvalidQuote

    with _desk(config, pool, data_dir, db_url, as_json) as (s, desk):
        if (sell_amount is None) == (buy_amount is None):
            raise InvalidQuote("give exactly one of --sell-amount and --buy-amount")
        obj = desk.fx.quote(
            sell, buy,
            sell_minor=None if sell_amount is None else desk.fx.asset(sell).parse(sell_amount),
            buy_minor=None if buy_amount is None else desk.fx.asset(buy).parse(buy_amount),
            actor=local_actor())
        if accept:
            obj = desk.fx.accept(obj.id, actor=local_actor())
        doc = quote_doc(desk, obj, desk.clock.now_us())
        s.emit(doc, _quote_line(doc))


@fx_app.command("accept")
def fx_accept(quote_id: Annotated[str, typer.Argument()], config: ConfigOption = None,
              pool: PoolOption = None, data_dir: DataDirOption = None,
              db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """Lock a quote's rate and convert."""
    from fundpool.desk.docs import quote_doc

    with _desk(config, pool, data_dir, db_url, as_json) as (s, desk):
        doc = quote_doc(desk, desk.fx.accept(quote_id, actor=local_actor()),
                        desk.clock.now_us())
        s.emit(doc, _quote_line(doc))


@fx_app.command("quotes")
def fx_quotes(limit: Annotated[int, typer.Option("--limit", min=1, max=1_000)] = 20,
              config: ConfigOption = None, pool: PoolOption = None,
              data_dir: DataDirOption = None, db_url: DbUrlOption = None,
              as_json: JsonOption = False) -> None:
    """Quotes, newest first."""
    from fundpool.desk.docs import quote_doc

    with _desk(config, pool, data_dir, db_url, as_json) as (s, desk):
        docs = [quote_doc(desk, o, desk.clock.now_us()) for o in desk.fx.quotes(limit=limit)]
        s.emit({"quotes": docs}, "\n".join(_quote_line(d) for d in docs) or "no quotes")


@fx_app.command("pnl")
def fx_pnl(config: ConfigOption = None, pool: PoolOption = None,
           data_dir: DataDirOption = None, db_url: DbUrlOption = None,
           as_json: JsonOption = False) -> None:
    """Realised and unrealised FX P&L per currency pair, in the reporting currency."""
    from fundpool.desk.docs import money

    with _desk(config, pool, data_dir, db_url, as_json) as (s, desk):
        reporting = desk.config.asset(desk.pool.reporting_currency)
        rows = [{"pair": r.pair, "realised": money(reporting, r.realised_minor),
                 "unrealised": money(reporting, r.unrealised_minor), "count": r.count}
                for r in desk.fx.pnl()]
        s.emit({"reporting_currency": reporting.code, "pairs": rows},
               _table(["pair", f"realised {reporting.code}", f"unrealised {reporting.code}",
                       "conversions"],
                      [[r["pair"], r["realised"], r["unrealised"], r["count"]] for r in rows]))


# --- split and waterfall -------------------------------------------------------------------


@split_app.command("rules")
def split_rules(config: ConfigOption = None, pool: PoolOption = None,
                data_dir: DataDirOption = None, db_url: DbUrlOption = None,
                as_json: JsonOption = False) -> None:
    """The pool's split rules (its treasury file)."""
    with _desk(config, pool, data_dir, db_url, as_json) as (s, desk):
        rules = [{"id": rule.id, "asset": asset, "remainder": rule.remainder_party,
                  "parts": [p.party for p in rule.parts]} for asset, rule in desk.split_rules()]
        s.emit({"rules": rules}, _table(["rule", "asset", "parts", "remainder"], [
            [r["id"], r["asset"], ", ".join(r["parts"]), r["remainder"]] for r in rules]))


@split_app.command("preview")
def split_preview(asset: AssetOption, amount: Annotated[str, typer.Option("--amount")],
                  rule: Annotated[str | None, typer.Option(
                      "--rule", help="A configured rule's id.")] = None,
                  rule_file: Annotated[Path | None, typer.Option(
                      "--rule-file", exists=True, dir_okay=False,
                      help="A rule as JSON (amounts in minor units).")] = None,
                  config: ConfigOption = None, pool: PoolOption = None,
                  data_dir: DataDirOption = None, db_url: DbUrlOption = None,
                  as_json: JsonOption = False) -> None:
    """How an incoming payment of --amount would be shared."""
    from fundpool.desk.docs import money, share_doc

    with _desk(config, pool, data_dir, db_url, as_json) as (s, desk):
        found = desk.fx.asset(asset)
        minor = found.parse(amount)
        given = None if rule_file is None else json.loads(rule_file.read_text("utf-8"))
        used, shares = desk.split_preview(minor, rule_id=rule, rule=given)
        docs = [share_doc(found, sh) for sh in shares]
        s.emit({"rule": used.id, "asset": found.code, "amount": money(found, minor),
                "shares": docs},
               _table(["party", "role", f"amount {found.code}"],
                      [[d["party"], d["role"], d["amount"]] for d in docs]))


@split_app.command("waterfall")
def split_waterfall(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
                    config: ConfigOption = None, pool: PoolOption = None,
                    data_dir: DataDirOption = None, db_url: DbUrlOption = None,
                    as_json: JsonOption = False) -> None:
    """Pay {available} to {obligations} by {tiers}, senior first (amounts as decimal text)."""
    from fundpool.desk.docs import waterfall_doc
    from fundpool.treasury.waterfall import InvalidWaterfall

    with _desk(config, pool, data_dir, db_url, as_json) as (s, desk):
        try:
            doc = json.loads(file.read_text("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InvalidWaterfall(f"not JSON: {error}", file=str(file)) from error
        if not isinstance(doc, dict) or not isinstance(doc.get("available"), str):
            raise InvalidWaterfall("{asset, available, tiers, obligations}; available and "
                                   "amounts as decimal text", file=str(file))
        asset = desk.fx.asset(str(doc.get("asset")))
        obligations = doc.get("obligations")
        if not isinstance(obligations, list):
            raise InvalidWaterfall("obligations is a list", field="obligations")
        converted = []
        for i, o in enumerate(obligations):
            if not isinstance(o, dict) or not isinstance(o.get("amount"), str):
                raise InvalidWaterfall("an obligation's amount is decimal text",
                                       field=f"obligations[{i}].amount")
            converted.append({**o, "amount": asset.parse(o["amount"])})
        report = desk.waterfall_preview({"available": asset.parse(doc["available"]),
                                         "tiers": doc.get("tiers"), "obligations": converted})
        out = waterfall_doc(asset, report)
        s.emit(out, _table(["obligation", "creditor", "tier", "amount", "paid", "owed"], [
            [o["id"], o["creditor"], o["tier"], o["amount"], o["paid"], o["owed"]]
            for o in out["obligations"]]))


# --- net -----------------------------------------------------------------------------------


@net_app.command("participants")
def net_participants(config: ConfigOption = None, pool: PoolOption = None,
                     data_dir: DataDirOption = None, db_url: DbUrlOption = None,
                     as_json: JsonOption = False) -> None:
    """The pool's netting participants and their balances."""
    from fundpool.desk.docs import money

    with _desk(config, pool, data_dir, db_url, as_json) as (s, desk):
        rows: list[dict[str, Any]] = [
            {"id": who, "balances": {code: money(desk.config.asset(code),
                                                 desk.netting.balance(who, code))
                                     for code in desk.netting.assets}}
            for who in desk.netting.participants]
        s.emit({"participants": rows}, _table(["participant", "balances"], [
            [r["id"], ", ".join(f"{v} {k}" for k, v in r["balances"].items())]
            for r in rows]))


@net_app.command("add")
def net_add(payer: Annotated[str, typer.Option("--payer")],
            payee: Annotated[str, typer.Option("--payee")], asset: AssetOption,
            amount: Annotated[str, typer.Option("--amount")],
            reference: Annotated[str | None, typer.Option("--reference")] = None,
            config: ConfigOption = None, pool: PoolOption = None,
            data_dir: DataDirOption = None, db_url: DbUrlOption = None,
            as_json: JsonOption = False) -> None:
    """Queue an obligation for the next cycle."""
    from fundpool.desk.docs import obligation_doc
    from fundpool.desk.netting import ObligationRequest

    with _desk(config, pool, data_dir, db_url, as_json) as (s, desk):
        minor = desk.fx.asset(asset).parse(amount)
        (made,) = desk.netting.record([ObligationRequest(payer, payee, asset, minor,
                                                         reference)], actor=local_actor())
        doc = obligation_doc(desk, made)
        s.emit(doc, f"queued {doc['id']}: {payer} owes {payee} {doc['amount']} {asset}")


def _cycle_line(doc: dict[str, Any]) -> str:
    return (f"cycle {doc['id']} {doc['asset']}: {doc['settled']} of {doc['obligations']} "
            f"obligation(s) settled, {doc['queued']} queued; gross {doc['gross']}, net "
            f"{doc['net']}, efficiency {doc['efficiency']}")


@net_app.command("cycle")
def net_cycle(asset: AssetOption, config: ConfigOption = None, pool: PoolOption = None,
              data_dir: DataDirOption = None, db_url: DbUrlOption = None,
              as_json: JsonOption = False) -> None:
    """Net the queued obligations of --asset and settle the net positions."""
    from fundpool.desk.docs import cycle_doc

    with _desk(config, pool, data_dir, db_url, as_json) as (s, desk):
        doc = cycle_doc(desk, desk.netting.run_cycle(asset, actor=local_actor()))
        s.emit(doc, _cycle_line(doc))


@net_app.command("cycles")
def net_cycles(limit: Annotated[int, typer.Option("--limit", min=1, max=1_000)] = 20,
               config: ConfigOption = None, pool: PoolOption = None,
               data_dir: DataDirOption = None, db_url: DbUrlOption = None,
               as_json: JsonOption = False) -> None:
    """Netting cycles, newest first, with their efficiency."""
    from fundpool.desk.docs import cycle_doc

    with _desk(config, pool, data_dir, db_url, as_json) as (s, desk):
        docs = [cycle_doc(desk, c) for c in desk.netting.cycles(limit)]
        s.emit({"cycles": docs}, "\n".join(_cycle_line(d) for d in docs) or "no cycles")


# --- liquidity -----------------------------------------------------------------------------


def _plan_text(doc: dict[str, Any]) -> str:
    lines = [f"plan {doc['id']} {doc['state']}" + (" (executed within the auto limits)"
                                                   if doc["auto"] else "")]
    lines += [f"  {t['amount']} {t['asset']} {t['source']} -> {t['destination']} "
              f"(fee {t['fee']}, {t['latency_s']} s): {t['why']}" for t in doc["transfers"]]
    lines += [f"  unresolved {u['channel']} {u['asset']}: {u['why']}"
              for u in doc["unresolved"]]
    if not doc["transfers"] and not doc["unresolved"]:
        lines.append("  every position is within its band: nothing to move")
    return "\n".join(lines)


@liquidity_app.command("status")
def liquidity_status(config: ConfigOption = None, pool: PoolOption = None,
                     data_dir: DataDirOption = None, db_url: DbUrlOption = None,
                     as_json: JsonOption = False) -> None:
    """Every position with its available balance and its band."""
    from fundpool.desk.docs import position_doc

    with _desk(config, pool, data_dir, db_url, as_json) as (s, desk):
        docs = [position_doc(desk, p) for p in desk.liquidity.positions()]
        s.emit({"positions": docs}, _table(
            ["channel", "asset", "available", "min", "target", "max", "status"],
            [[d["channel"], d["asset"], d["available"],
              *((d["band"]["min"], d["band"]["target"], d["band"]["max"]) if d["band"]
                else ("-", "-", "-")), d["status"] or "no band"] for d in docs]))


@liquidity_app.command("plan")
def liquidity_plan(config: ConfigOption = None, pool: PoolOption = None,
                   data_dir: DataDirOption = None, db_url: DbUrlOption = None,
                   as_json: JsonOption = False) -> None:
    """Propose a rebalancing plan (executed at once within the auto limits)."""
    from fundpool.desk.docs import plan_doc

    with _desk(config, pool, data_dir, db_url, as_json) as (s, desk):
        doc = plan_doc(desk, desk.liquidity.propose(actor=local_actor()))
        s.emit(doc, _plan_text(doc))


@liquidity_app.command("plans")
def liquidity_plans(limit: Annotated[int, typer.Option("--limit", min=1, max=1_000)] = 10,
                    config: ConfigOption = None, pool: PoolOption = None,
                    data_dir: DataDirOption = None, db_url: DbUrlOption = None,
                    as_json: JsonOption = False) -> None:
    """Rebalancing plans, newest first."""
    from fundpool.desk.docs import plan_doc

    with _desk(config, pool, data_dir, db_url, as_json) as (s, desk):
        docs = [plan_doc(desk, p) for p in desk.liquidity.plans(limit)]
        s.emit({"plans": docs}, "\n".join(_plan_text(d) for d in docs) or "no plans")


@liquidity_app.command("approve")
def liquidity_approve(plan_id: Annotated[str, typer.Argument()], config: ConfigOption = None,
                      pool: PoolOption = None, data_dir: DataDirOption = None,
                      db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """Approve another person's plan: it is executed as payments."""
    from fundpool.desk.docs import plan_doc

    with _desk(config, pool, data_dir, db_url, as_json) as (s, desk):
        doc = plan_doc(desk, desk.liquidity.approve(plan_id, actor=local_actor()))
        s.emit(doc, _plan_text(doc))


@liquidity_app.command("reject")
def liquidity_reject(plan_id: Annotated[str, typer.Argument()],
                     note: Annotated[str, typer.Option("--note")] = "",
                     config: ConfigOption = None, pool: PoolOption = None,
                     data_dir: DataDirOption = None, db_url: DbUrlOption = None,
                     as_json: JsonOption = False) -> None:
    """Reject a proposed plan."""
    from fundpool.desk.docs import plan_doc

    with _desk(config, pool, data_dir, db_url, as_json) as (s, desk):
        doc = plan_doc(desk, desk.liquidity.reject(plan_id, actor=local_actor(), note=note))
        s.emit(doc, _plan_text(doc))


@liquidity_app.command("sweep")
def liquidity_sweep(config: ConfigOption = None, pool: PoolOption = None,
                    data_dir: DataDirOption = None, db_url: DbUrlOption = None,
                    as_json: JsonOption = False) -> None:
    """Run the sweep rules now."""
    from fundpool.desk.docs import sweep_run_doc

    with _desk(config, pool, data_dir, db_url, as_json) as (s, desk):
        runs = [sweep_run_doc(desk, r) for r in desk.liquidity.run_sweeps(actor=local_actor())]
        s.emit({"runs": runs}, "\n".join(
            f"{r['rule']}: {r['outcome']}" + "".join(
                f"\n  {m['amount']} {m['asset']} {m['source']} -> {m['destination']}: "
                f"{m['reason']}" for m in r["moves"]) for r in runs) or "no sweep rules")


@liquidity_app.command("credit")
def liquidity_credit(run: Annotated[bool, typer.Option(
        "--run", help="Accrue, draw and repay now (else only show).")] = False,
        config: ConfigOption = None, pool: PoolOption = None,
        data_dir: DataDirOption = None, db_url: DbUrlOption = None,
        as_json: JsonOption = False) -> None:
    """Credit lines: what is owed, the interest, the headroom."""
    from fundpool.desk.docs import credit_doc

    with _desk(config, pool, data_dir, db_url, as_json) as (s, desk):
        ran = desk.liquidity.run_credit(actor=local_actor()) if run else []
        docs = [credit_doc(desk, line) for line in desk.liquidity.credit_lines()]
        s.emit({"credit_lines": docs, "run": ran}, _table(
            ["facility", "channel", "asset", "limit", "owed", "interest", "rate %"],
            [[d["id"], d["channel"], d["asset"], d["limit"], d["owed"], d["interest"],
              d["annual_rate_percent"]] for d in docs]))


# --- stress --------------------------------------------------------------------------------


@stress_app.command("run")
def stress_run(withdraw: Annotated[str, typer.Option(
        "--withdraw", help="Percent of user liabilities withdrawn.")] = "30",
        hours: Annotated[int, typer.Option("--hours", help="Hours simulated.")] = 24,
        withdrawal_hours: Annotated[int | None, typer.Option(
            "--withdrawal-hours", help="Over how many hours (default: --hours).")] = None,
        outage: Annotated[list[str] | None, typer.Option(
            "--outage", help="channel:from-to (hours), e.g. rtp:2-10; repeatable.")] = None,
        shock: Annotated[list[str] | None, typer.Option(
            "--shock", help="ASSET=percent, e.g. EUR=-20; repeatable.")] = None,
        scenario: Annotated[Path | None, typer.Option(
            "--scenario", exists=True, dir_okay=False,
            help="A scenario as JSON instead of the options.")] = None,
        config: ConfigOption = None, pool: PoolOption = None,
        data_dir: DataDirOption = None, db_url: DbUrlOption = None,
        as_json: JsonOption = False) -> None:
    """Run a liquidity-run scenario on the pool's live state, hour by hour."""
    from fundpool.desk.stress import scenario_doc_from_options

    with _desk(config, pool, data_dir, db_url, as_json) as (s, desk):
        doc = (json.loads(scenario.read_text("utf-8")) if scenario is not None
               else scenario_doc_from_options(withdraw, hours, withdrawal_hours, outage or [],
                                              shock or []))
        report = desk.stress.run(doc, actor=local_actor())
        s.emit(report, "\n".join(report["summary"]))
