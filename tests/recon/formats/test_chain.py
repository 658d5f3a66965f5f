"""Chain transfer lists: a USDT list with confirmed and pending transfers read to exact values,
and every bad input refused at its path in the document."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from fundpool.recon.formats.chain import parse_chain
from fundpool.recon.model import FileFormat, FileRefused, LineStatus, StatementLine

SAMPLES = Path(__file__).parent / "samples"
SCALES = {"EUR": 2, "USDT": 6, "TRX": 6}
POOL = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
S_US = 1_000_000


def test_a_usdt_list_reads_to_exact_values() -> None:
    data = (SAMPLES / "ethereum_usdt.json").read_bytes()
    parsed = parse_chain(data, "usdt.json", scales=SCALES)
    digest = hashlib.sha256(data).hexdigest()
    assert (parsed.format, parsed.message, parsed.sha256) == (
        FileFormat.CHAIN, "chain-transfers", digest)
    (statement,) = parsed.statements
    sid = f"{digest[:16]}:usdt.json"
    # The checksummed (mixed-case) address is the same account as its lower-case form.
    assert (statement.statement_id, statement.account, statement.asset, statement.opening,
            statement.closing) == (sid, POOL, "USDT", None, None)
    t0 = 1_796_637_611 * S_US  # 2026-12-07T10:00:11Z
    t1 = 1_796_650_325 * S_US  # 2026-12-07T14:32:05+01:00 is 13:32:05Z
    t3 = 1_796_721_300 * S_US  # 2026-12-08T09:15:00Z
    hash0 = "0x8f1c2a0e5d4b3c2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a"
    hash1 = "0x1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a"
    hash3 = "0x77aa00bb11cc22dd33ee44ff5566778899aabbccddeeff00112233445566778a"
    assert statement.lines == (
        StatementLine(f"{sid}:{hash0}:12", 2_500_000_000, "USDT", t0, t0, bank_ref=hash0,
                      counterparty_account="0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359"),
        StatementLine(f"{sid}:{hash1}:3", -1_200_500_000, "USDT", t1, t1, bank_ref=hash1,
                      reference="FP-PAY-0003",
                      counterparty_account="0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb"),
        # The same transaction, another log: another transfer, back to the pool.
        StatementLine(f"{sid}:{hash1}:7", 1, "USDT", t1, t1, bank_ref=hash1,
                      counterparty_account="0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb"),
        StatementLine(f"{sid}:{hash3}:0", -75_250_000, "USDT", t3, t3,
                      status=LineStatus.PENDING, bank_ref=hash3, reference="FP-PAY-0004",
                      counterparty_account="0xd1220a0cf47c7b9be7a2e6ba89f429762e7b9adb"),
    )
    assert statement.created_at_us == t3


def test_base58_addresses_keep_their_case() -> None:
    pool, other = "TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
    data = {"chain": "tron", "address": pool, "asset": "TRX", "transfers": [
        {"tx_hash": "AbC1", "log_index": 0, "block_time": "2026-12-07T10:00:00+00:00",
         "from": other, "to": pool, "amount": "3", "status": "confirmed", "reference": ""}]}
    (statement,) = parse_chain(json.dumps(data).encode(), "t.json", scales=SCALES).statements
    (line,) = statement.lines
    assert (statement.account, line.counterparty_account, line.bank_ref, line.amount_minor,
            line.reference) == (pool, other, "AbC1", 3_000_000, None)
    data["address"] = pool.lower()  # base58 is case-sensitive: another address
    with pytest.raises(FileRefused, match="neither to nor from"):
        parse_chain(json.dumps(data).encode(), "t.json", scales=SCALES)


def sample() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SAMPLES / "ethereum_usdt.json").read_text())
    return loaded


def changed(path: tuple[str | int, ...], value: object) -> bytes:
    document = copy.deepcopy(sample())
    node: Any = document
    for part in path[:-1]:
        node = node[part]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return json.dumps(document).encode()


DELETE = object()


@pytest.mark.parametrize(("path", "value", "place", "why"), [
    (("transfers", 1, "amount"), 1200.5, "transfers[1].amount", "decimal text"),
    (("transfers", 1, "amount"), 1200, "transfers[1].amount", "decimal text"),
    (("transfers", 1, "amount"), "-1200.5", "transfers[1].amount", "negative"),
    (("transfers", 1, "amount"), "1.0000001", "transfers[1].amount", "more decimals"),
    (("transfers", 1, "amount"), "1e3", "transfers[1].amount", "decimal digits"),
    (("transfers", 1, "to"), POOL.upper().replace("0X", "0x"), "transfers[1]", "to itself"),
    (("transfers", 0, "from"), POOL, "transfers[0]", "to itself"),
    (("transfers", 2, "to"), "0x0000000000000000000000000000000000000001", "transfers[2]",
     "neither to nor from"),
    (("transfers", 0, "block_time"), "2026-12-07T10:00:11", "transfers[0].block_time",
     "no zone"),
    (("transfers", 0, "block_time"), "yesterday", "transfers[0].block_time", "not an ISO"),
    (("transfers", 0, "status"), "failed", "transfers[0].status", "'confirmed' or 'pending'"),
    (("transfers", 0, "fee"), "0.1", "transfers[0].fee", "not a field"),
    (("transfers", 0, "log_index"), -1, "transfers[0].log_index", "greater than or equal"),
    (("transfers", 0, "log_index"), "3", "transfers[0].log_index", "valid integer"),
    (("transfers", 0, "tx_hash"), DELETE, "transfers[0].tx_hash", "Field required"),
    (("asset",), "DAI", "asset", "not one this pool holds"),
    (("address",), "", "address", "at least 1 character"),
    (("transfers",), {"0": {}}, "transfers", "valid list"),
])
def test_bad_input_is_refused_at_its_path(path: tuple[str | int, ...], value: object,
                                          place: str, why: str) -> None:
    with pytest.raises(FileRefused) as refused:
        parse_chain(changed(path, value), "bad.json", scales=SCALES)
    assert type(refused.value) is FileRefused
    assert refused.value.facts["file"] == "bad.json"
    assert refused.value.facts["place"] == place
    assert why in refused.value.detail


def test_a_repeated_transfer_is_refused_whatever_the_hash_case() -> None:
    document = sample()
    repeat = dict(document["transfers"][1], tx_hash=document["transfers"][1]["tx_hash"].upper()
                  .replace("0X", "0x"))
    document["transfers"].append(repeat)
    with pytest.raises(FileRefused) as refused:
        parse_chain(json.dumps(document).encode(), "dup.json", scales=SCALES)
    facts = refused.value.facts
    assert (facts["place"], facts["first"], facts["log_index"]) == (
        "transfers[4]", "transfers[1]", 3)


@pytest.mark.parametrize(("data", "place"), [
    (b'{"chain": "ethereum",\n "address": }', "line 2, column 13"),
    (b"[1, 2]", "(top level)"),
    (b'{"chain": "\xff"}', "byte 11"),
    (b'{"chain": NaN}', "byte 0"),
    (b"[" * 100_000, "byte 0"),
])
def test_a_file_that_is_no_transfer_list_is_refused(data: bytes, place: str) -> None:
    with pytest.raises(FileRefused) as refused:
        parse_chain(data, "x.json", scales=SCALES)
    assert refused.value.facts["place"] == place
