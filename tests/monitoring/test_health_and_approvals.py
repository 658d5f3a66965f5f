"""Channel health against the configured depths, the rules that read them, and the approval
waiting-time KPIs folded from payment events (monitoring/figures.py, alerting/figures.py,
projection.py, kpis.py)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from fundpool.events.model import Event, PaymentTransitioned
from fundpool.monitoring.alerting.figures import FIGURES, figure_values
from fundpool.monitoring.alerting.rules import InvalidAlertRules, load_rules
from fundpool.monitoring.docs import figures_doc
from fundpool.monitoring.figures import (
    CRITICAL,
    HEALTHY,
    LOW,
    channel_health,
    depth_status,
    pool_figures,
)
from fundpool.monitoring.kpis import KpiContext, compute_kpis
from fundpool.monitoring.projection import (
    APPROVALS_WAITING,
    LATENCY_BOUNDS_US,
    SECOND_US,
    Projection,
    fold,
)
from fundpool.pool.config import Depth, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"
CONFIG = load_config(EXAMPLE)
POOL = CONFIG.pool("main")
T0 = 1_767_225_600_000_000
HOUR_US = 3_600 * SECOND_US


def _available(cells: dict[tuple[str, str], int], asset: str, channel: str,
               amount: int) -> None:
    key = f"pool:main:{asset.lower()}:{channel}:available|{asset}"
    cells[("posted", key)] = amount
    cells[("pending_out", key)] = 0
    cells[("pending_in", key)] = 0


# --- channel health ----------------------------------------------------------------------------


def test_depth_status_is_never_healthy_when_empty_and_compares_with_both_depths() -> None:
    depth = Depth(min_minor=100, low_minor=500)
    assert depth_status(0, None) == CRITICAL
    assert depth_status(-5, None) == CRITICAL  # a drawn credit line pays nothing either
    assert depth_status(1, None) == HEALTHY
    assert depth_status(0, Depth()) == CRITICAL
    assert depth_status(99, depth) == CRITICAL
    assert depth_status(100, depth) == LOW
    assert depth_status(499, depth) == LOW
    assert depth_status(500, depth) == HEALTHY


def test_the_health_of_every_rail_follows_the_pool_configuration() -> None:
    rtp = CONFIG.channel("rtp").depth_for("USD")
    bank = CONFIG.channel("bank-a").depth_for("USD")
    assert rtp is not None
    assert bank is not None
    assert 0 < rtp.min_minor < rtp.low_minor
    cells: dict[tuple[str, str], int] = {}
    _available(cells, "USD", "rtp", rtp.low_minor - 1)  # low
    _available(cells, "USD", "bank-a", bank.min_minor - 1)  # critical
    _available(cells, "USD", "card-acq", 0)  # empty: critical whatever is configured
    _available(cells, "EUR", "sepa", 10**15)  # plenty
    figures = pool_figures(CONFIG, POOL, CONFIG.rates_for(POOL), cells, {}, at_us=T0)
    status = {(h.asset, h.channel): h.status for h in channel_health(CONFIG, figures)}
    assert status[("USD", "rtp")] == LOW
    assert status[("USD", "bank-a")] == CRITICAL
    assert status[("USD", "card-acq")] == CRITICAL
    assert status[("EUR", "sepa")] == HEALTHY
    doc = figures_doc(figures, CONFIG)
    items = {(d["asset"], d["channel"]): d for d in doc["depth"]}  # type: ignore[attr-defined]
    assert items[("USD", "rtp")]["status"] == "low"
    assert items[("USD", "rtp")]["low_depth"] == CONFIG.asset("USD").format(rtp.low_minor)
    assert items[("USD", "rtp")]["min_depth"] == CONFIG.asset("USD").format(rtp.min_minor)
    # a rail the configuration gives no depth is shown without one
    assert all(isinstance(v, str) for d in doc["depth"] for v in d.values())  # type: ignore[attr-defined]


def test_depth_cover_figures_are_available_over_the_configured_depth() -> None:
    rtp = CONFIG.channel("rtp").depth_for("USD")
    assert rtp is not None
    cells: dict[tuple[str, str], int] = {}
    _available(cells, "USD", "rtp", rtp.min_minor // 2)
    context = KpiContext.of(CONFIG, POOL, cells, {}, at_us=T0)
    low = {v.subject: v.value for v in figure_values("low_depth_cover", context, {})}
    low_min = {v.subject: v.value for v in figure_values("min_depth_cover", context, {})}
    assert low["asset:USD,channel:rtp"] == Fraction(rtp.min_minor // 2, rtp.low_minor)
    assert low_min["asset:USD,channel:rtp"] == Fraction(1, 2)
    # only rails with a configured depth have a value
    configured = {(a, c.id) for c in CONFIG.channels for a in c.assets
                  if c.depth_for(a) is not None and c.id in POOL.channels}
    assert {(v.asset, v.channel) for v in figure_values("min_depth_cover", context, {})} <= (
        configured)


def test_a_rule_whose_subject_the_figure_never_has_is_refused() -> None:
    # The demo's old rules named a channel on pool-wide counts: they could never fire.
    for figure, subject in (("failed_count", "channel:card-acq"),
                            ("in_flight_count", "channel:tron"),
                            ("depth", "pool"),
                            ("latency_p99", "asset:USD")):
        text = (f"version: 1\nrules:\n  - {{id: r, figure: {figure}, subject: '{subject}', "
                "op: '>', value: 1, severity: info}\n")
        with pytest.raises(InvalidAlertRules, match="never matches"):
            load_rules(text)
    ok = ("version: 1\nrules:\n  - {id: r, figure: min_depth_cover, subject: "
          "'asset:USD,channel:rtp', op: '<', value: 1, severity: critical}\n"
          "  - {id: s, figure: failed_count, subject: pool, op: '>', value: 1, severity: info}\n")
    assert len(load_rules(ok).thresholds) == 2
    assert {"min_depth_cover", "low_depth_cover", "approval_count"} <= set(FIGURES)


# --- approval waiting time -----------------------------------------------------------------------


def _moved(seq: int, payment: str, at_us: int, action: str, from_state: str | None,
           to_state: str, since_us: int | None) -> Event:
    return Event(f"{payment}:{seq}", PaymentTransitioned.TYPE, "main", at_us,
                 PaymentTransitioned(payment, "payout", "USD", 2_000_000, 45, "rtp", None,
                                     action, from_state, to_state, seq, since_us, T0), seq)


def _waiting(projection: Projection) -> int:
    return sum(v for (m, r, _), v in projection.series.items()
               if m == APPROVALS_WAITING and r == "h")


def test_oldest_wait_and_percentiles_of_approval_waits() -> None:
    events: list[Event] = []
    seq = 0

    def step(payment: str, at_us: int, action: str, from_state: str | None, to_state: str,
             since_us: int | None) -> None:
        nonlocal seq
        seq += 1
        events.append(_moved(seq, payment, at_us, action, from_state, to_state, since_us))

    # Ten payouts ask for approval a second apart; nine are approved after i seconds each,
    # the tenth still waits. An automatic approval (routed -> approved) is no approval wait.
    for i in range(10):
        asked = T0 + i * SECOND_US
        step(f"p{i}", asked, "request_approval", "routed", "pending_approval", asked - 5)
    for i in range(9):
        asked = T0 + i * SECOND_US
        step(f"p{i}", asked + (i + 1) * 10 * SECOND_US, "approve", "pending_approval",
             "approved", asked)
    step("auto", T0 + 200 * SECOND_US, "approve", "routed", "approved", T0)
    projection = fold("main", events)
    assert _waiting(projection) == 1
    at = T0 + 300 * SECOND_US
    figures = pool_figures(CONFIG, POOL, CONFIG.rates_for(POOL), projection.cells,
                           projection.series, at_us=at)
    assert figures.approval_count == 1
    assert figures.approval_waiting_since_us == T0 + 9 * SECOND_US  # p9, exact to the second
    assert sum(figures.approval_wait_buckets) == 9
    values = {v.kpi: v for v in compute_kpis(
        KpiContext.of(CONFIG, POOL, projection.cells, projection.series, at_us=at),
        {"approval_wait_oldest": {}, "approval_wait_p50": {"quantile": Fraction(1, 2)},
         "approval_wait_p95": {"quantile": Fraction(95, 100)}})}
    assert values["approval_wait_oldest"].value == 291  # 300 s - 9 s
    # Waits of 10, 20 … 90 s: the median lies in the (30 s, 60 s] bucket, p95 in (60, 120].
    p50, p95 = values["approval_wait_p50"].value, values["approval_wait_p95"].value
    assert p50 is not None
    assert p95 is not None
    assert 30 < p50 <= 60 < p95 <= 120
    doc = figures_doc(figures, CONFIG)["approvals"]
    assert doc == {"waiting": 1, "oldest_since_us": T0 + 9 * SECOND_US, "oldest_s": "291.000",
                   "approved": 9, "p50_s": doc["p50_s"], "p95_s": doc["p95_s"]}  # type: ignore[index]
    assert Fraction(doc["p50_s"]) == p50  # type: ignore[index]

    # The last one is rejected: nothing waits, and the oldest wait has no value.
    step("p9", at, "reject", "pending_approval", "rejected", T0 + 9 * SECOND_US)
    projection = fold("main", events)
    assert _waiting(projection) == 0
    figures = pool_figures(CONFIG, POOL, CONFIG.rates_for(POOL), projection.cells,
                           projection.series, at_us=at)
    assert figures.approval_waiting_since_us is None
    assert sum(figures.approval_wait_buckets) == 9  # a rejection is no approval
    (oldest,) = compute_kpis(KpiContext.of(CONFIG, POOL, projection.cells, projection.series,
                                           at_us=at), {"approval_wait_oldest": {}})
    assert oldest.value is None
    assert oldest.note


def test_an_oldest_wait_beyond_the_seconds_retention_is_read_to_the_minute() -> None:
    asked = T0 + 90 * SECOND_US + 7  # 00:01:30
    events = [_moved(1, "old", asked, "request_approval", "routed", "pending_approval", T0)]
    # A later event moves the projection three hours on: the seconds are pruned.
    later = asked + 3 * HOUR_US
    events.append(_moved(2, "new", later, "request_approval", "routed", "pending_approval",
                         later - 1))
    projection = fold("main", events)
    figures = pool_figures(CONFIG, POOL, CONFIG.rates_for(POOL), projection.cells,
                           projection.series, at_us=later)
    assert figures.approval_waiting_since_us == T0 + 60 * SECOND_US  # its minute
    assert len(LATENCY_BOUNDS_US) + 1 == len(figures.approval_wait_buckets)

