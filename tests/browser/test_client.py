"""The whole path a person takes: upload a series through the page, stream it, steer it, stop."""

from __future__ import annotations

import base64
import math
from pathlib import Path

import pytest

from tests.browser.client_page import (
    applied,
    choose_algorithm,
    image_point,
    page_url,
    readout,
    series_datasets,
    start_stream,
    wait_for_applied,
    wait_for_connection,
    wait_for_frame_with_seq,
    write_series,
)
from tests.browser.conftest import PageFactory, ServerFactory, fill_library

pytestmark = pytest.mark.asyncio(loop_scope="session")  # one browser per session: conftest.py

SIZE = 128


async def test_upload_stream_steer_click_and_stop(
    make_server: ServerFactory, open_page: PageFactory, tmp_path: Path
) -> None:
    server = await make_server()  # an empty library: the series arrives through the page
    page = await open_page(page_url(server))
    await page.wait_for_selector("#library-status:has-text('No series yet')")
    assert await page.is_disabled("#start")

    # Upload through the file input; the server's outcome for each file is listed.
    await page.set_input_files("#file-input", write_series(tmp_path / "series", 6, SIZE))
    await page.wait_for_selector("#upload-summary[data-stored='6']")
    assert await page.locator("#upload-files li[data-outcome=stored]").count() == 6
    assert "6 stored" in await page.inner_text("#upload-summary")
    bar = await page.evaluate(
        "() => { const b = document.querySelector('#upload-bar'); return [b.value, b.max]; }"
    )
    assert bar[0] == bar[1] > 6 * SIZE * SIZE  # bytes sent / total, all sent
    sent, total = (await page.inner_text("#upload-bytes")).split(" / ")
    assert sent == total

    # The series appears, selected, with a decoded thumbnail and its facts.
    item = page.locator("#series-list li")
    await item.first.wait_for()
    assert await item.count() == 1
    await page.wait_for_function(
        "() => { const img = document.querySelector('#series-list img');"
        " return img.complete && img.naturalWidth > 0; }"
    )
    text = await item.inner_text()
    assert "CT" in text and "6 frames" in text and f"{SIZE}×{SIZE}" in text
    assert await item.locator("input[type=radio]").is_checked()

    # Start: the video plays (frames are presented) at the series' aspect ratio.
    state = await start_stream(page)
    assert state["count"] == 6 and state["algorithm"] == "none"
    box = await page.locator("#video").bounding_box()
    assert box is not None and abs(box["width"] / box["height"] - 1) < 0.02
    assert await page.evaluate("document.querySelector('#video').videoWidth") == SIZE

    # Watershed, then move its threshold slider with the keyboard: each press is a change.
    await choose_algorithm(page, "watershed")
    await page.focus("#param-threshold_ratio")
    for _ in range(5):
        await page.keyboard.press("ArrowRight")
    state = await wait_for_applied(page, "s.params.threshold_ratio === 0.55")
    shown = await wait_for_frame_with_seq(page, state["_seq"])
    assert shown["algorithm"] == "watershed" and shown["stage"] == "final"
    control = page.locator("[data-param=threshold_ratio]")
    assert await control.get_attribute("data-applied") == "0.55"
    assert "applied 0.55" in await control.inner_text()
    assert await page.input_value("#param-threshold_ratio-value") == "0.55"
    assert "Regions" in await page.inner_text("#readout-stats")

    # Snakes: a click on the video places the centre at the clicked image pixel.
    await choose_algorithm(page, "snakes")
    fx, fy = 0.3, 0.65
    cx, cy, scale = await image_point(page, fx, fy)
    await page.mouse.click(cx, cy)
    expected_x, expected_y = fx * SIZE, fy * SIZE
    state = await wait_for_applied(
        page,
        f"Math.abs(s.params.x - {expected_x}) <= 2 && Math.abs(s.params.y - {expected_y}) <= 2",
    )
    shown = await wait_for_frame_with_seq(page, state["_seq"])
    assert shown["algorithm"] == "snakes"
    assert shown["stage"] in {"preview", "evolving", "final"}

    # Dragging from the centre sets the radius: 20 CSS pixels is 20 / scale image pixels.
    await page.mouse.move(cx, cy)
    await page.mouse.down()
    await page.mouse.move(cx + 20, cy, steps=4)
    await page.mouse.up()
    radius = 20 / scale
    state = await wait_for_applied(page, f"Math.abs(s.params.radius - {radius}) <= 2")
    assert math.isclose(state["params"]["x"], expected_x, abs_tol=2)
    await wait_for_frame_with_seq(page, state["_seq"])
    # The readout reports the contour's area in mm² (the phantom has Pixel Spacing).
    await page.wait_for_function(
        "() => document.querySelector('#readout-stats').textContent.includes('mm²')"
    )
    assert (await readout(page))["algorithm"] == "snakes"

    # Stop.
    await page.click("#stop")
    text = await wait_for_connection(page, "stopped")
    assert "stopped by the client" in text
    assert await page.is_enabled("#start") and await page.is_disabled("#stop")


async def test_a_non_square_series_keeps_its_aspect_and_another_series_can_be_picked(
    make_server: ServerFactory, open_page: PageFactory, uploads: Path
) -> None:

    square = fill_library(uploads, n_slices=6, size=SIZE)
    rows = 97  # odd: the server pads the video to 98 rows, the click mapping must not care
    cropped = fill_library(uploads, datasets=series_datasets(n_slices=4, size=SIZE, rows=rows))
    page = await open_page(page_url(await make_server()))

    # The newest series is selected; the video takes its shape.
    state = await start_stream(page)
    assert state["series"] == cropped and state["count"] == 4
    box = await page.locator("#video-frame").bounding_box()
    assert box is not None and math.isclose(box["width"] / box["height"], SIZE / rows, rel_tol=0.02)

    await choose_algorithm(page, "snakes")
    fx, fy = 0.7, 0.4
    cx, cy, _ = await image_point(page, fx, fy)
    await page.mouse.click(cx, cy)
    height = await page.evaluate("document.querySelector('#video').videoHeight")
    expected_x, expected_y = fx * SIZE, fy * height
    await wait_for_applied(
        page,
        f"Math.abs(s.params.x - {expected_x}) <= 2 && Math.abs(s.params.y - {expected_y}) <= 2",
    )
    # The bottom edge clamps into the image (rows - 1), never onto the padding row.
    cx, cy, _ = await image_point(page, 0.5, 0.999)
    await page.mouse.click(cx, cy)
    await wait_for_applied(page, f"s.params.y === {rows - 1}")

    # Picking the other series switches the running stream to its slice 0.
    await page.check(f"#series-list li[data-series-uid='{square}'] input[type=radio]")
    state = await wait_for_applied(page, f"s.series === '{square}'")
    assert state["count"] == 6 and state["algorithm"] == "snakes"
    shown = await wait_for_frame_with_seq(page, state["_seq"])
    assert shown["index"] == "0"
    assert await page.inner_text("#readout-slice") == "1 / 6"
    await page.wait_for_function(
        "(size) => document.querySelector('#video').videoHeight === size", arg=SIZE
    )
    box = await page.locator("#video-frame").bounding_box()
    assert box is not None and math.isclose(box["width"], box["height"], rel_tol=0.02)
    assert (await applied(page))["window"] is None


async def test_a_folder_or_dropped_files_upload_too(
    make_server: ServerFactory, open_page: PageFactory, tmp_path: Path
) -> None:
    page = await open_page(page_url(await make_server()))
    await page.wait_for_selector("#library-status:has-text('No series yet')")

    # A folder through the directory picker: files keep their path inside it as their name.
    folder = tmp_path / "study"
    write_series(folder / "series", n_slices=3, size=64)
    await page.set_input_files("#folder-input", folder)
    await page.wait_for_selector("#upload-summary[data-stored='3']")
    names = await page.locator("#upload-files .filename").all_text_contents()
    assert sorted(names) == [f"study/series/slice{i:02d}.dcm" for i in range(3)]
    await page.wait_for_selector("#series-list li:has-text('3 frames')")

    # Files dropped on the drop zone (built in the page: Playwright cannot drag from the OS).
    files = write_series(tmp_path / "dropped", n_slices=2, size=48)
    payload = [
        {"name": path.name, "data": base64.b64encode(path.read_bytes()).decode()} for path in files
    ]
    await page.evaluate(
        """(files) => {
          const transfer = new DataTransfer();
          for (const { name, data } of files) {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            transfer.items.add(new File([bytes], name, { type: 'application/dicom' }));
          }
          const zone = document.querySelector('#drop-zone');
          for (const type of ['dragenter', 'dragover', 'drop']) {
            zone.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true,
                                                     cancelable: true }));
          }
        }""",
        payload,
    )
    await page.wait_for_selector("#upload-summary[data-stored='2']")
    # The list is fetched again after the upload: wait for it rather than race it.
    await page.wait_for_function("document.querySelectorAll('#series-list li').length === 2")
    assert await page.get_attribute("#drop-zone", "class") == "drop-zone"  # highlight gone
