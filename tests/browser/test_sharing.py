"""Shared viewing in two pages: the presenter shares and steers, the viewer watches read-only."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from playwright.async_api import Page

from tests.browser.client_page import (
    choose_algorithm,
    page_url,
    readout,
    start_stream,
    wait_for_connection,
    wait_for_frame_with_seq,
    wait_for_video_playing,
)
from tests.browser.conftest import PageFactory, ServerFactory, fill_library

pytestmark = pytest.mark.asyncio(loop_scope="session")  # one browser per session: conftest.py

TIMEOUT_MS = 20_000


async def red_pixels(page: Page) -> int:
    """Pixels of the video on screen drawn in the overlay colour."""
    png = await page.locator("#video").screenshot()
    decoded = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None
    image = np.asarray(decoded, dtype=int)
    b, g, r = image[..., 0], image[..., 1], image[..., 2]
    return int(np.count_nonzero((r - g > 60) & (r - b > 60)))


async def wait_for_red_pixels(page: Page, minimum: int, timeout: float = 10.0) -> int:
    """Poll the picture (a screenshot each time) until it has `minimum` red pixels."""
    deadline = time.monotonic() + timeout
    while (count := await red_pixels(page)) <= minimum and time.monotonic() < deadline:
        pass
    return count


async def test_the_viewer_watches_what_the_presenter_steers(
    make_server: ServerFactory, open_page: PageFactory, uploads: Path
) -> None:
    fill_library(uploads, n_slices=4)
    server = await make_server()
    presenter = await open_page(page_url(server))
    await start_stream(presenter)
    await presenter.click("#play")  # hold one slice: the pictures only change on a change

    await presenter.click("#share")
    await presenter.wait_for_selector("#share-status:not([hidden])", timeout=TIMEOUT_MS)
    link = await presenter.input_value("#share-link")
    assert "?view=" in link
    assert await presenter.inner_text("#share-viewers") == "0 watching"

    viewer = await open_page(link)
    await wait_for_connection(viewer, "streaming")
    await wait_for_video_playing(viewer)
    assert await viewer.is_visible("#viewing-banner")
    assert "Viewing a shared session" in await viewer.inner_text("#viewing-banner")
    for control in ("#algorithm", "#play", "#slice", "#window-preset"):
        assert await viewer.is_visible(control) and await viewer.is_disabled(control), control
    assert await viewer.is_disabled("#share")
    await presenter.wait_for_function(
        "() => document.querySelector('#share-viewers').value === '1 watching'",
        timeout=TIMEOUT_MS,
    )
    assert await red_pixels(viewer) == 0  # the plain image

    state = await choose_algorithm(presenter, "watershed")
    shown = await wait_for_frame_with_seq(viewer, state["_seq"])  # the readout stays live
    assert shown["algorithm"] == "watershed"
    await viewer.wait_for_function(
        "() => document.querySelector('#algorithm').value === 'watershed'", timeout=TIMEOUT_MS
    )
    assert await wait_for_red_pixels(viewer, 50) > 50  # the viewer's picture changed
    assert (await readout(viewer))["seq"] == (await readout(presenter))["seq"]

    await presenter.click("#unshare")
    await wait_for_connection(viewer, "stopped")
    assert "sharing ended" in await viewer.inner_text("#connection")
