"""How fast and how long the simulator runs, as people write it: a rate (`200/s`, `6000/m`)
and a duration (`30s`, `5m`, `1h`).

The server's `simulate` setting and the CLI's `--rate`, `--duration` and `--wait` read the same
grammar. A text that does not parse, or a value out of bounds, is a `ValueError` whose message
says how to write it; the CLI turns it into a usage error naming its option.
"""

from __future__ import annotations

import re

# Bounds on what a person may ask for.
RATE_PER_S_MAX = 20_000.0
DURATION_S_MAX = 86_400.0  # one day of wall time
UNIT_S = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3_600}

_NUMBER = r"(?P<number>\d+(?:\.\d*)?|\.\d+)"
_RATE = re.compile(rf"{_NUMBER}\s*(?:/\s*(?P<unit>[a-z]+))?")
_DURATION = re.compile(rf"{_NUMBER}\s*(?P<unit>[a-z]+)?")


def parse_rate(text: str) -> float:
    """Payments a second from `200/s`, `200` (a second), `6000/m` or `90000/h`."""
    match = _RATE.fullmatch(text.strip().lower())
    unit_s = UNIT_S.get(match["unit"] or "s") if match else None
    if match is None or unit_s is None:
        raise ValueError(
            f"{text!r} is not a rate; write payments a second as 200/s or 200, or a minute or "
            "an hour as 6000/m, 90000/h"
        )
    rate = float(match["number"]) / unit_s
    if not 0 < rate <= RATE_PER_S_MAX:
        raise ValueError(
            f"{text!r} is {rate:g} payments a second; the rate must be above 0 and at most "
            f"{RATE_PER_S_MAX:g}/s"
        )
    return rate


def parse_duration(text: str) -> float:
    """Seconds from `30s`, `5m`, `1h` or `90` (seconds)."""
    match = _DURATION.fullmatch(text.strip().lower())
    unit_s = UNIT_S.get(match["unit"] or "s") if match else None
    if match is None or unit_s is None:
        raise ValueError(f"{text!r} is not a duration; write it as 30s, 5m, 1h or 90 (seconds)")
    seconds = float(match["number"]) * unit_s
    if not 0 < seconds <= DURATION_S_MAX:
        raise ValueError(
            f"{text!r} is {seconds:g} s; a duration must be above 0 and at most "
            f"{DURATION_S_MAX:g} s (24h)"
        )
    return seconds
