"""Reading the client's state from its DOM, and waiting for it to change.

The page exposes what tests need as ordinary DOM: ``#connection[data-state]``, the server's
applied state as JSON in ``#applied-state`` (with the reply's ``data-seq``), the frame on screen
as ``#readout[data-seq|data-index|data-stage|data-algorithm]`` and the count of presented video
frames as ``#video[data-presented-frames]``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp.test_utils import TestServer
from playwright.async_api import Page
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from mediastream.dicom.phantom import phantom_datasets

TIMEOUT_MS = 20_000


def page_url(server: TestServer) -> str:
    return str(server.make_url("/"))


def series_datasets(n_slices: int = 6, size: int = 128, rows: int | None = None) -> list[Dataset]:
    """A small phantom series. With `rows`, a new series (its own UIDs) whose images keep only
    the middle `rows` rows: a picture that is not square."""
    datasets = list(phantom_datasets(n_slices=n_slices, size=size))
    if rows is None:
        return datasets
    series_uid = generate_uid()
    for ds in datasets:
        top = (size - rows) // 2
        pixels = np.ascontiguousarray(ds.pixel_array[top : top + rows])
        ds.Rows = rows
        ds.PixelData = pixels.tobytes()
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesDescription = f"Cropped phantom {size}x{rows}"
    return datasets


def write_series(folder: Path, n_slices: int = 6, size: int = 128) -> list[Path]:
    """A small phantom series as DICOM files on disk, for the page's file input."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, ds in enumerate(series_datasets(n_slices=n_slices, size=size)):
        path = folder / f"slice{i:02d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


async def applied(page: Page) -> dict[str, Any]:
    """The server's last `state` reply as the page shows it, with its seq under "_seq"."""
    text, seq = await page.evaluate(
        "() => { const e = document.querySelector('#applied-state');"
        " return [e.textContent, e.dataset.seq]; }"
    )
    state: dict[str, Any] = json.loads(text)
    state["_seq"] = int(seq)
    return state


async def wait_for_applied(page: Page, predicate: str) -> dict[str, Any]:
    """Wait until the applied state `s` satisfies the JavaScript expression `predicate`."""
    await page.wait_for_function(
        "(predicate) => { const e = document.querySelector('#applied-state');"
        " if (!e.dataset.seq) return false;"
        " const s = JSON.parse(e.textContent);"
        " return new Function('s', `return (${predicate});`)(s); }",
        arg=predicate,
        timeout=TIMEOUT_MS,
    )
    return await applied(page)


async def wait_for_frame_with_seq(page: Page, seq: int) -> dict[str, str]:
    """Wait until the frame on screen is one rendered from the update `seq` (or later)."""
    await page.wait_for_function(
        "(seq) => Number(document.querySelector('#readout').dataset.seq) >= seq",
        arg=seq,
        timeout=TIMEOUT_MS,
    )
    return await readout(page)


async def readout(page: Page) -> dict[str, str]:
    data: dict[str, str] = await page.evaluate(
        "() => ({...document.querySelector('#readout').dataset})"
    )
    return data


async def wait_for_connection(page: Page, state: str) -> str:
    await page.wait_for_selector(f"#connection[data-state={state}]", timeout=TIMEOUT_MS)
    return (await page.inner_text("#connection")).strip()


async def wait_until_ready(page: Page) -> None:
    """The hello has arrived (controls built) and a series is selected: Start is enabled."""
    await page.wait_for_selector("#start:enabled", timeout=TIMEOUT_MS)


async def wait_for_video_playing(page: Page, frames: int = 3) -> None:
    """The video element is playing decoded frames: the frame callback has fired `frames` times."""
    await page.wait_for_function(
        "(frames) => { const v = document.querySelector('#video');"
        " return Number(v.dataset.presentedFrames) >= frames && !v.paused"
        " && v.readyState >= 2 && v.videoWidth > 0; }",
        arg=frames,
        timeout=TIMEOUT_MS,
    )


async def start_stream(page: Page) -> dict[str, Any]:
    """Press Start; wait for streaming video and the first applied state."""
    await wait_until_ready(page)
    await page.click("#start")
    await wait_for_connection(page, "streaming")
    await wait_for_video_playing(page)
    return await wait_for_applied(page, "true")


async def choose_algorithm(page: Page, name: str) -> dict[str, Any]:
    await page.select_option("#algorithm", name)
    return await wait_for_applied(page, f"s.algorithm === {json.dumps(name)}")


async def image_point(page: Page, fx: float, fy: float) -> tuple[float, float, float]:
    """Client coordinates of the point at fractions (fx, fy) of the picture inside the video
    element (object-fit: contain letterboxes it), and the CSS pixels per video pixel."""
    box = await page.locator("#video").bounding_box()
    assert box is not None
    width, height = await page.evaluate(
        "() => { const v = document.querySelector('#video');"
        " return [v.videoWidth, v.videoHeight]; }"
    )
    scale = min(box["width"] / width, box["height"] / height)
    left = box["x"] + (box["width"] - width * scale) / 2
    top = box["y"] + (box["height"] - height * scale) / 2
    return left + fx * width * scale, top + fy * height * scale, scale
