"""Tampering with a stored ledger behind the service's back is found by `verify`, which names
the entry; a wrong balance table is repaired by `rebuild(write=True)`.

Runs on the SQLite file and on PostgreSQL (the `store` fixture), editing rows with the database
driver directly.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Any

import pytest

from fundpool.core.clock import ManualClock
from fundpool.core.ledger.canonical import canonical_bytes, chain_hash
from fundpool.core.ledger.model import (
    Account,
    CreatePending,
    DefineAsset,
    OpenAccount,
    Posting,
    Transfer,
)
from fundpool.core.money import Asset, AssetKind
from fundpool.ledger.ports import LedgerStore, StoredEntry
from fundpool.ledger.service import Ledger
from fundpool.ledger.verify import rebuild, verify
from fundpool.stores.sqlite import SqliteStore

try:
    from tests.conftest import PG_URL
except ModuleNotFoundError:  # tests/ is not a package: pytest put tests/ itself on the path
    from conftest import PG_URL  # type: ignore[no-redef]

USD = "USD"
WORLD = "world:bank-a"
AVAILABLE = "pool:main:usd:bank-a:available"
MERCHANT = "merchant:m1:usd:payable"
LOCKED = "pool:main:usd:bank-a:locked"


class Tamperer:
    """Runs SQL against the store's own tables, outside the store. SQL is written with '?'."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store
        self.sqlite = isinstance(store, SqliteStore)

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        if self.sqlite:
            with closing(sqlite3.connect(self.store.path)) as connection:  # type: ignore[attr-defined]
                connection.isolation_level = None
                yield connection
            return
        import psycopg
        from psycopg import sql

        with psycopg.connect(PG_URL, autocommit=True) as connection:
            connection.execute(
                sql.SQL("SET search_path TO {}").format(
                    sql.Identifier(self.store.schema)  # type: ignore[attr-defined]
                )
            )
            yield connection

    def run(self, statement: str, *params: Any) -> int:
        if not self.sqlite:
            statement = statement.replace("CAST(? AS BLOB)", "?").replace("?", "%s")
        with self._connection() as connection:
            cursor = connection.execute(statement, params)
            return cursor.rowcount

    def run_all(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        for statement, params in statements:
            self.run(statement, *params)


def build(ledger: Ledger, clock: ManualClock) -> None:
    """A few dozen transactions: transfers, reservations, posts, voids, a reversal."""
    ledger.submit(
        [
            DefineAsset(Asset(USD, 2, AssetKind.FIAT)),
            OpenAccount(Account(WORLD)),
            OpenAccount(Account(AVAILABLE, asset=USD)),
            OpenAccount(Account(MERCHANT, asset=USD)),
            OpenAccount(Account(LOCKED, asset=USD)),
        ]
    )
    ledger.transfer([Posting(WORLD, AVAILABLE, USD, 1_000_000)])
    for i in range(12):
        clock.advance(seconds=1)
        ledger.transfer([Posting(AVAILABLE, MERCHANT, USD, 700 + i)], metadata={"n": str(i)})
    results = ledger.submit(
        [CreatePending(Posting(AVAILABLE, LOCKED, USD, 5_000 + i), 600) for i in range(6)]
    )
    for i, result in enumerate(results):
        assert result.entry is not None
        if i % 3 == 0:
            ledger.post_pending(result.entry.id, 1_000)
        elif i % 3 == 1:
            ledger.void_pending(result.entry.id)
    original = ledger.transfer([Posting(MERCHANT, LOCKED, USD, 100)])
    ledger.reverse(original.id)
    ledger.submit([Transfer((Posting(WORLD, MERCHANT, USD, 5 + i),)) for i in range(8)])
    report = verify(ledger.store)
    assert report.ok, report.problem
    assert report.entries >= 35


@pytest.fixture
def tampered(ledger: Ledger, clock: ManualClock) -> tuple[LedgerStore, Tamperer]:
    build(ledger, clock)
    return ledger.store, Tamperer(ledger.store)


def transfer_entries(store: LedgerStore) -> list[StoredEntry]:
    return [e for e in store.entries() if e.kind == "transfer"]


def middle_transfer(store: LedgerStore) -> StoredEntry:
    transfers = transfer_entries(store)
    return transfers[len(transfers) // 2]


def assert_names(store: LedgerStore, seq: int, entry_id: str | None) -> str:
    report = verify(store)
    assert not report.ok
    assert report.problem is not None
    assert report.problem.seq == seq, report.problem
    assert report.problem.entry_id == entry_id, report.problem
    return report.problem.reason


def test_untouched_ledger_verifies(tampered: tuple[LedgerStore, Tamperer]) -> None:
    store, _ = tampered
    report = verify(store)
    assert report.ok
    assert report.problem is None
    assert report.head_seq == store.head().seq
    assert report.head_hash == store.head().hash.hex()
    assert rebuild(store).differences == ()


def test_edited_canonical_bytes(tampered: tuple[LedgerStore, Tamperer]) -> None:
    store, tamper = tampered
    target = middle_transfer(store)
    body = json.loads(target.canonical)
    body["postings"][0]["amount_minor"] += 1  # still a well-formed, balanced entry
    forged = canonical_bytes(body)
    assert forged != target.canonical
    changed = tamper.run(
        "UPDATE journal SET canonical = CAST(? AS BLOB) WHERE seq = ?", forged, target.seq
    )
    assert changed == 1
    reason = assert_names(store, target.seq, target.id)
    assert "hash" in reason


def test_edited_canonical_bytes_with_the_rest_of_the_chain_rehashed(
    tampered: tuple[LedgerStore, Tamperer],
) -> None:
    # The forger recomputes every later hash; the legs still give the edit away.
    store, tamper = tampered
    target = middle_transfer(store)
    body = json.loads(target.canonical)
    body["postings"][0]["amount_minor"] += 1
    entries = list(store.entries())
    previous = store.entry(target.seq - 1)
    assert previous is not None
    prev_hash = previous.hash
    statements: list[tuple[str, tuple[Any, ...]]] = []
    for entry in entries[target.seq - 1 :]:
        canonical = canonical_bytes(body) if entry.seq == target.seq else entry.canonical
        prev_hash = chain_hash(prev_hash, canonical)
        statements.append(
            (
                "UPDATE journal SET canonical = CAST(? AS BLOB), hash = CAST(? AS BLOB) "
                "WHERE seq = ?",
                (canonical, prev_hash, entry.seq),
            )
        )
    tamper.run_all(statements)
    reason = assert_names(store, target.seq, target.id)
    assert "leg" in reason


def test_edited_hash(tampered: tuple[LedgerStore, Tamperer]) -> None:
    store, tamper = tampered
    target = middle_transfer(store)
    forged = bytes(b ^ 0xFF for b in target.hash)
    tamper.run("UPDATE journal SET hash = CAST(? AS BLOB) WHERE seq = ?", forged, target.seq)
    assert_names(store, target.seq, target.id)


def test_edited_head_hash(tampered: tuple[LedgerStore, Tamperer]) -> None:
    store, tamper = tampered
    head = store.head()
    last = store.entry(head.seq)
    assert last is not None
    tamper.run("UPDATE journal SET hash = CAST(? AS BLOB) WHERE seq = ?", bytes(32), head.seq)
    assert_names(store, head.seq, last.id)


def test_deleted_row_in_the_middle(tampered: tuple[LedgerStore, Tamperer]) -> None:
    store, tamper = tampered
    target = middle_transfer(store)
    assert tamper.run("DELETE FROM journal WHERE seq = ?", target.seq) == 1
    reason = assert_names(store, target.seq, None)
    assert "missing" in reason


def test_deleted_first_row(tampered: tuple[LedgerStore, Tamperer]) -> None:
    store, tamper = tampered
    tamper.run("DELETE FROM journal WHERE seq = 1")
    assert_names(store, 1, None)


def test_deleted_row_with_its_legs(tampered: tuple[LedgerStore, Tamperer]) -> None:
    store, tamper = tampered
    target = middle_transfer(store)
    tamper.run("DELETE FROM legs WHERE seq = ?", target.seq)
    tamper.run("DELETE FROM journal WHERE seq = ?", target.seq)
    assert_names(store, target.seq, None)


def test_deleted_last_rows_are_found_by_the_balance_table(
    tampered: tuple[LedgerStore, Tamperer],
) -> None:
    # Truncating the tail along with its legs leaves a shorter valid chain: the balance table
    # (and an externally recorded head hash) is what shows it.
    store, tamper = tampered
    head = store.head().seq
    tamper.run("DELETE FROM legs WHERE seq = ?", head)
    tamper.run("DELETE FROM journal WHERE seq = ?", head)
    report = verify(store)
    assert not report.ok
    assert report.head_seq == head - 1


def test_swapped_rows(tampered: tuple[LedgerStore, Tamperer]) -> None:
    store, tamper = tampered
    target = middle_transfer(store)
    following = store.entry(target.seq + 1)
    assert following is not None
    tamper.run_all(
        [
            ("UPDATE journal SET seq = ? WHERE seq = ?", (-1, target.seq)),
            ("UPDATE journal SET seq = ? WHERE seq = ?", (target.seq, following.seq)),
            ("UPDATE journal SET seq = ? WHERE seq = ?", (following.seq, -1)),
        ]
    )
    moved = store.entry(target.seq)
    assert moved is not None
    assert moved.id == following.id
    assert_names(store, target.seq, following.id)


def test_forged_row_appended_with_a_valid_hash(tampered: tuple[LedgerStore, Tamperer]) -> None:
    store, tamper = tampered
    head = store.head()
    template = json.loads(middle_transfer(store).canonical)
    forged_id = "019b76da-a800-7fff-bfff-ffffffffffff"
    template.update(seq=head.seq + 1, id=forged_id, at_us=head.at_us, metadata={"forged": "1"})
    template["postings"] = [
        {"source": WORLD, "destination": MERCHANT, "asset": USD, "amount_minor": 10**6}
    ]
    canonical = canonical_bytes(template)
    tamper.run(
        "INSERT INTO journal (seq, id, kind, at_us, canonical, hash) "
        "VALUES (?, ?, ?, ?, CAST(? AS BLOB), CAST(? AS BLOB))",
        head.seq + 1,
        forged_id,
        "transfer",
        head.at_us,
        canonical,
        chain_hash(head.hash, canonical),
    )
    assert store.head().seq == head.seq + 1
    assert_names(store, head.seq + 1, forged_id)


def test_forged_row_inserted_in_the_middle(tampered: tuple[LedgerStore, Tamperer]) -> None:
    store, tamper = tampered
    target = middle_transfer(store)
    head = store.head().seq
    # make room at target.seq: move every later row (and its legs) one up, from the top down
    statements: list[tuple[str, tuple[Any, ...]]] = []
    for seq in range(head, target.seq - 1, -1):
        statements.append(("UPDATE journal SET seq = ? WHERE seq = ?", (seq + 1, seq)))
        statements.append(("UPDATE legs SET seq = ? WHERE seq = ?", (seq + 1, seq)))
    tamper.run_all(statements)
    previous = store.entry(target.seq - 1)
    assert previous is not None
    body = json.loads(target.canonical)
    body.update(seq=target.seq, id="019b76da-a800-7fff-bfff-000000000001")
    canonical = canonical_bytes(body)
    tamper.run(
        "INSERT INTO journal (seq, id, kind, at_us, canonical, hash) "
        "VALUES (?, ?, ?, ?, CAST(? AS BLOB), CAST(? AS BLOB))",
        target.seq,
        body["id"],
        "transfer",
        target.at_us,
        canonical,
        chain_hash(previous.hash, canonical),
    )
    report = verify(store)
    assert not report.ok
    assert report.problem is not None
    # the forged row itself has no legs, or the row after it no longer chains
    assert report.problem.seq in {target.seq, target.seq + 1}, report.problem


def test_edited_leg_amount(tampered: tuple[LedgerStore, Tamperer]) -> None:
    store, tamper = tampered
    target = middle_transfer(store)
    changed = tamper.run(
        "UPDATE legs SET posted = ? WHERE seq = ? AND address = ?", 123, target.seq, MERCHANT
    )
    assert changed == 1
    reason = assert_names(store, target.seq, target.id)
    assert MERCHANT in reason


def test_deleted_leg(tampered: tuple[LedgerStore, Tamperer]) -> None:
    store, tamper = tampered
    target = middle_transfer(store)
    tamper.run("DELETE FROM legs WHERE seq = ? AND address = ?", target.seq, MERCHANT)
    assert_names(store, target.seq, target.id)


def test_edited_kind_column(tampered: tuple[LedgerStore, Tamperer]) -> None:
    store, tamper = tampered
    target = middle_transfer(store)
    tamper.run("UPDATE journal SET kind = ? WHERE seq = ?", "pending_created", target.seq)
    reason = assert_names(store, target.seq, target.id)
    assert "kind" in reason


def _last_touch(store: LedgerStore, address: str) -> StoredEntry:
    seq = max(leg.seq for leg in store.legs() if leg.address == address)
    entry = store.entry(seq)
    assert entry is not None
    return entry


@pytest.mark.parametrize("address", [MERCHANT, LOCKED, AVAILABLE])
def test_edited_balance_is_named_and_repaired(
    tampered: tuple[LedgerStore, Tamperer], address: str
) -> None:
    store, tamper = tampered
    right = store.balances()
    last = _last_touch(store, address)
    changed = tamper.run(
        "UPDATE balances SET posted = ? WHERE address = ? AND asset = ?", 10**15, address, USD
    )
    assert changed == 1
    reason = assert_names(store, last.seq, last.id)
    assert address in reason
    report = rebuild(store)
    assert [(d.address, d.asset) for d in report.differences] == [(address, USD)]
    assert report.differences[0].replayed == right[address, USD]
    assert not report.written
    assert not verify(store).ok  # a dry run writes nothing
    repaired = rebuild(store, write=True)
    assert repaired.written
    assert verify(store).ok
    assert store.balances() == right
    assert rebuild(store).differences == ()


def test_deleted_balance_row_is_repaired(tampered: tuple[LedgerStore, Tamperer]) -> None:
    store, tamper = tampered
    right = store.balances()
    last = _last_touch(store, MERCHANT)
    tamper.run("DELETE FROM balances WHERE address = ?", MERCHANT)
    assert_names(store, last.seq, last.id)
    assert rebuild(store, write=True).written
    assert verify(store).ok
    assert store.balances() == right


def test_extra_balance_row_is_found(tampered: tuple[LedgerStore, Tamperer]) -> None:
    store, tamper = tampered
    tamper.run(
        "INSERT INTO balances (address, asset, posted, pending_out, pending_in) "
        "VALUES (?, ?, ?, ?, ?)",
        "pool:ghost:usd",
        USD,
        500,
        0,
        0,
    )
    report = verify(store)
    assert not report.ok
    assert "pool:ghost:usd" in report.problem.reason  # type: ignore[union-attr]
    assert rebuild(store, write=True).written
    assert verify(store).ok


def test_rebuild_does_not_write_over_a_broken_journal(
    tampered: tuple[LedgerStore, Tamperer],
) -> None:
    store, tamper = tampered
    target = middle_transfer(store)
    tamper.run("UPDATE balances SET posted = ? WHERE address = ?", 1, MERCHANT)
    tamper.run("UPDATE journal SET hash = CAST(? AS BLOB) WHERE seq = ?", bytes(32), target.seq)
    before = store.balances()
    report = rebuild(store, write=True)
    assert not report.verify.ok
    assert not report.written
    assert store.balances() == before


def test_edited_pending_row(tampered: tuple[LedgerStore, Tamperer]) -> None:
    store, tamper = tampered
    voided = next(p for p in store.pendings() if p.state.value == "voided")
    tamper.run("UPDATE pendings SET state = ? WHERE id = ?", "pending", voided.id)
    report = verify(store)
    assert not report.ok
    assert report.problem is not None
    assert report.problem.entry_id == voided.id
    assert report.problem.seq == voided.finished_seq


# The last good head a failed verify reports is one entry: the seq of the last entry that passed
# every check and that entry's own hash. An edited leg once gave seq N with entry N-1's hash (the
# replay had moved on to N before its legs were compared), while an edited journal record gave
# N-1 with N-1's hash.


def verify_cli(store: LedgerStore, *options: str) -> str:
    """What `fundpool ledger verify` prints for this store (exit code 1: it fails)."""
    from typer.testing import CliRunner

    from fundpool.cli.main import app

    if isinstance(store, SqliteStore):
        url = f"sqlite:///{store.path}"
    else:
        url = f"{PG_URL}?schema={store.schema}"  # type: ignore[attr-defined]
    runner = CliRunner(env={"FUNDPOOL_DB_URL": None, "FUNDPOOL_DATA_DIR": None})
    result = runner.invoke(app, ["ledger", "verify", *options, "--db-url", url])
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    return result.stdout


def assert_last_good_head(store: LedgerStore, seq: int) -> None:
    """verify, in Python and through the CLI's JSON, fails at entry `seq` and reports entry
    `seq - 1` (seq and hash) as the last good head."""
    good = store.entry(seq - 1)
    assert good is not None
    report = verify(store)
    assert report.problem is not None
    assert report.problem.seq == seq, report.problem
    assert (report.entries, report.head_seq, report.head_hash) == (
        good.seq,
        good.seq,
        good.hash.hex(),
    )
    doc = json.loads(verify_cli(store, "--json"))
    assert doc["problem"]["seq"] == seq
    assert (doc["entries"], doc["head_seq"], doc["head_hash"]) == (
        good.seq,
        good.seq,
        good.hash.hex(),
    )
    text = " ".join(verify_cli(store).split())  # rich may wrap the long line
    assert f"last good head seq {good.seq}, hash {good.hash.hex()}" in text


def test_last_good_head_after_an_edited_leg(tampered: tuple[LedgerStore, Tamperer]) -> None:
    store, tamper = tampered
    target = middle_transfer(store)
    tamper.run(
        "UPDATE legs SET posted = ? WHERE seq = ? AND address = ?", 123, target.seq, MERCHANT
    )
    assert_last_good_head(store, target.seq)


def test_last_good_head_after_an_edited_journal_record(
    tampered: tuple[LedgerStore, Tamperer],
) -> None:
    store, tamper = tampered
    target = middle_transfer(store)
    body = json.loads(target.canonical)
    body["postings"][0]["amount_minor"] += 1
    tamper.run(
        "UPDATE journal SET canonical = CAST(? AS BLOB) WHERE seq = ?",
        canonical_bytes(body),
        target.seq,
    )
    assert_last_good_head(store, target.seq)


def _rehash_from(
    store: LedgerStore, seq: int, canonical: bytes
) -> list[tuple[str, tuple[Any, ...]]]:
    """Statements that put `canonical` at `seq` and recompute every hash from there on."""
    previous = store.entry(seq - 1)
    assert previous is not None
    prev_hash = previous.hash
    statements: list[tuple[str, tuple[Any, ...]]] = []
    for entry in list(store.entries())[seq - 1 :]:
        bytes_ = canonical if entry.seq == seq else entry.canonical
        prev_hash = chain_hash(prev_hash, bytes_)
        statements.append(
            (
                "UPDATE journal SET canonical = CAST(? AS BLOB), hash = CAST(? AS BLOB) "
                "WHERE seq = ?",
                (bytes_, prev_hash, entry.seq),
            )
        )
    return statements


@pytest.mark.parametrize(
    "kind",
    ["deleted leg", "edited hash", "edited kind column", "deleted row", "rehashed chain",
     "unreplayable entry"],
)
def test_last_good_head_is_one_entry_for_every_kind_of_tampering(
    tampered: tuple[LedgerStore, Tamperer], kind: str
) -> None:
    store, tamper = tampered
    target = middle_transfer(store)
    body = json.loads(target.canonical)
    if kind == "deleted leg":
        tamper.run("DELETE FROM legs WHERE seq = ? AND address = ?", target.seq, MERCHANT)
    elif kind == "edited hash":
        tamper.run(
            "UPDATE journal SET hash = CAST(? AS BLOB) WHERE seq = ?", bytes(32), target.seq
        )
    elif kind == "edited kind column":
        tamper.run("UPDATE journal SET kind = ? WHERE seq = ?", "pending_created", target.seq)
    elif kind == "deleted row":
        tamper.run("DELETE FROM journal WHERE seq = ?", target.seq)
    elif kind == "rehashed chain":  # found by the legs
        body["postings"][0]["amount_minor"] += 1
        tamper.run_all(_rehash_from(store, target.seq, canonical_bytes(body)))
    else:  # a chain rehashed over a posting to an account never opened: the replay refuses it
        body["postings"][0]["destination"] = "pool:ghost:usd"
        tamper.run_all(_rehash_from(store, target.seq, canonical_bytes(body)))
        assert "replayed" in assert_names(store, target.seq, target.id)
    assert_last_good_head(store, target.seq)


def test_last_good_head_after_a_balance_edit_is_the_journal_head(
    tampered: tuple[LedgerStore, Tamperer],
) -> None:
    # The journal verifies to its end; the problem is in a table derived from it.
    store, tamper = tampered
    tamper.run("UPDATE balances SET posted = ? WHERE address = ?", 1, MERCHANT)
    head = store.head()
    report = verify(store)
    assert not report.ok
    assert (report.head_seq, report.head_hash) == (head.seq, head.hash.hex())
