"""What the page shows when the server says no: rejected files, refused values, a refused
stream, and a series deleted while it streams."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import Dialog

from tests.browser.client_page import (
    choose_algorithm,
    page_url,
    start_stream,
    wait_for_applied,
    wait_for_connection,
    wait_until_ready,
    write_series,
)
from tests.browser.conftest import OpenedPage, PageFactory, ServerFactory, console_of, fill_library

pytestmark = pytest.mark.asyncio(loop_scope="session")  # one browser per session: conftest.py


def write_text_file(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "notes.txt"
    path.write_text("not an image\n")
    return path


async def test_upload_lists_each_files_outcome(
    make_server: ServerFactory, open_page: PageFactory, tmp_path: Path
) -> None:
    page = await open_page(page_url(await make_server()))
    files = write_series(tmp_path / "series", n_slices=2, size=64)
    await page.set_input_files("#file-input", [*files, write_text_file(tmp_path)])
    await page.wait_for_selector("#upload-summary[data-rejected='1'][data-stored='2']")
    rejected = page.locator("#upload-files li[data-outcome=rejected]")
    assert "notes.txt" in await rejected.inner_text()
    assert "not a DICOM file" in await rejected.inner_text()
    assert await page.get_attribute("#upload-details", "open") is not None  # rejections shown

    # The same files again: the server already has them.
    await page.set_input_files("#file-input", files)
    await page.wait_for_selector("#upload-summary[data-already-stored='2']")
    assert "2 already stored" in await page.inner_text("#upload-summary")
    assert await page.locator("#series-list li").count() == 1


async def test_upload_without_a_valid_file_shows_the_servers_reason(
    make_server: ServerFactory,
    open_page: PageFactory,
    opened: list[OpenedPage],
    tmp_path: Path,
) -> None:
    page = await open_page(page_url(await make_server()))
    # The server answers 422 no_valid_files (README, POST /images); Chromium logs every 4xx
    # response as a console error. That one message is the point of this test, nothing else.
    console_of(opened, page).expect_error(r"Failed to load resource: .*status of 422")
    await page.set_input_files("#file-input", [write_text_file(tmp_path)])
    await page.wait_for_selector("#upload-summary[data-rejected='1']")
    summary = await page.inner_text("#upload-summary")
    assert "None of the 1 uploaded file(s)" in summary
    assert "not a DICOM file" in await page.inner_text("#upload-files")
    assert "No series yet" in await page.inner_text("#library-status")


async def test_refused_values_are_shown_next_to_their_control(
    open_library_page: PageFactory,
) -> None:
    page = await open_library_page()
    await start_stream(page)
    await choose_algorithm(page, "watershed")

    # The number box takes any value; the server judges it and the page shows its answer.
    await page.fill("#param-threshold_ratio-value", "1.5")
    await page.press("#param-threshold_ratio-value", "Enter")
    error = page.locator("#param-threshold_ratio-error")
    await error.wait_for(state="visible")
    assert "threshold_ratio" in await error.inner_text()
    assert "1.5" in await error.inner_text()
    assert await page.get_attribute("#param-threshold_ratio-value", "aria-invalid") == "true"
    state = await wait_for_applied(page, "true")
    assert state["params"]["threshold_ratio"] == 0.5  # kept
    assert await page.get_attribute("[data-param=threshold_ratio]", "data-applied") == "0.5"

    await page.fill("#param-threshold_ratio-value", "0.4")
    await page.press("#param-threshold_ratio-value", "Enter")
    await wait_for_applied(page, "s.params.threshold_ratio === 0.4")
    await error.wait_for(state="hidden")

    # A window width below 1 is refused next to the window inputs.
    await page.fill("#window-center", "40")
    await page.fill("#window-width", "0")
    await page.press("#window-width", "Enter")
    window_error = page.locator("#window-error")
    await window_error.wait_for(state="visible")
    assert "window.width" in await window_error.inner_text()
    assert (await wait_for_applied(page, "true"))["window"] is None


async def test_a_refused_stream_shows_failed_with_the_servers_reason(
    make_server: ServerFactory, open_page: PageFactory, uploads: Path
) -> None:
    fill_library(uploads)
    url = page_url(await make_server(max_sessions=1))
    first = await open_page(url)
    await start_stream(first)
    second = await open_page(url)
    await wait_until_ready(second)
    await second.click("#start")
    text = await wait_for_connection(second, "failed")
    assert "streaming to 1 viewers already" in text
    assert await second.is_enabled("#start") and await second.is_disabled("#stop")
    assert await first.get_attribute("#connection", "data-state") == "streaming"


async def test_deleting_the_streamed_series_stops_the_stream(
    open_library_page: PageFactory,
) -> None:
    page = await open_library_page()
    await start_stream(page)

    questions: list[str] = []

    def accept(dialog: Dialog) -> None:
        questions.append(dialog.message)
        asyncio.ensure_future(dialog.accept())

    page.once("dialog", accept)
    await page.click("#series-list li button:has-text('Delete')")
    text = await wait_for_connection(page, "stopped")
    assert "the series was deleted" in text
    assert "Demo phantom" in questions[0] and "cannot be undone" in questions[0]
    await page.wait_for_selector("#library-status:has-text('No series yet')")
    assert await page.locator("#series-list li").count() == 0
    assert await page.is_disabled("#start")
