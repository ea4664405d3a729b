"""Capacity cases: frame rate, concurrent sessions, open/close cycles, picture quality."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import statistics
import sys
import time
from typing import Any

from bench.streamkit.measure import CpuUsage, emit, ms_summary, percentile, psnr, rss_bytes, verdict
from bench.streamkit.server import Server
from bench.streamkit.viewers import STREAM_SCRIPT, FrameLog, ProbeProcess, Viewer, viewer
from mediastream.process import restrict_ice_host_addresses

SOFT_TISSUE = {"center": 40, "width": 400}
AORTA = {"x": 270, "y": 293, "radius": 18}  # the demo phantom's aorta (bench/segmentation.py)


# -- frame rate ---------------------------------------------------------------------------------


async def first_pass(log: FrameLog, slices: int, timeout: float = 90.0) -> None:
    """Wait until the series has been shown once and its first slice comes around again."""
    async with asyncio.timeout(timeout):
        while True:
            indices = [m["index"] for m in log.frames()]
            if indices and len(set(indices)) == slices and indices[-1] == indices[0]:
                return
            await asyncio.sleep(0.01)


def rate_fields(log: FrameLog, start: float, end: float) -> dict[str, Any]:
    at = [d.at for d in log.decoded if start <= d.at < end]
    sent = [m for m in log.frames() if start <= m["_received_at"] < end]
    gaps = [b - a for a, b in itertools.pairwise(at)]
    return {
        "frames": len(at),
        "fps": round(len(at) / (end - start), 2),
        "sent_fps": round(len(sent) / (end - start), 2),
        "max_gap_ms": round(max(gaps) * 1000, 1) if gaps else None,
        "slices_shown": len({m["index"] for m in sent}),
    }


async def case_fps(server: Server, algorithm: str, window: float) -> None:
    params = AORTA if algorithm == "snakes" else {}
    async with viewer(server.url) as client:
        state = {"algorithm": algorithm, "params": params, "image_delay": 0, "playing": True}
        await client.start(state)
        began = (await client.log.wait_decoded()).at
        await first_pass(client.log, server.slices)
        passed = time.perf_counter()
        usage = CpuUsage(server.pid)
        await asyncio.sleep(window)
        end = time.perf_counter()
        fields = rate_fields(client.log, passed, end)
    emit(
        f"fps_{algorithm}_delay0",
        window_s=window,
        first_pass_s=round(passed - began, 2),
        **fields,
        **usage.fields(),
        target_fps=30,
        # 30 fps is also the server's frame cap: allow one frame of jitter at the window's ends.
        meets_target=fields["frames"] >= 30 * window - 1,
    )
    await server.wait_idle()


# -- concurrent sessions ------------------------------------------------------------------------


async def case_concurrent(server: Server, sessions: int, window: float) -> None:
    probe = ProbeProcess(server.url, seconds=3)
    await probe.start()
    idle_rtts = await probe.result()
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(viewer(server.url)) for _ in range(sessions)]
        for i, client in enumerate(clients):
            # Distinct parameters: the first pass renders every slice for every viewer.
            params = {"threshold_ratio": round(0.40 + 0.01 * i, 2)}
            await client.start({"algorithm": "watershed", "image_delay": 0.1, "params": params})
        await asyncio.gather(*(first_pass(c.log, server.slices) for c in clients))
        probe = ProbeProcess(server.url, seconds=window)
        await probe.start()
        start = time.perf_counter()
        usage = CpuUsage(server.pid)
        rtts = await probe.result()
        end = time.perf_counter()
        rates = [rate_fields(c.log, start, end) for c in clients]
    fps = [r["fps"] for r in rates]
    sent = [r["sent_fps"] for r in rates]
    rtt_p99 = round(percentile(rtts, 99) * 1000, 1)
    emit(
        "concurrent_sessions",
        sessions=sessions,
        image_delay=0.1,
        window_s=round(end - start, 1),
        min_fps=min(fps),
        median_fps=statistics.median(fps),
        min_sent_fps=min(sent),
        max_gap_ms=max(r["max_gap_ms"] or 0 for r in rates),
        rtt_n=len(rtts),
        rtt_median_ms=round(statistics.median(rtts) * 1000, 1),
        rtt_p99_ms=rtt_p99,
        rtt_max_ms=round(max(rtts) * 1000, 1),
        idle_rtt_p99_ms=round(percentile(idle_rtts, 99) * 1000, 1),
        **usage.fields(),
        target_min_fps=9,
        target_rtt_p99_ms=50,
        meets_target=verdict(fps=(min(fps), 9, ">="), rtt=(rtt_p99, 50, "<=")),
    )
    await server.wait_idle()


# -- open / stream / close cycles ---------------------------------------------------------------

STREAMING_STATE = {"algorithm": "watershed", "image_delay": 0}


async def cycle_normal(server: Server) -> None:
    async with viewer(server.url) as client:
        await client.start(STREAMING_STATE)
        await client.log.wait_decoded(3)
        await client.stop()


async def cycle_killed(server: Server) -> None:
    """A viewer process killed mid-stream: no stop, no WebSocket close frame, no DTLS/SCTP bye."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(STREAM_SCRIPT),
        "--abrupt-child",
        server.url,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    try:
        async with asyncio.timeout(30):
            line = await child.stdout.readline()
        if line.strip() != b"streaming":
            raise RuntimeError(f"abrupt child failed: {line!r}")
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()


async def cycle_peer_closed(server: Server) -> float | None:
    """The peer connection closes without a ``stop``; seconds until the server notices."""
    async with viewer(server.url) as client:
        await client.start(STREAMING_STATE)
        await client.log.wait_decoded(3)
        assert client.pc is not None
        mark = len(client.messages)
        closed = time.perf_counter()
        await client.pc.close()
        try:
            stopped = await client.wait_for(lambda m: m["type"] == "stopped", 5.0, mark)
        except TimeoutError:
            return None
        return float(stopped["_received_at"] - closed)


async def case_cycles(server: Server, n: int) -> None:
    for _ in range(3):  # warm-up: codecs, caches and pools exist before the baseline
        await cycle_normal(server)
    await server.wait_idle()
    before, rss_before = await server.health(), rss_bytes(server.pid)
    kinds = {"normal": 0, "killed": 0, "peer_closed": 0}
    noticed: list[float] = []
    unnoticed = 0
    rss_trace = []
    started = time.perf_counter()
    for i in range(n):
        if i % 3 != 2:
            kind = "normal"
            await cycle_normal(server)
        elif i % 6 == 2:
            kind = "killed"
            await cycle_killed(server)
        else:
            kind = "peer_closed"
            seconds = await cycle_peer_closed(server)
            if seconds is None:
                unnoticed += 1
            else:
                noticed.append(seconds)
        kinds[kind] += 1
        if not await server.responsive():
            raise RuntimeError(f"the server stopped answering after cycle {i + 1} ({kind})")
        if (i + 1) % 25 == 0:
            rss_trace.append(round((rss_bytes(server.pid) - rss_before) / 1e6, 1))
    elapsed = time.perf_counter() - started
    idle = await server.wait_idle(20)
    after = await server.health()
    with contextlib.suppress(TimeoutError):  # tasks of closed sessions may take a moment
        async with asyncio.timeout(10):
            while after["tasks"] > before["tasks"]:
                await asyncio.sleep(0.1)
                after = await server.health()
    growth = round((rss_bytes(server.pid) - rss_before) / 1e6, 1)
    emit(
        "open_close_cycles",
        cycles=n,
        kinds=kinds,
        seconds=round(elapsed, 1),
        sessions_left=after["sessions"],
        idle_within_20s=idle,
        tasks_before=before["tasks"],
        tasks_after=after["tasks"],
        rss_growth_mb=growth,
        rss_growth_trace_mb=rss_trace,
        peer_closed_noticed_median_ms=ms_summary(noticed)["median_ms"],
        peer_closed_unnoticed_5s=unnoticed,
        target_rss_growth_mb=30,
        meets_target=after["sessions"] == 0
        and after["tasks"] <= before["tasks"]
        and verdict(rss=(growth, 30, "<=")),
    )


async def abrupt_child(url: str) -> None:
    """The viewer `cycle_killed` kills: stream, say so, then wait to be killed."""
    restrict_ice_host_addresses(["127.0.0.1"])
    client = Viewer(url)
    await client.connect()
    await client.start(STREAMING_STATE)
    await client.log.wait_decoded(3)
    print("streaming", flush=True)
    await asyncio.Event().wait()


# -- picture quality ----------------------------------------------------------------------------


async def case_psnr(server: Server, slices: list[int], hold: float) -> None:
    marks = (0.5, 1.0, 2.0)
    at_marks: dict[float, list[float]] = {t: [] for t in marks}
    to_38: list[float | None] = []
    for index in slices:
        reference = await server.frame_png(index, **SOFT_TISSUE)
        state = {"algorithm": "none", "playing": False, "index": index, "window": SOFT_TISSUE}
        async with viewer(server.url, keep_images=True) as client:
            await client.start(state)
            first = (await client.log.wait_decoded()).at
            await asyncio.sleep(max(0.0, first + hold - time.perf_counter()))
            curve = [
                (d.at - first, psnr(reference, d.gray))
                for d in client.log.decoded
                if d.gray is not None
            ]
            await client.stop()
        for t in marks:
            at_marks[t].append(min(100.0, [p for s, p in curve if s <= t][-1]))
        to_38.append(next((s for s, p in curve if p >= 38), None))
    reached = [s for s in to_38 if s is not None]
    median_to_38 = (
        round(statistics.median(reached) * 1000, 1) if len(reached) == len(to_38) else None
    )
    emit(
        "psnr_still",
        slices=slices,
        **{f"psnr_{t:g}s_median_db": round(statistics.median(v), 2) for t, v in at_marks.items()},
        psnr_2s_min_db=round(min(at_marks[2.0]), 2),
        time_to_38db_median_ms=median_to_38,
        time_to_38db_max_ms=round(max(reached) * 1000, 1) if reached else None,
        never_reached_38db=len(to_38) - len(reached),
        target_db=38,
        target_within_ms=2000,
        meets_target=median_to_38 is not None and max(reached) <= 2.0,
    )
    await server.wait_idle()


async def case_quality_playing(server: Server, seconds: float) -> None:
    """PSNR of every decoded frame while the plain series plays at the frame cap."""
    references = [await server.frame_png(i, **SOFT_TISSUE) for i in range(server.slices)]
    state = {"algorithm": "none", "image_delay": 0, "window": SOFT_TISSUE}
    async with viewer(server.url, keep_images=True) as client:
        await client.start(state)
        first = (await client.log.wait_decoded()).at
        await asyncio.sleep(max(0.0, first + seconds - time.perf_counter()))
        values = []
        for message in client.log.frames():
            decoded = client.log.decoded_for(message)
            if decoded is not None and decoded.gray is not None:
                values.append(psnr(references[message["index"]], decoded.gray))
        await client.stop()
    emit(
        "quality_playing",
        seconds=seconds,
        frames=len(values),
        psnr_median_db=round(statistics.median(values), 2),
        psnr_p5_db=round(percentile(values, 5), 2),
        psnr_min_db=round(min(values), 2),
    )
    await server.wait_idle()
