"""Click to outline: region growing from a click, its readout with units, and "nothing found"."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from mediastream.dicom.phantom import phantom_hu_slice
from tests.browser.client_page import (
    choose_algorithm,
    image_point,
    start_stream,
    wait_for_applied,
    wait_for_frame_with_seq,
)
from tests.browser.conftest import PageFactory

pytestmark = pytest.mark.asyncio(loop_scope="session")  # one browser per session: conftest.py

SLICES, SIZE = 6, 128  # the page's library fixture: the phantom at 128 x 128


def lung_point(index: int) -> tuple[float, float]:
    """A point deep inside the phantom's lung, as fractions of the picture (x, y)."""
    hu = phantom_hu_slice(index, SLICES, SIZE)
    depth = ndimage.distance_transform_edt((hu > -900) & (hu < -700))
    row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return (col + 0.5) / SIZE, (row + 0.5) / SIZE


async def test_a_click_outlines_the_structure_and_the_readout_gives_units(
    open_library_page: PageFactory,
) -> None:
    page = await open_library_page(n_slices=SLICES)
    options = await page.eval_on_selector_all("#algorithm option", "o => o.map(x => x.value)")
    assert options[:2] == ["none", "region_grow"]  # region growing right after None
    await start_stream(page)
    await page.click("#play")  # hold a slice through the lungs
    await wait_for_applied(page, "s.playing === false")
    index = 3
    await page.fill("#slice", str(index))
    await wait_for_applied(page, f"s.index === {index}")
    await choose_algorithm(page, "region_grow")

    fx, fy = lung_point(index)
    cx, cy, _ = await image_point(page, fx, fy)
    await page.mouse.click(cx, cy)
    state = await wait_for_applied(
        page,
        f"Math.abs(s.params.x - {fx * SIZE}) <= 1.5 && Math.abs(s.params.y - {fy * SIZE}) <= 1.5",
    )
    shown = await wait_for_frame_with_seq(page, state["_seq"])
    assert shown["algorithm"] == "region_grow" and shown["found"] == "true"
    text = await page.inner_text("#readout-stats")
    assert "Area" in text and "mm²" in text
    assert "Mean ± SD" in text and "HU" in text
    assert "Perimeter" in text and " mm" in text
    latency = await page.get_attribute("#readout", "data-latency-ms")
    assert latency is not None and 0 < int(latency) < 20_000
    assert (await page.inner_text("#readout-latency")).endswith("ms")

    # A drag sets the tolerance: one step (1 HU) per CSS pixel.
    await page.mouse.move(cx, cy)
    await page.mouse.down()
    await page.mouse.move(cx + 40, cy, steps=5)
    await page.mouse.up()
    state = await wait_for_applied(page, "s.params.tolerance >= 30")
    await wait_for_frame_with_seq(page, state["_seq"])

    # A click in the air around the body finds no structure: said so, no tiny area.
    cx, cy, _ = await image_point(page, 0.02, 0.02)
    await page.mouse.click(cx, cy)
    state = await wait_for_applied(page, "s.params.x <= 4 && s.params.y <= 4")
    shown = await wait_for_frame_with_seq(page, state["_seq"])
    assert shown["found"] == "false"
    assert (
        await page.inner_text("#readout-stats")
    ) == "Nothing found here — click inside a structure"
