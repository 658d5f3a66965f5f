"""Sanctions screening: index build for N synthetic entries, and screen() latency (wall clock,
and the thread's CPU time, which a busy machine disturbs less) for hits and misses, against a
same-run baseline (rapidfuzz's process.extract of the same query over every normalised listed
name, token_sort_ratio, no index).

The process's GC is set as the entry points set it (`runtime.tune_gc`) and collected once after
the build, as a long-running process will have done by its first payment.

Usage: python bench/screening.py [--entries 100000] [--queries 2000] [--seed 0] [--freeze]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import time

from rapidfuzz import fuzz, process

from fundpool.risk.screening import Screener, generate, normalised
from fundpool.runtime import tune_gc


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def typo(rng: random.Random, name: str) -> str:
    words = name.split()
    longest = max(range(len(words)), key=lambda i: len(words[i]))
    word = words[longest]
    if len(word) < 5:
        return name
    i = rng.randrange(1, len(word) - 1)
    words[longest] = word[:i] + rng.choice("aeioukrst") + word[i + 1 :]
    return " ".join(words)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--freeze", action="store_true", help="gc.freeze() after the build")
    args = parser.parse_args()
    tune_gc()
    rng = random.Random(args.seed + 1)

    started = time.perf_counter()
    entries = generate(args.entries, args.seed)
    generate_s = time.perf_counter() - started
    rss_before_mb = rss_mb()
    started = time.perf_counter()
    screener = Screener(entries)
    build_s = time.perf_counter() - started
    rss_index_mb = rss_mb() - rss_before_mb
    gc.collect()  # what a long-running process has done by its first payment
    if args.freeze:
        gc.freeze()

    latin = [e for e in entries if e.names[0].isascii() and e.schema == "Person"]
    sample = rng.sample(entries, args.queries)
    workloads: dict[str, list[str]] = {
        "hit_exact": [e.names[rng.randrange(len(e.names))] for e in sample],
        "hit_typo": [typo(rng, e.names[0]) for e in rng.sample(latin, args.queries)],
        "hit_reordered": [
            " ".join(reversed(e.names[0].split())) for e in rng.sample(latin, args.queries)
        ],
        # Common tokens of the list in a combination no entry has: what most payees look like.
        "miss_known_tokens": [
            f"{rng.choice(latin).names[0].split()[0]} {rng.choice(latin).names[0].split()[-1]}"
            for _ in range(args.queries)
        ],
        "miss_unknown_tokens": [
            f"Quillon {w}ashby Tremont" for w in ("Ab", "Cd", "Ef", "Gh") * (args.queries // 4)
        ],
    }
    all_names = [normalised(name) for e in entries for name in e.names]
    for workload, queries in workloads.items():
        for query in queries[:50]:  # warm-up, uncounted
            screener.screen(query)
        latencies_us, cpu_us, hit_count = [], [], 0
        for query in queries:
            c0 = time.thread_time_ns()
            t0 = time.perf_counter_ns()
            hits = screener.screen(query)
            latencies_us.append((time.perf_counter_ns() - t0) / 1000)
            cpu_us.append((time.thread_time_ns() - c0) / 1000)
            hit_count += bool(hits)
        baseline_us = []
        for query in queries[:20]:
            t0 = time.perf_counter_ns()
            process.extract(normalised(query), all_names, scorer=fuzz.token_sort_ratio,
                            score_cutoff=85, limit=5)
            baseline_us.append((time.perf_counter_ns() - t0) / 1000)
        print(json.dumps({
            "bench": "screening", "workload": workload, "entries": args.entries,
            "queries": len(queries), "hit_share": round(hit_count / len(queries), 3),
            "p50_us": round(percentile(latencies_us, 0.50), 1),
            "p99_us": round(percentile(latencies_us, 0.99), 1),
            "max_us": round(max(latencies_us), 1),
            "cpu_p50_us": round(percentile(cpu_us, 0.50), 1),
            "cpu_p99_us": round(percentile(cpu_us, 0.99), 1),
            "baseline": "process.extract token_sort_ratio over every name, no index",
            "baseline_p50_us": round(statistics.median(baseline_us), 1),
            "ratio": round(statistics.median(baseline_us) / percentile(latencies_us, 0.50), 1),
        }))
    print(json.dumps({
        "bench": "screening", "workload": "build", "entries": args.entries,
        "names": len(all_names), "generate_s": round(generate_s, 2), "build_s": round(build_s, 2),
        "index_rss_mb": round(rss_index_mb), "freeze": args.freeze,
    }))


if __name__ == "__main__":
    main()
