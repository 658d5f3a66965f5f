"""The leases that share a projection store's pools between consumer processes, on their own
(the consumers using them are in test_nats.py): a file lock for SQLite, session advisory locks
on the real PostgreSQL server."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from fundpool.bus.leases import AdvisoryLeases, FileLease, NoLeases, lease_key, leases_for
from tests.conftest import PG_URL, require_postgres

WAIT_S = 60.0  # the bound on waiting for PostgreSQL to end a closed session


def no_connection() -> Any:
    raise AssertionError("these leases need no connection")


def test_each_store_gets_its_kind_of_lease(tmp_path: Path) -> None:
    assert isinstance(leases_for("postgresql://h/db?schema=x", no_connection), AdvisoryLeases)
    assert isinstance(leases_for(f"sqlite:///{tmp_path / 'p.db'}", no_connection), FileLease)
    assert isinstance(leases_for("sqlite:///:memory:", no_connection), NoLeases)
    # The keys: the same in every process, one per schema and pool, signed 64-bit.
    assert lease_key("fundpool", "main") == lease_key("fundpool", "main")
    assert lease_key("fundpool", "main") != lease_key("fundpool", "other")
    assert -(2**63) <= lease_key("fundpool", "main") < 2**63


def test_a_file_lease_lets_one_consumer_process_hold_every_pool(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'projections.sqlite3'}"
    first, second = leases_for(url, no_connection), leases_for(url, no_connection)
    assert first.share(3) == 3  # no sharing: all or nothing
    assert first.take("main")
    assert first.take("_ledger")
    assert not second.take("main")  # a standby
    first.give_back("main")
    assert not second.take("main")  # the file stays locked while the first runs
    first.leave()
    assert second.take("main")
    second.lost()
    assert first.take("main")
    first.leave()


@pytest.mark.postgres
def test_advisory_leases_share_the_pools_and_go_with_their_connection() -> None:
    require_postgres()
    import psycopg

    schema = f"lease_{uuid.uuid4().hex[:10]}"  # keys only: no schema is created
    connections = [psycopg.connect(PG_URL, autocommit=True) for _ in range(2)]
    try:
        first = AdvisoryLeases(schema, lambda: connections[0])
        second = AdvisoryLeases(schema, lambda: connections[1])
        assert first.share(2) == 2  # alone: every pool
        assert first.take("main")
        assert first.take("_ledger")
        assert second.share(2) == 1  # two members now: one pool each …
        assert not second.take("main")  # … but both are taken
        first.give_back("main")
        assert second.take("main")
        assert not first.take("main")

        # The first's connection closes: its locks go once PostgreSQL has ended its session,
        # a moment after the client hangs up, so wait for it, with a bound.
        connections[0].close()
        deadline = time.monotonic() + WAIT_S
        while not (second.share(2) == 2 and second.take("_ledger")):
            if time.monotonic() >= deadline:
                pytest.fail(f"waited {WAIT_S:g} s for the closed connection's advisory locks "
                            "to be released")
            time.sleep(0.02)
        second.leave()  # gives back every lease at once
        connections[0] = psycopg.connect(PG_URL, autocommit=True)
        third = AdvisoryLeases(schema, lambda: connections[0])
        assert third.take("main")
        assert third.take("_ledger")
    finally:
        for connection in connections:
            connection.close()
