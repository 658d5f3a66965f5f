"""SLO maths: windowed counts of good and total events, the SLI, the error budget and burn
rates (docs/monitoring-alerts.md, "SLOs and burn rates"). Pure: the engine hands in what it
read (the projection's series and latency histogram, a stored sample) and keeps the samples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from fundpool.monitoring.alerting.rules import SloSpec
from fundpool.monitoring.figures import LatencyFigures
from fundpool.monitoring.kpis import SeriesIndex, decimal_text, format_duration, latency_bound_us

# A window's length in µs → (good, total) events in the window that ends at the evaluation.
Counts = Callable[[int], tuple[int, int]]


@dataclass(frozen=True, slots=True)
class BurnRate:
    long_us: int
    short_us: int
    factor: Decimal
    severity: str
    long: Fraction | None  # the burn rate over the long window (None: no event in it)
    short: Fraction | None

    @property
    def breached(self) -> bool:
        return (self.long is not None and self.short is not None
                and self.long >= self.factor and self.short >= self.factor)


@dataclass(frozen=True, slots=True)
class SloStatus:
    """An SLO over its window: good and total events, the SLI, and the error budget left
    (1 − bad / (error budget × total); negative once overspent)."""

    pool: str
    slo: str
    subject: str
    objective: Fraction
    window_us: int
    good: int
    total: int
    burn_rates: tuple[BurnRate, ...]

    @property
    def sli(self) -> Fraction | None:
        return None if self.total == 0 else Fraction(self.good, self.total)

    @property
    def error_budget(self) -> Fraction:
        return 1 - self.objective

    @property
    def budget_remaining(self) -> Fraction | None:
        if self.total == 0:
            return None
        return 1 - Fraction(self.total - self.good, self.total) / self.error_budget

    def to_dict(self) -> dict[str, object]:
        return {
            "pool": self.pool, "slo": self.slo, "subject": self.subject,
            "objective": decimal_text(self.objective), "window": format_duration(self.window_us),
            "good": self.good, "total": self.total, "sli": decimal_text(self.sli),
            "error_budget": decimal_text(self.error_budget),
            "budget_remaining": decimal_text(self.budget_remaining),
            "burn_rates": [
                {"long": format_duration(b.long_us), "short": format_duration(b.short_us),
                 "factor": str(b.factor), "severity": b.severity,
                 "burn_long": decimal_text(b.long, 4), "burn_short": decimal_text(b.short, 4),
                 "breached": b.breached} for b in self.burn_rates],
        }


def burn_rate(good: int, total: int, objective: Fraction) -> Fraction | None:
    """How fast the error budget burns: the error rate over the rate the objective allows
    (1 = exactly the budget over the SLO window). None without events."""
    if total <= 0:
        return None
    return Fraction(total - good, total) / (1 - objective)


def success_counts(index: SeriesIndex, slo: SloSpec, at_us: int) -> Counts:
    """A success SLO's counts: transitions of its payments into a good or a bad state in the
    window, from the projection's `payments|<kind>|<state>` counter series."""

    def counts(window_us: int) -> tuple[int, int]:
        since = at_us - window_us
        good = sum(index.payments(slo.kind, s, since_us=since, until_us=at_us)
                   for s in slo.good)
        bad = sum(index.payments(slo.kind, s, since_us=since, until_us=at_us)
                  for s in slo.bad)
        return good, good + bad

    return counts


def latency_totals(latency: Iterable[LatencyFigures], slo: SloSpec) -> tuple[int, int]:
    """A latency SLO's cumulative (good, total) now: the payments that ended its stage through
    its channel, good being those in the histogram buckets up to its threshold."""
    bound = latency_bound_us(slo.threshold_us)
    good_now = total_now = 0
    for figures in latency:
        if figures.stage == slo.stage and slo.channel in ("*", figures.channel):
            good_now += sum(figures.buckets[:bound + 1])
            total_now += figures.count
    return good_now, total_now


def counts_since(now: tuple[int, int], base: tuple[int, int] | None) -> tuple[int, int]:
    """(good, total) between a sample of cumulative counts (`base`; None: no sample, no data)
    and `now`."""
    if base is None:
        return 0, 0
    good_now, total_now = now
    good, total = base
    if total_now < total:  # the projection was rebuilt: counting starts again
        return good_now, total_now
    return good_now - good, total_now - total


def slo_status(pool: str, slo: SloSpec, counts: Counts) -> SloStatus:
    """The SLO over its window and the burn rate over each of its alerts' two windows."""
    good, total = counts(slo.window_us)
    burns = []
    for spec in slo.burn_rates:
        long_good, long_total = counts(spec.long_us)
        short_good, short_total = counts(spec.short_us)
        burns.append(BurnRate(spec.long_us, spec.short_us, spec.factor, spec.severity,
                              burn_rate(long_good, long_total, slo.objective),
                              burn_rate(short_good, short_total, slo.objective)))
    return SloStatus(pool, slo.id, slo.subject, slo.objective, slo.window_us, good, total,
                     tuple(burns))
