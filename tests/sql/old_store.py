"""The stores written by the code before issue 13 (tests/fixtures/old_store_v1), read back two
ways: with plain SQL, as `make_old_stores.py` read the figures that expected.json records; and
through the current code's own APIs (the journal and its hash chain, payments, the outbox, API
keys and users). Shared by the upgrade tests (tests/sql/test_upgrade_old_store.py) and the
fixture's own test (tests/stores/test_old_fixture.py).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.verify import verify
from fundpool.stores import payment_store
from fundpool.stores.auth_sql import AuthStore
from fundpool.stores.events_sql import outbox_reader
from tests.conftest import PG_URL
from tests.fixtures.old_stores import postgres_figures, sqlite_figures

# Any instant after the fixture was made: its keys never expire.
NOW_US = 1_900_000_000 * 1_000_000
# What an upgrade does to the list of tables: ledger 0002 drops the never-read `ledger_meta`,
# and the versions are kept in `schema_migrations`. Every other table keeps every row; the
# tables a later migration adds are there, empty.
DROPPED_TABLE = "ledger_meta"
VERSIONS_TABLE = "schema_migrations"
ADDED_TABLES = {
    "auth_changes": 0,  # auth 0002: who changed which key or user
    # the risk component (0001), which the fixture's code did not have: created empty
    **{name: 0 for name in ("risk_policies", "risk_decisions", "risk_cases", "risk_case_notes",
                            "risk_lists", "risk_cleared", "risk_parties", "risk_revisions",
                            "risk_responses")},
    # the approvals component (0001)
    **{name: 0 for name in ("approval_actions", "approval_rule_versions", "approval_rule_votes",
                            "approval_keys", "approval_totp", "approval_plans",
                            "approval_signatures", "approval_delays")},
    # the audit log (0001)
    **{name: 0 for name in ("audit_entries", "audit_actors", "audit_nodes", "audit_checkpoints",
                            "audit_cursors", "audit_verifications")},
    # reconciliation (0001)
    **{name: 0 for name in ("recon_actions", "recon_files", "recon_statements", "recon_lines",
                            "recon_state", "recon_matches", "recon_resolutions",
                            "recon_expected", "recon_mappings")},
    # the treasury desk (0001)
    **{name: 0 for name in ("desk_actions", "desk_objects")},
}
# Components newer than the fixture: absent from it, created by the upgrade.
NEWER_COMPONENTS = ("risk", "approvals", "audit", "recon", "desk")


@dataclass(frozen=True, slots=True)
class OldStore:
    """A copy of one fixture: `kind` sqlite | postgres, `figures` its part of expected.json."""

    kind: str
    url: str
    figures: dict[str, Any]
    path: Path | None = None  # the SQLite file
    schema: str | None = None  # the PostgreSQL schema

    def read_figures(self) -> dict[str, Any]:
        """The figures as `make_old_stores.py` read them, with plain SQL on a connection of
        their own. `read_figures` also reads `ledger_meta`, which an upgrade drops: for an
        upgraded store an empty temporary table stands in for it on that connection alone
        (a temporary table is in neither sqlite_master nor the schema's table list)."""
        if self.kind == "sqlite":
            assert self.path is not None
            connection = sqlite3.connect(self.path)
            try:
                if not connection.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                    (DROPPED_TABLE,),
                ).fetchall():
                    connection.execute(f"CREATE TEMP TABLE {DROPPED_TABLE} (key TEXT, value TEXT)")
                return sqlite_figures(connection)
            finally:
                connection.close()
        import psycopg

        assert self.schema is not None
        with psycopg.connect(PG_URL, autocommit=True) as pg:
            if not pg.execute(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
                "AND table_name = %s", (self.schema, DROPPED_TABLE)
            ).fetchall():
                pg.execute(f"CREATE TEMP TABLE {DROPPED_TABLE} (key TEXT, value TEXT)")
            return postgres_figures(pg, self.schema)


def drop_pg_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def figures_kept(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: figures[k] for k in ("counts", "tables", "head", "ledger_meta", "samples")}


def check_upgraded_figures(found: dict[str, Any], figures: dict[str, Any],
                           migrations_applied: int) -> None:
    """`found` (the figures of the upgraded store) keeps every row `figures` (the fixture's)
    counted: the same counts, head and samples, every table with its rows but the dropped one,
    and one row of `schema_migrations` per migration applied."""
    assert found["counts"] == figures["counts"]
    assert found["head"] == figures["head"]
    assert found["samples"] == figures["samples"]
    tables = dict(found["tables"])
    assert tables.pop(VERSIONS_TABLE) == migrations_applied
    assert tables == {**{name: rows for name, rows in figures["tables"].items()
                         if name != DROPPED_TABLE}, **ADDED_TABLES}
    assert found["ledger_meta"] == {}  # the empty stand-in: the store has no such table


def check_with_current_code(store: LedgerStore, figures: dict[str, Any]) -> None:
    """The journal head, the hash chain and balances, the sample entries, payments and outbox
    events, and the fixture's credentials, through the current code's own APIs."""
    head = store.head()
    assert (head.seq, head.hash.hex()) == (figures["head"]["seq"], figures["head"]["hash"])
    report = verify(store)
    assert report.ok, report.problem
    assert report.entries == figures["counts"]["journal_entries"]
    samples = figures["samples"]
    for entry_id in samples["journal_ids"]:
        assert store.entry_by_id(entry_id) is not None, entry_id
    payments = payment_store(store)
    for payment_id in samples["payment_ids"]:
        assert payments.payment(payment_id) is not None, payment_id
        assert payments.events(payment_id), payment_id
    outbox = outbox_reader(store)
    for event_id in samples["outbox_event_ids"]:
        assert outbox.position_of(event_id) is not None, event_id
    auth = AuthStore.beside(store)
    try:
        keys = figures["credentials"]["api_keys"]
        stored_keys = auth.keys()  # the store's API keys, not a mapping's
        assert sorted(k.id for k in stored_keys) == sorted(k["id"] for k in keys)
        for key in keys:
            principal = auth.authenticate_key(key["token"], now_us=NOW_US)
            assert (principal.id, sorted(principal.roles)) == (key["id"], sorted(key["roles"]))
        users = figures["credentials"]["users"]
        assert sorted(u.username for u in auth.users()) == sorted(u["username"] for u in users)
        for user in users:
            principal, _, _ = auth.login(user["username"], user["password"], now_us=NOW_US)
            assert sorted(principal.roles) == sorted(user["roles"])
    finally:
        auth.close()
