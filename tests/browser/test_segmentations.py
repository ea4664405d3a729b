"""The page's 3-D segmentation: segment through the series, save as DICOM SEG, outline the
stream from the saved result, track while playing, delete."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import pytest

from tests.blob_series import CENTRE, SIZE, blob_series
from tests.browser.client_page import (
    TIMEOUT_MS,
    choose_algorithm,
    image_point,
    page_url,
    start_stream,
    wait_for_applied,
    wait_for_frame_with_seq,
)
from tests.browser.conftest import PageFactory, ServerFactory, fill_library

pytestmark = pytest.mark.asyncio(loop_scope="session")  # one browser per session: conftest.py


async def test_propagate_save_show_track_and_delete(
    make_server: ServerFactory, open_page: PageFactory, uploads: Path, tmp_path: Path
) -> None:
    fill_library(uploads, datasets=blob_series())
    page = await open_page(page_url(await make_server()))
    await start_stream(page)
    await page.click("#play")  # pause on the blob's middle slice
    await wait_for_applied(page, "s.playing === false")
    await page.fill("#slice", "8")
    await wait_for_applied(page, "s.index === 8")
    assert await page.is_disabled("#segment-series")  # plain image: no click to follow

    # Click the blob with region growing.
    await choose_algorithm(page, "region_grow")
    assert await page.is_enabled("#segment-series")
    assert await page.is_disabled("#save-seg")  # nothing made yet
    row, col = CENTRE
    x, y, _ = await image_point(page, (col + 0.5) / SIZE, (row + 0.5) / SIZE)
    await page.mouse.click(x, y)
    await wait_for_applied(page, f"Math.abs(s.params.x - {col}) <= 1 && s.index === 8")

    # Segment through the series: a result with its volume and the slices it covers.
    await page.fill("#segment-label", "blob")
    await page.click("#segment-series")
    result = page.locator("#segment-result[data-seg-uid]")
    await result.wait_for(timeout=TIMEOUT_MS)
    seg_uid = await result.get_attribute("data-seg-uid")
    slices = int(await result.get_attribute("data-slices") or 0)
    assert seg_uid and 5 <= slices <= 8  # the blob spans slices 4-11
    text = await result.inner_text()
    assert "blob:" in text and "mL" in text and f"({slices})" in text
    assert await page.is_hidden("#segment-progress")
    listed = page.locator(f"#segmentation-list li[data-seg-uid='{seg_uid}']")
    await listed.wait_for(timeout=TIMEOUT_MS)
    assert "blob" in await listed.inner_text()

    # Save as DICOM SEG: the download is the stored SEG, one frame per slice covered.
    async with page.expect_download() as download_info:
        await page.click("#save-seg")
    download = await download_info.value
    path = tmp_path / "blob.dcm"
    await download.save_as(path)
    seg = hd.seg.segread(path)
    assert seg.SOPInstanceUID == seg_uid
    assert seg.NumberOfFrames == slices
    assert seg.SegmentSequence[0].SegmentLabel == "blob"

    # Show it: every slice's outline now comes from the saved result.
    await listed.locator("button", has_text="Show").click()
    state = await wait_for_applied(page, f"s.seg === '{seg_uid}'")
    shown = await wait_for_frame_with_seq(page, state["_seq"])
    assert shown["seg"] == seg_uid and shown["found"] == "true"
    await page.fill("#slice", "14")  # past the blob: the saved result does not reach it
    state = await wait_for_applied(page, "s.index === 14")
    shown = await wait_for_frame_with_seq(page, state["_seq"])
    assert shown["seg"] == seg_uid and shown["found"] == "false"
    await listed.locator("button", has_text="Show").click()  # again: back to the algorithm
    await wait_for_applied(page, "s.seg === null")

    # Track while playing: the frames after the click's slice say they were tracked.
    await page.fill("#slice", "8")
    await wait_for_applied(page, "s.index === 8")
    await page.check("#track")
    await wait_for_applied(page, "s.track === true")
    await page.fill("#image-delay", "0.3")
    await page.press("#image-delay", "Tab")
    await page.click("#play")
    await wait_for_applied(page, "s.playing === true")
    await page.wait_for_function(
        "() => { const d = document.querySelector('#readout').dataset;"
        " return d.index === '9' && d.tracked === 'true' && d.found === 'true'; }",
        timeout=TIMEOUT_MS,
    )
    # ... and the outline stops where the blob ends (slice 12 on).
    await page.wait_for_function(
        "() => { const d = document.querySelector('#readout').dataset;"
        " return d.index === '12' && d.tracked === 'true' && d.found === 'false'; }",
        timeout=TIMEOUT_MS,
    )

    # Delete: the list empties.
    page.once("dialog", lambda dialog: dialog.accept())
    await listed.locator("button", has_text="Delete").click()
    await listed.wait_for(state="detached", timeout=TIMEOUT_MS)
    assert await page.locator("#segmentation-list li").count() == 0
    assert "None saved yet" in await page.inner_text("#segmentations-status")
