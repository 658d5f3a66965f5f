"""SWIFT MT940 customer statements, read by our own parser (docs/adr/0021-mt940-parser.md).

A file holds one or more messages; each `:20:` … `:62F:` message is one `Statement`:

- `:20:` the bank's reference and `:28C:` (or `:28:`) the statement/sequence number. The
  statement id is `<:20:>/<:28C:>` (just `:20:` without a `:28C:`): some banks (ABN AMRO)
  write the same `:20:` in every message, and only the pair tells one day's statement from
  the next.
- `:25:` the account. ING and others append the currency to the IBAN (`NL…0123456789EUR`);
  the suffix is dropped when what precedes it is a valid IBAN and the whole is not.
- `:60F:`/`:60M:` the opening and `:62F:`/`:62M:` the closing balance (mark, date, currency,
  amount): opening plus the lines must give the closing, or `BalancesDoNotAddUp`.
- `:61:` a line: value date, optional entry date (MMDD; its year is the one nearest the value
  date), mark C, D, RC (a credit reversed: money leaves) or RD (a debit reversed: money comes
  back), amount with a ',' decimal mark, transaction type (N/F + a SWIFT code: TRF, CHG, INT,
  RTI …, or S + the MT number that moved the money), the customer reference (the end-to-end
  id; NONREF is none) and the bank's reference after `//`.
- `:86:` after a `:61:` describes that line. Three shapes are read: `?`-subfields (a 3-digit
  code, then `?20`–`?29`/`?60`–`?63` purpose with SEPA keywords `EREF+`/`SVWZ+`, `?31`
  account, `?32`/`?33` name), `/KEY/` tags (ING, Rabobank, ABN AMRO: `/EREF/`, `/REMI/`,
  `/NAME/`, `/IBAN/`, `/CNTP/account/BIC/name/city/`, `/ORDP//NAME/` the payer of a credit,
  `/BENM//NAME/` the payee of a debit, `/PREF/` batch, `/RTRN/` return reason), or free
  text, which becomes the line's reference. An end-to-end id in `:86:` (35 characters) wins
  over the `:61:` customer reference (16).
- `:13D:` when the statement was made (else the closing balance's date); `:21:`, `:64:`,
  `:65:`, `:NS:` and an `:86:` that follows no line are read past. Any other field is refused.

Lines outside a message (SWIFT's `{1:…}{2:…}{4:` blocks, `-}`, ABN AMRO's `ABNANL2A`/`940`,
Rabobank's `:940:`) are envelope and skipped; a message ends at `-`, `-}`, the next `:20:` or
the end of the file. The text is UTF-8, or Latin-1 when the bytes are not valid UTF-8; every
refusal says which in its `encoding` fact, and its place as `message 2, line 14` (the line in
the file).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, timezone

from fundpool.recon.formats import (
    amount_minor,
    check_size,
    date_us,
    datetime_us,
    decode_text,
    scale_of,
    sha256_of,
)
from fundpool.recon.model import (
    Balance,
    BalancesDoNotAddUp,
    FileFormat,
    FileRefused,
    LineKind,
    Statement,
    StatementFile,
    StatementLine,
)

MESSAGE = "MT940"
NO_REFERENCE = "NONREF"  # SWIFT's "no customer reference"
NOT_PROVIDED = "NOTPROVIDED"  # SEPA's "no end-to-end id"
# SWIFT writes two-digit years; like the banks' own readers, 80–99 are the 1900s.
YEAR_PIVOT = 80
# A field's wrapped lines are at most 65 characters: a line that long was cut mid-text, so the
# next one continues it without a space; a shorter one ended where the writer ended a line.
LINE_WIDTH = 65

_FIELD = re.compile(r":(?P<tag>[0-9]{2}[A-Z]?|NS):(?P<value>.*)\Z")
_BALANCE = re.compile(r"(?P<mark>[CD])(?P<date>[0-9]{6})(?P<currency>[A-Z]{3})"
                      r"(?P<amount>[0-9][0-9,]*)\Z")
_LINE = re.compile(r"(?P<value_date>[0-9]{6})(?P<entry_date>[0-9]{4})?(?P<mark>R?[CD])"
                   r"(?P<funds_code>[A-Z])?(?P<amount>[0-9][0-9,]*)"
                   r"(?P<type>[NFS][A-Z0-9]{3})(?P<rest>.*)\Z")
_SWIFT_AMOUNT = re.compile(r"(?P<whole>[0-9]+),(?P<fraction>[0-9]*)\Z")
_CREATED = re.compile(r"(?P<moment>[0-9]{10})(?P<sign>[+-])(?P<hours>[0-9]{2})"
                      r"(?P<minutes>[0-9]{2})\Z")
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}\Z")

_CONTINUED = frozenset({"61", "86", "NS"})  # the fields whose value may span lines
_READ_PAST = frozenset({"21", "64", "65", "NS"})
_OPENING = frozenset({"60F", "60M"})
_CLOSING = frozenset({"62F", "62M"})

# The SWIFT transaction type codes (after N/F) that say what a line is; any other (MSC,
# miscellaneous, which some banks use for everything) is OTHER rather than a guess.
_KIND_BY_CODE = {
    "TRF": LineKind.TRANSFER, "STO": LineKind.TRANSFER, "DDT": LineKind.TRANSFER,
    "CHK": LineKind.TRANSFER,
    "CHG": LineKind.CHARGE, "COM": LineKind.CHARGE, "BRF": LineKind.CHARGE,
    "INT": LineKind.INTEREST,
    "RTI": LineKind.RETURN, "RTR": LineKind.RETURN,
}
_INCOMING_MARKS = frozenset({"C", "RD"})  # a credit, or a debit taken back
_REVERSAL_MARKS = frozenset({"RC", "RD"})

# `/KEY/` tags of ING's, Rabobank's and ABN AMRO's structured :86:. Only these start a value,
# so a '/' inside a name or a reference is kept.
_KEYS = ("EREF", "REMI", "NAME", "IBAN", "BIC", "CNTP", "TRTP", "PREF", "RTRN", "MARF", "CSID",
         "ORDP", "BENM", "ULTC", "ULTD", "ULTB", "PURP", "IREF", "KREF", "ISDT", "ADDR", "ID",
         "BUSP", "SVCL", "CHGS", "EXCH", "OCMT", "ACCW", "TRCD", "CODE")
_KEY = re.compile(r"/(?P<key>" + "|".join(_KEYS) + r")/")
# A party (ordering, beneficiary, ultimate) holds the NAME, ID and ADDR keys that follow it.
_PARTIES = frozenset({"ORDP", "BENM", "ULTC", "ULTD", "ULTB"})
_PARTY_KEYS = frozenset({"NAME", "ID", "ADDR"})
_REMI_PREFIX = re.compile(r"(?:USTD//?|STRD/(?:CUR|ISO)?/)")
# `?`-subfields: a 3-digit business transaction code, then `?NN` fields.
_SUBFIELDS = re.compile(r"[0-9]{3}\?[0-9]{2}")
_SUBFIELD = re.compile(r"\?(?P<number>[0-9]{2})")
_SEPA_KEYWORD = re.compile(r"(?P<keyword>EREF|KREF|MREF|CRED|DEBT|SVWZ|ABWA|ABWE|COAM|OAMT|"
                           r"IBAN|BIC)\+")
_PURPOSE_SUBFIELDS = (*range(20, 30), *range(60, 64))


@dataclass(frozen=True, slots=True)
class _Field:
    tag: str
    lines: tuple[str, ...]  # the first holds the value after the tag
    line: int  # where it starts in the file


@dataclass(frozen=True, slots=True)
class _Message:
    number: int
    fields: tuple[_Field, ...]
    last_line: int


@dataclass(frozen=True, slots=True)
class _Where:
    """The facts every refusal of one message carries."""

    file: str
    encoding: str
    message: int

    def place(self, line: int) -> str:
        return f"message {self.message}, line {line}"

    def refused(self, detail: str, line: int, **facts: object) -> FileRefused:
        return FileRefused(detail, file=self.file, place=self.place(line),
                           encoding=self.encoding, **facts)


@dataclass(frozen=True, slots=True)
class _Details:
    """What an :86: says of its line."""

    end_to_end_id: str | None = None
    reference: str | None = None
    counterparty: str | None = None
    counterparty_account: str | None = None
    batch_ref: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class _Draft:
    """A :61: line read, waiting for its :86: and the statement's id and currency."""

    amount_text: str
    incoming: bool
    line: int
    booked: date
    value: date
    kind: LineKind
    customer_reference: str | None
    bank_ref: str | None
    details: _Details = _Details()


@dataclass(frozen=True, slots=True)
class _Balance:
    amount_minor: int
    at: date
    currency: str
    line: int


def parse_mt940(data: bytes, name: str, *, scales: Mapping[str, int]) -> StatementFile:
    """Every message of an MT940 file, checked whole: a refusal leaves nothing read."""
    check_size(data, name)
    text, encoding = decode_text(data, name)
    messages = _messages(text.replace("\r\n", "\n").replace("\r", "\n"), name, encoding)
    if not messages:
        raise FileRefused("no MT940 message: no line starts with :20:", file=name,
                          place="line 1", encoding=encoding, expected=":20:")
    statements = tuple(_statement(m, _Where(name, encoding, m.number), scales)
                       for m in messages)
    return StatementFile(name=name, format=FileFormat.MT940, message=MESSAGE,
                         statements=statements, sha256=sha256_of(data))


# --- the file into messages and fields ---------------------------------------------------------


def _messages(text: str, name: str, encoding: str) -> list[_Message]:
    messages: list[_Message] = []
    fields: list[tuple[str, list[str], int]] = []  # tag, lines, first line: a _Field to be
    inside = False
    last_line = 0

    def close() -> None:
        messages.append(_Message(len(messages) + 1, tuple(
            _Field(tag, tuple(lines), number) for tag, lines, number in fields), last_line))
        fields.clear()

    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip()
        if not line:
            continue
        if not inside:
            # SWIFT's block 4 may open on the line of the first field: "{1:…}{2:…}{4::20:…".
            line = line.partition("{4:")[2] if "{4:" in line else line
            found = _FIELD.match(line)
            if found is None:
                continue  # envelope: block headers, a bank's banner, Rabobank's ":940:"
            if found["tag"] != "20":
                raise FileRefused(f"a message starts with :20:, this one with :{found['tag']}:",
                                  file=name, place=f"message {len(messages) + 1}, line {number}",
                                  encoding=encoding, expected=":20:", found=f":{found['tag']}:")
            inside = True
            fields.append(("20", [found["value"]], number))
            last_line = number
            continue
        if line == "-" or line.startswith("-}"):
            close()
            inside = False
            continue
        found = _FIELD.match(line)
        if found is not None:
            if found["tag"] == "20":
                close()  # banks that concatenate messages write no terminator between them
            fields.append((found["tag"], [found["value"]], number))
        elif fields[-1][0] in _CONTINUED:
            fields[-1][1].append(line)
        else:
            raise FileRefused(f"text outside any field (after :{fields[-1][0]}:, which is one "
                              "line long)", file=name,
                              place=f"message {len(messages) + 1}, line {number}",
                              encoding=encoding, found=line[:40])
        last_line = number
    if inside:
        close()
    return messages


# --- one message into a statement --------------------------------------------------------------


def _statement(message: _Message, where: _Where, scales: Mapping[str, int]) -> Statement:
    reference = ""
    account: str | None = None
    sequence: str | None = None
    created: datetime | None = None
    opening: _Balance | None = None
    closing: _Balance | None = None
    drafts: list[_Draft] = []
    previous = ""
    for item in message.fields:
        tag, value = item.tag, item.lines[0].strip()
        if tag == "20":
            if not value:
                raise where.refused(":20: (the statement's reference) is empty", item.line)
            reference = value
        elif tag == "25":
            if account is not None:
                raise where.refused("a second :25: (account)", item.line)
            if not value:
                raise where.refused(":25: (the account) is empty", item.line)
            account = value
        elif tag in ("28C", "28"):
            sequence = value or None
        elif tag in ("13D", "13"):
            created = _created(value, item.line, where)
        elif tag in _OPENING:
            if opening is not None or closing is not None:
                raise where.refused(f"an opening balance (:{tag}:) after the "
                                    f"{'opening' if closing is None else 'closing'} balance",
                                    item.line)
            opening = _balance(value, item.line, where, scales)
        elif tag == "61":
            if opening is None:
                raise where.refused("a line (:61:) before the opening balance (:60F:)",
                                    item.line, expected=":60F:")
            if closing is not None:
                raise where.refused("a line (:61:) after the closing balance", item.line)
            drafts.append(_line(item, where))
        elif tag == "86":
            if previous == "61":
                drafts[-1] = replace(drafts[-1],
                                     details=_details(item.lines, drafts[-1].incoming))
            # else: information about the whole statement, which nothing here uses
        elif tag in _CLOSING:
            if closing is not None:
                raise where.refused(f"a second closing balance (:{tag}:)", item.line)
            closing = _balance(value, item.line, where, scales)
        elif tag not in _READ_PAST:
            raise where.refused(f"field :{tag}: is not one of an MT940 message", item.line,
                                found=f":{tag}:")
        previous = tag
    if account is None:
        raise where.refused("the message has no :25: (account)", message.last_line,
                            expected=":25:")
    if opening is None:
        raise where.refused("the message has no :60F: (opening balance)", message.last_line,
                            expected=":60F:")
    if closing is None:
        raise where.refused("the message has no :62F: (closing balance)", message.last_line,
                            expected=":62F:")
    if closing.currency != opening.currency:
        raise where.refused(f"the closing balance is in {closing.currency}, the opening in "
                            f"{opening.currency}", closing.line, found=closing.currency,
                            expected=opening.currency)
    asset = opening.currency
    scale = scales[asset]  # _balance checked it
    statement_id = reference if sequence is None else f"{reference}/{sequence}"
    lines = tuple(_statement_line(d, position, statement_id, asset, scale, where)
                  for position, d in enumerate(drafts, start=1))
    booked_minor = sum(line.amount_minor for line in lines)
    if opening.amount_minor + booked_minor != closing.amount_minor:
        raise BalancesDoNotAddUp(
            f"message {message.number} ({statement_id}): opening {opening.amount_minor} plus "
            f"the lines' {booked_minor} is {opening.amount_minor + booked_minor}, the closing "
            f"balance says {closing.amount_minor}", file=where.file,
            place=where.place(closing.line), encoding=where.encoding, statement_id=statement_id,
            opening_minor=opening.amount_minor, lines_minor=booked_minor,
            closing_minor=closing.amount_minor,
            difference_minor=closing.amount_minor - opening.amount_minor - booked_minor)
    return Statement(
        statement_id=statement_id, account=_account(account, asset), asset=asset,
        created_at_us=datetime_us(created) if created is not None else date_us(closing.at),
        lines=lines, opening=Balance(opening.amount_minor, date_us(opening.at)),
        closing=Balance(closing.amount_minor, date_us(closing.at)), sequence=sequence)


def _statement_line(draft: _Draft, position: int, statement_id: str, asset: str, scale: int,
                    where: _Where) -> StatementLine:
    magnitude = amount_minor(draft.amount_text, scale, asset, file=where.file,
                             place=where.place(draft.line), encoding=where.encoding)
    details = draft.details
    return StatementLine(
        line_id=f"{statement_id}:{position}",
        amount_minor=magnitude if draft.incoming else -magnitude, asset=asset,
        booked_at_us=date_us(draft.booked), value_at_us=date_us(draft.value), kind=draft.kind,
        end_to_end_id=details.end_to_end_id or draft.customer_reference,
        batch_ref=details.batch_ref, bank_ref=draft.bank_ref, reference=details.reference,
        counterparty=details.counterparty, counterparty_account=details.counterparty_account,
        reason=details.reason)


# --- fields ------------------------------------------------------------------------------------


def _balance(value: str, line: int, where: _Where, scales: Mapping[str, int]) -> _Balance:
    found = _BALANCE.match(value)
    if found is None:
        raise where.refused("a balance is a mark (C or D), a date (YYMMDD), a currency and an "
                            "amount with a ',' decimal mark", line, found=value[:40])
    currency = found["currency"]
    scale = scale_of(currency, scales, file=where.file, place=where.place(line),
                     encoding=where.encoding)
    magnitude = amount_minor(_decimal_text(found["amount"], line, where), scale, currency,
                             file=where.file, place=where.place(line), encoding=where.encoding)
    return _Balance(magnitude if found["mark"] == "C" else -magnitude,
                    _date(found["date"], line, where), currency, line)


def _line(item: _Field, where: _Where) -> _Draft:
    found = _LINE.match(item.lines[0].strip())
    if found is None:
        raise where.refused(":61: is a value date (YYMMDD), an optional entry date (MMDD), a "
                            "mark (C, D, RC, RD), an amount with a ',' decimal mark, a "
                            "transaction type (NTRF …) and a reference", item.line,
                            found=item.lines[0][:40])
    value = _date(found["value_date"], item.line, where)
    entry = found["entry_date"]
    booked = value if entry is None else _entry_date(entry, value, item.line, where)
    mark, code = found["mark"], found["type"]
    customer, _, bank = found["rest"].partition("//")
    customer = customer.strip()
    kind = (LineKind.REVERSAL if mark in _REVERSAL_MARKS
            else LineKind.TRANSFER if code[0] == "S" and code[1:].isdigit()
            else _KIND_BY_CODE.get(code[1:], LineKind.OTHER))
    return _Draft(
        amount_text=_decimal_text(found["amount"], item.line, where),
        incoming=mark in _INCOMING_MARKS, line=item.line, booked=booked, value=value,
        kind=kind,
        customer_reference=None if customer in ("", NO_REFERENCE) else customer,
        bank_ref=bank.strip() or None)


def _decimal_text(text: str, line: int, where: _Where) -> str:
    """SWIFT's '1234,56' (or '1234,') as '1234.56' for `parse_amount`."""
    found = _SWIFT_AMOUNT.match(text)
    if found is None:
        raise where.refused(f"amount {text!r} is not digits with one ',' decimal mark", line,
                            found=text)
    fraction = found["fraction"]
    return f"{found['whole']}.{fraction}" if fraction else found["whole"]


def _date(text: str, line: int, where: _Where) -> date:
    year, month, day = int(text[:2]), int(text[2:4]), int(text[4:6])
    try:
        return date(year + (1900 if year >= YEAR_PIVOT else 2000), month, day)
    except ValueError:
        raise where.refused(f"{text} is not a date (YYMMDD)", line, found=text) from None


def _entry_date(text: str, value: date, line: int, where: _Where) -> date:
    """MMDD in the year that puts it nearest the value date: an entry booked on 2 January for
    a value date of 31 December is in the next year."""
    month, day = int(text[:2]), int(text[2:])
    candidates = []
    for year in (value.year - 1, value.year, value.year + 1):
        try:
            candidates.append(date(year, month, day))
        except ValueError:
            continue  # 29 February exists in some of the three years only
    if not candidates:
        raise where.refused(f"entry date {text} is not a date (MMDD)", line, found=text)
    return min(candidates, key=lambda candidate: abs((candidate - value).days))


def _created(value: str, line: int, where: _Where) -> datetime:
    found = _CREATED.match(value)
    if found is None:
        raise where.refused(":13D: is YYMMDDhhmm and an offset (+0100)", line, found=value)
    moment, sign = found["moment"], 1 if found["sign"] == "+" else -1
    offset = timedelta(hours=int(found["hours"]), minutes=int(found["minutes"]))
    try:
        day = _date(moment[:6], line, where)
        return datetime(day.year, day.month, day.day, int(moment[6:8]), int(moment[8:10]),
                        tzinfo=timezone(sign * offset)).astimezone(UTC)
    except ValueError:
        raise where.refused(f":13D: {value} is not a time", line, found=value) from None


def _account(value: str, currency: str) -> str:
    if value.endswith(currency):
        bare = value[: -len(currency)].rstrip(" /")
        if _is_iban(bare) and not _is_iban(value):
            return bare
    return value


def _is_iban(text: str) -> bool:
    if _IBAN.match(text) is None:
        return False
    rearranged = text[4:] + text[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


# --- :86: --------------------------------------------------------------------------------------


def _details(lines: Sequence[str], incoming: bool) -> _Details:
    joined = "".join(line.strip() for line in lines)
    if _SUBFIELDS.match(joined):
        return _subfield_details(joined)
    if _KEY.match(joined):
        return _keyed_details(joined, incoming)
    return _Details(reference=_free_text(lines))


def _free_text(lines: Sequence[str]) -> str | None:
    parts: list[str] = []
    for index, line in enumerate(lines):
        if index and len(lines[index - 1]) < LINE_WIDTH:
            parts.append(" ")
        parts.append(line)  # a leading space is the text's own: the cut fell just before it
    return "".join(parts).strip() or None


def _keyed_details(text: str, incoming: bool) -> _Details:
    values: dict[str, str] = {}
    found = list(_KEY.finditer(text))
    party = ""
    for index, key in enumerate(found):
        end = found[index + 1].start() if index + 1 < len(found) else len(text)
        name = key["key"]
        if name in _PARTIES:
            party = name
        elif name in _PARTY_KEYS:
            name = f"{party}.{name}" if party else name
        else:
            party = ""
        # The first of a repeated key counts.
        values.setdefault(name, text[key.end():end].rstrip("/").strip())
    counterparty_parts = values.get("CNTP", "").split("/")  # account/BIC/name/city
    reference = _REMI_PREFIX.sub("", values.get("REMI", ""), count=1).rstrip("/").strip()
    # The other party: who ordered a credit, who benefits from a debit.
    other = "ORDP" if incoming else "BENM"
    return _Details(
        end_to_end_id=_end_to_end(values.get("EREF")),
        reference=reference or None,
        counterparty=(values.get(f"{other}.NAME") or values.get("NAME")
                      or _part(counterparty_parts, 2)),
        counterparty_account=values.get("IBAN") or _part(counterparty_parts, 0),
        batch_ref=values.get("PREF") or None,
        reason=values.get("RTRN", "").split("/")[0] or None)


def _subfield_details(text: str) -> _Details:
    pieces = _SUBFIELD.split(text[3:])  # ['', '00', 'text', '20', 'text', ...]
    subfields: dict[int, str] = {}
    for number, value in zip(pieces[1::2], pieces[2::2], strict=True):
        subfields.setdefault(int(number), value)
    purpose = "".join(subfields.get(n, "") for n in _PURPOSE_SUBFIELDS)
    keywords = list(_SEPA_KEYWORD.finditer(purpose))
    by_keyword: dict[str, str] = {}
    for index, keyword in enumerate(keywords):
        end = keywords[index + 1].start() if index + 1 < len(keywords) else len(purpose)
        by_keyword.setdefault(keyword["keyword"], purpose[keyword.end():end].strip())
    reference = by_keyword.get("SVWZ") if keywords else purpose.strip()
    name = (subfields.get(32, "") + subfields.get(33, "")).strip()
    return _Details(end_to_end_id=_end_to_end(by_keyword.get("EREF")),
                    reference=reference or None, counterparty=name or None,
                    counterparty_account=subfields.get(31, "").strip() or None)


def _end_to_end(value: str | None) -> str | None:
    return None if not value or value == NOT_PROVIDED else value


def _part(parts: Sequence[str], index: int) -> str | None:
    return (parts[index].strip() or None) if index < len(parts) else None
