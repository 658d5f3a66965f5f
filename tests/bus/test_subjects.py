"""Where a projection store URL points, as the bus names it: read through the SQL layer's URL
parser (fundpool.sql.url), with the same durable names as before it did."""

from __future__ import annotations

from pathlib import Path

import pytest

from fundpool.bus.consumer import projection_url
from fundpool.bus.subjects import durable_name, projection_location
from fundpool.sql import UnsupportedDatabaseUrl

# Durable names pinned from the code before the bus read URLs through fundpool.sql: a consumer
# restarted on the new code must find its durable, not start a new one from the stream's start.
PINNED = {
    "sqlite:////srv/fundpool/projections.sqlite3":
        ("sqlite:/srv/fundpool/projections.sqlite3", "projector_3c05c0dbb9"),
    "sqlite:///:memory:": ("sqlite::memory:", "projector_76ded4ac51"),
    "postgresql://u:pw@db.example:6543/pool?schema=proj":
        ("pg:db.example:6543/pool:proj", "projector_9ef72c0dd7"),
    "postgresql://db.example/pool": ("pg:db.example:5432/pool:fundpool", "projector_86729ead4c"),
    "postgres://db.example/pool?sslmode=require&schema=proj":
        ("pg:db.example:5432/pool:proj", "projector_fe09ea04e9"),
}


@pytest.mark.parametrize("url", sorted(PINNED))
def test_durable_names_are_unchanged(url: str) -> None:
    location, durable = PINNED[url]
    assert projection_location(url) == location
    assert durable_name(url) == durable


def test_a_projection_url_is_a_url_or_a_sqlite_file(tmp_path: Path) -> None:
    assert projection_url(tmp_path / "p.db") == f"sqlite:///{tmp_path / 'p.db'}"
    assert projection_url("sqlite:///:memory:") == "sqlite:///:memory:"
    url = "postgresql://h/db?schema=proj"
    assert projection_url(url) == url


@pytest.mark.parametrize("url", ["mysql://h/db", "sqlite://relative.db",
                                 "postgresql://h/db?schema=no-dashes"])
def test_a_projection_url_of_another_kind_is_refused(url: str) -> None:
    with pytest.raises(UnsupportedDatabaseUrl):
        projection_url(url)
