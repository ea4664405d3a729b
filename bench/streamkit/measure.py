"""What the streaming benchmark measures with: environment checks, CPU and memory, statistics."""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

BENCH = "stream"


def emit(case: str, **fields: Any) -> None:
    """Print one result line; the machine is shared, so the load average goes with it."""
    load = round(os.getloadavg()[0], 1)
    print(json.dumps({"bench": BENCH, "case": case, **fields, "load1": load}), flush=True)


def verdict(**checks: tuple[float | None, float, str]) -> bool:
    """All of (value, limit, "<=" | ">=") hold (a missing value fails)."""
    ok = True
    for value, limit, op in checks.values():
        ok &= value is not None and (value <= limit if op == "<=" else value >= limit)
    return ok


# -- environment ----------------------------------------------------------------------------


def require_loopback_namespace() -> None:
    """Exit unless only loopback exists: WebRTC must not reach any real network."""
    interfaces = sorted(name for _, name in socket.if_nameindex())
    if interfaces != ["lo"]:
        sys.exit(
            f"bench/stream.py opens WebRTC connections and must run in a private network "
            f"namespace with only loopback (found interfaces {interfaces}). Run it as\n"
            "  unshare -n sh -c 'ip link set lo up; .venv/bin/python bench/stream.py'\n"
            "or with `make bench`."
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def runqueue_wait_seconds(pid: int | str = "self") -> float:
    """Time the process's threads spent runnable but waiting for a CPU (schedstat), so far."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that just ended
            total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


class CpuUsage:
    """CPU used by the server and this process over a window, and the server's CPU starvation."""

    def __init__(self, server_pid: int) -> None:
        self.pid = server_pid
        self.start = time.perf_counter()
        self.server = cpu_seconds(server_pid)
        self.bench = cpu_seconds()
        self.waited = runqueue_wait_seconds(server_pid)

    def fields(self) -> dict[str, int]:
        elapsed = time.perf_counter() - self.start
        return {
            "server_cpu_pct": round(100 * (cpu_seconds(self.pid) - self.server) / elapsed),
            # Summed over threads: 100 = one thread ready to run the whole time, but no CPU.
            "server_runqueue_wait_pct": round(
                100 * (runqueue_wait_seconds(self.pid) - self.waited) / elapsed
            ),
            "bench_cpu_pct": round(100 * (cpu_seconds() - self.bench) / elapsed),
        }


# -- statistics -----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): a value that was actually measured."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def ms_summary(seconds: Sequence[float], prefix: str = "") -> dict[str, float | int | None]:
    """median / p95 / max in milliseconds of durations given in seconds."""
    if not seconds:
        return {f"{prefix}median_ms": None, f"{prefix}p95_ms": None}
    ms = [s * 1000 for s in seconds]
    return {
        f"{prefix}median_ms": round(statistics.median(ms), 1),
        f"{prefix}p95_ms": round(percentile(ms, 95), 1),
        f"{prefix}max_ms": round(max(ms), 1),
    }


def psnr(reference: NDArray[np.uint8], image: NDArray[np.uint8]) -> float:
    diff = reference.astype(np.float64) - image.astype(np.float64)
    mse = float(np.mean(diff * diff))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)
