"""Benchmark: shared viewing — one presenter steers, many viewers watch the same live stream.

Against ``server.py`` (a subprocess, the 512×512 demo CT phantom), with aiortc viewers in this
process (each decodes its own video, as a browser would; they release frames on their marker
bit). The presenter plays the series at image_delay 0 with watershed, shares it, and viewers
join. Cases:

* ``shared_16_viewers`` — 1 presenter + 16 viewers: every viewer's decoded frame rate over a
  window (target >= 20 fps each), the event loop's latency meanwhile (WebSocket ping round
  trips from another process, target p99 <= 50 ms), the server's CPU, and presenter update →
  each viewer's first decoded frame carrying it (target p95 <= 150 ms).
* ``shared_capacity`` — the most viewers that each still get >= 20 fps, trying 1, 2, 4, 8, 12,
  16, 24, 32.

What a viewer costs: no rendering (the presenter's pictures are shared), one VP8 encode on the
server and one decode here; both machines are this one, with 2 cores.

Run inside the loopback-only namespace, from the repository root:
``unshare -n sh -c 'ip link set lo up; OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/shared.py'``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.streamkit.capacity import first_pass, rate_fields  # noqa: E402
from bench.streamkit.measure import (  # noqa: E402
    CpuUsage,
    emit,
    ms_summary,
    percentile,
    require_loopback_namespace,
    verdict,
)
from bench.streamkit.server import Server  # noqa: E402
from bench.streamkit.viewers import ProbeProcess, Viewer, viewer  # noqa: E402
from mediastream.process import restrict_ice_host_addresses  # noqa: E402

TARGET_FPS = 20
PRESENTING = {"algorithm": "watershed", "image_delay": 0, "playing": True}
CAPACITY_STEPS = (1, 2, 4, 8, 12, 16, 24, 32)


async def share_with(
    server: Server, stack: contextlib.AsyncExitStack, viewers: int
) -> tuple[Viewer, list[Viewer]]:
    presenter = await stack.enter_async_context(viewer(server.url))
    await presenter.start(PRESENTING)
    await first_pass(presenter.log, server.slices)  # every slice rendered once: cached
    token = (await presenter.share())["view_token"]
    watchers = []
    for _ in range(viewers):
        # Viewers time their decoded frames without converting them to images: they stand
        # for browsers on other machines, and share these two cores with the server.
        client = await stack.enter_async_context(viewer(server.url, pictures=False))
        await client.join(token)
        await client.start()
        watchers.append(client)
    for client in watchers:
        await client.log.wait_decoded(3, timeout=30)
    return presenter, watchers


async def frame_rates(clients: list[Viewer], window: float) -> list[dict[str, Any]]:
    start = time.perf_counter()
    await asyncio.sleep(window)
    end = time.perf_counter()
    return [rate_fields(c.log, start, end) for c in clients]


def carries_seq(seq: int, message: dict[str, Any]) -> bool:
    return bool(message["seq"] == seq)


async def update_latencies(presenter: Viewer, watchers: list[Viewer], n: int) -> list[float]:
    """Presenter update sent → each viewer's first decoded frame reflecting it, in seconds."""
    rng = random.Random(11)
    samples = []
    for _ in range(n):
        marks = [len(c.messages) for c in watchers]
        ratio = round(rng.uniform(0.3, 0.7), 3)
        sent = time.perf_counter()
        reply = await presenter.update(params={"threshold_ratio": ratio})
        reflects = functools.partial(carries_seq, reply["seq"])
        for client, mark in zip(watchers, marks, strict=True):
            match = await client.log.first_match(reflects, start=mark)
            if match is not None:
                samples.append(match.decoded.at - sent)
    return samples


async def case_sixteen(server: Server, viewers: int, window: float, updates: int) -> None:
    async with contextlib.AsyncExitStack() as stack:
        presenter, watchers = await share_with(server, stack, viewers)
        probe = ProbeProcess(server.url, seconds=window)
        await probe.start()
        usage = CpuUsage(server.pid)
        rates = await frame_rates(watchers, window)
        rtts = await probe.result()
        cpu = usage.fields()
        latencies = await update_latencies(presenter, watchers, updates)
    fps = [r["fps"] for r in rates]
    rtt_p99 = round(percentile(rtts, 99) * 1000, 1)
    latency = ms_summary(latencies)
    emit(
        f"shared_{viewers}_viewers",
        viewers=viewers,
        window_s=window,
        min_fps=min(fps),
        median_fps=statistics.median(fps),
        rtt_p99_ms=rtt_p99,
        updates=updates,
        update_to_viewer_samples=len(latencies),
        **{f"update_to_viewer_{k}": v for k, v in latency.items()},
        **cpu,
        target_min_fps=TARGET_FPS,
        target_update_p95_ms=150,
        target_rtt_p99_ms=50,
        meets_target=verdict(
            fps=(min(fps), TARGET_FPS, ">="),
            latency=(latency["p95_ms"], 150, "<="),
            rtt=(rtt_p99, 50, "<="),
        )
        and len(latencies) == updates * viewers,
    )
    await server.wait_idle()


async def case_capacity(server: Server, window: float) -> None:
    fitting, tried = 0, []
    for viewers in CAPACITY_STEPS:
        async with contextlib.AsyncExitStack() as stack:
            _, watchers = await share_with(server, stack, viewers)
            rates = await frame_rates(watchers, window)
        low = min(r["fps"] for r in rates)
        tried.append({"viewers": viewers, "min_fps": low})
        await server.wait_idle()
        if low < TARGET_FPS:
            break
        fitting = viewers
    emit("shared_capacity", viewers_at_20_fps=fitting, tried=tried, target_fps=TARGET_FPS)


async def run(args: argparse.Namespace) -> None:
    restrict_ice_host_addresses(["127.0.0.1"])  # this process's peers, like the server's
    async with Server() as server:
        await case_sixteen(server, args.viewers, args.window, args.updates)
        if not args.skip_capacity:
            await case_capacity(server, args.window)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=16)
    parser.add_argument("--window", type=float, default=5.0, help="seconds per fps window")
    parser.add_argument("--updates", type=int, default=20, help="presenter updates timed")
    parser.add_argument("--skip-capacity", action="store_true")
    args = parser.parse_args()
    require_loopback_namespace()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
