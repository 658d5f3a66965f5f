"""A chain transfer list: the transfers of one address in one asset, as an indexer or an
explorer's API exports them (JSON):

    {"chain": "ethereum", "address": "0xabc…", "asset": "USDT",
     "transfers": [{"tx_hash": "0x…", "log_index": 3, "block_time": "2026-12-07T10:00:00Z",
                    "from": "0x…", "to": "0x…", "amount": "12.500000",
                    "status": "confirmed", "reference": null}]}

The list is one `Statement` of the address (no balances: a chain list has none), its id the
first 16 hex digits of the file's SHA-256 and the file's name. A transfer to the address is a
credit, from it a debit; one that is both (to itself) or neither is refused, as is a second
transfer with the same transaction hash and log index. `confirmed` is BOOKED, `pending`
PENDING. Hex addresses and hashes (EVM chains) are compared and kept lower-case, since their
letter case is only a checksum; other chains' (base58) are kept as written.

Amounts are decimal text in the asset's units, read exactly: a JSON number is refused, since
a float may already have rounded it before anything could check. Every refusal names its place
as a path into the document (`transfers[3].amount`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
)

from fundpool.recon.formats import (
    amount_minor,
    check_size,
    datetime_us,
    scale_of,
    sha256_of,
)
from fundpool.recon.model import (
    FileFormat,
    FileRefused,
    LineKind,
    LineStatus,
    Statement,
    StatementFile,
    StatementLine,
)

MESSAGE = "chain-transfers"
STATEMENT_ID_DIGEST_CHARS = 16
TEXT_CHARS_MAX = 512  # longest chain, address, hash or reference kept (a Solana signature: 88)
_HEX = re.compile(r"0x[0-9a-fA-F]+\Z")
_STATUS = {"confirmed": LineStatus.BOOKED, "pending": LineStatus.PENDING}
Text = Annotated[StrictStr, StringConstraints(min_length=1, max_length=TEXT_CHARS_MAX)]


class Transfer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    tx_hash: Text
    log_index: StrictInt = Field(ge=0)
    block_time: Text
    sender: Text = Field(alias="from")  # `from` is a keyword in Python
    recipient: Text = Field(alias="to")
    amount: StrictStr  # text: parse_amount bounds its length and refuses what is not decimal
    status: Literal["confirmed", "pending"]
    reference: Annotated[StrictStr, StringConstraints(max_length=TEXT_CHARS_MAX)] | None = None


class TransferList(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    chain: Text
    address: Text
    asset: Text
    transfers: list[Transfer]


def parse_chain(data: bytes, name: str, *, scales: Mapping[str, int]) -> StatementFile:
    """The list as one statement of its address, checked whole."""
    check_size(data, name)
    digest = sha256_of(data)
    document = _document(data, name)
    scale = scale_of(document.asset, scales, file=name, place="asset")
    account = _canonical(document.address)
    statement_id = f"{digest[:STATEMENT_ID_DIGEST_CHARS]}:{name}"
    seen: dict[tuple[str, int], int] = {}
    lines: list[StatementLine] = []
    for index, transfer in enumerate(document.transfers):
        place = f"transfers[{index}]"
        tx_hash = _canonical(transfer.tx_hash)
        key = (tx_hash, transfer.log_index)
        if key in seen:
            raise FileRefused(f"transfer {index} repeats transaction {tx_hash} log index "
                              f"{transfer.log_index} (transfer {seen[key]})", file=name,
                              place=place, tx_hash=tx_hash, log_index=transfer.log_index,
                              first=f"transfers[{seen[key]}]")
        seen[key] = index
        sender, recipient = _canonical(transfer.sender), _canonical(transfer.recipient)
        if sender == account and recipient == account:
            raise FileRefused(f"transfer {index} is from the address to itself: neither a "
                              "credit nor a debit", file=name, place=place, address=account)
        if account not in (sender, recipient):
            raise FileRefused(f"transfer {index} is neither to nor from {account}", file=name,
                              place=place, address=account, sender=sender,
                              recipient=recipient)
        magnitude = amount_minor(transfer.amount, scale, document.asset, file=name,
                                 place=f"{place}.amount")
        at_us = _time(transfer.block_time, name, f"{place}.block_time")
        incoming = recipient == account
        lines.append(StatementLine(
            line_id=f"{statement_id}:{tx_hash}:{transfer.log_index}",
            amount_minor=magnitude if incoming else -magnitude, asset=document.asset,
            booked_at_us=at_us, value_at_us=at_us, status=_STATUS[transfer.status],
            kind=LineKind.TRANSFER, bank_ref=tx_hash,
            reference=transfer.reference or None,  # explorers write "" for no memo
            counterparty_account=sender if incoming else recipient))
    statement = Statement(
        statement_id=statement_id, account=account, asset=document.asset,
        # The list says nothing of when it was made: its latest transfer stands for that.
        created_at_us=max((line.booked_at_us for line in lines), default=0),
        lines=tuple(lines))
    return StatementFile(name=name, format=FileFormat.CHAIN, message=MESSAGE,
                         statements=(statement,), sha256=digest)


def _document(data: bytes, name: str) -> TransferList:
    try:
        # JSON is UTF-8 (RFC 8259); a byte-order mark is tolerated, as the RFC allows.
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise FileRefused("the file is not UTF-8, which JSON is", file=name,
                          place=f"byte {error.start}", encoding="utf-8") from None
    try:
        # Numbers become Decimal, never float: even a number refused as an amount is not
        # rounded on the way to its refusal. NaN and Infinity are not JSON (RFC 8259).
        raw = json.loads(text, parse_float=Decimal, parse_constant=_not_json)
    except json.JSONDecodeError as error:
        raise FileRefused(f"not JSON: {error.msg}", file=name,
                          place=f"line {error.lineno}, column {error.colno}") from None
    except ValueError as error:
        raise FileRefused(f"not JSON: {error}", file=name, place="byte 0") from None
    except RecursionError:
        raise FileRefused("not JSON fundpool reads: nested too deeply", file=name,
                          place="byte 0") from None
    if not isinstance(raw, dict):
        raise FileRefused("a transfer list is a JSON object with chain, address, asset and "
                          "transfers", file=name, place="(top level)",
                          found=type(raw).__name__)
    try:
        return TransferList.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        place = _path(first["loc"])
        why = first["msg"]
        if first["loc"][-1:] == ("amount",) and first["type"] == "string_type":
            why = "an amount is decimal text (\"12.50\"): a JSON number may already be rounded"
        elif first["type"] == "extra_forbidden":
            why = "not a field of a chain transfer list"
        raise FileRefused(f"{place}: {why}", file=name, place=place, why=why,
                          error_count=error.error_count()) from None


def _not_json(constant: str) -> object:
    raise ValueError(f"{constant} is not a JSON value")


def _path(location: tuple[int | str, ...]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(top level)"


def _time(text: str, name: str, place: str) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise FileRefused(f"{text!r} is not an ISO 8601 time", file=name, place=place,
                          found=text) from None
    if moment.tzinfo is None:
        raise FileRefused(f"{text!r} has no zone ('Z' or an offset): whose 10:00 is it?",
                          file=name, place=place, found=text)
    return datetime_us(moment)


def _canonical(text: str) -> str:
    return text.lower() if _HEX.match(text) else text
