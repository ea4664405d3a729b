"""Latency cases: first frame, update → decoded frame, and the older service's stop + offer.

Parameters differ on every update (and every new stream), so no picture comes from the server's
result cache.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable
from typing import Any

from bench.streamkit.measure import emit, ms_summary, verdict
from bench.streamkit.server import Message, Server
from bench.streamkit.viewers import LegacyViewer, Match, Viewer, viewer


def watershed_params(rng: random.Random) -> Callable[[], dict[str, Any]]:
    """Distinct watershed parameters on every call."""
    grid = [
        (round(0.2 + 0.01 * i, 2), 50 + 5 * j) for i, j in itertools.product(range(61), range(31))
    ]
    rng.shuffle(grid)
    pairs = iter(grid)
    return lambda: dict(zip(("threshold_ratio", "edge_threshold"), next(pairs), strict=True))


def snake_params(rng: random.Random) -> Callable[[], dict[str, Any]]:
    """Distinct snake starts around the demo phantom's aorta (x=270, y=293)."""
    grid = list(itertools.product(range(262, 279), range(285, 302), range(16, 31)))
    rng.shuffle(grid)
    triples = iter(grid)
    return lambda: dict(zip(("x", "y", "radius"), next(triples), strict=True))


# -- first frame --------------------------------------------------------------------------------


async def case_first_frame(server: Server, n: int, rng: random.Random) -> None:
    params = watershed_params(rng)
    totals, answers, first_msgs = [], [], []
    for _ in range(n):
        async with viewer(server.url) as client:
            await client.start({"algorithm": "watershed", "params": params()})
            first = await client.log.wait_decoded()
            sent = client.sent_at["offer"]
            totals.append(first.at - sent)
            answer = next(m for m in client.messages if m["type"] == "answer")
            answers.append(answer["_received_at"] - sent)
            first_msg = await client.frame_message(lambda m: True)
            first_msgs.append(first_msg["_received_at"] - sent)
            await client.stop()
        await server.wait_idle()
    summary = ms_summary(totals)
    emit(
        "first_frame_watershed",
        n=n,
        **summary,
        answer_median_ms=ms_summary(answers)["median_ms"],
        first_frame_msg_median_ms=ms_summary(first_msgs)["median_ms"],
        target_median_ms=300,
        meets_target=verdict(median=(summary["median_ms"], 300, "<=")),
    )


async def case_legacy_first_frame(server: Server, n: int, rng: random.Random) -> None:
    params = watershed_params(rng)
    totals, answers = [], []
    for _ in range(n):
        legacy = LegacyViewer(server)
        posted = await legacy.start("watershed", {**params(), "image_delay": 1})
        totals.append((await legacy.log.wait_decoded()).at - posted)
        answers.append(legacy.answered_at - posted)
        await server.post("/stop-stream")
        await legacy.close()
        await server.wait_idle()
    summary = ms_summary(totals)
    emit(
        "legacy_first_frame_watershed",
        n=n,
        **summary,
        answer_median_ms=ms_summary(answers)["median_ms"],
        target_median_ms=300,
    )


# -- updates ------------------------------------------------------------------------------------


async def update_latencies(
    client: Viewer,
    n: int,
    changes: Callable[[], dict[str, Any]],
    stages: tuple[str | None, ...],
    rng: random.Random,
) -> dict[str | None, list[tuple[float, Match]]]:
    """Send `n` updates; for each stage, (when the update was sent, its first decoded frame)."""
    results: dict[str | None, list[tuple[float, Match]]] = {stage: [] for stage in stages}
    for _ in range(n):
        mark = len(client.messages)
        sent = time.perf_counter()
        reply = await client.update(params=changes())
        seq = reply["seq"]
        for stage in stages:

            def reflects(m: Message, seq: int = seq, stage: str | None = stage) -> bool:
                return m["seq"] == seq and stage in (None, m["stage"])

            match = await client.log.first_match(reflects, start=mark, timeout=5.0)
            if match is not None:
                match.message["_reply_at"] = reply["_received_at"]
                results[stage].append((sent, match))
        # Updates land at random phases of the play clock and of the frame cap.
        await asyncio.sleep(rng.uniform(0.15, 0.45))
    return results


def latency_fields(samples: list[tuple[float, Match]], n: int) -> dict[str, Any]:
    """The summary of one latency case, with where its time went."""
    totals = [m.decoded.at - sent for sent, m in samples]
    reply = [m.message["_reply_at"] - sent for sent, m in samples]
    frame_msg = [m.message["_received_at"] - sent for sent, m in samples]
    after_msg = [m.decoded.at - m.message["_received_at"] for _, m in samples]
    render = [m.message["timing_ms"].get("total", 0) / 1000 for _, m in samples]
    return {
        "n": len(samples),
        "missed": n - len(samples),
        **ms_summary(totals),
        "reply_median_ms": ms_summary(reply)["median_ms"],
        "frame_msg_median_ms": ms_summary(frame_msg)["median_ms"],
        "render_median_ms": ms_summary(render)["median_ms"],
        "msg_to_decoded_median_ms": ms_summary(after_msg)["median_ms"],
        "cached": sum(bool(m.message.get("cached")) for _, m in samples),
    }


async def case_update_watershed(server: Server, n: int, delay: float, rng: random.Random) -> None:
    params = watershed_params(rng)
    async with viewer(server.url) as client:
        await client.start({"algorithm": "watershed", "image_delay": delay, "params": params()})
        await client.control_open()
        await client.log.wait_decoded()
        results = await update_latencies(client, n, params, (None,), rng)
    fields = latency_fields(results[None], n)
    emit(
        f"update_watershed_delay{delay:g}",
        image_delay=delay,
        **fields,
        target_median_ms=60,
        target_p95_ms=120,
        meets_target=verdict(
            median=(fields["median_ms"], 60, "<="), p95=(fields["p95_ms"], 120, "<=")
        ),
    )


async def case_update_snakes(server: Server, n: int, rng: random.Random) -> None:
    params = snake_params(rng)
    async with viewer(server.url) as client:
        await client.start({"algorithm": "snakes", "image_delay": 1, "params": params()})
        await client.control_open()
        await client.log.wait_decoded()
        results = await update_latencies(client, n, params, ("preview", "final"), rng)
    for stage, target in (("preview", 80), ("final", 400)):
        fields = latency_fields(results[stage], n)
        emit(
            f"update_snakes_{stage}",
            image_delay=1,
            **fields,
            target_median_ms=target,
            meets_target=verdict(median=(fields["median_ms"], target, "<=")),
        )


# -- the older service's approach: stop + a new REST offer --------------------------------------


async def case_legacy_change(
    server: Server, n: int, algorithm: str, delay: float, rng: random.Random
) -> None:
    params = watershed_params(rng) if algorithm == "watershed" else snake_params(rng)
    first, final, missing_final, stops = [], [], 0, []
    current = LegacyViewer(server)
    await current.start(algorithm, {**params(), "image_delay": delay})
    await current.log.wait_decoded()
    for _ in range(n):
        await asyncio.sleep(rng.uniform(0.15, 0.45))
        changed = time.perf_counter()  # the user changed a parameter
        await server.post("/stop-stream")
        stops.append(time.perf_counter() - changed)
        closing = asyncio.create_task(current.close())
        current = LegacyViewer(server)
        await current.start(algorithm, {**params(), "image_delay": delay})
        first.append((await current.log.wait_decoded()).at - changed)
        if algorithm == "snakes":
            match = await current.log.first_match(lambda m: m["stage"] == "final", timeout=10)
            if match is None:
                missing_final += 1
            else:
                final.append(match.decoded.at - changed)
        await closing
    await server.post("/stop-stream")
    await current.close()
    stop_ms = ms_summary(stops)["median_ms"]
    if algorithm == "watershed":
        name = f"legacy_stop_and_offer_watershed_delay{delay:g}"
        emit(name, image_delay=delay, n=n, **ms_summary(first), stop_median_ms=stop_ms)
    else:
        name = "legacy_stop_and_offer_snakes_preview"
        emit(name, image_delay=delay, n=n, **ms_summary(first), stop_median_ms=stop_ms)
        emit("legacy_stop_and_offer_snakes_final", image_delay=delay, n=len(final),
             missed=missing_final, **ms_summary(final))  # fmt: skip
    await server.wait_idle()
