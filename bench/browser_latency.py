"""Benchmark: click → painted outline in the bundled page, in Debian's Chromium, on loopback.

The page measures it itself (the readout's "Latency", `docs/protocol.md` has the pieces): from
the input event to the first frame handed to the compositor (``requestVideoFrameCallback``)
whose `frame` message carries the update's seq. This benchmark clicks the real page with
Playwright — a different point inside the liver each time, so no click is a cache hit — and
reads that figure. Region growing on a 512×512 slice of the demo CT phantom, with the stream
paused and with it playing (one slice per 0.1 s).

Targets: p50 <= 100 ms, p95 <= 200 ms. Prints one JSON line per case.

Run inside the loopback-only namespace, from the repository root:
``unshare -n sh -c 'ip link set lo up; .venv/bin/python bench/browser_latency.py'``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp.test_utils import TestServer  # noqa: E402
from playwright.async_api import Page, async_playwright  # noqa: E402

from bench.streamkit.measure import require_loopback_namespace  # noqa: E402
from mediastream.app import create_app  # noqa: E402
from mediastream.dicom.library import Library  # noqa: E402
from mediastream.dicom.phantom import phantom_datasets, phantom_hu_slice  # noqa: E402
from mediastream.process import configure_process  # noqa: E402
from mediastream.settings import Settings  # noqa: E402
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

BENCH = "browser_latency"
SIZE, SLICES, SLICE = 512, 24, 12
TIMEOUT_MS = 20_000


def liver_points(count: int, seed: int = 7) -> list[tuple[int, int]]:
    """Click targets: pixels deep inside the phantom's largest soft-tissue organ (x, y)."""
    hu = phantom_hu_slice(SLICE, SLICES, SIZE)
    tissue = (hu > 20) & (hu < 90)
    labels, n = ndimage.label(tissue)
    largest = 1 + int(np.argmax(ndimage.sum_labels(tissue, labels, range(1, n + 1))))
    depth = ndimage.distance_transform_edt(labels == largest)
    rows, cols = np.nonzero(depth > 0.5 * depth.max())
    picks = np.random.default_rng(seed).choice(len(rows), size=count, replace=False)
    return [(int(cols[i]), int(rows[i])) for i in picks]


async def click_image(page: Page, x: int, y: int) -> None:
    """Click image pixel (x, y) of the video (it letterboxes the square picture)."""
    box = await page.locator("#video").bounding_box()
    assert box is not None
    scale = min(box["width"], box["height"]) / SIZE
    left = box["x"] + (box["width"] - SIZE * scale) / 2
    top = box["y"] + (box["height"] - SIZE * scale) / 2
    await page.mouse.click(left + (x + 0.5) * scale, top + (y + 0.5) * scale)


async def measure_clicks(page: Page, points: list[tuple[int, int]]) -> list[float]:
    latencies = []
    for x, y in points:
        before = await page.evaluate("() => document.querySelector('#readout').dataset.latencySeq")
        await click_image(page, x, y)
        await page.wait_for_function(
            "(before) => { const d = document.querySelector('#readout').dataset;"
            " return d.latencySeq && d.latencySeq !== before; }",
            arg=before or "",
            timeout=TIMEOUT_MS,
        )
        latency = await page.evaluate("() => document.querySelector('#readout').dataset.latencyMs")
        latencies.append(float(latency))
    return latencies


def emit(case: str, latencies: list[float]) -> None:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    line = {
        "bench": BENCH,
        "case": case,
        "p50_ms": round(p50, 1),
        "p95_ms": round(p95, 1),
        "max_ms": round(ordered[-1], 1),
        "clicks": len(ordered),
        "target": "p50 <= 100 ms, p95 <= 200 ms",
        "meets_target": p50 <= 100 and p95 <= 200,
        "load1": round(os.getloadavg()[0], 1),
    }
    print(json.dumps(line), flush=True)


async def run(clicks: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        library = Library(root, cache_bytes=0)
        library.load()
        for i, ds in enumerate(phantom_datasets(n_slices=SLICES, size=SIZE)):
            assert library.ingest_dataset(ds, filename=f"{i}.dcm").outcome == "stored"
        settings = Settings(uploads=root, demo=False, ice_hosts=("127.0.0.1",))
        configure_process(settings)
        server = TestServer(create_app(settings), host="127.0.0.1")
        await server.start_server()
        points = liver_points(2 * clicks + 2)
        try:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS
                )
                context = await browser.new_context(
                    permissions=["camera", "microphone"], viewport={"width": 1280, "height": 900}
                )
                page = await context.new_page()
                await page.goto(str(server.make_url("/")))
                await page.wait_for_selector("#series-list li", timeout=TIMEOUT_MS)
                await page.select_option("#algorithm", "region_grow")
                await page.fill("#image-delay", "0.1")
                await page.press("#image-delay", "Enter")
                await page.click("#start")
                await page.wait_for_selector(
                    "#connection[data-state=streaming]", timeout=TIMEOUT_MS
                )
                await page.wait_for_function(
                    "() => Number(document.querySelector('#video').dataset.presentedFrames) > 2",
                    timeout=TIMEOUT_MS,
                )
                await measure_clicks(page, points[:2])  # warm-up: decode, first render
                emit("region_grow_playing", await measure_clicks(page, points[2 : 2 + clicks]))
                await page.click("#play")  # pause
                await page.wait_for_function(
                    "() => !JSON.parse(document.querySelector('#applied-state').textContent"
                    " || '{}').playing",
                    timeout=TIMEOUT_MS,
                )
                emit("region_grow_paused", await measure_clicks(page, points[2 + clicks :]))
                await browser.close()
        finally:
            await server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=30, help="clicks per case")
    args = parser.parse_args()
    require_loopback_namespace()
    asyncio.run(run(args.clicks))


if __name__ == "__main__":
    main()
