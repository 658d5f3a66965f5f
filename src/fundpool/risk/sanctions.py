"""A sanctions file as risk control loads it: its format named or recognised, parsed whole
(`screening.lists`), or refused whole with the line at fault, the old list staying in force.

Formats: `ftm` (OpenSanctions' FollowTheMoney JSON lines) and `sdn` (OFAC's `sdn.csv`). A file
whose format is not named is FollowTheMoney when its first non-blank character is `{`, else
SDN CSV.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from fundpool.risk.screening import InvalidSanctionsFile, ListEntry, parse_ftm, parse_sdn
from fundpool.risk.screening.lists import sniff_format

FORMATS = ("ftm", "sdn")
LIST_BYTES_MAX = 512 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class LoadedList:
    name: str
    format: str
    version: str
    entries: tuple[ListEntry, ...]


def load_content(name: str, content: bytes, fmt: str | None = None) -> LoadedList:
    """Parse `content` as `fmt` (recognised when None); `InvalidSanctionsFile` when it is not
    valid, with nothing loaded."""
    if len(content) > LIST_BYTES_MAX:
        raise InvalidSanctionsFile(f"the file is larger than {LIST_BYTES_MAX} bytes")
    if not content.strip():
        raise InvalidSanctionsFile("the file is empty", line=1)
    fmt = fmt or sniff_format(content)
    if fmt not in FORMATS:
        raise InvalidSanctionsFile(f"the format is one of {', '.join(FORMATS)}", format=fmt)
    parsed = parse_ftm(content, name=name) if fmt == "ftm" else parse_sdn(content, name=name)
    if not parsed.entries:
        raise InvalidSanctionsFile("the file lists no party", format=fmt)
    return LoadedList(name, fmt, parsed.version, parsed.entries)


SHIPPED = ("synthetic.ftm.json", "synthetic_sdn.csv")  # invented names, for tests and the demo


def shipped_list(file: str) -> bytes:
    """A synthetic list shipped with fundpool (`SHIPPED`): every name in it is invented."""
    if file not in SHIPPED:
        raise InvalidSanctionsFile(f"fundpool ships {', '.join(SHIPPED)}", file=file)
    return resources.files("fundpool.risk.screening").joinpath("data", file).read_bytes()
