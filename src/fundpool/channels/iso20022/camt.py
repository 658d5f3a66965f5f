"""camt.053 (bank-to-customer statement) and camt.054 (debit/credit notification): what the
bank says happened on the pool's account, read into `fundpool.recon.model` values.

A file holds one or more statements (`Stmt`; `Ntfctn` in a camt.054), each of one account
(`Acct/Id/IBAN` or `Acct/Id/Othr/Id`, its currency `Acct/Ccy` or else its balances') with its
entries (`Ntry`). Read from .001.02 and .001.08, written as .001.08 (for the simulated bank).

An entry becomes one `StatementLine` (`line_id` "<Stmt/Id>:<position of the Ntry>"):

- `Amt` and its `Ccy` in minor units, negative when `CdtDbtInd` is DBIT;
- `Sts` (`Sts/Cd` in .08): BOOK is booked; PDNG, FUTR and INFO are pending (never counted
  in a balance: INFO is "for information, not booked", which is what pending means here);
- `BookgDt` and `ValDt`, each a `Dt` or a `DtTm` (one stands for the other when missing);
- `AcctSvcrRef` is the bank's reference;
- the kind: `RvslInd` true is a REVERSAL; a return reason (`TxDtls/RtrInf`) or a return
  sub-family (RRTN, ARET, RPCR) a RETURN; sub-family CHRG or COMM (ACMT/MDOP/CHRG …) a
  CHARGE; INTR an INTEREST; a miscellaneous family (MCOP/MDOP) or a domain other than PMNT
  is OTHER; the rest a TRANSFER. With no ISO code, the SWIFT code that banks put first in
  `BkTxCd/Prtry/Cd` (NCHG, NINT, NRTI …) decides the same way;
- one `TxDtls` gives the end-to-end id (`Refs/EndToEndId`; NOTPROVIDED is none), the
  remittance (`RmtInf/Ustrd`, else the creditor reference `Strd/CdtrRefInf/Ref`), the
  counterparty (`RltdPties/Dbtr` of a credit, `Cdtr` of a debit; `Pty/Nm` in .08) with its
  account, and a return's reason (`RtrInf/Rsn/Cd` or `Prtry`);
- several `TxDtls` make a batched entry: its `parts` are their end-to-end ids; `batch_ref`
  is `NtryDtls/Btch/PmtInfId` (else `Btch/MsgId`, else the transactions' common
  `Refs/PmtInfId`). A `Btch` on any entry names its batch.

A camt.053 statement needs its opening balance (`Bal` OPBD, else PRCD) and its closing one
(CLBD); opening plus the booked entries must be the closing, or `BalancesDoNotAddUp`.

Nothing is stored from a file that is refused, and nothing of one is returned: the file is
parsed safely and checked for its bounds first (document.py), then every statement is read
in full before `StatementFile` is built, and each refusal names the element's place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from fundpool.channels.iso20022.document import (
    FILE_BYTES_MAX,
    Node,
    amount_text,
    checked_currency,
    checked_text,
    iso_datetime,
    new_document,
    read_document,
    serialize,
    sub,
    sub_date_choice,
)
from fundpool.channels.iso20022.errors import MessageNotWritable
from fundpool.recon.formats import sha256_of
from fundpool.recon.model import (
    Balance,
    BalancesDoNotAddUp,
    FileFormat,
    FileRefused,
    LineKind,
    LineStatus,
    Statement,
    StatementFile,
    StatementLine,
)

__all__ = ["ENTRIES_MAX", "FILE_BYTES_MAX", "STATEMENTS_MAX", "VERSIONS", "parse_camt",
           "write_camt053", "write_camt054"]

VERSIONS = ("camt.053.001.08", "camt.053.001.02", "camt.054.001.08", "camt.054.001.02")
STATEMENT_VERSION = "camt.053.001.08"
NOTIFICATION_VERSION = "camt.054.001.08"
# A month of a busy collection account's entries, several accounts to a file, is some
# hundreds of thousands; 200 MiB (FILE_BYTES_MAX) holds about this many of the smallest.
ENTRIES_MAX = 500_000
STATEMENTS_MAX = 10_000  # a statement per account and day: a year of 27 accounts
NOT_PROVIDED = "NOTPROVIDED"  # SEPA's "no end-to-end id"
OPENING_BALANCES = ("OPBD", "PRCD")  # in order of preference: PRCD is the previous CLBD
CLOSING_BALANCE = "CLBD"
ID_LENGTH_MAX = 35
NAME_LENGTH_MAX = 140
REMITTANCE_LENGTH_MAX = 140
ACCOUNT_NUMBER_LENGTH_MAX = 34
SEQUENCE_DIGITS_MAX = 18  # ElctrncSeqNb is a Number

_BOOKED = frozenset({"BOOK"})
_PENDING = frozenset({"PDNG", "FUTR", "INFO"})
_RETURN_SUBFAMILIES = frozenset({"RRTN", "ARET", "RPCR"})
_CHARGE_SUBFAMILIES = frozenset({"CHRG", "COMM"})
_INTEREST_SUBFAMILIES = frozenset({"INTR"})
_MISCELLANEOUS_FAMILIES = frozenset({"MCOP", "MDOP"})
_PAYMENTS_DOMAIN = "PMNT"
_NO_DOMAIN = "XTND"  # the code list's "not available": as if no ISO code were given
# SWIFT transaction types (MT940 :61:), which banks repeat in BkTxCd/Prtry/Cd ("NCHG",
# "NTRF+166+…"): N for a customer's, F for the bank's own.
_CHARGE_SWIFT = frozenset({"NCHG", "FCHG", "NCOM", "FCOM"})
_INTEREST_SWIFT = frozenset({"NINT", "FINT"})
_RETURN_SWIFT = frozenset({"NRTI", "FRTI"})
_LOOKS_LIKE_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Za-z0-9]{1,30}\Z")  # IBAN2007Identifier
_ISO_REASON = re.compile(r"[A-Z0-9]{4}\Z")  # ExternalReturnReason1Code


@dataclass(frozen=True, slots=True)
class _Message:
    body: str
    item: str  # one statement's element
    format: FileFormat


_MESSAGES = {
    "camt.053": _Message("BkToCstmrStmt", "Stmt", FileFormat.CAMT053),
    "camt.054": _Message("BkToCstmrDbtCdtNtfctn", "Ntfctn", FileFormat.CAMT054),
}


# --- reading -------------------------------------------------------------------------------


def parse_camt(data: bytes, name: str, *, scales: Mapping[str, int]) -> StatementFile:
    """A camt.053 or camt.054 file, read and checked whole."""
    document, version = read_document(data, name, messages=VERSIONS)
    message = _MESSAGES[version[:8]]
    body = document.need(message.body)
    created_us = body.need("GrpHdr/CreDtTm").datetime_us()
    items = body.children(message.item)
    if not items:
        raise FileRefused(f"the file holds no {message.item}", file=name,
                          place=f"{body.place}/{message.item}", expected=message.item)
    if len(items) > STATEMENTS_MAX:
        raise body.refuse(f"more than {STATEMENTS_MAX} statements in one file",
                          found=len(items), limit=STATEMENTS_MAX)
    entries = body.count("Ntry")
    if entries > ENTRIES_MAX:
        raise body.refuse(f"more than {ENTRIES_MAX} entries in one file", found=entries,
                          limit=ENTRIES_MAX)
    statements: list[Statement] = []
    seen: set[tuple[str, str]] = set()
    for item in items:
        statement = _statement(item, message.format, created_us, scales)
        key = (statement.account, statement.statement_id)
        if key in seen:
            raise item.need("Id").refuse("the account's statement id appears twice in the file",
                                         found=statement.statement_id)
        seen.add(key)
        statements.append(statement)
    return StatementFile(name=name, format=message.format, message=version,
                         statements=tuple(statements), sha256=sha256_of(data))


def _statement(item: Node, file_format: FileFormat, header_created_us: int,
               scales: Mapping[str, int]) -> Statement:
    statement_id = item.need_text("Id")
    account_node = item.need("Acct")
    account = account_node.text_of("Id/IBAN") or account_node.text_of("Id/Othr/Id")
    if account is None:
        raise FileRefused("the account has neither an IBAN nor an Othr/Id", file=item.file,
                          place=f"{account_node.place}/Id", expected=["IBAN", "Othr/Id"])
    created = item.child("CreDtTm")
    asset = account_node.text_of("Ccy")

    opening: Balance | None = None
    closing: Balance | None = None
    if file_format is FileFormat.CAMT053:
        opening, closing, asset = _balances(item, asset, scales)

    lines: list[StatementLine] = []
    for position, entry in enumerate(item.children("Ntry"), start=1):
        line = _line(entry, f"{statement_id}:{position}", scales)
        if asset is None:
            asset = line.asset
        elif line.asset != asset:
            raise FileRefused(f"an entry in {line.asset} on a statement in {asset}",
                              file=entry.file, place=f"{entry.place}/Amt/@Ccy",
                              found=line.asset, expected=asset)
        lines.append(line)
    if asset is None:
        raise FileRefused("the statement's currency is not given (no Acct/Ccy, no entry)",
                          file=item.file, place=f"{account_node.place}/Ccy", expected="Ccy")
    if asset not in scales:
        raise FileRefused(f"asset {asset!r} is not one this pool holds", file=item.file,
                          place=f"{account_node.place}/Ccy", found=asset,
                          expected=sorted(scales))

    if opening is not None and closing is not None:
        entries_minor = sum(line.amount_minor for line in lines
                            if line.status is LineStatus.BOOKED)
        if opening.amount_minor + entries_minor != closing.amount_minor:
            raise BalancesDoNotAddUp(
                f"statement {statement_id}: opening {opening.amount_minor} plus the booked "
                f"entries' {entries_minor} is {opening.amount_minor + entries_minor}, the "
                f"closing balance says {closing.amount_minor}", file=item.file,
                place=item.place, statement_id=statement_id,
                opening_minor=opening.amount_minor, entries_minor=entries_minor,
                closing_minor=closing.amount_minor)
    return Statement(
        statement_id=statement_id,
        account=account,
        asset=asset,
        created_at_us=created.datetime_us() if created is not None else header_created_us,
        lines=tuple(lines),
        opening=opening,
        closing=closing,
        sequence=item.text_of("ElctrncSeqNb"),
    )


def _balances(item: Node, asset: str | None, scales: Mapping[str, int]
              ) -> tuple[Balance, Balance, str]:
    found: dict[str, tuple[Node, Balance, str]] = {}
    for balance in item.children("Bal"):
        code = balance.text_of("Tp/CdOrPrtry/Cd")
        if code not in (*OPENING_BALANCES, CLOSING_BALANCE):
            continue  # CLAV, ITBD, FWAV …: informative, not part of the check
        if code in found:
            raise balance.refuse(f"a second {code} balance in one statement", found=code)
        amount_node = balance.need("Amt")
        magnitude, currency = amount_node.amount_minor(scales)
        if asset is not None and currency != asset:
            raise FileRefused(f"a {code} balance in {currency} on a statement in {asset}",
                              file=balance.file, place=f"{amount_node.place}/@Ccy",
                              found=currency, expected=asset)
        asset = currency
        signed = -magnitude if _debit(balance) else magnitude
        found[code] = (balance, Balance(signed, balance.need("Dt").date_choice_us()), currency)
    opening = next((found[code] for code in OPENING_BALANCES if code in found), None)
    if opening is None:
        raise FileRefused("a camt.053 statement needs its opening balance", file=item.file,
                          place=f"{item.place}/Bal", expected=list(OPENING_BALANCES))
    closing = found.get(CLOSING_BALANCE)
    if closing is None:
        raise FileRefused("a camt.053 statement needs its closing balance", file=item.file,
                          place=f"{item.place}/Bal", expected=CLOSING_BALANCE)
    return opening[1], closing[1], closing[2]


def _debit(node: Node) -> bool:
    indicator = node.need_text("CdtDbtInd")
    if indicator not in ("CRDT", "DBIT"):
        raise node.need("CdtDbtInd").refuse(f"CdtDbtInd {indicator!r} is neither CRDT nor DBIT",
                                            found=indicator, expected=["CRDT", "DBIT"])
    return indicator == "DBIT"


def _line(entry: Node, line_id: str, scales: Mapping[str, int]) -> StatementLine:
    magnitude, asset = entry.need("Amt").amount_minor(scales)
    debit = _debit(entry)
    status = _status(entry)
    booked = entry.child("BookgDt")
    value = entry.child("ValDt")
    # A pending entry may have only its value date, a booked one only its booking date: one
    # stands for the other.
    dated = booked if booked is not None else value
    if dated is None:
        raise FileRefused("an entry needs its booking date or its value date", file=entry.file,
                          place=f"{entry.place}/BookgDt", expected=["BookgDt", "ValDt"])
    booked_us = dated.date_choice_us()
    value_us = value.date_choice_us() if value is not None else booked_us
    reversal = (entry.text_of("RvslInd") or "").lower() in ("true", "1")

    details = entry.children("NtryDtls")
    transactions = [tx for detail in details for tx in detail.children("TxDtls")]
    returned = next((tx for tx in transactions if tx.child("RtrInf") is not None), None)
    reason = _return_reason(returned) if returned is not None else None
    batch_ref = _batch_ref(details, transactions)
    end_to_end_id = reference = counterparty = counterparty_account = None
    parts: tuple[str, ...] = ()
    bank_ref = entry.text_of("AcctSvcrRef")
    if len(transactions) == 1:
        (only,) = transactions
        end_to_end_id = _end_to_end_id(only)
        reference = _remittance(only)
        counterparty, counterparty_account = _counterparty(only, "Cdtr" if debit else "Dbtr")
        bank_ref = bank_ref or only.text_of("Refs/AcctSvcrRef")
    elif transactions:
        parts = tuple(e2e for e2e in map(_end_to_end_id, transactions) if e2e is not None)

    return StatementLine(
        line_id=line_id,
        amount_minor=-magnitude if debit else magnitude,
        asset=asset,
        booked_at_us=booked_us,
        value_at_us=value_us,
        status=status,
        kind=_kind(entry, reversal=reversal, returned=returned is not None),
        end_to_end_id=end_to_end_id,
        batch_ref=batch_ref,
        bank_ref=bank_ref,
        reference=reference,
        counterparty=counterparty,
        counterparty_account=counterparty_account,
        reason=reason,
        parts=parts,
    )


def _status(entry: Node) -> LineStatus:
    node = entry.need("Sts")
    code = node.text_of("Cd") or node.text_of("Prtry") or node.text  # .08 nests it, .02 not
    if code in _BOOKED:
        return LineStatus.BOOKED
    if code in _PENDING:
        return LineStatus.PENDING
    raise node.refuse(f"entry status {code!r} is not one fundpool reads", found=code,
                      expected=sorted(_BOOKED | _PENDING))


def _kind(entry: Node, *, reversal: bool, returned: bool) -> LineKind:
    code = entry.child("BkTxCd")
    domain = family = subfamily = swift = None
    if code is not None:
        domain = code.text_of("Domn/Cd")
        family = code.text_of("Domn/Fmly/Cd")
        subfamily = code.text_of("Domn/Fmly/SubFmlyCd")
        swift = (code.text_of("Prtry/Cd") or "")[:4].upper() or None
    if domain == _NO_DOMAIN:
        domain = family = subfamily = None
    if reversal:
        return LineKind.REVERSAL
    if returned or subfamily in _RETURN_SUBFAMILIES or swift in _RETURN_SWIFT:
        return LineKind.RETURN
    if subfamily in _CHARGE_SUBFAMILIES or swift in _CHARGE_SWIFT:
        return LineKind.CHARGE
    if subfamily in _INTEREST_SUBFAMILIES or swift in _INTEREST_SWIFT:
        return LineKind.INTEREST
    if domain is not None and (domain != _PAYMENTS_DOMAIN or family in _MISCELLANEOUS_FAMILIES):
        return LineKind.OTHER
    return LineKind.TRANSFER


def _batch_ref(details: list[Node], transactions: list[Node]) -> str | None:
    for detail in details:
        batch = detail.child("Btch")
        if batch is not None:
            named = batch.text_of("PmtInfId") or batch.text_of("MsgId")
            if named is not None:
                return named
    if len(transactions) > 1:
        # Some banks name the batch only in each transaction's references.
        common = {tx.text_of("Refs/PmtInfId") for tx in transactions}
        if len(common) == 1:
            return common.pop()
    return None


def _end_to_end_id(transaction: Node) -> str | None:
    value = transaction.text_of("Refs/EndToEndId")
    return None if value is None or value == NOT_PROVIDED else value


def _remittance(transaction: Node) -> str | None:
    remittance = transaction.child("RmtInf")
    if remittance is None:
        return None
    lines = remittance.texts("Ustrd")
    if lines:
        return " ".join(lines)
    return remittance.text_of("Strd/CdtrRefInf/Ref")


def _counterparty(transaction: Node, role: str) -> tuple[str | None, str | None]:
    parties = transaction.child("RltdPties")
    if parties is None:
        return None, None
    name = parties.text_of(f"{role}/Pty/Nm") or parties.text_of(f"{role}/Nm")
    account = parties.child(f"{role}Acct")
    number = None
    if account is not None:
        number = account.text_of("Id/IBAN") or account.text_of("Id/Othr/Id")
    return name, number


def _return_reason(transaction: Node) -> str | None:
    return (transaction.text_of("RtrInf/Rsn/Cd") or transaction.text_of("RtrInf/Rsn/Prtry"))


# --- writing (the simulated bank's side) ---------------------------------------------------


def write_camt053(statements: Sequence[Statement], *, message_id: str, created_at_us: int,
                  scales: Mapping[str, int]) -> bytes:
    """A camt.053.001.08 of these statements; each needs balances that add up."""
    return _write(STATEMENT_VERSION, statements, message_id, created_at_us, scales)


def write_camt054(statements: Sequence[Statement], *, message_id: str, created_at_us: int,
                  scales: Mapping[str, int]) -> bytes:
    """A camt.054.001.08 of these notifications (statements without balances)."""
    return _write(NOTIFICATION_VERSION, statements, message_id, created_at_us, scales)


# The ISO code each kind is written with, by direction (credit, debit). The family is the
# original payment's: a returned or reversed payout was an issued transfer (ICDT).
_CODES: Mapping[LineKind, tuple[tuple[str, str, str], tuple[str, str, str]]] = {
    LineKind.TRANSFER: (("PMNT", "RCDT", "ESCT"), ("PMNT", "ICDT", "ESCT")),
    LineKind.CHARGE: (("ACMT", "MCOP", "CHRG"), ("ACMT", "MDOP", "CHRG")),
    LineKind.RETURN: (("PMNT", "ICDT", "RRTN"), ("PMNT", "RCDT", "RRTN")),
    LineKind.REVERSAL: (("PMNT", "ICDT", "ESCT"), ("PMNT", "RCDT", "ESCT")),
    LineKind.INTEREST: (("ACMT", "MCOP", "INTR"), ("ACMT", "MDOP", "INTR")),
    LineKind.OTHER: (("PMNT", "MCOP", "OTHR"), ("PMNT", "MDOP", "OTHR")),
}


def _write(version: str, statements: Sequence[Statement], message_id: str,
           created_at_us: int, scales: Mapping[str, int]) -> bytes:
    message = _MESSAGES[version[:8]]
    checked_text(message_id, limit=ID_LENGTH_MAX, field="message_id",
                 place=f"Document/{message.body}/GrpHdr/MsgId")
    if not statements or len(statements) > STATEMENTS_MAX:
        raise MessageNotWritable(f"a {version[:8]} holds 1 to {STATEMENTS_MAX} statements",
                                 field="statements", found=len(statements),
                                 place=f"Document/{message.body}/{message.item}")
    entries = sum(len(statement.lines) for statement in statements)
    if entries > ENTRIES_MAX:
        raise MessageNotWritable(f"more than {ENTRIES_MAX} entries in one file",
                                 field="lines", found=entries, place=f"Document/{message.body}")
    root, body = new_document(version, message.body)
    header = sub(body, "GrpHdr")
    sub(header, "MsgId", message_id)
    sub(header, "CreDtTm", iso_datetime(created_at_us))
    for position, statement in enumerate(statements, start=1):
        place = f"Document/{message.body}/{message.item}[{position}]"
        _sub_statement(body, message, statement, place, scales)
    return serialize(root)


def _sub_statement(body: Element, message: _Message, statement: Statement, place: str,
                   scales: Mapping[str, int]) -> None:
    statement_id = checked_text(statement.statement_id, limit=ID_LENGTH_MAX,
                                field="statement_id", place=f"{place}/Id")
    asset = checked_currency(statement.asset, place=f"{place}/Acct/Ccy",
                             statement_id=statement_id)
    scale = scales.get(asset)
    if scale is None:
        raise MessageNotWritable(f"no scale is given for {asset}", field="asset",
                                 place=f"{place}/Acct/Ccy", found=asset, expected=sorted(scales))
    node = sub(body, message.item)
    sub(node, "Id", statement_id)
    if statement.sequence is not None:
        sequence = statement.sequence
        if not (sequence.isascii() and sequence.isdigit()
                and len(sequence) <= SEQUENCE_DIGITS_MAX):
            raise MessageNotWritable("ElctrncSeqNb is a number of at most "
                                     f"{SEQUENCE_DIGITS_MAX} digits", field="sequence",
                                     place=f"{place}/ElctrncSeqNb", found=sequence)
        sub(node, "ElctrncSeqNb", sequence)
    sub(node, "CreDtTm", iso_datetime(statement.created_at_us))
    account = sub(node, "Acct")
    _sub_account_id(account, statement.account, place=f"{place}/Acct/Id")
    sub(account, "Ccy", asset)
    if message.format is FileFormat.CAMT053:
        _sub_balances(node, statement, asset, scale, place)
    elif statement.opening is not None or statement.closing is not None:
        raise MessageNotWritable("a camt.054 notification carries no balances",
                                 field="opening", place=place, statement_id=statement_id)
    for position, line in enumerate(statement.lines, start=1):
        _sub_entry(node, line, asset, scale, f"{place}/Ntry[{position}]")


def _sub_balances(node: Element, statement: Statement, asset: str, scale: int,
                  place: str) -> None:
    opening, closing = statement.opening, statement.closing
    if opening is None or closing is None:
        raise MessageNotWritable("a camt.053 statement needs its opening and closing balances",
                                 field="opening" if opening is None else "closing",
                                 place=f"{place}/Bal", statement_id=statement.statement_id)
    entries_minor = sum(line.amount_minor for line in statement.lines
                        if line.status is LineStatus.BOOKED)
    if opening.amount_minor + entries_minor != closing.amount_minor:
        raise MessageNotWritable(
            "opening plus the booked lines is not the closing balance: a bank never says so",
            field="closing", place=place, statement_id=statement.statement_id,
            opening_minor=opening.amount_minor, entries_minor=entries_minor,
            closing_minor=closing.amount_minor)
    for code, balance in ((OPENING_BALANCES[0], opening), (CLOSING_BALANCE, closing)):
        bal = sub(node, "Bal")
        sub(sub(sub(bal, "Tp"), "CdOrPrtry"), "Cd", code)
        sub(bal, "Amt", amount_text(abs(balance.amount_minor), scale, place=f"{place}/Bal"),
            Ccy=asset)
        sub(bal, "CdtDbtInd", "DBIT" if balance.amount_minor < 0 else "CRDT")
        sub_date_choice(bal, "Dt", balance.at_us)


def _sub_entry(node: Element, line: StatementLine, asset: str, scale: int, place: str) -> None:
    if line.asset != asset:
        raise MessageNotWritable(f"a line in {line.asset} on a statement in {asset}",
                                 field="asset", place=f"{place}/Amt", found=line.asset,
                                 expected=asset, line_id=line.line_id)
    _check_line(line, place)
    credit = line.amount_minor >= 0
    entry = sub(node, "Ntry")
    sub(entry, "Amt", amount_text(abs(line.amount_minor), scale, place=f"{place}/Amt",
                                  line_id=line.line_id), Ccy=asset)
    sub(entry, "CdtDbtInd", "CRDT" if credit else "DBIT")
    if line.kind is LineKind.REVERSAL:
        sub(entry, "RvslInd", "true")
    sub(sub(entry, "Sts"), "Cd", "BOOK" if line.status is LineStatus.BOOKED else "PDNG")
    sub_date_choice(entry, "BookgDt", line.booked_at_us)
    sub_date_choice(entry, "ValDt", line.value_at_us)
    if line.bank_ref is not None:
        sub(entry, "AcctSvcrRef", line.bank_ref)
    domain, family, subfamily = _CODES[line.kind][0 if credit else 1]
    code = sub(sub(entry, "BkTxCd"), "Domn")
    sub(code, "Cd", domain)
    family_code = sub(code, "Fmly")
    sub(family_code, "Cd", family)
    sub(family_code, "SubFmlyCd", subfamily)
    single = (line.end_to_end_id, line.reference, line.counterparty, line.counterparty_account,
              line.reason)
    if line.batch_ref is None and not line.parts and all(value is None for value in single):
        return
    details = sub(entry, "NtryDtls")
    if line.batch_ref is not None:
        batch = sub(details, "Btch")
        sub(batch, "PmtInfId", line.batch_ref)
        if line.parts:
            sub(batch, "NbOfTxs", str(len(line.parts)))
    for part in line.parts:
        sub(sub(sub(details, "TxDtls"), "Refs"), "EndToEndId", part)
    if line.parts or all(value is None for value in single):
        return
    transaction = sub(details, "TxDtls")
    if line.end_to_end_id is not None:
        sub(sub(transaction, "Refs"), "EndToEndId", line.end_to_end_id)
    sub(transaction, "Amt", amount_text(abs(line.amount_minor), scale, place=f"{place}/Amt"),
        Ccy=asset)
    sub(transaction, "CdtDbtInd", "CRDT" if credit else "DBIT")
    if line.counterparty is not None or line.counterparty_account is not None:
        role = "Dbtr" if credit else "Cdtr"
        parties = sub(transaction, "RltdPties")
        if line.counterparty is not None:
            sub(sub(sub(parties, role), "Pty"), "Nm", line.counterparty)
        if line.counterparty_account is not None:
            _sub_account_id(sub(parties, f"{role}Acct"), line.counterparty_account,
                            place=f"{place}/NtryDtls/TxDtls/RltdPties/{role}Acct/Id")
    if line.reference is not None:
        sub(sub(transaction, "RmtInf"), "Ustrd", line.reference)
    if line.reason is not None:
        tag = "Cd" if _ISO_REASON.match(line.reason) else "Prtry"
        sub(sub(sub(transaction, "RtrInf"), "Rsn"), tag, line.reason)


def _check_line(line: StatementLine, place: str) -> None:
    """Refuse what the reader would not give back as it is: the file must say what the line
    says, or the simulated bank would test something else than what a bank sends."""
    facts = {"line_id": line.line_id}
    for field, value, limit in (("end_to_end_id", line.end_to_end_id, ID_LENGTH_MAX),
                                ("batch_ref", line.batch_ref, ID_LENGTH_MAX),
                                ("bank_ref", line.bank_ref, ID_LENGTH_MAX),
                                ("reference", line.reference, REMITTANCE_LENGTH_MAX),
                                ("counterparty", line.counterparty, NAME_LENGTH_MAX),
                                ("reason", line.reason, ID_LENGTH_MAX)):
        if value is not None:
            checked_text(value, limit=limit, field=field, place=place, **facts)
    for part in line.parts:
        checked_text(part, limit=ID_LENGTH_MAX, field="parts", place=place, **facts)
    if NOT_PROVIDED in (line.end_to_end_id, *line.parts):
        raise MessageNotWritable(f"{NOT_PROVIDED} is read as no end-to-end id: leave it out",
                                 field="end_to_end_id", place=place, **facts)
    if len(line.parts) == 1:
        raise MessageNotWritable("a batch of one part is a single transaction: give its "
                                 "end_to_end_id instead", field="parts", place=place, **facts)
    single = (line.end_to_end_id, line.reference, line.counterparty, line.counterparty_account,
              line.reason)
    if line.parts and any(value is not None for value in single):
        raise MessageNotWritable("a batched line (parts) has no end-to-end id, remittance, "
                                 "counterparty or reason of its own", field="parts",
                                 place=place, **facts)
    if line.reason is not None and line.kind not in (LineKind.RETURN, LineKind.REVERSAL):
        raise MessageNotWritable("only a return or a reversal carries a reason (RtrInf)",
                                 field="reason", place=place, found=line.reason,
                                 kind=line.kind.value, **facts)


def _sub_account_id(parent: Element, account: str, *, place: str) -> None:
    identification = sub(parent, "Id")
    if _LOOKS_LIKE_IBAN.match(account):
        sub(identification, "IBAN", account)
    else:
        checked_text(account, limit=ACCOUNT_NUMBER_LENGTH_MAX, field="account", place=place)
        sub(sub(identification, "Othr"), "Id", account)
