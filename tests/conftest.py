"""Shared fixtures. `store` runs each test on SQLite and on the real PostgreSQL server.

PostgreSQL tests skip with a clear message when the server is unreachable, except in CI
(CI=true), where a missing server is a failure.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, settings

import fundpool.auth.secrets as fundpool_secrets
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.stores.sqlite import SqliteStore

IN_CI = os.environ.get("CI") == "true"
# The deepest property searches (the payment and dispatcher state machines) run at full depth
# with FUNDPOOL_DEEP_PROPERTIES=1; by default at a depth that keeps the suite well inside CI's
# time (docs/benchmarks.md has no timed tests; this is only how long the searches go on).
DEEP_PROPERTIES = os.environ.get("FUNDPOOL_DEEP_PROPERTIES") == "1"
PG_URL = os.environ.get("FUNDPOOL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")

# Hypothesis by default fails an example that takes over 200 ms, and a search whose data takes
# long to draw: both measure the machine, not the code, and a busy machine (another process on
# a core, pytest -n 2) may cross them. Every search runs without a deadline; a test's own
# @settings starts from this profile, so only one that lists suppress_health_check replaces it.
settings.register_profile("fundpool", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("fundpool")

# Passwords hashed in the tests' own process use argon2id at its cheapest work factors: the
# tests check who may sign in, never how slow a guess is (Django's tests swap in a fast hasher
# for the same reason). Servers the tests start as processes keep the real parameters, and a
# hash made with either verifies under the other (the parameters are in the hash).
fundpool_secrets._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


# The seconds each slow file took (tools/test_durations.py writes it from a JUnit report).
DURATIONS = Path(__file__).with_name("durations.json")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest files first, each file's tests in their own order. `make test` gives a
    worker a whole file at a time in this order (`--dist loadfile --no-loadscope-reorder`):
    longest first, the two workers end close together instead of one finishing a long browser
    file alone. Every worker sorts the same collection the same way, as xdist requires."""
    weights: dict[str, float] = json.loads(DURATIONS.read_text(encoding="utf-8")) \
        if DURATIONS.is_file() else {}
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        first.setdefault(item.nodeid.partition("::")[0], index)

    def weight(item: pytest.Item) -> tuple[float, int]:
        path = item.nodeid.partition("::")[0]
        return -weights.get(path, 0.0), first[path]

    items.sort(key=weight)


def postgres_reachable() -> str | None:
    """None when the server answers, else why not."""
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except Exception as error:  # any failure to connect means: not here
        return f"{type(error).__name__}: {error}"
    return None


def require_postgres() -> None:
    why = postgres_reachable()
    if why is None:
        return
    message = f"PostgreSQL is not reachable at {PG_URL} ({why})"
    if IN_CI:
        pytest.fail(message + "; CI must provide it (.ci/run starts it)")
    pytest.skip(message + "; start it or set FUNDPOOL_TEST_PG_URL")


def new_pg_schema() -> str:
    return f"test_{uuid.uuid4().hex[:16]}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerStore]:
    if request.param == "sqlite":
        sqlite_store = SqliteStore(tmp_path / "ledger.sqlite3")
        sqlite_store.initialise()
        yield sqlite_store
        sqlite_store.close()
        return
    require_postgres()
    from fundpool.stores.postgres import PostgresStore

    pg_store = PostgresStore(PG_URL, schema=new_pg_schema())
    pg_store.initialise()
    try:
        yield pg_store
    finally:
        pg_store.drop_schema()
        pg_store.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def ledger(store: LedgerStore, clock: ManualClock) -> Ledger:
    return Ledger(store, clock, Uuid7Ids.seeded(7))
