"""The engine writes a transfer's canonical bytes directly; they must be exactly the canonical
JSON of the entry's body (sorted keys, no spaces, UTF-8), or an independent verifier would
compute another hash."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from fundpool.core.clock import Uuid7Ids
from fundpool.core.ledger.canonical import canonical_bytes, chain_hash
from fundpool.core.ledger.engine import BatchEngine, WorkingSet
from fundpool.core.ledger.model import (
    GENESIS,
    METADATA_KEY_PATTERN,
    Account,
    Posting,
    Reverse,
    Transfer,
)
from fundpool.core.money import AMOUNT_MAX_MINOR, Asset, AssetKind

ADDRESSES = ["world:bank-a", "pool:main:usd:bank-a:available", "merchant:m_1:usd:payable"]
metadata_keys = st.from_regex(METADATA_KEY_PATTERN, fullmatch=True)
# Any storable Unicode: control characters and quotes included; NUL and unpaired surrogates
# are refused before any entry is made (tests/payments/test_hostile_text.py).
metadata_values = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
)
idempotency_keys = st.none() | st.from_regex(r"[\x21-\x7e]{1,40}", fullmatch=True)


def working_set() -> WorkingSet:
    working = WorkingSet()
    for code, scale in (("USD", 2), ("ETH", 18)):
        working.assets[code] = Asset(code, scale, AssetKind.FIAT)
    for address in ADDRESSES:
        working.accounts[address] = Account(address, allow_negative=True)
    return working


postings = st.lists(
    st.tuples(
        st.sampled_from(ADDRESSES),
        st.sampled_from(ADDRESSES),
        st.sampled_from(["USD", "ETH"]),
        st.integers(1, AMOUNT_MAX_MINOR // 300),
    ).filter(lambda p: p[0] != p[1]),
    min_size=1,
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(
    postings=postings,
    metadata=st.dictionaries(metadata_keys, metadata_values, max_size=4),
    key=idempotency_keys,
    reverse=st.booleans(),
    at_us=st.integers(0, 2**62),
)
def test_transfer_bytes_are_the_canonical_json_of_the_body(
    postings: list[tuple[str, str, str, int]],
    metadata: dict[str, str],
    key: str | None,
    reverse: bool,
    at_us: int,
) -> None:
    engine = BatchEngine(working_set(), GENESIS, at_us, Uuid7Ids.seeded(3))
    transfer = Transfer(tuple(Posting(*p) for p in postings), metadata, key)
    first = engine.apply(transfer)
    assert first.entry is not None, first.error
    entries = [first.entry]
    if reverse:
        second = engine.apply(Reverse(first.entry.id, metadata))
        assert second.entry is not None, second.error
        assert second.entry.body["reverses"] == first.entry.id
        entries.append(second.entry)
    prev = GENESIS.hash
    for entry in entries:
        body = json.loads(entry.canonical)
        assert canonical_bytes(body) == entry.canonical
        assert body["seq"] == entry.seq
        assert body["id"] == entry.id
        assert body["metadata"] == metadata
        assert entry.hash == chain_hash(prev, entry.canonical)
        prev = entry.hash
    assert [
        (p["source"], p["destination"], p["asset"], p["amount_minor"])
        for p in json.loads(entries[0].canonical)["postings"]
    ] == postings
