"""`fundpool bank ...`: the simulated bank of the ISO 20022 bank rail (docs/bank-rail.md).

    fundpool bank simulate --exchange data/banks/bank-a --account GB33BUKB20201555555555 \\
        --asset USD --opening 1000000.00 [--seed 7] [--every-s 1] [--day-s 600]
    fundpool bank simulate ... --config fundpool.toml --channel bank-a   # the channel's fees
    fundpool bank simulate ... --once                                     # one step, then exit

It answers the pain.001 files in `<exchange>/to-bank/` with pain.002, camt.054 and camt.053
files in `<exchange>/from-bank/`, on a compressed clock, and prints each file's name as it
writes it. Ctrl-C stops it; started again on the same exchange it goes on where it stopped.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated

import typer

from fundpool.cli.output import log_to_stderr
from fundpool.cli.pool_options import ConfigOption, config_path
from fundpool.core.errors import FundpoolError
from fundpool.core.money import Asset, AssetKind
from fundpool.pool.config import ChannelConfig, load_config
from fundpool.runtime import SystemClock
from fundpool.sim.bank import BankSettings, BankSimulator, run_bank

bank_app = typer.Typer(name="bank", no_args_is_help=True,
                       help="The simulated bank of the ISO 20022 bank rail.")

EVERY_S_MIN = 0.05  # a step costs a directory listing: not in a tight loop
DAY_S_MIN = 1.0


@bank_app.callback()
def main() -> None:
    """The simulated bank of the ISO 20022 bank rail."""
    log_to_stderr()


@bank_app.command("simulate")
def simulate(
    exchange: Annotated[Path, typer.Option("--exchange", help="The exchange directory.")],
    account: Annotated[str, typer.Option("--account", help="The pool's account (IBAN).")],
    asset: Annotated[str, typer.Option("--asset", help="The account's currency.")] = "USD",
    opening: Annotated[str, typer.Option(
        "--opening", help="The first statement's opening balance (decimal text).")] = "0",
    seed: Annotated[int, typer.Option("--seed", help="Seed of everything drawn.")] = 7,
    every_s: Annotated[float, typer.Option(
        "--every-s", help="Seconds between steps.", min=EVERY_S_MIN)] = 1.0,
    day_s: Annotated[float, typer.Option(
        "--day-s", help="Seconds of a bank day (a camt.053 each).", min=DAY_S_MIN)] = 600.0,
    booking_delay_s: Annotated[float, typer.Option(
        "--booking-delay-s", help="Seconds from a file's pain.002 to its booking.",
        min=0.0)] = 2.0,
    return_after_s: Annotated[float, typer.Option(
        "--return-after-s", help="Seconds from a booking to a return.", min=0.0)] = 30.0,
    scale: Annotated[int, typer.Option(
        "--scale", help="Decimals of the currency (without --channel).", min=0,
        max=18)] = 2,
    config: ConfigOption = None,
    channel: Annotated[str | None, typer.Option(
        "--channel", help="Charge this channel's fee schedule (and take its asset's scale) "
                          "from --config.")] = None,
    once: Annotated[bool, typer.Option("--once", help="One step, then exit.")] = False,
) -> None:
    """Answer the bank rail's pain.001 files as a bank does, until stopped."""
    try:
        money, channel_config = _asset_and_channel(asset, scale, config, channel)
        settings = BankSettings(seed=seed, booking_delay_s=booking_delay_s,
                                return_after_s=return_after_s, day_s=day_s)
        simulator = BankSimulator(exchange, account=account, asset=money,
                                  opening_minor=money.parse(opening), channel=channel_config,
                                  settings=settings)
    except FundpoolError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from error
    clock = SystemClock()
    if once:
        for name in simulator.step(clock.now_us()):
            typer.echo(name)
        return
    stop = threading.Event()
    typer.echo(f"bank on {exchange}: a step every {every_s:g} s, a day every {day_s:g} s "
               "(Ctrl-C stops)", err=True)
    try:
        run_bank(simulator, clock_us=clock.now_us, every_s=every_s, stop=stop,
                 on_files=_print_names)
    except KeyboardInterrupt:
        stop.set()


def _print_names(names: list[str]) -> None:
    for name in names:
        typer.echo(name)


def _asset_and_channel(code: str, scale: int, config: Path | None, channel: str | None
                       ) -> tuple[Asset, ChannelConfig | None]:
    if channel is None:
        return Asset(code, scale, AssetKind.FIAT), None
    declared = load_config(config_path(config))
    return declared.asset(code), declared.channel(channel)
