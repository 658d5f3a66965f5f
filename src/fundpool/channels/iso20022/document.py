"""What every ISO 20022 message fundpool reads or writes shares: bytes to a checked XML tree,
and a tree to bytes.

Reading (`read_document`) refuses, as a `FileRefused` naming the file and the place, before any
value is built:

- a file above `FILE_BYTES_MAX` (the bound every statement format shares, recon/formats);
- bytes that do not decode: UTF-8 unless a byte-order mark or the XML declaration names
  another encoding Python knows (`encoding="ISO-8859-1"`); a Latin-1 file that declares
  nothing is refused at its first byte that is not UTF-8, never guessed;
- XML that is not well-formed, a truncated file among it, at ElementTree's line and column;
- any DTD: the file is parsed by `defusedxml` with DTDs forbidden, so entity expansion (the
  "billion laughs" bomb) and external entities (XXE) never run. No ISO 20022 message has a
  DTD, so nothing real is lost;
- a root that is not a `Document` in one of the namespaces asked for (`UnknownMessage`, with
  the namespace `found` and the list `expected`).

Then `Node` walks the tree: every element it hands out knows its place as a path
(`Document/BkToCstmrStmt/Stmt[2]/Ntry[5]/Amt`, 1-based positions on elements that repeat),
so a missing or malformed element is refused where it is.

Writing builds an `ElementTree` in the message's default namespace and serializes it the same
way every time: UTF-8, an XML declaration, two-space indentation, attributes in the order
given. Texts are checked before they go in (`checked_text`, `amount_text`).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from xml.etree.ElementTree import Element, ParseError, SubElement, indent, tostring
from xml.parsers import expat

from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
from defusedxml.ElementTree import fromstring as defused_fromstring  # type: ignore[import-untyped]

from fundpool.channels.iso20022.errors import MessageNotWritable
from fundpool.core.money import format_amount
from fundpool.recon.formats import FILE_BYTES_MAX, check_size, scale_of
from fundpool.recon.formats import amount_minor as read_amount
from fundpool.recon.model import DAY_US, FileRefused, UnknownMessage

__all__ = ["FILE_BYTES_MAX", "NAMESPACE_PREFIX", "Node", "read_document"]

NAMESPACE_PREFIX = "urn:iso:std:iso:20022:tech:xsd:"
# Every ISO 20022 amount type is an xs:decimal of at most 18 digits; the currency amounts of
# the messages fundpool writes take at most 5 decimals (ActiveOrHistoricCurrencyAndAmount).
AMOUNT_DIGITS_MAX = 18
AMOUNT_DECIMALS_MAX = 5
CURRENCY = re.compile(r"[A-Z]{3}\Z")  # ISO 4217, the schemas' ActiveOrHistoricCurrencyCode

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BYTE_ORDER_MARKS_UTF16 = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# The declaration is ASCII in every encoding that can declare itself (XML 1.0, appendix F).
_DECLARED_ENCODING = re.compile(
    rb"""<\?xml[^>]*?\sencoding\s*=\s*["'](?P<name>[A-Za-z][A-Za-z0-9._-]*)["']""")
_DATE = re.compile(r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})(?P<zone>Z|[+-][0-9]{2}:[0-9]{2})?\Z")
_DATETIME = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})T(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
    r":(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]+))?(?P<zone>Z|[+-][0-9]{2}:[0-9]{2})?\Z")
# Control characters (tab and line breaks included: no id, name or remittance line holds
# them, and a parser would normalise them away), surrogates and the two non-characters XML
# cannot carry.
_NOT_TEXT = re.compile("[\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_TRUNCATION_CODES = frozenset({
    expat.errors.codes[expat.errors.XML_ERROR_NO_ELEMENTS],
    expat.errors.codes[expat.errors.XML_ERROR_UNCLOSED_TOKEN],
    expat.errors.codes[expat.errors.XML_ERROR_PARTIAL_CHAR],
})


# --- reading -------------------------------------------------------------------------------


def read_document(data: bytes, name: str, *, messages: Sequence[str]) -> tuple[Node, str]:
    """The file's `Document` element and which of `messages` ("camt.053.001.08" …) it is."""
    check_size(data, name)
    root = _parse(_decode(data, name), name)
    namespace, local = _split_tag(root.tag)
    expected = [NAMESPACE_PREFIX + message for message in messages]
    if local != "Document" or namespace not in expected:
        what = f"namespace {namespace!r}" if namespace else "no namespace"
        raise UnknownMessage(f"the root element is {local!r} in {what}: not a message version "
                             f"this reader takes", file=name, place=local, found=namespace,
                             expected=expected)
    return (Node(root, "Document", "{" + namespace + "}", name),
            namespace.removeprefix(NAMESPACE_PREFIX))


def _decode(data: bytes, name: str) -> str:
    declared = _DECLARED_ENCODING.match(data.lstrip(codecs.BOM_UTF8))
    if data.startswith(_BYTE_ORDER_MARKS_UTF16):
        encoding = "utf-16"
    elif data.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif declared is not None:
        encoding = declared["name"].decode("ascii")
    else:
        encoding = "utf-8"
    try:
        text = data.decode(encoding)
    except LookupError:
        raise FileRefused(f"the XML declares the encoding {encoding!r}, which is not one "
                          "Python decodes", file=name, place="line 1", found=encoding) from None
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        how = "as declared" if declared is not None else "(no encoding is declared: XML is UTF-8)"
        raise FileRefused(f"byte {error.start} (line {line}) is not {encoding} {how}",
                          file=name, place=f"byte {error.start}", line=line, encoding=encoding,
                          found=data[error.start:error.start + 4].hex()) from None
    return text.removeprefix("\ufeff")


def _parse(text: str, name: str) -> Element:
    try:
        root: Element = defused_fromstring(text, forbid_dtd=True, forbid_entities=True,
                                           forbid_external=True)
    except ParseError as error:
        line, column = error.position
        reason = expat.ErrorString(error.code) or "not well-formed"
        truncated = (error.code in _TRUNCATION_CODES
                     and line >= text.rstrip().count("\n") + 1)
        hint = ": the file ends before its XML does (truncated?)" if truncated else ""
        raise FileRefused(f"the XML is not well-formed: {reason}{hint}", file=name,
                          place=f"line {line}, column {column + 1}", why=reason) from None
    except DefusedXmlException as error:
        # DTDs are forbidden outright, so bombs and external entities stop at the DOCTYPE.
        raise FileRefused(f"the XML has a DTD ({type(error).__name__}): entity declarations "
                          "and external references are refused", file=name,
                          place=_place_of(text, "<!DOCTYPE"), why=type(error).__name__) from None
    return root


def _place_of(text: str, needle: str) -> str:
    at = text.find(needle)
    if at < 0:
        return "line 1, column 1"
    line = text.count("\n", 0, at) + 1
    column = at - (text.rfind("\n", 0, at) + 1) + 1
    return f"line {line}, column {column}"


def _split_tag(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


@dataclass(frozen=True, slots=True)
class Node:
    """An element with its place in the document, to read it and to refuse it by."""

    element: Element
    place: str
    namespace: str  # "{urn:iso:std:iso:20022:tech:xsd:camt.053.001.08}"
    file: str

    def child(self, path: str) -> Node | None:
        """The first element at `path` ("Refs/EndToEndId"), or None."""
        element = self.element
        for step in path.split("/"):
            found = element.find(self.namespace + step)
            if found is None:
                return None
            element = found
        return Node(element, f"{self.place}/{path}", self.namespace, self.file)

    def need(self, path: str) -> Node:
        """The element at `path`, or a refusal at the first step that is missing."""
        element = self.element
        steps = path.split("/")
        for depth, step in enumerate(steps, start=1):
            found = element.find(self.namespace + step)
            if found is None:
                missing = "/".join(steps[:depth])
                raise FileRefused(f"the required element {step} is missing", file=self.file,
                                  place=f"{self.place}/{missing}", expected=step)
            element = found
        return Node(element, f"{self.place}/{path}", self.namespace, self.file)

    def children(self, tag: str) -> list[Node]:
        """Every child `tag`, each with its 1-based position in its place."""
        return [Node(element, f"{self.place}/{tag}[{position}]", self.namespace, self.file)
                for position, element in enumerate(self.element.iterfind(self.namespace + tag),
                                                   start=1)]

    def count(self, tag: str) -> int:
        """How many `tag` elements are at any depth below (to check a bound before walking)."""
        return sum(1 for _ in self.element.iter(self.namespace + tag))

    @property
    def text(self) -> str:
        return (self.element.text or "").strip()

    def text_of(self, path: str) -> str | None:
        """The stripped text at `path`; None when the element is absent or empty."""
        node = self.child(path)
        return (node.text or None) if node is not None else None

    def need_text(self, path: str) -> str:
        node = self.need(path)
        if not node.text:
            raise node.refuse(f"{path.rsplit('/', 1)[-1]} is empty")
        return node.text

    def texts(self, tag: str) -> list[str]:
        return [node.text for node in self.children(tag) if node.text]

    def attribute(self, name: str) -> str | None:
        value = self.element.get(name)
        return value.strip() if value is not None else None

    def refuse(self, detail: str, **facts: object) -> FileRefused:
        return FileRefused(detail, file=self.file, place=self.place, **facts)

    def amount_minor(self, scales: Mapping[str, int]) -> tuple[int, str]:
        """An amount element (`<Amt Ccy="EUR">12.50</Amt>`) in minor units, and its currency."""
        currency = self.attribute("Ccy")
        if not currency:
            raise FileRefused("the amount has no currency (attribute Ccy)", file=self.file,
                              place=f"{self.place}/@Ccy", expected="Ccy")
        scale = scale_of(currency, scales, file=self.file, place=f"{self.place}/@Ccy")
        return read_amount(self.text, scale, currency, file=self.file, place=self.place), currency

    def date_us(self) -> int:
        """An xs:date as midnight UTC. A zone on a date is read past: a booking or value date
        is a calendar day, whatever the bank's clock."""
        found = _DATE.match(self.text)
        try:
            if found is None:
                raise ValueError(self.text)
            return _day_us(date.fromisoformat(found["date"]))
        except ValueError:
            raise self.refuse(f"{self.text!r} is not a date (YYYY-MM-DD)",
                              found=self.text) from None

    def datetime_us(self) -> int:
        """An xs:dateTime in UTC microseconds. One without a zone is read as UTC: banks that
        omit it write their own local time, which a file does not say."""
        found = _DATETIME.match(self.text)
        try:
            if found is None:
                raise ValueError(self.text)
            day = date.fromisoformat(found["date"])
            zone = _zone(found["zone"])
            microsecond = int((found["fraction"] or "0")[:6].ljust(6, "0"))
            moment = datetime(day.year, day.month, day.day, int(found["hour"]),
                              int(found["minute"]), int(found["second"]), microsecond,
                              tzinfo=zone)
        except ValueError:
            raise self.refuse(f"{self.text!r} is not a date and time "
                              "(YYYY-MM-DDThh:mm:ss, optional fraction and zone)",
                              found=self.text) from None
        return _moment_us(moment)

    def date_choice_us(self) -> int:
        """A DateAndDateTimeChoice: its `Dt` or its `DtTm`."""
        day = self.child("Dt")
        if day is not None:
            return day.date_us()
        moment = self.child("DtTm")
        if moment is not None:
            return moment.datetime_us()
        raise FileRefused("neither Dt nor DtTm is given", file=self.file,
                          place=f"{self.place}/Dt", expected=["Dt", "DtTm"])


def _zone(text: str | None) -> timezone:
    if text is None or text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6])))


def _day_us(day: date) -> int:
    return (day - date(1970, 1, 1)).days * DAY_US


def _moment_us(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def indexed_path(root: Element, target: Element, *, repeating: frozenset[str]) -> str:
    """`target`'s place below `root` without namespaces, positions on the tags in `repeating`
    and on any tag that has siblings of its name (for a schema error found by xmlschema,
    whose own paths carry neither)."""
    parents = {child: parent for parent in root.iter() for child in parent}
    steps: list[str] = []
    element = target
    while True:
        _, local = _split_tag(element.tag)
        parent = parents.get(element)
        if parent is None:
            steps.append(local)
            break
        same = [sibling for sibling in parent if sibling.tag == element.tag]
        if local in repeating or len(same) > 1:
            local = f"{local}[{same.index(element) + 1}]"
        steps.append(local)
        element = parent
    return "/".join(reversed(steps))


# --- writing -------------------------------------------------------------------------------


def new_document(message: str, body: str) -> tuple[Element, Element]:
    """A `Document` in `message`'s namespace and its one body element (CstmrCdtTrfInitn …)."""
    root = Element("Document", {"xmlns": NAMESPACE_PREFIX + message})
    return root, SubElement(root, body)


def sub(parent: Element, tag: str, text: str | None = None, **attributes: str) -> Element:
    child = SubElement(parent, tag, attributes)
    if text is not None:
        child.text = text
    return child


def serialize(root: Element) -> bytes:
    indent(root, space="  ")
    body = tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'.encode()


def iso_datetime(at_us: int) -> str:
    """UTC with an explicit `Z`: a bank reading a time without a zone takes it as its own."""
    moment = (_EPOCH + timedelta(microseconds=at_us)).replace(tzinfo=None)
    spec = "microseconds" if moment.microsecond else "seconds"
    return moment.isoformat(timespec=spec) + "Z"


def iso_date(at_us: int) -> str:
    return (_EPOCH + timedelta(microseconds=at_us)).date().isoformat()


def sub_date_choice(parent: Element, tag: str, at_us: int) -> Element:
    """A DateAndDateTime2Choice: `Dt` at midnight UTC (how dates are held), else `DtTm`."""
    choice = sub(parent, tag)
    if at_us % DAY_US == 0:
        sub(choice, "Dt", iso_date(at_us))
    else:
        sub(choice, "DtTm", iso_datetime(at_us))
    return choice


def checked_text(value: object, *, limit: int, field: str, place: str,
                 **facts: object) -> str:
    """`value` if it can be written as an ISO 20022 text of at most `limit` characters and
    read back the same: a non-empty string, no surrounding blanks, no control character."""
    if not isinstance(value, str) or not value.strip():
        raise MessageNotWritable(f"{field} must be a non-empty text", field=field, place=place,
                                 found=repr(value), **facts)
    if value != value.strip():
        raise MessageNotWritable(f"{field} has blanks around it, which a reader strips",
                                 field=field, place=place, found=value, **facts)
    if len(value) > limit:
        raise MessageNotWritable(f"{field} is {len(value)} characters; the schema takes at "
                                 f"most {limit}", field=field, place=place, found=value,
                                 limit=limit, **facts)
    bad = _NOT_TEXT.search(value)
    if bad is not None:
        raise MessageNotWritable(f"{field} holds the control character {bad[0]!r}",
                                 field=field, place=place, found=value, **facts)
    return value


def checked_currency(asset: str, *, place: str, **facts: object) -> str:
    if not isinstance(asset, str) or not CURRENCY.match(asset):
        raise MessageNotWritable(f"{asset!r} is not an ISO 4217 currency code: ISO 20022 "
                                 "amounts carry three capital letters", field="asset",
                                 place=place, found=repr(asset), **facts)
    return asset


def amount_text(amount_minor: int, scale: int, *, place: str, **facts: object) -> str:
    """Unsigned minor units as the schema's decimal text (the sign goes in CdtDbtInd)."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor < 0:
        raise MessageNotWritable("an amount is an integer of minor units, not negative here",
                                 field="amount_minor", place=place, found=repr(amount_minor),
                                 **facts)
    text = format_amount(amount_minor, scale)
    whole, _, fraction = text.partition(".")
    decimals = len(fraction.rstrip("0"))
    digits = len(whole.lstrip("0")) + decimals
    if decimals > AMOUNT_DECIMALS_MAX or digits > AMOUNT_DIGITS_MAX:
        raise MessageNotWritable(f"{text} has more than {AMOUNT_DECIMALS_MAX} decimals or "
                                 f"{AMOUNT_DIGITS_MAX} digits, which the schema does not take",
                                 field="amount_minor", place=place, found=text, **facts)
    return text
