"""Statement files parsed per second (issue 18, point 7): camt.053 files read whole by
fundpool's parser (defusedxml, the structure walked, values built, balances checked) beside
the standard library's plain `xml.etree.ElementTree.fromstring` of the same bytes (parsing
alone, no checks and no values: what the safety and the checks cost); and MT940 files by
fundpool's own parser beside the `mt-940` library on the same text.

Prints one JSON line per figure:
  {"bench": "statements", "workload": ..., "value": ..., "unit": "files/s", "baseline": ...,
   "baseline_value": ..., "lines_per_s": ...}

Files are made by fundpool's own writers (camt) or a template (MT940) with `--lines` entries
each; making them is not timed. Each figure is the best of `--rounds` rounds.

Usage: python bench/statements.py [--files 50] [--lines 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from xml.etree import ElementTree  # the baseline only; never for untrusted files

from fundpool.channels.iso20022.camt import parse_camt, write_camt053
from fundpool.recon.formats.mt940 import parse_mt940
from fundpool.recon.model import Balance, LineKind, Statement, StatementLine

DAY_US = 86_400_000_000
START_US = 1_796_601_600_000_000  # 2026-12-07
SCALES = {"EUR": 2}


def camt_file(index: int, lines: int, rng: random.Random) -> bytes:
    day = START_US + index * DAY_US
    entries = tuple(
        StatementLine(f"s:{i}", rng.choice((1, -1)) * rng.randrange(1, 10_000_00), "EUR", day,
                      day, kind=LineKind.TRANSFER, end_to_end_id=f"{rng.getrandbits(128):032x}",
                      bank_ref=f"B{index}-{i}", reference=f"INV-{rng.randrange(10**6)}",
                      counterparty="Acme GmbH")
        for i in range(lines))
    closing = sum(e.amount_minor for e in entries)
    statement = Statement(f"STMT-{index}", "DE02120300000000202051", "EUR", day, entries,
                          opening=Balance(0, day), closing=Balance(closing, day))
    return write_camt053([statement], message_id=f"M-{index}", created_at_us=day,
                         scales=SCALES)


def mt940_file(index: int, lines: int, rng: random.Random) -> bytes:
    rows = [":20:STMT" + str(index), ":25:DE02120300000000202051", f":28C:{index + 1}/1",
            ":60F:C261207EUR0,00"]
    total = 0
    for i in range(lines):
        amount = rng.randrange(1, 10_000_00)
        sign = rng.choice(("C", "D"))
        total += amount if sign == "C" else -amount
        rows.append(f":61:2612071207{sign}{amount // 100},{amount % 100:02d}NTRFREF{i}//B{i}")
        rows.append(f":86:/EREF/REF{i}/REMI/INV-{rng.randrange(10**6)}")
    mark = "C" if total >= 0 else "D"
    rows.append(f":62F:{mark}261207EUR{abs(total) // 100},{abs(total) % 100:02d}")
    return ("\r\n".join(rows) + "\r\n-").encode("ascii")


def rate(files: list[bytes], read: Callable[[bytes, str], object], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for n, data in enumerate(files):
            read(data, f"f{n}")
        best = min(best, time.perf_counter() - started)
    return len(files) / best


def emit(**doc: object) -> None:
    print(json.dumps({"bench": "statements", **doc}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--lines", type=int, default=1_000, help="entries per file")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(18)

    camt = [camt_file(i, args.lines, rng) for i in range(args.files)]
    ours = rate(camt, lambda d, n: parse_camt(d, n, scales=SCALES), args.rounds)
    baseline = rate(camt, lambda d, n: ElementTree.fromstring(d), args.rounds)
    emit(workload="camt053", value=round(ours, 2), unit="files/s",
         baseline="xml.etree.fromstring", baseline_value=round(baseline, 2),
         lines_per_file=args.lines, lines_per_s=round(ours * args.lines),
         bytes_per_file=len(camt[0]))

    mt940 = [mt940_file(i, args.lines, rng) for i in range(args.files)]
    ours = rate(mt940, lambda d, n: parse_mt940(d, n, scales=SCALES), args.rounds)
    import mt940 as library  # the test extras' oracle, as the baseline

    baseline = rate(mt940, lambda d, n: library.parse(d.decode("ascii")), args.rounds)
    emit(workload="mt940", value=round(ours, 2), unit="files/s", baseline="mt-940 library",
         baseline_value=round(baseline, 2), lines_per_file=args.lines,
         lines_per_s=round(ours * args.lines), bytes_per_file=len(mt940[0]))


if __name__ == "__main__":
    main()
