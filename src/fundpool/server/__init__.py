"""The fundpool HTTP server (FastAPI): operations routes now, the `/v1` API next."""

from __future__ import annotations

from fundpool.server.app import create_app
from fundpool.server.metrics import FundpoolCollector, MetricSource, Scrape

__all__ = ["FundpoolCollector", "MetricSource", "Scrape", "create_app"]
