"""Sanctions lists read into plain values: OpenSanctions' FollowTheMoney JSON and OFAC's SDN CSV.

A list is taken whole or not at all. A file with one bad line is refused with
`InvalidSanctionsFile`, naming the line and what is wrong with it, and nothing of it is
returned: screening against part of a list would clear the parties of the missing part
without anyone knowing. Keeping the previous version of the list is the caller's choice.

**FollowTheMoney** (`entities.ftm.json`): one JSON object per line, each with `id`, `schema`
and `properties`, every property a list of strings. Parties (`PARTY_SCHEMAS`: Person,
Organization, Company, LegalEntity, PublicBody) become entries, with `name` first, then
`alias` and `weakAlias`; `country`, `nationality` and `jurisdiction` are its countries;
`program` and `programId` its programmes. Every other schema (Sanction, Address, Ownership,
Vessel …) is skipped, not refused: the file describes more than parties. A last line without
its newline is accepted when it parses, and means a cut-off file when it does not.

**OFAC SDN** (`sdn.csv`): no header row, twelve columns (ent_num, SDN_Name, SDN_Type, Program,
Title, Call_Sign, Vess_type, Tonnage, GRT, Vess_flag, Vess_owner, Remarks), `-0-` for an
empty field. SDN_Type `individual` is a Person and `-0-` an Organization; vessels and
aircraft are skipped like FtM's non-parties. An individual's "LAST, First" is kept as
"First LAST", the order in which a payee field usually holds it. The companion `alt.csv`
(ent_num, alt_num, alt_type, alt_name, alt_remarks) adds aliases. OFAC's files may end with
a lone Ctrl-Z (0x1A), the old end-of-file mark, which is ignored. The files are UTF-8; a
file that is not is read as Windows-1252, the encoding of OFAC's older files.

A list's `version` is the SHA-256 of the bytes read (for SDN with `alt.csv`, of both
digests), so a screening decision can name exactly which list it used.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from fundpool.core.errors import FundpoolError

PARTY_SCHEMAS = frozenset({"Person", "Organization", "Company", "LegalEntity", "PublicBody"})
FILE_BYTES_MAX = 4 * 1024**3  # OpenSanctions' largest collection is about half of this
ENTRIES_MAX = 2_000_000  # parties of one list; OpenSanctions' default holds about a million
NAMES_PER_ENTRY_MAX = 256  # names of one party kept, aliases included

SDN_COLUMNS = 12
ALT_COLUMNS = 5
SDN_NULL = "-0-"
SDN_SCHEMAS = {"individual": "Person", "": "Organization"}
SDN_SKIPPED_TYPES = frozenset({"vessel", "aircraft"})
_END_OF_FILE_MARK = "\x1a"
_ENT_NUM = re.compile("[0-9]{1,12}")


class InvalidSanctionsFile(FundpoolError):
    code = "invalid_sanctions_file"
    title = "the sanctions list file is not valid; nothing of it was loaded"


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One listed party. `names` holds the primary name first, then its aliases."""

    id: str
    source: str
    schema: str
    names: tuple[str, ...]
    countries: tuple[str, ...]
    programs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SanctionsList:
    name: str
    version: str  # SHA-256 hex of the content read
    entries: tuple[ListEntry, ...]


# --- FollowTheMoney ---------------------------------------------------------------------------


def parse_ftm(content: bytes | str, *, name: str = "opensanctions") -> SanctionsList:
    """Read FollowTheMoney JSON lines; raise `InvalidSanctionsFile` on the first bad line."""
    text = _text(content, fallback=None)
    lines = text.split("\n")
    ends_with_newline = lines[-1] == ""
    if ends_with_newline:
        lines.pop()
    entries: list[ListEntry] = []
    lines_by_id: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            if number == len(lines) and not ends_with_newline:
                raise InvalidSanctionsFile(
                    "the file ends mid-record: its last line is cut short", line=number
                ) from None
            raise InvalidSanctionsFile("the line is not JSON", line=number) from None
        entry = _ftm_entry(record, source=name, line=number)
        if entry is None:
            continue
        if entry.id in lines_by_id:
            raise InvalidSanctionsFile(
                "the id is used twice", line=number, id=entry.id, first_line=lines_by_id[entry.id]
            )
        lines_by_id[entry.id] = number
        entries.append(entry)
        _check_entries_bound(len(entries), line=number)
    return SanctionsList(name=name, version=_sha256(content), entries=tuple(entries))


def _ftm_entry(record: object, *, source: str, line: int) -> ListEntry | None:
    if not isinstance(record, dict):
        raise InvalidSanctionsFile("the line is not a JSON object", line=line)
    for key in ("id", "schema", "properties"):
        if key not in record:
            raise InvalidSanctionsFile(f"the entity has no {key!r}", line=line)
    entity_id, schema, properties = record["id"], record["schema"], record["properties"]
    if not isinstance(entity_id, str) or not entity_id.strip():
        raise InvalidSanctionsFile("the entity's 'id' is not a non-empty string", line=line)
    if not isinstance(schema, str) or not schema:
        raise InvalidSanctionsFile("the entity's 'schema' is not a non-empty string", line=line)
    if not isinstance(properties, dict):
        raise InvalidSanctionsFile("the entity's 'properties' is not an object", line=line)
    if schema not in PARTY_SCHEMAS:
        return None
    names = _dedupe(
        value
        for key in ("name", "alias", "weakAlias")
        for value in _ftm_values(properties, key, line=line, is_name=True)
    )
    if not names:
        raise InvalidSanctionsFile("the party has no name", line=line, id=entity_id)
    countries = _dedupe(
        value
        for key in ("country", "nationality", "jurisdiction")
        for value in _ftm_values(properties, key, line=line)
    )
    programs = _dedupe(
        value
        for key in ("program", "programId")
        for value in _ftm_values(properties, key, line=line)
    )
    return ListEntry(
        id=entity_id.strip(),
        source=source,
        schema=schema,
        names=names[:NAMES_PER_ENTRY_MAX],
        countries=countries,
        programs=programs,
    )


def _ftm_values(
    properties: dict[str, object], key: str, *, line: int, is_name: bool = False
) -> list[str]:
    values = properties.get(key, [])
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise InvalidSanctionsFile(f"the property {key!r} is not a list of strings", line=line)
    stripped = [value.strip() for value in values]
    if is_name and not all(stripped):
        raise InvalidSanctionsFile(f"a name in {key!r} is empty", line=line)
    return [value for value in stripped if value]


# --- OFAC SDN ---------------------------------------------------------------------------------


def parse_sdn(
    content: bytes | str, *, alt: bytes | str | None = None, name: str = "ofac-sdn"
) -> SanctionsList:
    """Read OFAC's `sdn.csv` and, if given, its `alt.csv`; refuse both on the first bad row."""
    entries: dict[int, ListEntry] = {}
    skipped: set[int] = set()
    for line, row in _csv_rows(_text(content, fallback="cp1252"), SDN_COLUMNS, file="sdn"):
        ent_num = _ent_num(row[0], line=line, file="sdn")
        if ent_num in entries or ent_num in skipped:
            raise InvalidSanctionsFile("the ent_num is used twice", line=line, ent_num=ent_num)
        sdn_type = _sdn_field(row[2]).lower()
        if sdn_type in SDN_SKIPPED_TYPES:
            skipped.add(ent_num)
            continue
        if sdn_type not in SDN_SCHEMAS:
            raise InvalidSanctionsFile("unknown SDN_Type", line=line, sdn_type=sdn_type)
        schema = SDN_SCHEMAS[sdn_type]
        entries[ent_num] = ListEntry(
            id=f"ofac-{ent_num}",
            source=name,
            schema=schema,
            names=(_sdn_name(row[1], schema=schema, line=line, file="sdn"),),
            countries=(),
            programs=_sdn_programs(row[3]),
        )
        _check_entries_bound(len(entries), line=line)
    version = _sha256(content)
    if alt is not None:
        version = hashlib.sha256(f"{version}\n{_sha256(alt)}".encode()).hexdigest()
        for line, row in _csv_rows(_text(alt, fallback="cp1252"), ALT_COLUMNS, file="alt"):
            ent_num = _ent_num(row[0], line=line, file="alt")
            if ent_num in skipped:
                continue
            if ent_num not in entries:
                raise InvalidSanctionsFile(
                    "the alias belongs to no entry of the SDN file",
                    line=line,
                    file="alt",
                    ent_num=ent_num,
                )
            entry = entries[ent_num]
            alias = _sdn_name(row[3], schema=entry.schema, line=line, file="alt")
            names = _dedupe((*entry.names, alias))[:NAMES_PER_ENTRY_MAX]
            entries[ent_num] = ListEntry(
                id=entry.id,
                source=entry.source,
                schema=entry.schema,
                names=names,
                countries=entry.countries,
                programs=entry.programs,
            )
    return SanctionsList(name=name, version=version, entries=tuple(entries.values()))


def _csv_rows(text: str, columns: int, *, file: str) -> Iterator[tuple[int, list[str]]]:
    """Each non-empty row with the line it starts on, every row checked for its width."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    line = 1
    ends_with_newline = text.endswith(("\n", "\r"))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise InvalidSanctionsFile(
                f"the row cannot be read as CSV ({error}); the file may be cut short",
                line=line,
                file=file,
            ) from None
        start, line = line, reader.line_num + 1
        if not row or row == [_END_OF_FILE_MARK]:
            continue
        if len(row) != columns:
            at_end = not ends_with_newline and reader.line_num == text.count("\n") + 1
            why = "the file ends mid-row" if at_end and len(row) < columns else "wrong columns"
            raise InvalidSanctionsFile(
                f"{why}: the row has {len(row)} columns, not {columns}",
                line=start,
                file=file,
                columns=len(row),
            )
        yield start, row


def _ent_num(field: str, *, line: int, file: str) -> int:
    value = field.strip()
    if not _ENT_NUM.fullmatch(value):
        raise InvalidSanctionsFile(
            "ent_num is not an integer", line=line, file=file, ent_num=value[:40]
        )
    return int(value)


def _sdn_field(field: str) -> str:
    value = field.strip()
    return "" if value == SDN_NULL else value


def _sdn_name(field: str, *, schema: str, line: int, file: str) -> str:
    value = _sdn_field(field)
    if not value:
        raise InvalidSanctionsFile("the name is empty", line=line, file=file)
    last, comma, first = value.partition(", ")
    if schema == "Person" and comma and first and "," not in first:
        return f"{first} {last}"
    return value


def _sdn_programs(field: str) -> tuple[str, ...]:
    # Several programmes read "SDGT] [IRGC" in one field.
    return _dedupe(part.strip(" []") for part in _sdn_field(field).split("] ["))


# --- files --------------------------------------------------------------------------------------


def load_file(path: Path, *, alt: Path | None = None) -> SanctionsList:
    """Read a list file, FtM or SDN by its extension (by its first character otherwise)."""
    content = _read(path)
    suffix = path.name.lower()
    if suffix.endswith((".json", ".jsonl", ".ndjson")):
        is_ftm = True
    elif suffix.endswith(".csv"):
        is_ftm = False
    else:
        is_ftm = sniff_format(content) == "ftm"
    if is_ftm:
        return parse_ftm(content, name=path.name)
    return parse_sdn(content, alt=None if alt is None else _read(alt), name=path.name)


def sniff_format(content: bytes) -> str:
    """`ftm` when the content's first character (past a byte-order mark and blanks) opens a
    JSON object, else `sdn`."""
    return "ftm" if content.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{") else "sdn"


def _read(path: Path) -> bytes:
    size_bytes = path.stat().st_size
    if size_bytes > FILE_BYTES_MAX:
        raise InvalidSanctionsFile(
            "the file is larger than a list may be",
            path=str(path),
            size_bytes=size_bytes,
            size_bytes_max=FILE_BYTES_MAX,
        )
    return path.read_bytes()


# --- shared -------------------------------------------------------------------------------------


def _text(content: bytes | str, *, fallback: str | None) -> str:
    if isinstance(content, str):
        return content.removeprefix("\ufeff")
    try:
        return content.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        if fallback is not None:
            try:
                return content.decode(fallback)
            except UnicodeDecodeError:
                pass
        line = content.count(b"\n", 0, error.start) + 1
        raise InvalidSanctionsFile("the line is not UTF-8 text", line=line) from None


def _sha256(content: bytes | str) -> str:
    raw = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content
    return hashlib.sha256(raw).hexdigest()


def _dedupe(values: Iterator[str] | tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _check_entries_bound(count: int, *, line: int) -> None:
    if count > ENTRIES_MAX:
        raise InvalidSanctionsFile(
            "the list has more parties than a list may hold", line=line, entries_max=ENTRIES_MAX
        )
