#!/usr/bin/env python3
"""Write tests/durations.json, the seconds each test file took, from a JUnit XML report.

    .venv/bin/pytest -q -p no:cacheprovider -n 2 --dist loadfile --no-loadscope-reorder \\
        --junitxml=/tmp/suite.xml
    .venv/bin/python tools/test_durations.py /tmp/suite.xml

Why: `make test` runs the suite on two workers, a whole file to a worker (`--dist loadfile`;
a file's servers and fixtures are set up once). The workers take files in the order the
suite's conftest gives them: the slowest first (longest-processing-time first), so that the
run does not end with one worker alone on a long browser file while the other one idles. The
file sizes in tests are the weights; files not in it weigh nothing and come last, in their
own order. Only files over `--min-s` (default 2 s) are kept, rounded to a tenth of a second.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from xml.etree.ElementTree import Element

from defusedxml import ElementTree

ROOT = Path(__file__).resolve().parents[1]


def file_of(case: Element) -> str | None:
    """tests/…/test_x.py of a <testcase> (classname `tests.x.test_y` or `…test_y.Class`)."""
    parts = (case.get("classname") or "").split(".")
    for end in range(len(parts), 0, -1):
        candidate = Path(*parts[:end]).with_suffix(".py")
        if (ROOT / candidate).is_file():
            return candidate.as_posix()
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("report", type=Path, help="pytest --junitxml output")
    parser.add_argument("--min-s", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "durations.json")
    args = parser.parse_args()
    seconds: dict[str, float] = defaultdict(float)
    for case in ElementTree.parse(args.report).iter("testcase"):
        path = file_of(case)
        if path is not None:
            seconds[path] += float(case.get("time") or 0)
    kept = {path: round(s, 1) for path, s in sorted(seconds.items(), key=lambda kv: -kv[1])
            if s >= args.min_s}
    args.out.write_text(json.dumps(kept, indent=1) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(kept)} files of {len(seconds)}, "
          f"{sum(kept.values()):.0f} s of {sum(seconds.values()):.0f} s")


if __name__ == "__main__":
    main()
