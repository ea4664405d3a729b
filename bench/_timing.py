"""Timing helpers shared by the micro-benchmarks: repeat a call, print a JSON line of figures."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

__all__ = ["report", "timed"]


def timed(fn: Callable[[], object], runs: int, warmup: int = 3) -> list[float]:
    """Seconds taken by each of `runs` calls of `fn`, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def report(bench: str, case: str, timings: list[float], **extra: object) -> None:
    """One JSON line: median and p90 in milliseconds, the number of runs, and `extra`."""
    ms = sorted(t * 1000 for t in timings)
    line = {
        "bench": bench,
        "case": case,
        "median_ms": round(statistics.median(ms), 3),
        "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 3),
        "runs": len(ms),
        **extra,
    }
    print(json.dumps(line), flush=True)
